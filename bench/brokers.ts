/**
 * The brokers under test and how the harness runs them. Jobatator and the ceiling server run as
 * child processes of the harness. bench/setup starts the peers and records their process ids in
 * a state file, which the harness reads.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { Durability } from '../src/config/types';
import { loadAdapter } from './adapters';
import { AdapterName, Endpoint, Lane } from './adapters/types';
import { withDescendants } from './proc';

/** The repository root; the compiled harness runs from dist/bench. */
export const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
const CEILING = path.join(__dirname, 'ceiling.js');
const SETUP = path.join(ROOT, 'bench', 'setup');

export const BROKER_NAMES = ['jobatator', 'ceiling', 'beanstalkd-memory', 'beanstalkd-binlog', 'beanstalkd-fsync', 'rabbitmq', 'bullmq'] as const;
export type BrokerName = (typeof BROKER_NAMES)[number];
export const PEER_NAMES: BrokerName[] = ['beanstalkd-memory', 'beanstalkd-binlog', 'beanstalkd-fsync', 'rabbitmq', 'bullmq'];

/** The line in bench/setup's state file for each peer broker, and the adapter its clients use. */
const PEERS: Record<string, { peer: string; adapter: AdapterName; endpoint: Omit<Endpoint, 'port'> }> = {
  'beanstalkd-memory': { peer: 'beanstalkd-memory', adapter: 'beanstalkd', endpoint: { host: '127.0.0.1' } },
  'beanstalkd-binlog': { peer: 'beanstalkd-binlog', adapter: 'beanstalkd', endpoint: { host: '127.0.0.1' } },
  'beanstalkd-fsync': { peer: 'beanstalkd-fsync', adapter: 'beanstalkd', endpoint: { host: '127.0.0.1' } },
  rabbitmq: { peer: 'rabbitmq', adapter: 'rabbitmq', endpoint: { host: '127.0.0.1', user: 'guest', password: 'guest' } },
  bullmq: { peer: 'redis', adapter: 'bullmq', endpoint: { host: '127.0.0.1' } },
};

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
/** bench/setup waits up to 90 s for RabbitMQ to accept connections. */
const RESTART_TIMEOUT_MS = 180_000;

export interface BrokerInstance {
  readonly name: BrokerName;
  readonly adapter: AdapterName;
  readonly endpoint: Endpoint;
  /** The broker's main process id. */
  mainPid(): number;
  /** The broker's processes: its main process and every descendant. */
  pids(): number[];
  /** Removes what a run left in the broker, so the next run starts empty. */
  reset(lanes: Lane[]): Promise<void>;
  /** Replaces the broker process by a new one, for a memory baseline. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Server processes started by this harness and not yet exited. */
const startedServers = new Set<ChildProcess>();

/** Sends SIGTERM to every server process this harness started, for an interrupted run. */
export function stopStartedServers(): void {
  for (const child of startedServers) child.kill('SIGTERM');
}

/** A server process that logged "listening". */
interface Listening {
  child: ChildProcess;
  port: number;
  /** Milliseconds from the spawn to the "listening" line. */
  startMs: number;
}

/** Spawns a Node.js program and waits for its JSON log line {"msg":"listening","port":N}. */
function spawnListening(args: string[]): Promise<Listening> {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  startedServers.add(child);
  child.once('exit', () => startedServers.delete(child));
  const output: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not log "listening" within ${START_TIMEOUT_MS} ms; output:\n${output.join('\n')}`));
    }, START_TIMEOUT_MS);
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with code ${code} before listening; output:\n${output.join('\n')}`));
    };
    child.once('exit', onExit);
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          // Keep a bounded tail of the output for error messages; a long run logs little.
          if (output.length < 200) output.push(line);
          if (!line.includes('"msg":"listening"')) continue;
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve({ child, port: (JSON.parse(line) as { port: number }).port, startMs: performance.now() - spawnedAt });
        }
      });
    }
  });
}

/** Sends SIGTERM and waits for the exit, then SIGKILL after the timeout. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Settings of a Jobatator server started by the harness. */
export interface JobatatorSettings {
  shards: number;
  prefetch: number;
  /** Groups with the shard each is pinned to, or none to let the server place them by hash. */
  groups: Array<{ slug: string; shard?: number }>;
  /** `memory` when absent. `os` and `fsync` store jobs in a fresh data_dir inside the config's temporary directory. */
  durability?: Durability;
}

export const BENCH_USER = { user: 'bench', password: 'bench' };

/** Name of the data_dir inside the temporary directory of a server's config. */
const DATA_DIR_NAME = 'data';

/**
 * Writes a config for a Jobatator server on 127.0.0.1 with one user allowed in every
 * group. `job_timeout: 0` deletes a finished job at once, as the peers do.
 */
function writeJobatatorConfig(settings: JobatatorSettings): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobatator-bench-'));
  const file = path.join(dir, 'config.yml');
  const config = {
    host: '127.0.0.1',
    port: 0,
    web_port: -1,
    log_level: 'info',
    job_timeout: 0,
    // The default, written out because the delays workload needs delayed jobs held back: IGNORE
    // would publish them as pending.
    delay_policy: '',
    prefetch: settings.prefetch,
    shards: settings.shards,
    durability: settings.durability ?? 'memory',
    data_dir: path.join(dir, DATA_DIR_NAME),
    groups: settings.groups,
    users: [{ username: BENCH_USER.user, password: BENCH_USER.password, groups: ['*'] }],
  };
  fs.writeFileSync(file, YAML.stringify(config));
  return file;
}

class ChildBroker implements JobatatorServer {
  private child: ChildProcess;
  endpoint: Endpoint;
  /** Temporary directory of the server's config file and data_dir, removed on stop. */
  private configDir: string | null = null;
  dataDir: string | null = null;
  startMs: number;

  private constructor(
    readonly name: BrokerName,
    readonly adapter: AdapterName,
    private readonly args: string[],
    started: Listening,
    private readonly login: Partial<Endpoint>,
  ) {
    this.child = started.child;
    this.startMs = started.startMs;
    this.endpoint = { host: '127.0.0.1', port: started.port, ...login };
  }

  static async startJobatator(settings: JobatatorSettings): Promise<ChildBroker> {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} not found; build first with: npx tsc -p tsconfig.json`);
    const config = writeJobatatorConfig(settings);
    const args = [CLI, '--config', config];
    try {
      const broker = new ChildBroker('jobatator', 'jobatator', args, await spawnListening(args), BENCH_USER);
      broker.configDir = path.dirname(config);
      if ((settings.durability ?? 'memory') !== 'memory') broker.dataDir = path.join(broker.configDir, DATA_DIR_NAME);
      return broker;
    } catch (error) {
      fs.rmSync(path.dirname(config), { recursive: true, force: true });
      throw error;
    }
  }

  static async startCeiling(): Promise<ChildBroker> {
    const args = [CEILING, '--port', '0'];
    return new ChildBroker('ceiling', 'ceiling', args, await spawnListening(args), {});
  }

  mainPid(): number {
    return this.child.pid as number;
  }

  pids(): number[] {
    return withDescendants([this.mainPid()]);
  }

  async reset(lanes: Lane[]): Promise<void> {
    const adapter = await loadAdapter(this.adapter);
    for (const lane of lanes) await adapter.deleteQueue(this.endpoint, lane);
  }

  async restart(): Promise<void> {
    await this.stopProcess();
    await this.startProcess();
  }

  async stopProcess(): Promise<void> {
    await stopChild(this.child);
  }

  async startProcess(): Promise<void> {
    const started = await spawnListening(this.args);
    this.child = started.child;
    this.startMs = started.startMs;
    this.endpoint = { host: '127.0.0.1', port: started.port, ...this.login };
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
    if (this.configDir !== null) fs.rmSync(this.configDir, { recursive: true, force: true });
  }
}

/** A Jobatator server started by the harness, which can stop and start its process on the same config and data. */
export interface JobatatorServer extends BrokerInstance {
  /** The server's data_dir; null in memory mode. Removed with the config on `stop`. */
  readonly dataDir: string | null;
  /** Milliseconds from the spawn of the current process to its "listening" log line. */
  readonly startMs: number;
  /** Stops the process with SIGTERM, which the server takes as a graceful stop, and keeps the config and data_dir. */
  stopProcess(): Promise<void>;
  /** Starts a process on the same config and waits until it logs "listening". */
  startProcess(): Promise<void>;
}

export function startJobatator(settings: JobatatorSettings): Promise<JobatatorServer> {
  return ChildBroker.startJobatator(settings);
}

export function startCeiling(): Promise<BrokerInstance> {
  return ChildBroker.startCeiling();
}

/** Returns the path of peers.txt in bench/setup's state directory. */
export function peersFile(): string {
  const dir = process.env.JOBATATOR_BENCH_DIR ?? path.join(process.env.TMPDIR ?? '/tmp', 'jobatator-bench');
  return path.join(dir, 'peers.txt');
}

interface PeerEntry {
  port: number;
  pid: number;
}

function readPeers(): Map<string, PeerEntry> {
  const entries = new Map<string, PeerEntry>();
  let text = '';
  try {
    text = fs.readFileSync(peersFile(), 'utf8');
  } catch {
    return entries;
  }
  for (const line of text.split('\n')) {
    const [name, port, pid] = line.trim().split(/\s+/);
    if (name && port && pid) entries.set(name, { port: Number(port), pid: Number(pid) });
  }
  return entries;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

class PeerBroker implements BrokerInstance {
  readonly adapter: AdapterName;
  endpoint: Endpoint;
  private entry: PeerEntry;

  constructor(readonly name: BrokerName) {
    const peer = PEERS[name];
    this.adapter = peer.adapter;
    this.entry = PeerBroker.lookUp(name);
    this.endpoint = { ...peer.endpoint, port: this.entry.port };
  }

  private static lookUp(name: BrokerName): PeerEntry {
    const peer = PEERS[name].peer;
    const entry = readPeers().get(peer);
    if (entry === undefined || !isAlive(entry.pid)) {
      throw new Error(`${name} needs the peer "${peer}", which is not running (${peersFile()} has no live entry); run bench/setup first`);
    }
    return entry;
  }

  mainPid(): number {
    return this.entry.pid;
  }

  pids(): number[] {
    const roots = [this.entry.pid];
    // RabbitMQ's Erlang VM starts epmd as a daemon outside its own process tree.
    const epmd = this.name === 'rabbitmq' ? readPeers().get('epmd') : undefined;
    if (epmd !== undefined) roots.push(epmd.pid);
    return withDescendants(roots);
  }

  async reset(lanes: Lane[]): Promise<void> {
    if (this.adapter === 'rabbitmq') {
      const adapter = await loadAdapter(this.adapter);
      for (const lane of lanes) await adapter.deleteQueue(this.endpoint, lane);
      return;
    }
    // beanstalkd cannot delete a tube, and a restart empties Redis faster than deleting keys.
    await this.restart();
  }

  async restart(): Promise<void> {
    const peer = PEERS[this.name].peer;
    await new Promise<void>((resolve, reject) => {
      execFile('bash', [SETUP, 'restart', peer], { timeout: RESTART_TIMEOUT_MS }, (error, _stdout, stderr) => {
        if (error) reject(new Error(`bench/setup restart ${peer} failed: ${error.message}\n${stderr}`));
        else resolve();
      });
    });
    this.entry = PeerBroker.lookUp(this.name);
    this.endpoint = { ...this.endpoint, port: this.entry.port };
  }

  async stop(): Promise<void> {
    // bench/setup started the peers, and `bench/setup stop` stops them.
  }
}

export function attachPeer(name: BrokerName): BrokerInstance {
  return new PeerBroker(name);
}

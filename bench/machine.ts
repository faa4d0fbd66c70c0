import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { peersFile } from './brokers';

/** The machine and software a benchmark ran on, for the results page. */
export interface MachineInfo {
  cpuModel: string;
  /** Clock rate that /proc/cpuinfo reported for the first core, if any. */
  cpuMHz: number | null;
  cores: number;
  memoryGiB: number;
  kernel: string;
  /** Locations of Jobatator's data_dirs and bench/setup's peer data, with the file system and device of each. */
  dataFileSystems?: string;
  node: string;
  versions: Record<string, string>;
}

function commandOutput(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).trim();
  } catch {
    return 'not installed';
  }
}

function packageVersion(root: string, name: string): string {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
    return manifest.version;
  } catch {
    return 'not installed';
  }
}

/** Returns the type and device of the mount that contains `dir`, from /proc/mounts. */
function fileSystemOf(dir: string): string {
  let mounts: string;
  try {
    mounts = fs.readFileSync('/proc/mounts', 'utf8');
  } catch {
    return 'unknown';
  }
  let best = { point: '', text: 'unknown' };
  for (const line of mounts.split('\n')) {
    const [device, point, type] = line.split(' ');
    if (point === undefined || type === undefined) continue;
    const contains = dir === point || dir.startsWith(point.endsWith('/') ? point : `${point}/`);
    if (contains && point.length >= best.point.length) best = { point, text: `${type} on ${device}` };
  }
  return best.text;
}

/** Names the directories that the benchmark writes jobs to, with the file system of each. */
function describeDataDirectories(): string {
  const peerDir = path.dirname(peersFile());
  const onDisk = (dir: string): string => {
    const existing = fs.existsSync(dir) ? fs.realpathSync(dir) : dir;
    return `${dir} (${fileSystemOf(existing)})`;
  };
  return `Jobatator's data_dirs in ${onDisk(os.tmpdir())}; the peers' data in ${onDisk(peerDir)}`;
}

/** Reads the CPU model from /proc/cpuinfo and each peer's version from its binary or package. */
export function describeMachine(root: string): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  let cpuMHz: number | null = null;
  try {
    const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo);
    if (model !== null) cpuModel = model[1].trim();
    const clock = /^cpu MHz\s*:\s*([\d.]+)$/m.exec(cpuinfo);
    if (clock !== null) cpuMHz = Math.round(Number(clock[1]));
  } catch {
    // Keep the model that os.cpus() reported.
  }
  return {
    cpuModel,
    cpuMHz,
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    dataFileSystems: describeDataDirectories(),
    node: process.version,
    versions: {
      beanstalkd: commandOutput('beanstalkd', ['-v']).replace(/^beanstalkd\s*/, ''),
      'redis-server': /v=(\S+)/.exec(commandOutput('redis-server', ['--version']))?.[1] ?? 'not installed',
      'rabbitmq-server': commandOutput('dpkg-query', ['-W', '-f=${Version}', 'rabbitmq-server']),
      erlang: commandOutput('dpkg-query', ['-W', '-f=${Version}', 'erlang-base']),
      amqplib: packageVersion(root, 'amqplib'),
      bullmq: packageVersion(root, 'bullmq'),
      ioredis: packageVersion(root, 'ioredis'),
    },
  };
}

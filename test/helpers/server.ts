import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite, Test } from 'uvu';
import * as assert from 'uvu/assert';
import YAML from 'yaml';

/** The repository root. The compiled helpers run from dist/test/helpers. */
export const ROOT = path.resolve(__dirname, '..', '..', '..');
/** The compiled command-line entry point. */
export const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');

/** The users and groups of the common test setup. */
export const BASE_CONFIG = {
  host: '127.0.0.1',
  port: 0,
  web_port: 0,
  test_mode: true,
  log_level: 'info',
  shards: 2,
  groups: [{ slug: 'group1' }, { slug: 'group2' }, { slug: 'group3' }],
  users: [
    { username: 'user1', password: 'pass1', groups: ['group1'] },
    { username: 'user2', password: 'pass2', groups: ['group2', 'group3'] },
    { username: 'admin', password: 'adminpass', groups: ['*'] },
  ],
};

export interface TestServer {
  port: number;
  webPort: number | null;
  pid: number;
  process: ChildProcess;
  /** Every stdout and stderr line the server wrote so far. */
  logs: string[];
  /** Stops the server with SIGTERM and resolves with its exit code. */
  stop(): Promise<number | null>;
  /** Resolves when the process exits, with its exit code. */
  exited: Promise<number | null>;
}

export interface StartOptions {
  /** Extra command-line arguments. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Limit on open file descriptors, which a shell sets with `ulimit -n` before it runs the server. */
  maxOpenFiles?: number;
}

/** Temporary directories of this test process, removed when it exits. */
const tempDirs: string[] = [];
process.on('exit', () => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** Creates a temporary directory that is removed when the test process exits. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobatator-test-'));
  tempDirs.push(dir);
  return dir;
}

/** Writes a config to a temporary file and returns its path. */
export function writeConfig(config: unknown): string {
  const dir = tempDir();
  const file = path.join(dir, 'config.yml');
  fs.writeFileSync(file, typeof config === 'string' ? config : YAML.stringify(config));
  return file;
}

/**
 * Starts a real server process on the given config and waits for its "listening" log line.
 * Each server gets a data directory of its own unless the overrides name one.
 */
export function startServer(overrides: Record<string, unknown> = {}, options: StartOptions = {}): Promise<TestServer> {
  const file = writeConfig({ ...BASE_CONFIG, data_dir: tempDir(), ...overrides });
  return spawnServer(['--config', file, ...(options.args ?? [])], options);
}

/**
 * Creates a uvu suite whose tests share one server: `before` starts it with the config
 * overrides, and `after` stops it and checks that it exited with code 0.
 */
export function serverSuite(name: string, overrides: Record<string, unknown> = {}, options: StartOptions = {}): Test<{ server: TestServer }> {
  const tests = suite<{ server: TestServer }>(name);
  tests.before(async (context) => {
    context.server = await startServer(overrides, options);
  });
  tests.after(async (context) => {
    assert.is(await context.server.stop(), 0);
  });
  return tests;
}

/**
 * Spawns the CLI with the given arguments and waits for the "listening" log line. The
 * server runs in a temporary working directory, so a relative data_dir stays out of the
 * repository.
 */
export function spawnServer(args: string[], options: StartOptions = {}): Promise<TestServer> {
  const command = [process.execPath, CLI, ...args];
  const spawnOptions = {
    cwd: options.env?.JOBATATOR_TEST_CWD ?? tempDir(),
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'] as Array<'ignore' | 'pipe'>,
  };
  // `exec` replaces the shell, so the child's pid and signals are the server's own.
  const child =
    options.maxOpenFiles === undefined
      ? spawn(command[0], command.slice(1), spawnOptions)
      : spawn('bash', ['-c', `ulimit -n ${options.maxOpenFiles} && exec "$@"`, 'bash', ...command], spawnOptions);
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within ${options.timeoutMs ?? 15000} ms; output:\n${logs.join('\n')}`));
    }, options.timeoutMs ?? 15000);
    const onLine = (line: string): void => {
      logs.push(line);
      if (!line.includes('"msg":"listening"')) return;
      clearTimeout(timer);
      const entry = JSON.parse(line) as { port: number; web_port: number | null };
      resolve({
        port: entry.port,
        webPort: entry.web_port,
        pid: child.pid as number,
        process: child,
        logs,
        exited,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          return exited;
        },
      });
    };
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        lines.forEach(onLine);
      });
    }
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with code ${code} before listening; output:\n${logs.join('\n')}`));
    });
  });
}

/** Parses the server's JSON log lines, skipping lines that are not JSON. */
export function logEntries(server: TestServer): Array<Record<string, unknown>> {
  const entries: Array<Record<string, unknown>> = [];
  for (const line of server.logs) {
    try {
      entries.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // Not a log line.
    }
  }
  return entries;
}

/**
 * Resolves with the server's exit code, or with a "still running" message once the timeout
 * passes, so that an assertion on the code fails and shows the message.
 */
export async function exitCodeWithin(server: TestServer, timeoutMs: number): Promise<number | null | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`still running after ${timeoutMs} ms`), timeoutMs);
  });
  return Promise.race([server.exited, timeout]).finally(() => clearTimeout(timer));
}

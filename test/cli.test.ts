import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import YAML from 'yaml';
import { LineClient, parsePush, waitFor } from './helpers/client';
import { runCli, runScript } from './helpers/process';
import { exitCodeWithin, logEntries, ROOT, spawnServer, startServer, TestServer, writeConfig } from './helpers/server';

const BIN = path.join(ROOT, 'bin', 'jobatator.js');
const EXAMPLE_CONFIG = path.join(ROOT, 'config.example.yml');
/** The bin script compiles the sources first when dist/ is older than src/. */
const BIN_TIMEOUT_MS = 120000;
const EXIT_TIMEOUT_MS = 10000;

/** An address reserved for documentation (RFC 5737): no interface of this machine has it. */
const UNASSIGNED_HOST = '192.0.2.1';

function findLog(server: TestServer, message: string): Record<string, unknown> | undefined {
  return logEntries(server).find((entry) => entry.msg === message);
}

/** Opens a TCP listener on a free port of 127.0.0.1, so that the port is taken. */
function occupyPort(): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve(server));
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

const USER_CONFIG = {
  groups: [{ slug: 'local' }],
  users: [{ username: 'localuser', password: 'localpass', groups: ['local'] }],
};

const cli = suite('cli');

cli('--help prints usage and exits 0', async () => {
  const result = await runCli(['--help']);

  assert.is(result.code, 0);
  assert.is(result.stderr, '');
  assert.ok(result.stdout.startsWith('Usage:\n'), result.stdout);
  for (const option of ['--config FILE', '--host ADDRESS', '--port PORT', '--web-port PORT', '--help', 'hash-password']) {
    assert.match(result.stdout, option);
  }
});

cli('unknown flag exits 2', async () => {
  const result = await runCli(['--bogus']);

  assert.is(result.code, 2);
  assert.is(result.stdout, '');
  assert.match(result.stderr, "Unknown option '--bogus'");
  assert.match(result.stderr, 'Usage:');
});

cli('unknown argument exits 2', async () => {
  const result = await runCli(['serve']);

  assert.is(result.code, 2);
  assert.is(result.stdout, '');
  assert.match(result.stderr, 'unknown argument "serve"');
  assert.match(result.stderr, 'Usage:');
});

cli('invalid port flags exit 2', async () => {
  const config = writeConfig({ host: '127.0.0.1', port: 0, web_port: -1, ...USER_CONFIG });
  const cases: Array<{ args: string[]; message: string }> = [
    { args: ['--port', '70000'], message: 'jobatator: --port must be an integer from 0 to 65535, got "70000"\n' },
    { args: ['--port', 'http'], message: 'jobatator: --port must be an integer from 0 to 65535, got "http"\n' },
    {
      args: ['--web-port', '65536'],
      message: 'jobatator: --web-port must be an integer from 0 to 65535, or -1 to disable the gateway, got "65536"\n',
    },
    {
      args: ['--web-port=-2'],
      message: 'jobatator: --web-port must be an integer from 0 to 65535, or -1 to disable the gateway, got "-2"\n',
    },
  ];
  for (const { args, message } of cases) {
    const result = await runCli(['--config', config, ...args]);

    assert.is(result.code, 2, args.join(' '));
    assert.is(result.stderr, message, args.join(' '));
  }
});

cli('config host is used without --host', async () => {
  // Binding an address this machine lacks fails at once and sends no packet anywhere.
  const config = writeConfig({ host: UNASSIGNED_HOST, port: 0, web_port: -1, ...USER_CONFIG });
  const result = await runCli(['--config', config]);

  assert.is(result.code, 1);
  assert.match(result.stdout, '"msg":"start-up failed"');
  assert.match(result.stdout, `address not available ${UNASSIGNED_HOST}`);
});

cli('--host, --port and --web-port override the config', async () => {
  const occupied = await occupyPort();
  const takenPort = (occupied.address() as net.AddressInfo).port;
  const config = writeConfig({ host: UNASSIGNED_HOST, port: takenPort, web_port: takenPort, ...USER_CONFIG });
  let server: TestServer | undefined;
  try {
    server = await spawnServer(['--config', config, '--host', '127.0.0.1', '--port', '0', '--web-port', '0']);
    const listening = findLog(server, 'listening');
    assert.is(listening?.host, '127.0.0.1');
    assert.is.not(server.port, takenPort);
    assert.type(server.webPort, 'number');
    assert.is.not(server.webPort, takenPort);

    const client = await LineClient.login(server.port, 'localuser', 'localpass', 'local');
    assert.is(await client.request('PING'), 'PONG');
    client.close();
  } finally {
    await closeServer(occupied);
    if (server !== undefined) assert.is(await server.stop(), 0);
  }
});

cli('example config is used without a config file', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'jobatator-cwd-'));
  const server = await spawnServer(['--port', '0', '--web-port', '0'], { env: { JOBATATOR_TEST_CWD: directory } });
  try {
    assert.is(findLog(server, 'config loaded')?.file, EXAMPLE_CONFIG);
    const warning = logEntries(server).find((entry) => String(entry.msg).includes('example config'));
    assert.ok(warning !== undefined, 'a warning names the example config');
    assert.is(warning?.level, 40);
    assert.match(String(warning?.msg), 'demo credentials');
    assert.is(findLog(server, 'listening')?.host, '127.0.0.1');
    assert.type(server.webPort, 'number');
    // Jobs are stored by default, in ./data of the working directory.
    assert.is(findLog(server, 'jobs are stored on disk')?.durability, 'os');
    assert.ok(fs.existsSync(path.join(directory, 'data', 'server.pid')));

    const client = await LineClient.login(server.port, 'demo', 'demo', 'demo');
    assert.match(await client.request('PUBLISH cli-example report {}'), /^OK#[A-Za-z0-9]{16}$/);
    client.close();
  } finally {
    assert.is(await server.stop(), 0);
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

cli('./config.yml in the working directory is used', async () => {
  const directory = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'jobatator-cwd-')));
  const file = path.join(directory, 'config.yml');
  fs.writeFileSync(file, YAML.stringify({ host: '127.0.0.1', port: 0, web_port: 0, ...USER_CONFIG }));
  const server = await spawnServer(['--web-port=-1'], { env: { JOBATATOR_TEST_CWD: directory } });
  try {
    assert.is(findLog(server, 'config loaded')?.file, file);
    assert.not.ok(
      logEntries(server).some((entry) => String(entry.msg).includes('example config')),
      'no warning about the example config',
    );
    assert.is(server.webPort, null, '--web-port=-1 disables the gateway');

    const client = await LineClient.login(server.port, 'localuser', 'localpass', 'local');
    assert.is(await client.request('PING'), 'PONG');
    client.close();

    const demo = await LineClient.connect(server.port);
    assert.is(await demo.request('AUTH demo demo'), 'Err: invalid-creds');
    demo.close();
  } finally {
    assert.is(await server.stop(), 0);
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  cli(`${signal} stops the server with connected clients`, async () => {
    const server = await startServer();
    const worker = await LineClient.login(server.port);
    const publisher = await LineClient.login(server.port);
    const idle = await LineClient.connect(server.port);
    try {
      const queue = `cli-${signal.toLowerCase()}`;
      assert.is(await worker.request(`SUBSCRIBE ${queue}`), 'OK');
      assert.match(await publisher.request(`PUBLISH ${queue} t p`), /^OK#/);
      assert.is(parsePush(await worker.next()).State, 'in-progress');
      idle.write('PUBLISH half-a-comm');

      server.process.kill(signal);
      const code = await exitCodeWithin(server, EXIT_TIMEOUT_MS);

      assert.is(code, 0);
      // The last output lines may arrive after the exit event.
      await waitFor(() => findLog(server, 'stopped') !== undefined, 5000, 'a "stopped" log line');
      assert.is(findLog(server, 'stopping')?.reason, signal);
      for (const client of [worker, publisher, idle]) await client.waitClosed();
    } finally {
      for (const client of [worker, publisher, idle]) client.close();
      await server.stop();
    }
  });
}

cli('bin script runs the CLI', async () => {
  const result = await runScript(BIN, ['--help'], { timeoutMs: BIN_TIMEOUT_MS });

  assert.is(result.code, 0, result.stderr);
  assert.ok(result.stdout.startsWith('Usage:\n'), result.stdout);
  assert.match(result.stdout, '--config FILE');
});

cli.run();

import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LineClient } from './helpers/client';
import { startServer, tempDir } from './helpers/server';

interface Outcome {
  socket: net.Socket;
  result: 'answered' | 'closed' | 'hung';
}

/** Opens a connection, sends AUTH and reports whether it got a reply, was closed or was left hanging. */
function authenticate(port: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    let settled = false;
    const settle = (result: Outcome['result']): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ socket, result });
    };
    const timer = setTimeout(() => settle('hung'), 3000);
    socket.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('\n')) settle('answered');
    });
    socket.on('close', () => settle('closed'));
    socket.write('AUTH user1 pass1\n');
  });
}

/** Publishes one job at a time until stopped; returns the ids stored and the other replies. */
function keepPublishing(publisher: LineClient): { stop(): Promise<{ ids: string[]; errors: string[] }> } {
  const ids: string[] = [];
  const errors: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const reply = await publisher.request('PUBLISH fd-q t x');
      if (reply.startsWith('OK#')) ids.push(reply.slice(3));
      else errors.push(reply);
    }
  })().catch((error: Error) => {
    errors.push(`failed: ${error.message}`);
  });
  return {
    async stop() {
      running = false;
      await loop;
      return { ids, errors };
    },
  };
}

test('connections past the file limit close at once', async () => {
  const config = { shards: 1, web_port: -1, durability: 'os', data_dir: tempDir() };
  const server = await startServer(config, { maxOpenFiles: 128 });
  let stored: string[] = [];
  try {
    const port = server.port;
    const publisher = await LineClient.login(port);
    const background = await LineClient.login(port);
    const publishing = keepPublishing(background);

    const first = await Promise.all(Array.from({ length: 200 }, () => authenticate(port)));
    const hung = first.filter((outcome) => outcome.result === 'hung').length;
    const answered = first.filter((outcome) => outcome.result === 'answered').length;
    assert.is(hung, 0, 'no connection may hang');
    assert.ok(answered > 50, `expected most connections answered, got ${answered}`);
    assert.ok(answered < 200, 'the limit of 128 descriptors must refuse some connections');

    assert.is(await publisher.request('PING'), 'PONG');
    const id = (await publisher.request('PUBLISH fd-q t x')).slice(3);
    assert.is(id.length, 16);

    for (const outcome of first) outcome.socket.destroy();
    await publisher.request('PING', 'PONG');
    const second = await Promise.all(Array.from({ length: 10 }, () => authenticate(port)));
    assert.equal(
      second.map((outcome) => outcome.result),
      Array.from({ length: 10 }, () => 'answered'),
    );
    for (const outcome of second) outcome.socket.destroy();

    const { ids, errors } = await publishing.stop();
    // A publish that cannot be stored gets an error line, never a silent loss.
    for (const error of errors) assert.match(error, /^Err: /);
    assert.ok(ids.length > 0, 'publishes went on during the connection storm');
    stored = [id, ...ids].sort();
    const jobs = await publisher.json<Array<{ ID: string }>>('LIST_JOBS fd-q');
    assert.equal(jobs.map((job) => job.ID).sort(), stored);
    publisher.close();
    background.close();
  } finally {
    assert.is(await server.stop(), 0);
  }

  // Every acknowledged job is in the store.
  const restarted = await startServer(config);
  try {
    const reader = await LineClient.login(restarted.port);
    const jobs = await reader.json<Array<{ ID: string }>>('LIST_JOBS fd-q');
    assert.equal(jobs.map((job) => job.ID).sort(), stored);
    reader.close();
  } finally {
    assert.is(await restarted.stop(), 0);
  }
});

test.run();

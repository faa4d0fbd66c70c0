import * as assert from 'uvu/assert';
import { closeAll, LineClient, parsePush } from './helpers/client';
import { publish, subscribe } from './helpers/jobs';
import { exitCodeWithin, serverSuite, startServer } from './helpers/server';

const resources = serverSuite('resources', { shards: 1, max_line_bytes: 4 * 1024 * 1024 });

resources('many large pipelined listings all arrive', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  assert.match(await publisher.request(`PUBLISH rs-big t ${'x'.repeat(2 * 1024 * 1024)}`), /^OK#/);
  const reader = await LineClient.login(server.port);
  reader.write('LIST_JOBS rs-big\n'.repeat(30) + 'PING\n');
  for (let index = 0; index < 30; index++) {
    const listing = JSON.parse(await reader.next(20000)) as Array<{ Payload: string }>;
    assert.is(listing[0].Payload.length, 2 * 1024 * 1024);
  }
  assert.is(await reader.next(), 'PONG');
  closeAll(publisher, reader);
});

resources('holder purging its queue keeps receiving jobs', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const worker = await subscribe(server.port, 'rs-purge');
  const first = await publish(publisher, 'rs-purge', 'first');
  assert.is(parsePush(await worker.next()).ID, first);
  assert.is(await worker.request('PURGE_JOBS rs-purge'), 'OK');
  const second = await publish(publisher, 'rs-purge', 'second');
  assert.is(parsePush(await worker.next()).ID, second);
  closeAll(publisher, worker);
});

resources('stop does not wait for half-open clients', async () => {
  const server = await startServer({ shards: 1 });
  const idle = await LineClient.connect(server.port, '127.0.0.1', true);
  assert.is(await idle.request('AUTH user1 pass1'), 'Welcome!');
  const quitter = await LineClient.connect(server.port, '127.0.0.1', true);
  assert.is(await quitter.request('QUIT'), '');
  server.process.kill('SIGTERM');
  assert.is(await exitCodeWithin(server, 8000), 0);
  closeAll(idle, quitter);
});

resources.run();

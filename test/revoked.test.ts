import * as assert from 'uvu/assert';
import { closeAll, LineClient, parsePush } from './helpers/client';
import { publish, subscribe } from './helpers/jobs';
import { serverSuite } from './helpers/server';

const revoked = serverSuite('revoked jobs', { lease: 2, shards: 1 });

revoked('expired lease keeps the slot until the report', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const worker = await subscribe(server.port, 'rv-lease');
  const first = await publish(publisher, 'rv-lease', 'first');
  assert.is(parsePush(await worker.next()).ID, first);
  const second = await publish(publisher, 'rv-lease', 'second');
  assert.is(await publisher.request('ADVANCE_CLOCK 3'), 'OK');

  // The worker is still busy with the first job, so the reply to its report must be the
  // next line it reads, not a push.
  assert.match(await worker.request(`UPDATE_JOB ${first} done`), /^Err: lease-expired;/);
  const again = parsePush(await worker.next());
  assert.is(again.ID, first);
  assert.is(again.Attempts, 1);
  assert.is(await worker.request(`UPDATE_JOB ${first} done`), 'OK');
  assert.is(parsePush(await worker.next()).ID, second);
  closeAll(publisher, worker);
});

revoked('deleted job keeps the slot until the report', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const worker = await subscribe(server.port, 'rv-delete');
  const first = await publish(publisher, 'rv-delete', 'first');
  assert.is(parsePush(await worker.next()).ID, first);
  assert.is(await publisher.request(`DELETE_JOB ${first}`), 'OK');
  const second = await publish(publisher, 'rv-delete', 'second');

  assert.is(await worker.request(`UPDATE_JOB ${first} done`), 'Err: unknown-job');
  assert.is(parsePush(await worker.next()).ID, second);
  assert.is(await worker.request(`UPDATE_JOB ${second} done`), 'OK');
  closeAll(publisher, worker);
});

revoked('holder deleting its job frees the slot', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const worker = await subscribe(server.port, 'rv-self');
  const first = await publish(publisher, 'rv-self', 'first');
  assert.is(parsePush(await worker.next()).ID, first);
  const second = await publish(publisher, 'rv-self', 'second');
  assert.is(await worker.request(`DELETE_JOB ${first}`), 'OK');
  assert.is(parsePush(await worker.next()).ID, second);
  closeAll(publisher, worker);
});

revoked('blank line answers unknown-command', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  client.write('\n   \r\nPING\n');
  assert.is(await client.next(), 'Err: unknown-command');
  assert.is(await client.next(), 'Err: unknown-command');
  assert.is(await client.next(), 'PONG');
  client.close();
});

revoked('LIST_SESSIONS without a group shows only the caller', async ({ server }) => {
  const other = await LineClient.connect(server.port);
  const client = await LineClient.login(server.port, 'user1', 'pass1', null);
  const sessions = await client.json<Array<{ Username: string; Addr: string }>>('LIST_SESSIONS');
  assert.is(sessions.length, 1);
  assert.is(sessions[0].Username, 'user1');
  closeAll(other, client);
});

revoked.run();

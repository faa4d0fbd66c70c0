import * as assert from 'uvu/assert';
import { closeAll, errorCode, LineClient, parsePush } from './helpers/client';
import { serverSuite } from './helpers/server';

const state = serverSuite('connection state');

interface SessionReply {
  Username: string;
  CurrentGroup: string;
  IsWorker: boolean;
}

state('a worker keeps its user on AUTH as another user', async ({ server }) => {
  const worker = await LineClient.login(server.port);
  const publisher = await LineClient.login(server.port);
  assert.is(await worker.request('SUBSCRIBE state-reauth'), 'OK');

  const locked = await worker.request('AUTH user2 pass2');
  assert.is(errorCode(locked), 'Err: user-locked');
  assert.ok(locked.includes('new connection'), locked);
  assert.is(await worker.request('AUTH user2 wrong'), 'Err: invalid-creds');
  assert.is(await worker.request('AUTH user1 pass1'), 'Welcome!');

  const session = await worker.json<SessionReply>('CURRENT_SESSION');
  assert.is(session.Username, 'user1');
  assert.is(session.CurrentGroup, 'group1');
  const id = (await publisher.request('PUBLISH state-reauth t p')).slice(3);
  assert.is(parsePush(await worker.next()).ID, id);
  closeAll(worker, publisher);
});

state('a holder keeps its user on AUTH as another user', async ({ server }) => {
  const holder = await LineClient.login(server.port);
  const id = (await holder.request('PUBLISH state-holder t p')).slice(3);
  assert.is(await holder.request(`UPDATE_JOB ${id} in-progress`), 'OK');
  assert.is(errorCode(await holder.request('AUTH admin adminpass')), 'Err: user-locked');
  assert.is(await holder.request(`UPDATE_JOB ${id} done`), 'OK');

  // A connection that never subscribed nor held a job may log in as anyone.
  const other = await LineClient.login(server.port);
  assert.is(await other.request('AUTH user2 pass2'), 'Welcome!');
  const session = await other.json<SessionReply>('CURRENT_SESSION');
  assert.is(session.Username, 'user2');
  assert.is(session.CurrentGroup, '');
  closeAll(holder, other);
});

state('pipelined requests see the state that earlier replies set', async ({ server }) => {
  const admin = await LineClient.login(server.port, 'admin', 'adminpass', 'group1');
  const id = (await admin.request('PUBLISH state-pipe t p')).slice(3);
  // One write: the report on the held job must find it after the group changed, and
  // CURRENT_SESSION must see the subscription made just before it.
  admin.write(`UPDATE_JOB ${id} in-progress\nUSE_GROUP group2\nUPDATE_JOB ${id} done\nSUBSCRIBE state-pipe2\nCURRENT_SESSION\n`);
  assert.is(await admin.next(), 'OK');
  assert.is(await admin.next(), 'OK');
  assert.is(await admin.next(), 'OK');
  assert.is(await admin.next(), 'OK');
  const session = JSON.parse(await admin.next()) as SessionReply;
  assert.is(session.IsWorker, true);
  assert.is(session.CurrentGroup, 'group2');

  await admin.request('USE_GROUP group1', 'OK');
  const job = await admin.json<{ State: string }>(`GET_JOB ${id}`);
  assert.is(job.State, 'done');
  admin.close();
});

state('a late report without a group reaches the job', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const worker = await LineClient.login(server.port, 'user1', 'pass1', null);
  assert.is(await worker.request('SUBSCRIBE group1 state-late'), 'OK');
  const id = (await publisher.request('PUBLISH state-late t p')).slice(3);
  assert.is(parsePush(await worker.next()).ID, id);
  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'OK');
  assert.is(errorCode(await worker.request(`UPDATE_JOB ${id} done`)), 'Err: job-finished');
  assert.is(errorCode(await worker.request(`JOB UPDATE ${id} errored`)), 'Err: job-finished');
  // An id this connection never held still needs a group.
  assert.is(await worker.request('UPDATE_JOB AAAAAAAAAAAAAAAA done'), 'Err: group-non-selected');
  closeAll(publisher, worker);
});

state.run();

import * as assert from 'uvu/assert';
import { closeAll, Job, LineClient, parsePush, waitFor } from './helpers/client';
import { publish, subscribe } from './helpers/jobs';
import { serverSuite } from './helpers/server';

const sessions = serverSuite('session end', { shards: 1 });

sessions('half-closed client gets every reply', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  client.socket.end('AUTH user1 pass1\nUSE_GROUP group1\nPUBLISH se-half t x\nLIST_JOBS se-half 0 1\nPING');
  await client.waitClosed();
  assert.is(client.lines[0], 'Welcome!');
  assert.is(client.lines[1], 'OK');
  assert.match(client.lines[2], /^OK#[A-Za-z0-9]{16}$/);
  const listed = JSON.parse(client.lines[3]) as Job[];
  assert.is(listed[0].ID, client.lines[2].slice(3));
  assert.is(client.lines[4], 'PONG');
  assert.is(client.lines.length, 5);
});

sessions('half-closed client with large input', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  const count = 3000;
  const publishes = Array.from({ length: count }, (_, n) => `PUBLISH se-large t {"n":${n},"pad":"${'x'.repeat(30)}"}\n`);
  const input = `AUTH user1 pass1\nUSE_GROUP group1\n${publishes.join('')}LIST_JOBS se-large\n`;
  assert.ok(input.length > 100 * 1024, 'the input spans several reads of the server');
  client.socket.end(input);
  await client.waitClosed();
  assert.is(client.lines.length, 2 + count + 1);
  const ids = client.lines.slice(2, 2 + count);
  for (const reply of ids) assert.match(reply, /^OK#[A-Za-z0-9]{16}$/);
  const listed = JSON.parse(client.lines[2 + count]) as Job[];
  assert.equal(
    listed.map((job) => job.ID),
    ids.map((reply) => reply.slice(3)),
  );
  assert.equal(
    listed.map((job) => (JSON.parse(job.Payload) as { n: number }).n),
    Array.from({ length: count }, (_, n) => n),
  );
});

sessions('QUIT returns held jobs at once', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const quitter = await LineClient.connect(server.port, '127.0.0.1', true);
  await quitter.request('AUTH user1 pass1', 'Welcome!');
  await quitter.request('USE_GROUP group1', 'OK');
  await quitter.request('SUBSCRIBE se-quit', 'OK');
  const id = await publish(publisher, 'se-quit');
  assert.is(parsePush(await quitter.next()).ID, id);
  const other = await subscribe(server.port, 'se-quit');

  // The quitting client keeps its own side open; the server must not wait for it.
  assert.is(await quitter.request('QUIT'), '');
  const job = parsePush(await other.next());
  assert.is(job.ID, id);
  assert.is(job.Attempts, 1);
  closeAll(publisher, quitter, other);
});

sessions('new login drops a forbidden group', async ({ server }) => {
  const client = await LineClient.login(server.port, 'user2', 'pass2', 'group2');
  assert.is(await client.request('AUTH user1 pass1'), 'Welcome!');
  assert.is(await client.request('PUBLISH se-secret t x'), 'Err: group-non-selected');
  const session = await client.json<{ Username: string; CurrentGroup: string }>('CURRENT_SESSION');
  assert.is(session.Username, 'user1');
  assert.is(session.CurrentGroup, '');
  client.close();
});

sessions('new login keeps an allowed group', async ({ server }) => {
  const client = await LineClient.login(server.port, 'admin', 'adminpass', 'group1');
  assert.is(await client.request('AUTH user1 pass1'), 'Welcome!');
  assert.match(await client.request('PUBLISH se-kept t x'), /^OK#/);
  client.close();
});

sessions('pushes to closing workers count no attempt', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const workerCount = async (): Promise<number> => (await publisher.json<{ NumWorkers: number }>('HEALTH')).NumWorkers;
  const before = await workerCount();
  const workers = await Promise.all(Array.from({ length: 10 }, () => subscribe(server.port, 'se-gone')));
  for (const worker of workers) worker.socket.end();
  const ids: string[] = [];
  for (let index = 0; index < 5; index++) ids.push(await publish(publisher, 'se-gone'));
  await waitFor(async () => (await workerCount()) === before, 5000, 'the closed workers to be gone');
  const jobs = await publisher.json<Job[]>('LIST_JOBS se-gone');
  assert.equal(
    jobs.map((job) => [job.ID, job.State]),
    ids.map((id) => [id, 'pending']),
  );
  // A push the server writes before it reads the worker's FIN reached a live socket, so
  // it counts as a lost delivery. Only that race may count an attempt: pushes the server
  // holds back or takes back once it knows the worker is closing count none.
  const counted = jobs.filter((job) => job.Attempts > 0).length;
  assert.ok(counted <= 2, `${counted} of 5 jobs counted an attempt for a worker that was closing`);
  publisher.close();
});

sessions.run();

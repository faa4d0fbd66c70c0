import * as assert from 'uvu/assert';
import { closeAll, Job, LineClient, linesBeforePong, parsePush, waitFor, ZERO_TIME } from './helpers/client';
import { firstPush, nextPush, publish, publishAll, ReportingWorker, subscribed } from './helpers/jobs';
import { serverSuite } from './helpers/server';

/**
 * A worker that reports every pushed job done as soon as it arrives. It expects the reply
 * to each report before any later push, which prefetch 1 guarantees.
 */
class DoneWorker extends ReportingWorker {
  constructor(client: LineClient, onAccepted: () => void) {
    super(client, onAccepted);
    this.start();
  }

  protected onPush(job: Job, line: string): void {
    if (this.awaitingReply.length > 0) this.unexpected.push(`push before the reply to UPDATE_JOB: ${line}`);
    this.reportDone(job.ID);
  }
}

// Groups pinned to different shards, so that a group switch also switches shard threads.
const delivery = serverSuite('delivery', {
  groups: [{ slug: 'group1', shard: 0 }, { slug: 'group2', shard: 1 }, { slug: 'group3' }],
});

delivery('3 workers finish 100 jobs, each pushed once', async ({ server }) => {
  const queue = 'hundred';
  const publisher = await LineClient.login(server.port);
  const clients = await subscribed(server.port, queue, 3);
  let accepted = 0;
  const workers = clients.map((client) => new DoneWorker(client, () => accepted++));
  const payloads = Array.from({ length: 100 }, (_, n) => `{"n":${n}}`);
  const ids = await publishAll(publisher, queue, payloads);
  await waitFor(() => accepted === 100, 10_000, '100 accepted done reports');
  for (const worker of workers) worker.stop();

  for (const worker of workers) {
    assert.equal(worker.unexpected, []);
    assert.equal(await linesBeforePong(worker.client), []);
  }
  const pushCounts = new Map<string, number>();
  for (const worker of workers) {
    for (const job of worker.jobs) pushCounts.set(job.ID, (pushCounts.get(job.ID) ?? 0) + 1);
  }
  assert.is(pushCounts.size, 100);
  assert.equal([...pushCounts.keys()].sort(), [...ids].sort());
  assert.equal(
    [...pushCounts.values()].filter((count) => count !== 1),
    [],
  );
  for (const worker of workers) {
    // Each worker got a fair share, and its jobs in publish order.
    assert.ok(worker.jobs.length >= 10, `a worker got only ${worker.jobs.length} jobs`);
    const order = worker.jobs.map((job) => (JSON.parse(job.Payload) as { n: number }).n);
    assert.equal(order, [...order].sort((a, b) => a - b));
    for (const job of worker.jobs) assert.is(job.State, 'in-progress');
  }

  const listed = await publisher.json<Job[]>(`LIST_JOBS ${queue}`);
  assert.equal(
    listed.map((job) => job.ID),
    ids,
  );
  assert.equal(
    listed.filter((job) => job.State !== 'done' || job.Attempts !== 0),
    [],
  );
  closeAll(publisher, ...clients);
});

delivery('round robin rotates over idle workers', async ({ server }) => {
  const queue = 'round-robin';
  const publisher = await LineClient.login(server.port);
  const workers = await subscribed(server.port, queue, 3);
  const receivers: number[] = [];
  for (let round = 0; round < 6; round++) {
    const id = await publish(publisher, queue);
    const { index, job } = await firstPush(workers);
    assert.is(job.ID, id);
    receivers.push(index);
    // Every worker is idle again before the next job, so only the rotation picks the worker.
    assert.is(await workers[index].request(`UPDATE_JOB ${id} done`), 'OK');
  }
  assert.equal(receivers, [0, 1, 2, 0, 1, 2]);
  for (const worker of workers) assert.equal(await linesBeforePong(worker), []);
  closeAll(publisher, ...workers);
});

delivery('oldest job first, a retried job included', async ({ server }) => {
  const queue = 'oldest-first';
  const publisher = await LineClient.login(server.port);
  const [a, b, c] = await publishAll(publisher, queue, ['a', 'b', 'c']);
  const [worker] = await subscribed(server.port, queue, 1);

  assert.is((await nextPush(worker)).ID, a);
  // An errored job waits retry_delay (30 s by default), so the next job goes out first.
  assert.is(await worker.request(`UPDATE_JOB ${a} errored`), 'OK');
  assert.is((await nextPush(worker)).ID, b);
  assert.is(await publisher.request('ADVANCE_CLOCK 30'), 'OK');
  assert.equal(await linesBeforePong(worker), []);

  // a is pending again and older than c, so it goes first once the worker is free.
  assert.is(await worker.request(`UPDATE_JOB ${b} done`), 'OK');
  const retried = await nextPush(worker);
  assert.is(retried.ID, a);
  assert.is(retried.Attempts, 1);
  assert.is(await worker.request(`UPDATE_JOB ${a} done`), 'OK');
  assert.is((await nextPush(worker)).ID, c);
  assert.is(await worker.request(`UPDATE_JOB ${c} done`), 'OK');
  assert.equal(await linesBeforePong(worker), []);
  closeAll(publisher, worker);
});

delivery('jobs taken or deleted before their first push are skipped', async ({ server }) => {
  const queue = 'skip-taken';
  const publisher = await LineClient.login(server.port);
  const [a, b, c, d, e, f] = await publishAll(publisher, queue, ['a', 'b', 'c', 'd', 'e', 'f']);
  // One client takes b without a push, then goes away, so b is pending again. Another
  // takes e and keeps it, and c is deleted before any worker saw it.
  const leaving = await LineClient.login(server.port);
  assert.is(await leaving.request(`UPDATE_JOB ${b} in-progress`), 'OK');
  const keeping = await LineClient.login(server.port);
  assert.is(await keeping.request(`UPDATE_JOB ${e} in-progress`), 'OK');
  assert.is(await publisher.request(`DELETE_JOB ${c}`), 'OK');
  leaving.close();
  await waitFor(async () => (await publisher.json<Job[]>(`LIST_JOBS ${queue}`)).find((job) => job.ID === b)?.State === 'pending', 5000, 'b pending again');

  const [worker] = await subscribed(server.port, queue, 1);
  const order: string[] = [];
  for (let index = 0; index < 4; index++) {
    const job = await nextPush(worker);
    order.push(job.ID);
    assert.is(await worker.request(`UPDATE_JOB ${job.ID} done`), 'OK');
  }
  assert.equal(order, [a, b, d, f]);
  assert.equal(await linesBeforePong(worker), []);
  assert.is(await keeping.request(`UPDATE_JOB ${e} done`), 'OK');
  closeAll(publisher, worker, keeping);
});

delivery('prefetch 1 holds one unreported job', async ({ server }) => {
  const queue = 'prefetch-one';
  const publisher = await LineClient.login(server.port);
  const [worker] = await subscribed(server.port, queue, 1);
  const ids = await publishAll(publisher, queue, ['1', '2', '3']);

  assert.is((await nextPush(worker)).ID, ids[0]);
  assert.equal(await linesBeforePong(worker), []);
  const listed = await publisher.json<Job[]>(`LIST_JOBS ${queue}`);
  assert.equal(
    listed.map((job) => job.State),
    ['in-progress', 'pending', 'pending'],
  );

  assert.is(await worker.request(`UPDATE_JOB ${ids[0]} done`), 'OK');
  assert.is((await nextPush(worker)).ID, ids[1]);
  assert.equal(await linesBeforePong(worker), []);
  closeAll(publisher, worker);
});

delivery('a worker takes turns between its queues', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const quiet = await publishAll(publisher, 'turns-quiet', ['q1', 'q2']);
  const busy = await publishAll(publisher, 'turns-busy', Array.from({ length: 20 }, (_, index) => `b${index}`));
  const worker = await LineClient.login(server.port);
  worker.write('SUBSCRIBE turns-busy\nSUBSCRIBE turns-quiet\n');
  // Two OKs and the first push, which may come before the second OK.
  const lines = [await worker.next(), await worker.next(), await worker.next()];
  assert.equal(lines.filter((line) => line === 'OK').length, 2, lines.join('\n'));
  let job = parsePush(lines.find((line) => line !== 'OK') as string);

  const pushed: string[] = [];
  for (let index = 0; index < 5; index++) {
    pushed.push(job.ID);
    assert.is(await worker.request(`UPDATE_JOB ${job.ID} done`), 'OK');
    if (index < 4) job = await nextPush(worker);
  }
  // The busy queue was subscribed first and has jobs throughout; the quiet one still gets
  // every other freed slot.
  assert.equal(pushed, [busy[0], busy[1], quiet[0], busy[2], quiet[1]]);
  closeAll(publisher, worker);
});

delivery('pushed job shows State in-progress', async ({ server }) => {
  const queue = 'pushed-state';
  const publisher = await LineClient.login(server.port);
  const [worker] = await subscribed(server.port, queue, 1);
  const id = await publish(publisher, queue, '{"k":"v"}');

  const line = await worker.next();
  assert.ok(line.length < 2000, `pushed line is ${line.length} bytes`);
  const pushed = JSON.parse(line) as { Job: Job; Debug: string };
  assert.is(pushed.Debug, 'Dispatch data');
  assert.is(pushed.Job.ID, id);
  assert.is(pushed.Job.State, 'in-progress');
  assert.is(pushed.Job.Type, 't');
  assert.is(pushed.Job.Payload, '{"k":"v"}');
  assert.is(pushed.Job.Attempts, 0);
  assert.is.not(pushed.Job.StartedProcessingAt, ZERO_TIME);
  assert.is(pushed.Job.EndProcessingAt, ZERO_TIME);

  const [listed] = await publisher.json<Job[]>(`LIST_JOBS ${queue}`);
  assert.is(listed.State, 'in-progress');
  assert.is(listed.StartedProcessingAt, pushed.Job.StartedProcessingAt);
  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'OK');
  closeAll(publisher, worker);
});

delivery('worker loop reads OK before each next job', async ({ server }) => {
  // The loop of the PHP client: read a push, report done, read exactly one line for the reply.
  const queue = 'worker-loop';
  const publisher = await LineClient.login(server.port);
  const payloads = Array.from({ length: 20 }, (_, n) => `{"n":${n}}`);
  const ids = await publishAll(publisher, queue, payloads);
  const worker = await LineClient.login(server.port);
  assert.is(await worker.request(`SUBSCRIBE ${queue}`), 'OK');
  for (let n = 0; n < 20; n++) {
    const job = await nextPush(worker);
    assert.is(job.ID, ids[n]);
    assert.is(job.Payload, payloads[n]);
    worker.send(`UPDATE_JOB ${job.ID} done`);
    assert.is(await worker.next(), 'OK');
  }
  assert.equal(await linesBeforePong(worker), []);
  closeAll(publisher, worker);
});

delivery('done job stays listed for job_timeout', async ({ server }) => {
  const queue = 'job-timeout';
  const publisher = await LineClient.login(server.port);
  const [worker] = await subscribed(server.port, queue, 1);
  const id = await publish(publisher, queue);
  await nextPush(worker);
  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'OK');

  const [done] = await publisher.json<Job[]>(`LIST_JOBS ${queue}`);
  assert.is(done.ID, id);
  assert.is(done.State, 'done');
  assert.is.not(done.EndProcessingAt, ZERO_TIME);

  // job_timeout is 60 s by default.
  assert.is(await publisher.request('ADVANCE_CLOCK 55'), 'OK');
  const stillListed = await publisher.json<Job[]>(`LIST_JOBS ${queue}`);
  assert.equal(
    stillListed.map((job) => [job.ID, job.State]),
    [[id, 'done']],
  );
  assert.is(await publisher.request('ADVANCE_CLOCK 5'), 'OK');
  assert.is(await publisher.request(`LIST_JOBS ${queue}`), '[]');
  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'Err: unknown-job');
  closeAll(publisher, worker);
});

delivery('UNSUBSCRIBE drains the worker', async ({ server }) => {
  const queue = 'drain-unsubscribe';
  const publisher = await LineClient.login(server.port);
  const [first] = await subscribed(server.port, queue, 1);
  const a = await publish(publisher, queue, 'a');
  assert.is((await nextPush(first)).ID, a);
  assert.is(await first.request(`UNSUBSCRIBE ${queue}`), 'OK');

  // The held job stays with its worker: a new worker does not get it.
  const [second] = await subscribed(server.port, queue, 1);
  assert.equal(await linesBeforePong(second), []);
  const b = await publish(publisher, queue, 'b');
  assert.is((await nextPush(second)).ID, b);
  assert.equal(await linesBeforePong(first), []);

  // The drained worker may still report its job, and gets no new one once free.
  assert.is(await first.request(`UPDATE_JOB ${a} done`), 'OK');
  const c = await publish(publisher, queue, 'c');
  assert.equal(await linesBeforePong(first), []);
  const listed = await publisher.json<Job[]>(`LIST_JOBS ${queue}`);
  assert.equal(
    listed.map((job) => [job.ID, job.State]),
    [
      [a, 'done'],
      [b, 'in-progress'],
      [c, 'pending'],
    ],
  );
  assert.is(await second.request(`UPDATE_JOB ${b} done`), 'OK');
  assert.is((await nextPush(second)).ID, c);
  closeAll(publisher, first, second);
});

delivery('PURGE_WORKERS drains every worker', async ({ server }) => {
  const queue = 'drain-purge';
  const publisher = await LineClient.login(server.port);
  const workers = await subscribed(server.port, queue, 2);
  const [a, b] = await publishAll(publisher, queue, ['a', 'b']);
  assert.is((await nextPush(workers[0])).ID, a);
  assert.is((await nextPush(workers[1])).ID, b);
  assert.is(await publisher.request(`PURGE_WORKERS ${queue}`), 'OK');

  const c = await publish(publisher, queue, 'c');
  assert.is(await workers[0].request(`UPDATE_JOB ${a} done`), 'OK');
  assert.is(await workers[1].request(`UPDATE_JOB ${b} done`), 'OK');
  for (const worker of workers) assert.equal(await linesBeforePong(worker), []);
  const listed = await publisher.json<Job[]>(`LIST_JOBS ${queue}`);
  assert.equal(
    listed.map((job) => [job.ID, job.State]),
    [
      [a, 'done'],
      [b, 'done'],
      [c, 'pending'],
    ],
  );

  const [fresh] = await subscribed(server.port, queue, 1);
  assert.is((await nextPush(fresh)).ID, c);
  closeAll(publisher, fresh, ...workers);
});

delivery('pipelined replies keep order across shards', async ({ server }) => {
  // group1 is on shard 0 and group2 on shard 1. The 300 publishes keep shard 0 busy, so
  // shard 1 replies first, yet each reply must come in request order.
  const admin = await LineClient.login(server.port, 'admin', 'adminpass', null);
  const requests = [
    'USE_GROUP group1',
    ...Array.from({ length: 300 }, (_, n) => `PUBLISH order-a t ${n}`),
    'USE_GROUP group2',
    'PUBLISH order-b t b',
    'LIST_JOBS order-b',
    'USE_GROUP group1',
    'LIST_JOBS order-a',
    'PING',
  ];
  admin.write(requests.map((line) => `${line}\n`).join(''));

  assert.is(await admin.next(), 'OK');
  const idsA: string[] = [];
  for (let n = 0; n < 300; n++) {
    const reply = await admin.next();
    assert.match(reply, /^OK#[A-Za-z0-9]{16}$/);
    idsA.push(reply.slice(3));
  }
  assert.is(await admin.next(), 'OK');
  const publishB = await admin.next();
  assert.match(publishB, /^OK#[A-Za-z0-9]{16}$/);
  const listB = JSON.parse(await admin.next()) as Job[];
  assert.equal(
    listB.map((job) => job.ID),
    [publishB.slice(3)],
  );
  assert.is(await admin.next(), 'OK');
  const listA = JSON.parse(await admin.next()) as Job[];
  assert.equal(
    listA.map((job) => job.ID),
    idsA,
  );
  assert.is(await admin.next(), 'PONG');
  admin.close();
});

delivery('reply precedes push after a group switch', async ({ server }) => {
  const admin = await LineClient.login(server.port, 'admin', 'adminpass', 'group1');
  assert.is(await admin.request('SUBSCRIBE switch-push'), 'OK');
  admin.write('USE_GROUP group2\nPUBLISH switch-other t x\nUSE_GROUP group1\nPUBLISH switch-push t y\n');
  assert.is(await admin.next(), 'OK');
  assert.match(await admin.next(), /^OK#/);
  assert.is(await admin.next(), 'OK');
  const published = await admin.next();
  assert.match(published, /^OK#/);
  const job = await nextPush(admin);
  assert.is(job.ID, published.slice(3));

  // A job this connection holds is found whatever group is current.
  assert.is(await admin.request('USE_GROUP group2'), 'OK');
  assert.is(await admin.request(`UPDATE_JOB ${job.ID} done`), 'OK');
  assert.is(await admin.request('USE_GROUP group1'), 'OK');
  const listed = await admin.json<Job[]>('LIST_JOBS switch-push');
  assert.equal(
    listed.map((entry) => [entry.ID, entry.State]),
    [[job.ID, 'done']],
  );
  admin.close();
});

delivery.run();

// A second server: workers may hold 4 jobs, and done jobs are deleted at once.
const wide = serverSuite('delivery with prefetch 4 and job_timeout 0', { prefetch: 4, job_timeout: 0 });

wide('prefetch 4 caps unreported jobs', async ({ server }) => {
  const queue = 'prefetch-four';
  const publisher = await LineClient.login(server.port);
  const [worker] = await subscribed(server.port, queue, 1);
  const ids = await publishAll(
    publisher,
    queue,
    Array.from({ length: 10 }, (_, n) => String(n)),
  );
  const received: string[] = [];
  for (let n = 0; n < 4; n++) received.push((await nextPush(worker)).ID);
  assert.equal(received, ids.slice(0, 4));
  assert.equal(await linesBeforePong(worker), []);

  // Each report frees one place, which the next job takes.
  assert.is(await worker.request(`UPDATE_JOB ${ids[0]} done`), 'OK');
  assert.is((await nextPush(worker)).ID, ids[4]);
  assert.equal(await linesBeforePong(worker), []);
  const states = (await publisher.json<Job[]>(`LIST_JOBS ${queue}`)).map((job) => job.State);
  assert.equal(states, [...Array(4).fill('in-progress'), ...Array(5).fill('pending')]);
  closeAll(publisher, worker);
});

wide('prefetch counts jobs of every subscribed queue', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const worker = await LineClient.login(server.port);
  assert.is(await worker.request('SUBSCRIBE window-a'), 'OK');
  assert.is(await worker.request('SUBSCRIBE window-b'), 'OK');
  await publishAll(publisher, 'window-a', ['1', '2', '3']);
  await publishAll(publisher, 'window-b', ['1', '2', '3']);
  const pushes = [await worker.next()];
  await waitFor(() => worker.lines.length >= 3, 5000, '4 pushed jobs');
  pushes.push(...(await linesBeforePong(worker)));
  assert.is(pushes.length, 4);
  for (const line of pushes) assert.is(parsePush(line).State, 'in-progress');
  closeAll(publisher, worker);
});

wide('round robin deals jobs in turn', async ({ server }) => {
  const queue = 'deal';
  const publisher = await LineClient.login(server.port);
  const workers = await subscribed(server.port, queue, 3);
  const ids = await publishAll(
    publisher,
    queue,
    Array.from({ length: 9 }, (_, n) => String(n)),
  );
  for (let w = 0; w < 3; w++) {
    const received: string[] = [];
    for (let n = 0; n < 3; n++) received.push((await nextPush(workers[w])).ID);
    assert.equal(received, [ids[w], ids[w + 3], ids[w + 6]]);
    assert.equal(await linesBeforePong(workers[w]), []);
  }
  closeAll(publisher, ...workers);
});

wide('job_timeout 0 deletes a done job at once', async ({ server }) => {
  const queue = 'no-timeout';
  const publisher = await LineClient.login(server.port);
  const [worker] = await subscribed(server.port, queue, 1);
  const id = await publish(publisher, queue);
  await nextPush(worker);
  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'OK');
  assert.is(await publisher.request(`LIST_JOBS ${queue}`), '[]');
  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'Err: unknown-job');
  assert.is(await publisher.request(`DELETE_JOB ${id}`), 'Err: unknown-job');
  closeAll(publisher, worker);
});

wide.run();

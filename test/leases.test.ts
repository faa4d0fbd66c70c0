import * as assert from 'uvu/assert';
import { closeAll, Job, LineClient, linesBeforePong, parsePush } from './helpers/client';
import { nextPush, publish, subscribed } from './helpers/jobs';
import { serverSuite } from './helpers/server';

async function listJobs(client: LineClient, queue: string): Promise<Array<[string, string, number]>> {
  const jobs = await client.json<Job[]>(`LIST_JOBS ${queue}`);
  return jobs.map((job) => [job.ID, job.State, job.Attempts]);
}

const leases = serverSuite('leases', { lease: 2, retry_delay: 5, backoff: 'fixed' });

leases('expired lease gives the job to another worker', async ({ server }) => {
  const queue = 'late-report';
  const publisher = await LineClient.login(server.port);
  const [first, second] = await subscribed(server.port, queue, 2);
  const id = await publish(publisher, queue);
  const initial = await nextPush(first);
  assert.is(initial.ID, id);
  assert.is(initial.Attempts, 0);

  assert.is(await publisher.request('ADVANCE_CLOCK 3'), 'OK');
  const redelivered = await nextPush(second);
  assert.is(redelivered.ID, id);
  assert.is(redelivered.Attempts, 1);
  assert.equal(await listJobs(publisher, queue), [[id, 'in-progress', 1]]);

  // The late report is rejected with one line and changes nothing.
  first.send(`UPDATE_JOB ${id} done`);
  assert.match(await first.next(), /^Err: lease-expired;/);
  assert.equal(await linesBeforePong(first), []);
  assert.equal(await listJobs(publisher, queue), [[id, 'in-progress', 1]]);

  assert.is(await second.request(`UPDATE_JOB ${id} done`), 'OK');
  assert.equal(await listJobs(publisher, queue), [[id, 'done', 1]]);

  // The rejected worker stays usable and gets the next job.
  const next = await publish(publisher, queue, 'y');
  assert.is((await nextPush(first)).ID, next);
  assert.is(await first.request(`UPDATE_JOB ${next} done`), 'OK');
  assert.equal(await linesBeforePong(second), []);
  closeAll(publisher, first, second);
});

leases('late errored and in-progress are rejected', async ({ server }) => {
  const queue = 'late-other-states';
  const publisher = await LineClient.login(server.port);
  const [first, second] = await subscribed(server.port, queue, 2);
  const id = await publish(publisher, queue);
  await nextPush(first);
  assert.is(await publisher.request('ADVANCE_CLOCK 3'), 'OK');
  assert.is((await nextPush(second)).ID, id);

  assert.match(await first.request(`UPDATE_JOB ${id} errored`), /^Err: lease-expired;/);
  assert.match(await first.request(`UPDATE_JOB ${id} in-progress`), /^Err: lease-expired;/);
  assert.equal(await listJobs(publisher, queue), [[id, 'in-progress', 1]]);
  assert.is(await second.request(`UPDATE_JOB ${id} done`), 'OK');
  closeAll(publisher, first, second);
});

leases('heartbeat keeps a long job with its holder', async ({ server }) => {
  const queue = 'heartbeat';
  const publisher = await LineClient.login(server.port);
  const workers = await subscribed(server.port, queue, 5);
  const [holder, ...others] = workers;
  const id = await publish(publisher, queue, 'long');
  assert.is((await nextPush(holder)).ID, id);

  // Ten simulated seconds against a 2 s lease, renewed every second.
  for (let second = 0; second < 10; second++) {
    assert.is(await holder.request(`UPDATE_JOB ${id} in-progress`), 'OK');
    assert.is(await publisher.request('ADVANCE_CLOCK 1'), 'OK');
  }
  assert.is(await holder.request(`UPDATE_JOB ${id} done`), 'OK');
  for (const worker of others) assert.equal(await linesBeforePong(worker), []);
  assert.equal(await listJobs(publisher, queue), [[id, 'done', 0]]);
  closeAll(publisher, ...workers);
});

leases('stopped heartbeat hands the job to one worker', async ({ server }) => {
  const queue = 'heartbeat-stops';
  const publisher = await LineClient.login(server.port);
  const workers = await subscribed(server.port, queue, 5);
  const [holder, ...others] = workers;
  const id = await publish(publisher, queue, 'long');
  assert.is((await nextPush(holder)).ID, id);

  for (let second = 0; second < 7; second++) {
    assert.is(await holder.request(`UPDATE_JOB ${id} in-progress`), 'OK');
    assert.is(await publisher.request('ADVANCE_CLOCK 1'), 'OK');
  }
  // The last renewal, at 6 s, keeps the lease until 8 s.
  for (const worker of others) assert.equal(await linesBeforePong(worker), []);
  assert.is(await publisher.request('ADVANCE_CLOCK 1'), 'OK');

  const pushes: Job[] = [];
  for (const worker of others) {
    for (const line of await linesBeforePong(worker)) pushes.push(parsePush(line));
  }
  assert.is(pushes.length, 1);
  assert.is(pushes[0].ID, id);
  assert.is(pushes[0].Attempts, 1);

  // More time passing does not hand it out again while the new holder's lease runs.
  assert.is(await publisher.request('ADVANCE_CLOCK 1'), 'OK');
  for (const worker of workers) assert.equal(await linesBeforePong(worker), []);
  assert.match(await holder.request(`UPDATE_JOB ${id} done`), /^Err: lease-expired;/);
  assert.equal(await listJobs(publisher, queue), [[id, 'in-progress', 1]]);
  closeAll(publisher, ...workers);
});

leases('retry_delay holds an errored job back', async ({ server }) => {
  const queue = 'retry-delay';
  const publisher = await LineClient.login(server.port);
  const [worker] = await subscribed(server.port, queue, 1);
  const id = await publish(publisher, queue);
  await nextPush(worker);
  assert.is(await worker.request(`UPDATE_JOB ${id} errored`), 'OK');
  assert.equal(await listJobs(publisher, queue), [[id, 'errored', 1]]);

  // retry_delay is 5 s on this server, with a fixed backoff.
  assert.is(await publisher.request('ADVANCE_CLOCK 4'), 'OK');
  assert.equal(await linesBeforePong(worker), []);
  assert.equal(await listJobs(publisher, queue), [[id, 'errored', 1]]);
  assert.is(await publisher.request('ADVANCE_CLOCK 1'), 'OK');
  const retried = await nextPush(worker);
  assert.is(retried.ID, id);
  assert.is(retried.Attempts, 1);
  assert.is(retried.State, 'in-progress');
  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'OK');
  assert.equal(await listJobs(publisher, queue), [[id, 'done', 1]]);
  closeAll(publisher, worker);
});

leases("report on another worker's job is rejected", async ({ server }) => {
  const queue = 'held-by-other';
  const publisher = await LineClient.login(server.port);
  const [holder] = await subscribed(server.port, queue, 1);
  const id = await publish(publisher, queue);
  await nextPush(holder);

  for (const status of ['done', 'errored', 'in-progress']) {
    assert.match(await publisher.request(`UPDATE_JOB ${id} ${status}`), /^Err: job-held;/);
  }
  assert.equal(await listJobs(publisher, queue), [[id, 'in-progress', 0]]);
  assert.is(await holder.request(`UPDATE_JOB ${id} done`), 'OK');
  assert.equal(await listJobs(publisher, queue), [[id, 'done', 0]]);
  closeAll(publisher, holder);
});

leases('pending job accepts a report from its group', async ({ server }) => {
  const queue = 'pending-report';
  const publisher = await LineClient.login(server.port);
  const reporter = await LineClient.login(server.port);
  const [toFinish, toFail, toTake] = [await publish(publisher, queue, 'a'), await publish(publisher, queue, 'b'), await publish(publisher, queue, 'c')];

  assert.is(await reporter.request(`UPDATE_JOB ${toFinish} done`), 'OK');
  assert.is(await reporter.request(`UPDATE_JOB ${toFail} errored`), 'OK');
  // in-progress makes the sender the holder, with a lease.
  assert.is(await reporter.request(`UPDATE_JOB ${toTake} in-progress`), 'OK');
  assert.equal(await listJobs(publisher, queue), [
    [toFinish, 'done', 0],
    [toFail, 'errored', 1],
    [toTake, 'in-progress', 0],
  ]);
  assert.match(await publisher.request(`UPDATE_JOB ${toTake} done`), /^Err: job-held;/);

  assert.is(await publisher.request('ADVANCE_CLOCK 3'), 'OK');
  assert.equal(await listJobs(publisher, queue), [
    [toFinish, 'done', 0],
    [toFail, 'errored', 1],
    [toTake, 'pending', 1],
  ]);
  assert.match(await reporter.request(`UPDATE_JOB ${toTake} done`), /^Err: lease-expired;/);

  // A user of another group does not see the job at all.
  const outsider = await LineClient.login(server.port, 'user2', 'pass2', 'group2');
  assert.is(await outsider.request(`UPDATE_JOB ${toTake} done`), 'Err: unknown-job');
  assert.is(await publisher.request(`UPDATE_JOB ${toTake} done`), 'OK');
  assert.equal(await listJobs(publisher, queue), [
    [toFinish, 'done', 0],
    [toFail, 'errored', 1],
    [toTake, 'done', 1],
  ]);
  closeAll(publisher, reporter, outsider);
});

leases.run();

const ignoreDelays = serverSuite('leases with delay_policy IGNORE', { delay_policy: 'IGNORE', retry_delay: 5 });

ignoreDelays('errored job is pushed again at once', async ({ server }) => {
  const queue = 'no-delay';
  const publisher = await LineClient.login(server.port);
  const [worker] = await subscribed(server.port, queue, 1);
  const id = await publish(publisher, queue);
  await nextPush(worker);

  worker.send(`UPDATE_JOB ${id} errored`);
  assert.is(await worker.next(), 'OK');
  const retried = await nextPush(worker);
  assert.is(retried.ID, id);
  assert.is(retried.Attempts, 1);
  worker.send(`UPDATE_JOB ${id} errored`);
  assert.is(await worker.next(), 'OK');
  assert.is((await nextPush(worker)).Attempts, 2);
  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'OK');
  assert.equal(await listJobs(publisher, queue), [[id, 'done', 2]]);
  closeAll(publisher, worker);
});

ignoreDelays('errored job is pending at once without workers', async ({ server }) => {
  const queue = 'no-delay-pending';
  const publisher = await LineClient.login(server.port);
  const id = await publish(publisher, queue);
  assert.is(await publisher.request(`UPDATE_JOB ${id} errored`), 'OK');
  assert.equal(await listJobs(publisher, queue), [[id, 'pending', 1]]);
  closeAll(publisher);
});

ignoreDelays.run();

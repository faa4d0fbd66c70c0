import { execFileSync } from 'node:child_process';
import * as assert from 'uvu/assert';
import { closeAll, Job, LineClient, linesBeforePong, parsePush, waitFor } from './helpers/client';
import { firstPush, nextPush, publish, publishAll, ReportingWorker, subscribe, subscribed } from './helpers/jobs';
import { cpuTicks } from './helpers/process';
import { serverSuite } from './helpers/server';

interface Health {
  NumSessions: number;
  NumWorkers: number;
}

async function listJobs(client: LineClient, queue: string): Promise<Job[]> {
  return client.json<Job[]>(`LIST_JOBS ${queue}`);
}

/**
 * A worker that reports every pushed job done after a short processing time. It records
 * each push, each accepted report, and the reports still waiting for a reply.
 */
class TimedWorker extends ReportingWorker {
  /** Ids pushed and not yet reported. */
  readonly working = new Set<string>();

  constructor(
    client: LineClient,
    private readonly workMs: number,
    onAccepted: () => void,
  ) {
    super(client, onAccepted);
    this.start();
  }

  /** Ids this worker received and did not see accepted. */
  unfinished(): string[] {
    return [...this.working, ...this.awaitingReply];
  }

  /** Stops handling lines and leaves the socket open. Pushes already read count as received. */
  override stop(): void {
    super.stop();
    for (const line of this.client.lines.splice(0)) {
      if (!line.startsWith('{"Job"')) continue;
      const job = parsePush(line);
      this.jobs.push(job);
      this.working.add(job.ID);
    }
  }

  protected onPush(job: Job): void {
    this.working.add(job.ID);
    setTimeout(() => this.report(job.ID), this.workMs);
  }

  private report(id: string): void {
    if (this.stopped) return;
    this.working.delete(id);
    this.reportDone(id);
  }
}

const failures = serverSuite('worker failures');

failures('reconnecting workers finish every job once', async ({ server }) => {
  const queue = 'restart';
  const total = 400;
  const publisher = await LineClient.login(server.port);
  let accepted = 0;
  let restarted = false;
  const workers: TimedWorker[] = [];
  const abandoned: TimedWorker[] = [];
  const heldAtReset: string[] = [];

  const restartTwo = async (): Promise<void> => {
    for (const worker of workers.splice(0, 2)) {
      worker.stop();
      heldAtReset.push(...worker.unfinished());
      worker.client.reset();
      abandoned.push(worker);
    }
    for (let n = 0; n < 2; n++) {
      workers.push(new TimedWorker(await subscribe(server.port, queue), 5, onAccepted));
    }
  };
  let restarting: Promise<void> | undefined;
  function onAccepted(): void {
    accepted++;
    if (accepted === 100 && !restarted) {
      restarted = true;
      restarting = restartTwo();
    }
  }

  for (const client of await subscribed(server.port, queue, 4)) workers.push(new TimedWorker(client, 5, onAccepted));
  const ids = await publishAll(
    publisher,
    queue,
    Array.from({ length: total }, (_, n) => `'{"n":${n}}'`),
  );

  // A report sent just before a reset may be applied with its reply lost, so the run ends
  // when every job was accepted or was in the hands of a reset worker.
  const settled = (): boolean => {
    const covered = new Set([...workers, ...abandoned].flatMap((worker) => worker.accepted));
    for (const id of heldAtReset) covered.add(id);
    return restarted && covered.size === total;
  };
  await waitFor(settled, 20_000, 'every job accepted');
  await restarting;
  await waitFor(async () => (await listJobs(publisher, queue)).every((job) => job.State === 'done'), 5000, 'every job done');
  await waitFor(() => workers.every((worker) => worker.unfinished().length === 0), 5000, 'replies to every report');
  for (const worker of workers) worker.stop();

  const everyone = [...abandoned, ...workers];
  for (const worker of everyone) assert.equal(worker.unexpected, []);
  const acceptedIds = everyone.flatMap((worker) => worker.accepted);
  assert.is(new Set(acceptedIds).size, acceptedIds.length, 'a job was accepted as done twice');

  // With prefetch 1 the two reset workers held at most two jobs. A push still in flight at
  // the reset counts as held, although the worker never read it.
  const listed = await listJobs(publisher, queue);
  assert.is(listed.length, total);
  assert.equal(
    listed.filter((job) => job.State !== 'done'),
    [],
  );
  const returned = listed.filter((job) => job.Attempts > 0);
  assert.ok(returned.length <= 2, `${returned.length} jobs came back from reset workers`);
  for (const job of returned) assert.is(job.Attempts, 1);
  const returnedIds = new Set(returned.map((job) => job.ID));

  // Only a job that came back may have been pushed twice.
  const pushCounts = new Map<string, number>();
  for (const job of everyone.flatMap((worker) => worker.jobs)) pushCounts.set(job.ID, (pushCounts.get(job.ID) ?? 0) + 1);
  assert.equal([...pushCounts.keys()].sort(), [...ids].sort());
  for (const [id, count] of pushCounts) {
    assert.ok(count === 1 || (count === 2 && returnedIds.has(id)), `job ${id} was pushed ${count} times`);
  }
  const pushes = [...pushCounts.values()].reduce((sum, count) => sum + count, 0);
  assert.ok(pushes <= total + returned.length, `${pushes} pushes for ${total} jobs`);

  await waitFor(async () => (await publisher.json<Health>('HEALTH')).NumWorkers === 4, 5000, 'HEALTH NumWorkers 4');
  for (const worker of workers) assert.equal(await linesBeforePong(worker.client), []);
  closeAll(publisher, ...workers.map((worker) => worker.client));
});

failures('closed socket returns its job at once', async ({ server }) => {
  const queue = 'crash-close';
  const publisher = await LineClient.login(server.port);
  const workers = await subscribed(server.port, queue, 2);
  const id = await publish(publisher, queue);
  const { index, job } = await firstPush(workers);
  assert.is(job.ID, id);
  const other = workers[1 - index];

  const closedAt = Date.now();
  workers[index].close();
  const redelivered = await nextPush(other, 1000);
  const elapsed = Date.now() - closedAt;
  assert.ok(elapsed < 1000, `redelivered after ${elapsed} ms`);
  assert.is(redelivered.ID, id);
  assert.is(redelivered.Attempts, 1);
  const listed = await listJobs(publisher, queue);
  assert.equal(
    listed.map((entry) => [entry.ID, entry.State, entry.Attempts]),
    [[id, 'in-progress', 1]],
  );
  assert.is(await other.request(`UPDATE_JOB ${id} done`), 'OK');
  closeAll(publisher, other);
});

failures('QUIT returns the held job at once', async ({ server }) => {
  const queue = 'crash-quit';
  const publisher = await LineClient.login(server.port);
  const workers = await subscribed(server.port, queue, 2);
  const id = await publish(publisher, queue);
  const { index, job } = await firstPush(workers);
  assert.is(job.ID, id);
  const other = workers[1 - index];

  const quitAt = Date.now();
  assert.is(await workers[index].request('QUIT'), '');
  await workers[index].waitClosed(1000);
  const redelivered = await nextPush(other, 1000);
  const elapsed = Date.now() - quitAt;
  assert.ok(elapsed < 1000, `redelivered after ${elapsed} ms`);
  assert.is(redelivered.ID, id);
  assert.is(redelivered.Attempts, 1);
  const listed = await listJobs(publisher, queue);
  assert.equal(
    listed.map((entry) => [entry.ID, entry.State, entry.Attempts]),
    [[id, 'in-progress', 1]],
  );
  assert.is(await other.request(`UPDATE_JOB ${id} done`), 'OK');
  closeAll(publisher, other);
});

failures('disconnects and errored share one attempt count', async ({ server }) => {
  const queue = 'attempts';
  const publisher = await LineClient.login(server.port);
  const workers = await subscribed(server.port, queue, 3);
  const id = await publish(publisher, queue);
  const remaining = [...workers];
  const attemptsSeen: number[] = [];

  for (let failure = 0; failure < 2; failure++) {
    const { index, job } = await firstPush(remaining);
    assert.is(job.ID, id);
    attemptsSeen.push(job.Attempts);
    const [holder] = remaining.splice(index, 1);
    holder.close();
  }
  const { index, job } = await firstPush(remaining);
  attemptsSeen.push(job.Attempts);
  const last = remaining[index];
  // Disconnects are retried at once, but an errored job waits for its backoff.
  assert.is(await last.request(`UPDATE_JOB ${id} errored`), 'OK');
  assert.equal(attemptsSeen, [0, 1, 2]);
  assert.equal(await linesBeforePong(last), []);
  const listed = await listJobs(publisher, queue);
  assert.equal(
    listed.map((entry) => [entry.ID, entry.State, entry.Attempts]),
    [[id, 'errored', 3]],
  );

  // The third failure waits between half and all of 30 s times 2^2.
  const wait = Date.parse(listed[0].RetryAt as string) - Date.parse(listed[0].EndProcessingAt);
  assert.ok(wait >= 60_000, `waited ${wait} ms`);
  assert.ok(wait <= 120_000, `waited ${wait} ms`);
  assert.is(await publisher.request('ADVANCE_CLOCK 120'), 'OK');
  const retried = await nextPush(last);
  assert.is(retried.ID, id);
  assert.is(retried.Attempts, 3);
  assert.is(await last.request(`UPDATE_JOB ${id} done`), 'OK');
  closeAll(publisher, last);
});

failures('reset workers leave no trace', async ({ server }) => {
  const queue = 'reset-workers';
  const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  const count = 200;
  const clients: LineClient[] = [];
  for (let start = 0; start < count; start += 50) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => subscribe(server.port, queue)));
    clients.push(...batch);
  }
  const observer = await LineClient.login(server.port);
  await waitFor(async () => (await observer.json<Health>('HEALTH')).NumWorkers === count, 5000, `HEALTH NumWorkers ${count}`);
  for (const client of clients) client.reset();

  await waitFor(
    async () => {
      const health = await observer.json<Health>('HEALTH');
      return health.NumWorkers === 0 && health.NumSessions === 1;
    },
    5000,
    'HEALTH NumWorkers 0 and one session',
  );
  const id = await publish(observer, queue);
  const listed = await listJobs(observer, queue);
  assert.equal(
    listed.map((job) => [job.ID, job.State, job.Attempts]),
    [[id, 'pending', 0]],
  );

  // Measure CPU while nothing happens: a loop over dead sockets would show here.
  const before = cpuTicks(server.pid) / ticksPerSecond;
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const used = cpuTicks(server.pid) / ticksPerSecond - before;
  assert.ok(used < 0.5, `server used ${used.toFixed(2)} s of CPU in 2 s while idle`);

  const health = await observer.json<Health>('HEALTH');
  assert.is(health.NumWorkers, 0);
  assert.is(health.NumSessions, 1);
  assert.equal(
    server.logs.filter((line) => /"level":(50|60)/.test(line)),
    [],
  );
  assert.is(await observer.request(`DELETE_JOB ${id}`), 'OK');
  observer.close();
});

failures('idle worker holds only its prefetch', async ({ server }) => {
  const queue = 'never-reports';
  const total = 1000;
  const payload = `'${'p'.repeat(1024)}'`;
  const publisher = await LineClient.login(server.port);
  const hoarder = await subscribe(server.port, queue);
  const ids = await publishAll(publisher, queue, Array(total).fill(payload));

  const heldJob = await nextPush(hoarder);
  assert.is(heldJob.ID, ids[0]);
  assert.is(heldJob.Payload.length, 1024);
  assert.equal(await linesBeforePong(hoarder), []);
  let listed = await listJobs(publisher, queue);
  assert.is(listed.filter((job) => job.State === 'in-progress').length, 1);
  assert.is(listed.filter((job) => job.State === 'pending').length, total - 1);

  hoarder.close();
  await waitFor(
    async () => (await listJobs(publisher, queue)).every((job) => job.State === 'pending'),
    5000,
    'every job pending',
  );
  listed = await listJobs(publisher, queue);
  assert.equal(
    listed.filter((job) => job.Attempts !== 0).map((job) => [job.ID, job.Attempts]),
    [[ids[0], 1]],
  );

  // The returned job is the oldest, so it goes out first.
  const next = await subscribe(server.port, queue);
  assert.is((await nextPush(next)).ID, ids[0]);
  assert.is(await publisher.request(`PURGE_JOBS ${queue}`), 'OK');
  closeAll(publisher, next);
});

failures('reports after done are rejected', async ({ server }) => {
  const queue = 'after-done';
  const publisher = await LineClient.login(server.port);
  const worker = await subscribe(server.port, queue);
  const id = await publish(publisher, queue);
  assert.is((await nextPush(worker)).ID, id);

  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'OK');
  assert.match(await worker.request(`UPDATE_JOB ${id} errored`), /^Err: job-finished;/);
  assert.match(await worker.request(`UPDATE_JOB ${id} in-progress`), /^Err: job-finished;/);
  assert.is(await worker.request(`UPDATE_JOB ${id} bogus`), 'Err: unknown-state');
  assert.match(await publisher.request(`UPDATE_JOB ${id} done`), /^Err: job-finished;/);

  // The rejected errored report scheduled no retry, so nothing comes back after the delay.
  assert.is(await publisher.request('ADVANCE_CLOCK 31'), 'OK');
  assert.equal(await linesBeforePong(worker), []);
  const listed = await listJobs(publisher, queue);
  assert.equal(
    listed.map((job) => [job.ID, job.State, job.Attempts]),
    [[id, 'done', 0]],
  );

  assert.is(await worker.request(`DELETE_JOB ${id}`), 'OK');
  assert.is(await worker.request(`DELETE_JOB ${id}`), 'Err: unknown-job');
  assert.is(await publisher.request(`LIST_JOBS ${queue}`), '[]');
  assert.equal(await linesBeforePong(worker), []);
  closeAll(publisher, worker);
});

failures.run();

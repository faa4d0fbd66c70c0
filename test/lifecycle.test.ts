import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeAll, errorCode, Job, LineClient, linesBeforePong, waitFor } from './helpers/client';
import { nextPush, subscribe } from './helpers/jobs';
import { startServer, tempDir, TestServer } from './helpers/server';


async function publishWith(client: LineClient, queue: string, payload: string, options: Record<string, unknown>): Promise<string> {
  const reply = await client.request(`PUBLISH_JOB ${queue} t ${payload} ${JSON.stringify(options)}`);
  assert.match(reply, /^OK#[A-Za-z0-9]{16}$/, reply);
  return reply.slice(3);
}

async function jobOf(client: LineClient, queue: string, id: string): Promise<Job> {
  const jobs = await client.json<Job[]>(`LIST_JOBS ${queue}`);
  const job = jobs.find((candidate) => candidate.ID === id);
  if (job === undefined) throw new Error(`job ${id} is not listed in ${queue}`);
  return job;
}

/** Runs a test against its own server, stopped afterwards. */
function withServer(name: string, overrides: Record<string, unknown>, body: (server: TestServer) => Promise<void>): void {
  test(name, async () => {
    const server = await startServer(overrides);
    try {
      await body(server);
    } finally {
      assert.is(await server.stop(), 0);
    }
  });
}

withServer('priorities go first, FIFO within one', { shards: 1 }, async (server) => {
  const publisher = await LineClient.login(server.port);
  const low = await publishWith(publisher, 'prio', '"low"', { priority: -1 });
  const first = await publishWith(publisher, 'prio', '"first"', {});
  const high = await publishWith(publisher, 'prio', '"high"', { priority: 5 });
  const second = await publishWith(publisher, 'prio', '"second"', { priority: 0 });
  const highLater = await publishWith(publisher, 'prio', '"high-later"', { priority: 5 });
  const top = await publishWith(publisher, 'prio', '"top"', { priority: 2_147_483_647 });

  const worker = await subscribe(server.port, 'prio');
  const order: string[] = [];
  for (let index = 0; index < 6; index++) {
    const job = await nextPush(worker);
    order.push(job.ID);
    assert.is(await worker.request(`UPDATE_JOB ${job.ID} done`), 'OK');
  }
  assert.equal(order, [top, high, highLater, first, second, low]);
  closeAll(publisher, worker);
});

withServer('a delayed job waits for its time', {}, async (server) => {
  const publisher = await LineClient.login(server.port);
  const worker = await subscribe(server.port, 'later');
  const id = await publishWith(publisher, 'later', '{}', { delay: 60 });
  const scheduled = await jobOf(publisher, 'later', id);
  assert.is(scheduled.State, 'scheduled');
  assert.type(scheduled.RunAt, 'string');
  assert.is(await worker.request(`UPDATE_JOB ${id} in-progress`), `Err: wrong-state;job ${id} is scheduled; it accepts reports once it is pending, or after RETRY_JOB ${id}`);

  assert.is(await publisher.request('ADVANCE_CLOCK 59'), 'OK');
  assert.is((await jobOf(publisher, 'later', id)).State, 'scheduled');
  assert.is(await publisher.request('ADVANCE_CLOCK 2'), 'OK');
  const pushed = await nextPush(worker);
  assert.is(pushed.ID, id);
  // A run_at in the past makes the job pending at once.
  const past = await publishWith(publisher, 'later', '{}', { run_at: 1_000_000_000 });
  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'OK');
  assert.is((await nextPush(worker)).ID, past);
  closeAll(publisher, worker);
});

withServer('delay_policy IGNORE drops delays', { delay_policy: 'IGNORE' }, async (server) => {
  const publisher = await LineClient.login(server.port);
  const id = await publishWith(publisher, 'now', '{}', { delay: 3600 });
  const job = await jobOf(publisher, 'now', id);
  assert.is(job.State, 'pending');
  assert.is(job.RunAt, undefined);
  publisher.close();
});

withServer('an early job is not stuck behind later ones', { shards: 1 }, async (server) => {
  const publisher = await LineClient.login(server.port);
  const worker = await subscribe(server.port, 'mixed');
  const lines = Array.from({ length: 1000 }, (_, index) => `PUBLISH_JOB mixed t ${index} {"delay":3600}\n`).join('');
  publisher.write(lines);
  for (let index = 0; index < 1000; index++) assert.match(await publisher.next(), /^OK#/);
  const early = await publishWith(publisher, 'mixed', '"early"', { delay: 1 });
  assert.is(await publisher.request('ADVANCE_CLOCK 2'), 'OK');
  assert.is((await nextPush(worker)).ID, early);
  closeAll(publisher, worker);
});

withServer('every failure path counts one attempt', { shards: 1 }, async (server) => {
  const publisher = await LineClient.login(server.port);
  const id = await publishWith(publisher, 'fails', '{}', { max_attempts: 3, lease: 5, retry_delay: 10, backoff: 'fixed' });

  // An errored report, then the backoff.
  let worker = await subscribe(server.port, 'fails');
  assert.is((await nextPush(worker)).ID, id);
  assert.is(await worker.request(`UPDATE_JOB ${id} errored`), 'OK');
  const errored = await jobOf(publisher, 'fails', id);
  assert.equal([errored.State, errored.Attempts], ['errored', 1]);
  assert.is(Date.parse(errored.RetryAt as string) - Date.parse(errored.EndProcessingAt), 10_000);
  assert.is(await publisher.request('ADVANCE_CLOCK 10'), 'OK');

  // An expired lease.
  assert.is((await nextPush(worker)).ID, id);
  assert.is(await publisher.request('ADVANCE_CLOCK 6'), 'OK');
  const expired = await jobOf(publisher, 'fails', id);
  assert.equal([expired.State, expired.Attempts], ['pending', 2]);
  worker.close();

  // A lost worker: the third failure makes the job dead.
  worker = await subscribe(server.port, 'fails');
  assert.is((await nextPush(worker)).ID, id);
  worker.close();
  await waitFor(async () => (await jobOf(publisher, 'fails', id)).State === 'dead', 5000, 'the job dead');
  const dead = await jobOf(publisher, 'fails', id);
  assert.equal([dead.State, dead.Attempts, dead.MaxAttempts], ['dead', 3, 3]);
  assert.is(errorCode(await publisher.request(`UPDATE_JOB ${id} done`)), 'Err: wrong-state');

  // RETRY_JOB brings it back with no attempts.
  assert.is(await publisher.request(`RETRY_JOB ${id}`), 'OK');
  const retried = await jobOf(publisher, 'fails', id);
  assert.equal([retried.State, retried.Attempts], ['pending', 0]);
  assert.is(errorCode(await publisher.request(`RETRY_JOB ${id}`)), 'Err: wrong-state');
  assert.is(await publisher.request('RETRY_JOB nosuchjob'), 'Err: unknown-job');
  publisher.close();
});

withServer('an exponential backoff doubles with jitter', { shards: 1, retry_delay: 100, retry_max_delay: 300 }, async (server) => {
  const publisher = await LineClient.login(server.port);
  const worker = await subscribe(server.port, 'backoff');
  const id = await publishWith(publisher, 'backoff', '{}', {});
  // Attempt n waits between half and all of 100 s times 2^(n-1), at most 300 s.
  const bounds = [
    [50_000, 100_000],
    [100_000, 200_000],
    [150_000, 300_000],
    [150_000, 300_000],
  ];
  for (const [min, max] of bounds) {
    assert.is((await nextPush(worker)).ID, id);
    assert.is(await worker.request(`UPDATE_JOB ${id} errored`), 'OK');
    const job = await jobOf(publisher, 'backoff', id);
    const wait = Date.parse(job.RetryAt as string) - Date.parse(job.EndProcessingAt);
    assert.ok(wait >= min, `waited ${wait} ms, expected at least ${min}`);
    assert.ok(wait <= max, `waited ${wait} ms, expected at most ${max}`);
    assert.is(await publisher.request(`ADVANCE_CLOCK ${max / 1000}`), 'OK');
  }
  closeAll(publisher, worker);
});

withServer('bad options name the option and its range', {}, async (server) => {
  const client = await LineClient.login(server.port);
  const cases: Array<[string, string]> = [
    ['{"priority":1.5}', 'option priority must be an integer from -2147483648 to 2147483647 (higher runs first), got 1.5'],
    ['{"delay":-1}', 'option delay must be a number from 0 to 31536000 (seconds), got -1'],
    ['{"lease":0}', 'option lease must be a number from 1 to 31536000 (seconds), got 0'],
    ['{"max_attempts":"3"}', 'option max_attempts must be an integer from 0 to 1000000 (attempts, 0 for no limit), got "3"'],
    ['{"backoff":"linear"}', 'option backoff must be one of exponential, fixed, got "linear"'],
    ['{"colour":1}', 'unknown option "colour"; the options are priority, delay, run_at, max_attempts, retry_delay, retry_max_delay, lease, unique_for, backoff, unique_key'],
    ['{"constructor":1}', 'unknown option "constructor"; the options are priority, delay, run_at, max_attempts, retry_delay, retry_max_delay, lease, unique_for, backoff, unique_key'],
    ['{"unique_key":""}', 'option unique_key must be a string of 1 to 256 characters, got ""'],
    ['{"unique_for":60}', 'option unique_for needs a unique_key'],
    ['{"priority":1e400}', 'option priority must be an integer from -2147483648 to 2147483647 (higher runs first), got Infinity'],
    [`{"unique_key":"${'😀'.repeat(257)}"}`, `option unique_key must be a string of 1 to 256 characters, got "${'😀'.repeat(39)}`],
    ['{"delay":1,"run_at":2}', 'give either delay or run_at, not both'],
    ['[1]', 'options must be a JSON object such as {"priority":5,"delay":30}, got [1]'],
    ['nope', 'options must be a JSON object such as {"priority":5,"delay":30}, got "nope"'],
  ];
  for (const [options, detail] of cases) {
    assert.is(await client.request(`PUBLISH_JOB bad t {} ${options}`), `Err: invalid-argument;${detail}`, options);
  }
  // Nothing was published.
  assert.is(await client.request('LIST_JOBS bad'), 'Err: unknown-queue');
  client.close();
});

withServer('GET_JOB shows every field', { shards: 1 }, async (server) => {
  const publisher = await LineClient.login(server.port);
  const id = await publishWith(publisher, 'detail', '{}', { priority: 4, max_attempts: 7, lease: 90, backoff: 'fixed', retry_delay: 12 });
  const worker = await subscribe(server.port, 'detail');
  assert.is((await nextPush(worker)).ID, id);
  const job = await publisher.json<Record<string, unknown>>(`GET_JOB ${id}`);
  assert.equal(Object.keys(job), [
    'ID', 'State', 'Type', 'Payload', 'Attempts', 'StartedProcessingAt', 'EndProcessingAt', 'Priority', 'MaxAttempts',
    'Queue', 'PublishedAt', 'Backoff', 'RetryDelay', 'RetryMaxDelay', 'Lease', 'LeaseEndsAt',
  ]);
  assert.equal([job.State, job.Priority, job.MaxAttempts, job.Queue, job.Backoff, job.RetryDelay, job.Lease], ['in-progress', 4, 7, 'detail', 'fixed', 12, 90]);
  assert.is(Date.parse(job.LeaseEndsAt as string) - Date.parse(job.StartedProcessingAt as string), 90_000);
  assert.is(await publisher.request('GET_JOB nosuchjob'), 'Err: unknown-job');
  closeAll(publisher, worker);
});

withServer('QUEUE_STATS counts jobs by state', { shards: 1, backoff: 'fixed' }, async (server) => {
  const publisher = await LineClient.login(server.port);
  await publishWith(publisher, 'stats', '1', { delay: 600 });
  const failing = await publishWith(publisher, 'stats', '2', {});
  const finishing = await publishWith(publisher, 'stats', '3', {});
  await publishWith(publisher, 'stats', '4', {});
  assert.is(await publisher.request(`UPDATE_JOB ${failing} errored`), 'OK');
  assert.is(await publisher.request(`UPDATE_JOB ${finishing} done`), 'OK');
  assert.is(await publisher.request('ADVANCE_CLOCK 5'), 'OK');
  const stats = await publisher.json<Record<string, unknown>>('QUEUE_STATS stats');
  assert.equal(stats, {
    Queue: 'stats',
    Scheduled: 1,
    Pending: 1,
    InProgress: 0,
    Errored: 1,
    Done: 1,
    Dead: 0,
    PublishedLastMinute: 4,
    FinishedLastMinute: 1,
    FailedLastMinute: 1,
    OldestPendingAge: stats.OldestPendingAge,
    Workers: 0,
    Paused: false,
  });
  assert.ok((stats.OldestPendingAge as number) >= 5, `oldest pending age ${String(stats.OldestPendingAge)}`);
  // A minute later the traffic counts are empty.
  assert.is(await publisher.request('ADVANCE_CLOCK 61'), 'OK');
  const later = await publisher.json<Record<string, number>>('QUEUE_STATS stats');
  assert.equal([later.PublishedLastMinute, later.FinishedLastMinute, later.FailedLastMinute], [0, 0, 0]);
  assert.is(await publisher.request('QUEUE_STATS nosuchqueue'), 'Err: unknown-queue');
  publisher.close();
});

withServer('PREFETCH sets the jobs a worker holds', { shards: 1 }, async (server) => {
  const publisher = await LineClient.login(server.port);
  const worker = await LineClient.login(server.port);
  assert.is(await worker.request('PREFETCH 3'), 'OK');
  assert.is(await worker.request('SUBSCRIBE many'), 'OK');
  const ids = [];
  for (let index = 0; index < 5; index++) ids.push(await publishWith(publisher, 'many', String(index), {}));
  const pushed = [await nextPush(worker), await nextPush(worker), await nextPush(worker)];
  assert.equal(pushed.map((job) => job.ID), ids.slice(0, 3));
  assert.equal(await linesBeforePong(worker), [], 'no fourth job while three are held');
  // Raising it lets more jobs through at once.
  assert.is(await worker.request('PREFETCH 4'), 'OK');
  assert.is((await nextPush(worker)).ID, ids[3]);
  assert.is(await worker.request('PREFETCH 0'), 'Err: invalid-argument;prefetch must be an integer from 1 to 100000, got "0"');
  closeAll(publisher, worker);
});

withServer('a unique key answers the first job', { shards: 1 }, async (server) => {
  const publisher = await LineClient.login(server.port);
  const first = await publishWith(publisher, 'once', '1', { unique_key: 'report-42', unique_for: 60 });
  assert.is(await publishWith(publisher, 'once', '2', { unique_key: 'report-42' }), first);
  // Another key, or the same key in another queue, is a new job.
  assert.not.equal(await publishWith(publisher, 'once', '3', { unique_key: 'report-43' }), first);
  assert.not.equal(await publishWith(publisher, 'other', '4', { unique_key: 'report-42' }), first);
  // Past unique_for, the key no longer holds.
  assert.is(await publisher.request('ADVANCE_CLOCK 61'), 'OK');
  const second = await publishWith(publisher, 'once', '5', { unique_key: 'report-42' });
  assert.not.equal(second, first);
  // Once the job is done, the key is free again.
  assert.is(await publisher.request(`UPDATE_JOB ${second} done`), 'OK');
  assert.not.equal(await publishWith(publisher, 'once', '6', { unique_key: 'report-42' }), second);
  const jobs = await publisher.json<Job[]>('LIST_JOBS once');
  assert.is(jobs.length, 4);
  publisher.close();
});

withServer('max_pending_jobs refuses a flood', { shards: 1, max_pending_jobs: 3, groups: [{ slug: 'group1', max_pending_jobs: 5 }, { slug: 'group2' }, { slug: 'group3' }] }, async (server) => {
  const publisher = await LineClient.login(server.port);
  const ids = [];
  for (let index = 0; index < 3; index++) ids.push(await publishWith(publisher, 'full', String(index), {}));
  const full = await publisher.request('PUBLISH full t 4');
  assert.is(full, 'Err: queue-full;queue full keeps 3 unfinished jobs, and its max_pending_jobs is 3; retry once workers finish some');
  // The group limit counts every queue of the group.
  await publishWith(publisher, 'side', '5', {});
  await publishWith(publisher, 'side', '6', {});
  assert.match(await publisher.request('PUBLISH side t 7'), 'Err: queue-full;group group1 keeps 5 unfinished jobs, and its max_pending_jobs is 5');
  // A finished job makes room; a dead job does not count until it is retried.
  assert.is(await publisher.request(`UPDATE_JOB ${ids[0]} done`), 'OK');
  const doomed = await publishWith(publisher, 'full', '8', { max_attempts: 1 });
  assert.is(await publisher.request(`UPDATE_JOB ${doomed} errored`), 'OK');
  assert.match(await publisher.request('PUBLISH full t 9'), /^OK#/);
  assert.match(await publisher.request(`RETRY_JOB ${doomed}`), /^Err: queue-full;queue full keeps 3 unfinished jobs/);
  assert.equal((await publisher.json<Job[]>('LIST_JOBS full')).length, 5);
  publisher.close();
});

/**
 * A worker that fails the first delivery of every seventh job and finishes the rest, at
 * once. It counts the pushes of each job, for all workers together.
 */
class MixedWorker {
  readonly finished: string[] = [];
  readonly problems: string[] = [];
  private readonly reports: Array<[string, string]> = [];

  constructor(
    readonly client: LineClient,
    pushes: Map<string, number>,
    failedOnce: Set<string>,
  ) {
    const drain = (): void => {
      while (client.lines.length > 0) {
        const line = client.lines.shift() as string;
        if (line.startsWith('{"Job"')) {
          const job = (JSON.parse(line) as { Job: Job }).Job;
          pushes.set(job.ID, (pushes.get(job.ID) ?? 0) + 1);
          const status = Number(job.Payload) % 7 === 0 && !failedOnce.has(job.ID) ? 'errored' : 'done';
          if (status === 'errored') failedOnce.add(job.ID);
          this.reports.push([job.ID, status]);
          client.send(`UPDATE_JOB ${job.ID} ${status}`);
          continue;
        }
        const [id, status] = this.reports.shift() as [string, string];
        if (line !== 'OK') this.problems.push(`${status} report on ${id} answered ${line}`);
        else if (status === 'done') this.finished.push(id);
      }
    };
    client.socket.on('data', drain);
    // Pushes may have come in the same read as the reply to SUBSCRIBE.
    drain();
  }
}

test('each job runs to done once with priorities, delays and retries mixed', async () => {
  const server = await startServer({ shards: 1, backoff: 'fixed', retry_delay: 1, job_timeout: 31_536_000 });
  try {
    const publisher = await LineClient.login(server.port);
    const lines: string[] = [];
    for (let index = 0; index < 1000; index++) {
      const options: Record<string, unknown> = { priority: (index % 5) - 2 };
      if (index % 4 === 0) options.delay = 1 + (index % 3);
      lines.push(`PUBLISH_JOB mixed t ${index} ${JSON.stringify(options)}\n`);
    }
    publisher.write(lines.join(''));
    const ids = new Set<string>();
    for (let index = 0; index < 1000; index++) ids.add((await publisher.next()).slice(3));
    assert.is(ids.size, 1000);

    const pushes = new Map<string, number>();
    const failedOnce = new Set<string>();
    const workers: MixedWorker[] = [];
    for (let index = 0; index < 3; index++) {
      const client = await LineClient.login(server.port);
      assert.is(await client.request('PREFETCH 4'), 'OK');
      client.send('SUBSCRIBE mixed');
      assert.is(await client.next(), 'OK');
      workers.push(new MixedWorker(client, pushes, failedOnce));
    }
    const doneReports = (): number => workers.reduce((sum, worker) => sum + worker.finished.length, 0);
    // Delayed jobs and retries wait on the test clock, which moves a second at a time.
    await waitFor(
      async () => {
        if (doneReports() >= 1000) return true;
        assert.is(await publisher.request('ADVANCE_CLOCK 1'), 'OK');
        return doneReports() >= 1000;
      },
      60_000,
      '1000 jobs done',
    ).catch(async (error: Error) => {
      const stats = await publisher.request('QUEUE_STATS mixed');
      throw new Error(`${error.message}: ${doneReports()} done, ${stats}, problems ${JSON.stringify(workers.flatMap((worker) => worker.problems).slice(0, 3))}`);
    });
    const jobs = await publisher.json<Job[]>('LIST_JOBS mixed');
    assert.is(jobs.length, 1000);
    assert.equal(jobs.filter((job) => job.State !== 'done'), []);
    assert.equal(new Set(jobs.map((job) => job.ID)), ids);
    for (const job of jobs) {
      const failures = Number(job.Payload) % 7 === 0 ? 1 : 0;
      assert.is(job.Attempts, failures, `attempts of job ${job.Payload}`);
      // One push per delivery: none twice, none lost.
      assert.is(pushes.get(job.ID), failures + 1, `pushes of job ${job.Payload}`);
    }
    assert.equal(workers.flatMap((worker) => worker.problems), []);
    closeAll(publisher, ...workers.map((worker) => worker.client));
  } finally {
    assert.is(await server.stop(), 0);
  }
});

/**
 * Returns a function that moves the server clock to a given epoch time with ADVANCE_CLOCK.
 * The server clock is this process's clock plus what ADVANCE_CLOCK added.
 */
function clockMover(client: LineClient): (target: number) => Promise<void> {
  let offsetMs = 0;
  return async (target) => {
    const seconds = Math.ceil((target - Date.now() - offsetMs) / 1000);
    assert.is(await client.request(`ADVANCE_CLOCK ${seconds}`), 'OK');
    offsetMs += seconds * 1000;
  };
}

/** Returns the last Sunday of a month (0-based) of a year, at 00:00 UTC. */
function lastSunday(year: number, month: number): number {
  const last = new Date(Date.UTC(year, month + 1, 0));
  return last.getTime() - last.getUTCDay() * 86_400_000;
}

withServer('CRON_TZ follows daylight saving', { shards: 1 }, async (server) => {
  const client = await LineClient.login(server.port);
  const advanceTo = clockMover(client);
  const jobs = async (): Promise<number> => (await client.json<Job[]>('LIST_JOBS tz')).length;
  const hour = 3_600_000;
  const minute = 60_000;
  // In Europe/Paris, summer time starts at 01:00 UTC on the last Sunday of March, when
  // 02:00 becomes 03:00, and ends at 01:00 UTC on the last Sunday of October.
  const year = new Date().getUTCFullYear() + 1;
  const spring = lastSunday(year, 2) + hour;
  const autumn = lastSunday(year, 9) + hour;
  assert.match(await client.request("RECURRENT_JOB tz t 'CRON_TZ=Europe/Paris 30 2 * * *'"), /^OK#\d+$/);
  assert.is(errorCode(await client.request("RECURRENT_JOB tz u 'CRON_TZ=Mars/Olympus 30 2 * * *'")), 'Err: invalid-cron');

  // Months of runs missed by the clock jump fire once.
  await advanceTo(spring - 12 * hour);
  const start = await jobs();
  assert.is(start, 1);
  // 02:30 does not exist on the spring day: the run comes at 03:00 local time, not never.
  await advanceTo(spring - minute);
  assert.is(await jobs(), start);
  await advanceTo(spring + minute);
  assert.is(await jobs(), start + 1);
  // 02:30 comes twice on the autumn day, at 00:30 and 01:30 UTC: the run comes once.
  await advanceTo(autumn - 32 * minute);
  assert.is(await jobs(), start + 2);
  await advanceTo(autumn - 29 * minute);
  assert.is(await jobs(), start + 3);
  await advanceTo(autumn + 31 * minute);
  assert.is(await jobs(), start + 3);
  // The next day runs at 02:30 winter time, 01:30 UTC.
  await advanceTo(autumn + 24 * hour + 31 * minute);
  assert.is(await jobs(), start + 4);
  client.close();
});

withServer(
  'group and queue defaults apply to their jobs',
  {
    shards: 1,
    groups: [
      { slug: 'group1', defaults: { max_attempts: 5, lease: 120 }, queues: { urgent: { priority: 9, max_attempts: 2 } } },
      { slug: 'group2' },
      { slug: 'group3' },
    ],
  },
  async (server) => {
    const client = await LineClient.login(server.port);
    const plain = await publishWith(client, 'plain', '{}', {});
    const urgent = await publishWith(client, 'urgent', '{}', {});
    const chosen = await publishWith(client, 'urgent', '{}', { max_attempts: 7 });
    const show = async (id: string): Promise<unknown[]> => {
      const job = await client.json<Record<string, unknown>>(`GET_JOB ${id}`);
      return [job.Priority, job.MaxAttempts, job.Lease];
    };
    // The group's defaults, then the queue's over them, then the job's own options.
    assert.equal(await show(plain), [0, 5, 120]);
    assert.equal(await show(urgent), [9, 2, 120]);
    assert.equal(await show(chosen), [9, 7, 120]);
    client.close();
  },
);

withServer(
  'a queue time zone applies to its recurrent jobs',
  { shards: 1, groups: [{ slug: 'group1', queues: { paris: { time_zone: 'Europe/Paris' } } }, { slug: 'group2' }, { slug: 'group3' }] },
  async (server) => {
    const client = await LineClient.login(server.port);
    const advanceTo = clockMover(client);
    const count = async (queue: string): Promise<number> => (await client.json<Job[]>(`LIST_JOBS ${queue}`)).length;
    assert.match(await client.request("RECURRENT_JOB paris t '30 2 * * *'"), /^OK#/);
    assert.match(await client.request("RECURRENT_JOB utc t '30 2 * * *'"), /^OK#/);
    // 15 January of next year: 02:30 in Paris is 01:30 UTC.
    const day = Date.UTC(new Date().getUTCFullYear() + 1, 0, 15);
    await advanceTo(day);
    const [paris, utc] = [await count('paris'), await count('utc')];
    await advanceTo(day + 91 * 60_000);
    assert.equal([await count('paris'), await count('utc')], [paris + 1, utc]);
    await advanceTo(day + 151 * 60_000);
    assert.equal([await count('paris'), await count('utc')], [paris + 1, utc + 1]);
    client.close();
  },
);

test('a paused queue keeps jobs and pushes none, across a restart', async () => {
  const config = { shards: 1, data_dir: tempDir() };
  let server = await startServer(config);
  const publisher = await LineClient.login(server.port);
  assert.is(await publisher.request('PAUSE_QUEUE held'), 'OK');
  const id = await publishWith(publisher, 'held', '{}', {});
  const worker = await subscribe(server.port, 'held');
  assert.equal(await linesBeforePong(worker), [], 'a paused queue pushes nothing');
  assert.is((await publisher.json<Record<string, unknown>>('QUEUE_STATS held')).Paused, true);
  assert.is(await server.stop(), 0);
  closeAll(publisher, worker);

  server = await startServer(config);
  try {
    const client = await LineClient.login(server.port);
    const again = await subscribe(server.port, 'held');
    assert.equal(await linesBeforePong(again), [], 'the pause survived the restart');
    assert.is(await client.request('RESUME_QUEUE held'), 'OK');
    assert.is((await nextPush(again)).ID, id);
    assert.is(await client.request('RESUME_QUEUE nosuchqueue'), 'Err: unknown-queue');
    closeAll(client, again);
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test('scheduled and dead jobs survive a restart', async () => {
  const config = { shards: 1, data_dir: tempDir(), max_attempts: 1 };
  let server = await startServer(config);
  const publisher = await LineClient.login(server.port);
  const later = await publishWith(publisher, 'kept', '"later"', { delay: 3600, priority: 3 });
  const soon = await publishWith(publisher, 'kept', '"soon"', { run_at: Date.now() / 1000 + 0.3 });
  const doomed = await publishWith(publisher, 'kept', '"doomed"', {});
  assert.is(await publisher.request(`UPDATE_JOB ${doomed} errored`), 'OK');
  const before = await jobOf(publisher, 'kept', later);
  assert.is(await server.stop(), 0);
  publisher.close();

  server = await startServer(config);
  try {
    const client = await LineClient.login(server.port);
    const scheduled = await jobOf(client, 'kept', later);
    assert.equal([scheduled.State, scheduled.RunAt, scheduled.Priority], ['scheduled', before.RunAt, 3]);
    const dead = await jobOf(client, 'kept', doomed);
    assert.equal([dead.State, dead.Attempts], ['dead', 1]);
    // A job whose time passed while the server was down runs right after the start.
    const worker = await subscribe(server.port, 'kept');
    assert.is((await nextPush(worker, 5000)).ID, soon);
    closeAll(client, worker);
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test.run();

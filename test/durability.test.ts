import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeAll, Job, LineClient, waitFor } from './helpers/client';
import { publishAll, ReportingWorker } from './helpers/jobs';
import fs from 'node:fs';
import path from 'node:path';
import { open } from 'lmdb';
import { groupDirectory } from '../src/storage/lmdb-store';
import { runCli } from './helpers/process';
import { spawn } from 'node:child_process';
import { BASE_CONFIG, CLI, startServer, tempDir, TestServer, writeConfig } from './helpers/server';

const MODES = ['os', 'fsync'] as const;

function durableServer(dataDir: string, mode: string, overrides: Record<string, unknown> = {}): Promise<TestServer> {
  return startServer({ durability: mode, data_dir: dataDir, job_timeout: 60, ...overrides });
}

async function listJobs(port: number, queue: string): Promise<Job[]> {
  const client = await LineClient.login(port);
  const jobs = await client.json<Job[]>(`LIST_JOBS ${queue}`);
  client.close();
  return jobs;
}

for (const mode of MODES) {
  test(`restart keeps jobs (${mode})`, async () => {
    const dataDir = tempDir();
    let server = await durableServer(dataDir, mode);
    const client = await LineClient.login(server.port);
    const [a, b, c] = await publishAll(client, 'keep', ['{"n":1}', '{"n":2}', '{"n":3}']);
    // b is held when the server stops, so it comes back pending, without an attempt.
    assert.is(await client.request(`UPDATE_JOB ${b} in-progress`), 'OK');
    assert.is(await client.request(`UPDATE_JOB ${c} in-progress`), 'OK');
    assert.is(await client.request(`UPDATE_JOB ${c} done`), 'OK');
    // The holder stays connected: the stop closes its connection.
    assert.is(await server.stop(), 0);
    client.close();

    server = await durableServer(dataDir, mode);
    try {
      const jobs = await listJobs(server.port, 'keep');
      assert.equal(
        jobs.map((job) => [job.ID, job.State, job.Attempts, job.Payload]),
        [
          [a, 'pending', 0, '{"n":1}'],
          [b, 'pending', 0, '{"n":2}'],
          [c, 'done', 0, '{"n":3}'],
        ],
      );
      // A new job gets a place after the stored ones.
      const publisher = await LineClient.login(server.port);
      const [d] = await publishAll(publisher, 'keep', ['{"n":4}']);
      publisher.close();
      assert.equal((await listJobs(server.port, 'keep')).map((job) => job.ID), [a, b, c, d]);
    } finally {
      assert.is(await server.stop(), 0);
    }
  });

  test(`SIGKILL keeps every acknowledged job (${mode})`, async () => {
    const dataDir = tempDir();
    const acknowledged: string[] = [];
    for (const killAfter of [300, 2000]) {
      const server = await durableServer(dataDir, mode);
      const publishers = await Promise.all([1, 2, 3].map(() => LineClient.login(server.port)));
      const before = acknowledged.length;
      let stop = false;
      // Each publisher keeps 100 requests in flight until the server is killed.
      const runs = publishers.map(async (publisher, index) => {
        let sent = 0;
        let answered = 0;
        const top = (): void => {
          let lines = '';
          while (!stop && sent - answered < 100) {
            lines += `PUBLISH kill t {"p":${index},"n":${sent}}\n`;
            sent++;
          }
          if (lines !== '') publisher.write(lines);
        };
        top();
        while (!stop) {
          const reply = await publisher.next(10_000).catch(() => null);
          if (reply === null) break;
          answered++;
          if (reply.startsWith('OK#')) acknowledged.push(reply.slice(3));
          top();
        }
      });
      await waitFor(() => acknowledged.length - before >= killAfter, 20_000, `${killAfter} acknowledged jobs`);
      server.process.kill('SIGKILL');
      stop = true;
      await server.exited;
      closeAll(...publishers);
      await Promise.all(runs);

      const restarted = await durableServer(dataDir, mode);
      try {
        const stored = (await listJobs(restarted.port, 'kill')).map((job) => job.ID);
        assert.is(new Set(stored).size, stored.length, 'no job is stored twice');
        const storedSet = new Set(stored);
        const missing = acknowledged.filter((id) => !storedSet.has(id));
        assert.equal(missing, [], `${missing.length} acknowledged jobs are missing after the kill`);
      } finally {
        assert.is(await restarted.stop(), 0);
      }
    }
  });
}

test('a different shard count keeps every job', async () => {
  const dataDir = tempDir();
  let server = await durableServer(dataDir, 'os', { shards: 2, groups: [{ slug: 'group1', shard: 1 }, { slug: 'group2' }, { slug: 'group3' }] });
  const client = await LineClient.login(server.port);
  const ids = await publishAll(client, 'moved', ['{"n":1}', '{"n":2}']);
  client.close();
  assert.is(await server.stop(), 0);

  server = await durableServer(dataDir, 'os', { shards: 1, groups: [{ slug: 'group1' }, { slug: 'group2' }, { slug: 'group3' }] });
  try {
    assert.equal((await listJobs(server.port, 'moved')).map((job) => job.ID), ids);
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test('a second server on one data_dir is refused', async () => {
  const dataDir = tempDir();
  const first = await durableServer(dataDir, 'os');
  try {
    const result = await runCli(['--config', writeConfig({ ...BASE_CONFIG, durability: 'os', data_dir: dataDir })]);
    assert.is(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout + result.stderr, `is in use by the server with process id ${first.pid}`);
  } finally {
    assert.is(await first.stop(), 0);
  }
  // The stop gave the directory up, and a killed server's claim is taken over.
  const second = await durableServer(dataDir, 'os');
  second.process.kill('SIGKILL');
  await second.exited;
  const third = await durableServer(dataDir, 'os');
  assert.is(await third.stop(), 0);
});

test('a refused server exits although its stdout reader is gone', async () => {
  const dataDir = tempDir();
  const first = await durableServer(dataDir, 'os');
  try {
    const config = writeConfig({ ...BASE_CONFIG, durability: 'os', data_dir: dataDir });
    const second = spawn(process.execPath, [CLI, '--config', config], { stdio: ['ignore', 'pipe', 'ignore'] });
    const exited = new Promise<number | null>((resolve) => second.once('exit', (code) => resolve(code)));
    // The reader goes away after the first line, as `| head -1` does.
    second.stdout.once('data', () => second.stdout.destroy());
    const timer = setTimeout(() => second.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    assert.is(code, 1, 'the refused server exits with 1 instead of hanging');
  } finally {
    assert.is(await first.stop(), 0);
  }
});

test('a job taken while waiting for a retry comes back pending', async () => {
  const dataDir = tempDir();
  let server = await durableServer(dataDir, 'os', { retry_delay: 30 });
  const client = await LineClient.login(server.port);
  const [id] = await publishAll(client, 'retake', ['{"n":1}']);
  assert.is(await client.request(`UPDATE_JOB ${id} in-progress`), 'OK');
  assert.is(await client.request(`UPDATE_JOB ${id} errored`), 'OK');
  assert.is(await client.request(`UPDATE_JOB ${id} in-progress`), 'OK');
  server.process.kill('SIGKILL');
  await server.exited;
  client.close();

  server = await durableServer(dataDir, 'os', { retry_delay: 30 });
  try {
    const [job] = await listJobs(server.port, 'retake');
    assert.equal([job.ID, job.State, job.Attempts], [id, 'pending', 1]);
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test('long group slugs get a store', async () => {
  const dataDir = tempDir();
  const slug = ':'.repeat(100);
  const groups = [{ slug }];
  const users = [{ username: 'user1', password: 'pass1', groups: [slug] }];
  let server = await durableServer(dataDir, 'os', { groups, users });
  const client = await LineClient.login(server.port, 'user1', 'pass1', slug);
  const ids = await publishAll(client, 'long', ['{"n":1}']);
  client.close();
  assert.is(await server.stop(), 0);

  server = await durableServer(dataDir, 'os', { groups, users });
  try {
    const reader = await LineClient.login(server.port, 'user1', 'pass1', slug);
    assert.equal((await reader.json<Job[]>('LIST_JOBS long')).map((job) => job.ID), ids);
    reader.close();
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test('a recurrent job neither multiplies nor stops on restart', async () => {
  const dataDir = tempDir();
  let server = await durableServer(dataDir, 'os');
  const client = await LineClient.login(server.port);
  const reply = await client.request("RECURRENT_JOB ticks tick '@every 1h'");
  assert.match(reply, /^OK#\d+$/);
  client.close();
  assert.is(await server.stop(), 0);

  for (let restart = 0; restart < 2; restart++) {
    server = await durableServer(dataDir, 'os');
    try {
      const admin = await LineClient.login(server.port);
      // Declaring it again, as a client does at each start, updates the stored entry.
      assert.is(await admin.request("RECURRENT_JOB ticks tick '@every 1h'"), reply);
      const entries = await admin.json<Array<{ EntryID: number; CronExpression: string }>>('LIST_RECURRENT_JOBS ticks');
      assert.equal(entries.map((entry) => [entry.EntryID, entry.CronExpression]), [[Number(reply.slice(3)), '@every 1h']]);
      admin.close();
    } finally {
      assert.is(await server.stop(), 0);
    }
  }

  server = await durableServer(dataDir, 'os');
  try {
    const admin = await LineClient.login(server.port);
    const before = (await admin.json<Job[]>('LIST_JOBS ticks')).length;
    assert.is(await admin.request('ADVANCE_CLOCK 3600'), 'OK');
    await waitFor(async () => (await admin.json<Job[]>('LIST_JOBS ticks')).length === before + 1, 5000, 'one run an hour later');
    admin.close();
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test('an unusable data_dir stops start-up', async () => {
  const file = path.join(tempDir(), 'not-a-directory');
  fs.writeFileSync(file, '');
  const result = await runCli(['--config', writeConfig({ ...BASE_CONFIG, durability: 'os', data_dir: file })]);
  assert.is(result.code, 1, result.stdout + result.stderr);
  assert.match(result.stdout + result.stderr, 'cannot create data_dir');
  assert.match(result.stdout + result.stderr, 'not-a-directory');
});

test('a store of another format stops start-up', async () => {
  const dataDir = tempDir();
  const store = open({ path: groupDirectory(dataDir, 'group1'), compression: false });
  store.putSync('format', 99);
  await store.close();
  const result = await runCli(['--config', writeConfig({ ...BASE_CONFIG, durability: 'os', data_dir: dataDir })]);
  assert.is(result.code, 1, result.stdout + result.stderr);
  assert.match(result.stdout + result.stderr, 'has format 99, and this server reads formats 1 and 2');
});

test('a store of the first format is read and upgraded', async () => {
  const dataDir = tempDir();
  const directory = groupDirectory(dataDir, 'group1');
  fs.mkdirSync(directory, { recursive: true });
  const old = open({ path: directory, compression: false });
  const failedAt = Date.now() - 60_000;
  old.putSync('format', 1);
  old.putSync(['job', 7], ['AAAAAAAAAAAAAAA1', 'old', '"t"', '"first"', 'pending', 0, 0, 0]);
  old.putSync(['job', 9], ['AAAAAAAAAAAAAAA2', 'old', '"t"', '"second"', 'errored', 2, failedAt - 1000, failedAt]);
  await old.close();

  const server = await durableServer(dataDir, 'os', { retry_delay: 30 });
  try {
    const jobs = await listJobs(server.port, 'old');
    // The errored job's retry was due 30 s after it failed, a minute ago, so it is pending.
    assert.equal(
      jobs.map((job) => [job.ID, job.State, job.Attempts, job.Payload]),
      [
        ['AAAAAAAAAAAAAAA1', 'pending', 0, 'first'],
        ['AAAAAAAAAAAAAAA2', 'pending', 2, 'second'],
      ],
    );
  } finally {
    assert.is(await server.stop(), 0);
  }
  const upgraded = open({ path: directory, compression: false, readOnly: true });
  assert.is(upgraded.get('format'), 2);
  await upgraded.close();
});

/** A worker that reports every pushed job done at once. */
class Finisher extends ReportingWorker {
  constructor(client: LineClient, onAccepted: () => void) {
    super(client, onAccepted);
    this.start();
  }

  protected onPush(job: Job): void {
    this.reportDone(job.ID);
  }
}

/** A worker that reports every pushed job errored at once. */
class Failer extends ReportingWorker {
  constructor(client: LineClient, onAccepted: () => void) {
    super(client, onAccepted);
    this.start();
  }

  protected onPush(job: Job): void {
    this.awaitingReply.push(job.ID);
    this.client.send(`UPDATE_JOB ${job.ID} errored`);
  }
}

test('the store stays small while jobs keep failing', async () => {
  const dataDir = tempDir();
  const server = await durableServer(dataDir, 'os', { prefetch: 100, dead_job_ttl: 31_536_000 });
  try {
    const storeFile = path.join(groupDirectory(dataDir, 'group1'), 'data.mdb');
    const publisher = await LineClient.login(server.port);
    // One job fails for good and stays dead, as an old record that must not pin the space.
    const parked = (await publisher.request('PUBLISH_JOB parked t {} {"max_attempts":1}')).slice(3);
    assert.is(await publisher.request(`UPDATE_JOB ${parked} errored`), 'OK');
    const payloads = Array.from({ length: 1000 }, (_, index) => `{"n":${index},"pad":"${'x'.repeat(100)}"}`);
    publisher.write(payloads.map((payload) => `PUBLISH_JOB failing t ${payload} {"max_attempts":0,"retry_delay":0}\n`).join(''));
    for (let index = 0; index < 1000; index++) assert.match(await publisher.next(), /^OK#/);
    const baseline = fs.statSync(storeFile).size;

    const client = await LineClient.login(server.port);
    await client.request('SUBSCRIBE failing', 'OK');
    let failures = 0;
    const worker = new Failer(client, () => failures++);
    await waitFor(() => failures >= 30_000, 60_000, '30,000 failed deliveries');
    worker.stop();
    assert.equal(worker.unexpected, []);
    const size = fs.statSync(storeFile).size;
    assert.ok(size <= 4 * baseline, `the store grew from ${baseline} to ${size} bytes`);
    const dead = await publisher.json<Job[]>('LIST_JOBS parked');
    assert.equal(dead.map((job) => [job.ID, job.State]), [[parked, 'dead']]);
    closeAll(publisher, client);
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test('the store stays small as jobs pass through', async () => {
  const dataDir = tempDir();
  const server = await durableServer(dataDir, 'os', { job_timeout: 0, prefetch: 100 });
  try {
    const storeFile = path.join(groupDirectory(dataDir, 'group1'), 'data.mdb');
    const publisher = await LineClient.login(server.port);
    const payloads = Array.from({ length: 1000 }, (_, index) => `{"n":${index},"pad":"${'x'.repeat(100)}"}`);
    await publishAll(publisher, 'through', payloads);
    const sizeWithThousand = fs.statSync(storeFile).size;

    const client = await LineClient.login(server.port);
    await client.request('SUBSCRIBE through', 'OK');
    let finished = 0;
    const worker = new Finisher(client, () => finished++);
    await waitFor(() => finished === 1000, 20_000, 'the first 1000 jobs done');
    // 30,000 more jobs pass through, with at most 1,000 pending at a time.
    for (let round = 2; round <= 31; round++) {
      await publishAll(publisher, 'through', payloads);
      await waitFor(() => finished === round * 1000, 20_000, `${round * 1000} jobs done`);
    }
    assert.equal(worker.unexpected, []);
    const sizeAfter = fs.statSync(storeFile).size;
    assert.ok(sizeAfter <= 3 * sizeWithThousand, `the store grew from ${sizeWithThousand} to ${sizeAfter} bytes`);
    closeAll(publisher, client);
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test.run();

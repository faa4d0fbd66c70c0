import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeAll, errorCode, Job, LineClient, waitFor } from './helpers/client';
import { nextPush, publish, subscribe } from './helpers/jobs';
import { logEntries, startServer, tempDir, TestServer } from './helpers/server';

function durableServer(dataDir: string, overrides: Record<string, unknown> = {}): Promise<TestServer> {
  return startServer({ durability: 'os', data_dir: dataDir, job_timeout: 600, ...overrides });
}

async function listJobs(port: number, queue: string): Promise<Job[]> {
  const client = await LineClient.login(port);
  const jobs = await client.json<Job[]>(`LIST_JOBS ${queue}`);
  client.close();
  return jobs;
}

/** Publishes until the store accepts the job again, and returns its id. */
async function publishOnceStored(client: LineClient, queue: string, payload: string): Promise<string> {
  let id = '';
  await waitFor(
    async () => {
      const reply = await client.request(`PUBLISH ${queue} t ${payload}`);
      if (reply.startsWith('OK#')) id = reply.slice(3);
      else assert.is(errorCode(reply), 'Err: storage-unavailable', reply);
      return id !== '';
    },
    10_000,
    'a publish stored again',
  );
  return id;
}

test('a failing store answers storage-unavailable and recovers', async () => {
  const dataDir = tempDir();
  let server = await durableServer(dataDir, { prefetch: 2 });
  const publisher = await LineClient.login(server.port);
  const worker = await subscribe(server.port, 'faults');
  const leaver = await subscribe(server.port, 'faults');
  const first = await publish(publisher, 'faults', '{"n":1}');
  const second = await publish(publisher, 'faults', '{"n":2}');
  const pushes = [await nextPush(worker), await nextPush(leaver)];
  const workerJob = pushes[0].ID;
  const left = pushes[1].ID;
  assert.equal(new Set([workerJob, left]), new Set([first, second]));

  assert.is(await publisher.request('DEBUG storage-fault on'), 'OK');
  // The first publish fails at its commit; the job is taken back before any worker receives it.
  const failed = await publisher.request('PUBLISH faults t {"n":3}');
  assert.is(errorCode(failed), 'Err: storage-unavailable', failed);
  assert.match(failed, 'nothing was changed');
  // Later changes are refused before they are made; reads still work.
  assert.is(errorCode(await publisher.request('PUBLISH faults t {"n":4}')), 'Err: storage-unavailable');
  assert.is(errorCode(await worker.request(`UPDATE_JOB ${workerJob} done`)), 'Err: storage-unavailable');
  assert.equal((await publisher.json<Job[]>('LIST_JOBS faults')).map((job) => job.ID), [first, second]);
  // A holder that leaves while the store fails: its job goes to the other worker, and the
  // attempt it counted is stored once the store works.
  leaver.close();
  const moved = await nextPush(worker);
  assert.equal([moved.ID, moved.Attempts], [left, 1]);

  assert.is(await publisher.request('DEBUG storage-fault off'), 'OK');
  const third = await publishOnceStored(publisher, 'faults', '{"n":5}');
  assert.is(await worker.request(`UPDATE_JOB ${workerJob} done`), 'OK');
  // The worker never gets a job that was taken back.
  assert.is((await nextPush(worker)).ID, third);
  const failures = logEntries(server).filter((entry) => String(entry.msg).startsWith('the store failed'));
  assert.is(failures.length, 1, 'the failure is logged once');
  assert.ok(logEntries(server).some((entry) => String(entry.msg).startsWith('the store works again')));
  // The worker stays connected: a graceful stop counts no attempt for the jobs it holds.
  assert.is(await server.stop(), 0);
  closeAll(publisher, worker);

  server = await durableServer(dataDir);
  try {
    const jobs = await listJobs(server.port, 'faults');
    assert.equal(
      jobs.map((job) => [job.ID, job.State, job.Attempts]),
      [
        [first, first === workerJob ? 'done' : 'pending', first === workerJob ? 0 : 1],
        [second, second === workerJob ? 'done' : 'pending', second === workerJob ? 0 : 1],
        [third, 'pending', 0],
      ],
    );
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test('a report kept in memory frees the worker', async () => {
  const server = await durableServer(tempDir());
  try {
    const publisher = await LineClient.login(server.port);
    const worker = await subscribe(server.port, 'kept');
    const first = await publish(publisher, 'kept', '{"n":1}');
    assert.is((await nextPush(worker)).ID, first);
    assert.is(await publisher.request('DEBUG storage-fault on'), 'OK');
    const reply = await worker.request(`UPDATE_JOB ${first} done`);
    assert.is(errorCode(reply), 'Err: storage-unavailable', reply);
    assert.match(reply, 'holds in memory');
    assert.is(await publisher.request('DEBUG storage-fault off'), 'OK');
    // The done report took effect, so the worker's slot is free for the next job.
    const second = await publishOnceStored(publisher, 'kept', '{"n":2}');
    assert.is((await nextPush(worker)).ID, second);
    closeAll(publisher, worker);
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test('the fault switch acts between two commits', async () => {
  const dataDir = tempDir();
  let server = await durableServer(dataDir, { shards: 1 });
  const client = await LineClient.login(server.port);
  // Writes of one batch are all stored or all refused, whatever the switch does inside it.
  client.write('PUBLISH seam t a\nDEBUG storage-fault on\nPUBLISH seam t b\n');
  const replies = [await client.next(), await client.next(), await client.next()];
  const rejection = errorCode(await client.request('PUBLISH seam t c'));
  assert.is(rejection, 'Err: storage-unavailable');
  server.process.kill('SIGKILL');
  await server.exited;
  client.close();

  server = await durableServer(dataDir, { shards: 1 });
  try {
    const stored = (await listJobs(server.port, 'seam')).map((job) => job.ID);
    const acknowledged = replies.filter((reply) => reply.startsWith('OK#')).map((reply) => reply.slice(3));
    assert.equal(stored, acknowledged);
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test('storage-fault rejects memory mode and bad arguments', async () => {
  const server = await startServer({ durability: 'memory' });
  try {
    const client = await LineClient.login(server.port);
    const reply = await client.request('DEBUG storage-fault on');
    assert.is(errorCode(reply), 'Err: invalid-argument');
    assert.match(reply, 'durability is memory');
    assert.is(errorCode(await client.request('DEBUG storage-fault maybe')), 'Err: invalid-argument');
    client.close();
  } finally {
    assert.is(await server.stop(), 0);
  }
});

/** Mounts a tmpfs of the given size, or returns null where mounting is refused. */
function mountTmpfs(sizeKb: number): string | null {
  const dir = tempDir();
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    console.log(`skipped the full-disk test: mounting a tmpfs was refused (${(error as Error).message.split('\n')[0]})`);
    return null;
  }
  return dir;
}

test('a full disk answers storage-unavailable and loses no acknowledged job', async () => {
  const mount = mountTmpfs(6 * 1024);
  if (mount === null) return;
  const dataDir = path.join(mount, 'data');
  let server: TestServer | null = null;
  try {
    const config = { shards: 1, disk_reserve_bytes: 4 * 1024 * 1024 };
    server = await durableServer(dataDir, config);
    const client = await LineClient.login(server.port);
    const acknowledged: string[] = [];
    const payload = `"${'x'.repeat(1000)}"`;
    let rejections = 0;
    // Pipelined publishes until the free space falls under the reserve; bounded by the size of the tmpfs.
    for (let round = 0; round < 100 && rejections === 0; round++) {
      client.write(`PUBLISH full t ${payload}\n`.repeat(50));
      for (let index = 0; index < 50; index++) {
        const reply = await client.next();
        if (reply.startsWith('OK#')) acknowledged.push(reply.slice(3));
        else {
          assert.is(errorCode(reply), 'Err: storage-unavailable', reply);
          rejections++;
        }
      }
    }
    assert.ok(rejections > 0, `the disk never filled after ${acknowledged.length} jobs`);
    // The disk stays full for a while: publishes keep failing and the server keeps serving.
    client.write(`PUBLISH full t ${payload}\n`.repeat(200));
    for (let index = 0; index < 200; index++) assert.is(errorCode(await client.next()), 'Err: storage-unavailable');
    assert.is(await client.request('PING'), 'PONG');

    execFileSync('mount', ['-o', 'remount,size=64m', mount]);
    acknowledged.push(await publishOnceStored(client, 'full', payload));
    client.close();
    assert.is(await server.stop(), 0);

    server = await durableServer(dataDir, config);
    try {
      const stored = (await listJobs(server.port, 'full')).map((job) => job.ID);
      assert.equal(stored, acknowledged, 'exactly the acknowledged jobs are stored');
    } finally {
      assert.is(await server.stop(), 0);
    }
  } finally {
    if (server !== null) {
      server.process.kill('SIGKILL');
      await server.exited;
    }
    execFileSync('umount', [mount]);
    fs.rmSync(mount, { recursive: true, force: true });
  }
});

test.run();

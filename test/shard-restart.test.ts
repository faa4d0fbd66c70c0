import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeAll, errorCode, Job, LineClient, waitFor } from './helpers/client';
import { nextPush, publish, subscribe } from './helpers/jobs';
import { logEntries, startServer, TestServer } from './helpers/server';

/** group1 lives alone on shard 1; group2 and group3 on shard 0. */
const PLACEMENT = { shards: 2, groups: [{ slug: 'group1', shard: 1 }, { slug: 'group2', shard: 0 }, { slug: 'group3', shard: 0 }] };

function logged(server: TestServer, message: string): boolean {
  return logEntries(server).some((entry) => String(entry.msg).startsWith(message));
}

/** Crashes the shard of the client's group and waits until it runs again. */
async function crashShard(server: TestServer, client: LineClient): Promise<void> {
  const reply = await client.request('DEBUG shard-crash');
  // The crash may come before or after the reply leaves the shard.
  assert.ok(reply === 'OK' || errorCode(reply) === 'Err: shard-unavailable', reply);
  await waitFor(() => logged(server, 'shard thread restarted'), 15_000, 'the shard restarted');
}

/**
 * Publishes on group2 until stopped, and returns every reply, to show that the other
 * shard serves without an error while group1's shard restarts.
 */
function steadyPublisher(client: LineClient): { stop(): Promise<string[]> } {
  const replies: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) replies.push(await client.request('PUBLISH steady t {}'));
  })().catch((error: Error) => {
    replies.push(`failed: ${error.message}`);
  });
  return {
    async stop() {
      running = false;
      await loop;
      return replies;
    },
  };
}

test('a crashed shard restarts with its jobs and workers', async () => {
  const server = await startServer({ ...PLACEMENT, job_timeout: 600 });
  try {
    const publisher = await LineClient.login(server.port);
    const worker = await subscribe(server.port, 'crash');
    const other = await LineClient.login(server.port, 'user2', 'pass2', 'group2');
    const [first, second, third] = [await publish(publisher, 'crash', '{"n":1}'), await publish(publisher, 'crash', '{"n":2}'), await publish(publisher, 'crash', '{"n":3}')];
    assert.is((await nextPush(worker)).ID, first);
    const steady = steadyPublisher(other);

    // Pipelined publishes in flight while the shard crashes get OK# or shard-unavailable.
    publisher.write('PUBLISH crash t {"n":4}\n'.repeat(50));
    await crashShard(server, worker);
    const acknowledged: string[] = [];
    for (let index = 0; index < 50; index++) {
      const reply = await publisher.next();
      if (reply.startsWith('OK#')) acknowledged.push(reply.slice(3));
      else assert.is(errorCode(reply), 'Err: shard-unavailable', reply);
    }

    // The worker keeps its job, its lease and its subscription.
    const [held] = await publisher.json<Job[]>('LIST_JOBS crash');
    assert.equal([held.ID, held.State], [first, 'in-progress']);
    assert.is(await worker.request(`UPDATE_JOB ${first} done`), 'OK');
    assert.is((await nextPush(worker)).ID, second);
    const jobs = await publisher.json<Job[]>('LIST_JOBS crash');
    assert.equal(jobs.slice(0, 3).map((job) => [job.ID, job.State, job.Attempts]), [
      [first, 'done', 0],
      [second, 'in-progress', 0],
      [third, 'pending', 0],
    ]);
    const listed = new Set(jobs.map((job) => job.ID));
    assert.equal(acknowledged.filter((id) => !listed.has(id)), [], 'every acknowledged job is kept');

    const steadyReplies = await steady.stop();
    assert.ok(steadyReplies.length > 0);
    assert.equal(steadyReplies.filter((reply) => !reply.startsWith('OK#')), [], 'the other shard served without errors');
    assert.ok(logEntries(server).some((entry) => entry.level === 50 && String(entry.msg).startsWith('shard thread stopped; restarting it')));
    closeAll(publisher, worker, other);
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test('a crashed shard in memory mode drops held jobs', async () => {
  const server = await startServer({ ...PLACEMENT, durability: 'memory' });
  try {
    const publisher = await LineClient.login(server.port);
    const worker = await subscribe(server.port, 'lost');
    const first = await publish(publisher, 'lost', '{"n":1}');
    assert.is((await nextPush(worker)).ID, first);
    await crashShard(server, worker);
    assert.ok(logged(server, 'shard thread stopped; restarting it; durability is memory, so the jobs of its groups are lost'));

    assert.is(await worker.request(`UPDATE_JOB ${first} done`), 'Err: unknown-job');
    // The subscription survived, and the dropped job no longer takes the prefetch slot.
    const second = await publish(publisher, 'lost', '{"n":2}');
    assert.is((await nextPush(worker)).ID, second);
    closeAll(publisher, worker);
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test('a shard that keeps crashing stays down', async () => {
  const server = await startServer({ ...PLACEMENT });
  try {
    const client = await LineClient.login(server.port);
    for (let crash = 1; crash <= 4; crash++) {
      const reply = await client.request('DEBUG shard-crash');
      assert.ok(reply === 'OK' || errorCode(reply) === 'Err: shard-unavailable', reply);
      if (crash <= 3) await waitFor(() => logEntries(server).filter((entry) => entry.msg === 'shard thread restarted').length === crash, 15_000, `restart ${crash}`);
    }
    await waitFor(() => logged(server, 'shard thread stopped again'), 15_000, 'the shard given up');
    assert.is(errorCode(await client.request('PUBLISH down t {}')), 'Err: shard-unavailable');
    // The other shard still serves.
    const other = await LineClient.login(server.port, 'user2', 'pass2', 'group2');
    assert.match(await other.request('PUBLISH up t {}'), /^OK#/);
    closeAll(client, other);
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test('shard-crash needs test mode', async () => {
  const server = await startServer({ test_mode: false });
  try {
    const client = await LineClient.login(server.port);
    assert.is(await client.request('DEBUG shard-crash'), 'Err: test-mode-disabled');
    client.close();
  } finally {
    assert.is(await server.stop(), 0);
  }
});

test.run();

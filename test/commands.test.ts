import * as assert from 'uvu/assert';
import { errorCode, Job, LineClient, parsePush, ZERO_TIME } from './helpers/client';
import { exitCodeWithin, serverSuite, startServer } from './helpers/server';

/**
 * Groups are pinned to both shards so that listings across groups also cross shards.
 * group2 is reserved for the LIST_SESSIONS test and group3 for the LIST_QUEUES test, so
 * their listings contain only what those tests create.
 */
const PINNED_GROUPS = [
  { slug: 'group1', shard: 0 },
  { slug: 'group2', shard: 1 },
  { slug: 'group3', shard: 1 },
];

/** HELP of the original server, in its order. */
const ORIGINAL_COMMANDS = [
  'AUTH', 'USE_GROUP', 'PUBLISH', 'SUBSCRIBE', 'UNSUBSCRIBE', 'LIST_QUEUES', 'DELETE_QUEUE',
  'PURGE_JOBS', 'PURGE_WORKERS', 'LIST_JOBS', 'UPDATE_JOB', 'DELETE_JOB', 'DISPATCH',
  'RECURRENT_JOB', 'LIST_RECURRENT_JOBS', 'DELETE_RECURRENT_JOB', 'HEALTH', 'DEBUG_PARTS',
  'DEBUG', 'DEBUG_JSON', 'STOP_SERVER', 'PING', 'QUIT', 'CURRENT_SESSION', 'LIST_SESSIONS',
];

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const JOB_ID = /^OK#[A-Za-z0-9]{16}$/;

interface Worker {
  Username: string;
  Addr: string;
  CurrentGroup: { Slug: string };
  Status: string;
}

interface RecurrentJob {
  EntryID: number;
  Type: string;
  CronExpression: string;
}

interface Queue {
  ID: string;
  Slug: string;
  Group: { Slug: string };
  RecurrentJobs: RecurrentJob[] | null;
  Jobs: Job[];
  Workers: Worker[];
}

const commands = serverSuite('commands', { groups: PINNED_GROUPS });

/** Returns the client's address as the server records it, `host:port`. */
function addressOf(client: LineClient): string {
  return `${client.socket.localAddress}:${client.socket.localPort}`;
}

async function publish(client: LineClient, line: string): Promise<string> {
  const reply = await client.request(line);
  assert.match(reply, JOB_ID, line);
  return reply.slice(3);
}

commands('AUTH accepts and rejects credentials', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request('AUTH user1 wrong'), 'Err: invalid-creds');
  assert.is(await client.request('AUTH nobody pass1'), 'Err: invalid-creds');
  assert.is(await client.request('USE_GROUP group1'), 'Err: not-logged');
  assert.is(await client.request('AUTH user1 pass1'), 'Welcome!');
  assert.is(await client.request('AUTH user2 pass2'), 'Welcome!');
  assert.is(await client.request('AUTH user1'), 'Err: wrong-numbers-arguments');
  client.close();
});

commands('USE_GROUP checks the group', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request('USE_GROUP group1'), 'Err: not-logged');
  await client.request('AUTH user1 pass1', 'Welcome!');
  assert.is(await client.request('USE_GROUP nope'), 'Err: unknown-group');
  assert.is(await client.request('USE_GROUP group2'), 'Err: forbidden-group');
  assert.is(await client.request('USE_GROUP group1'), 'OK');
  assert.is(await client.request('USE_GROUP'), 'Err: wrong-numbers-arguments');

  const admin = await LineClient.login(server.port, 'admin', 'adminpass', null);
  assert.is(await admin.request('USE_GROUP group2'), 'OK');
  assert.is(await admin.request('USE_GROUP group3'), 'OK');
  assert.is(await admin.request('USE_GROUP nope'), 'Err: unknown-group');
  client.close();
  admin.close();
});

commands('PUBLISH answers OK with a job id', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const first = await publish(client, 'PUBLISH cmd-publish t {"a":1}');
  const second = await publish(client, "PUBLISH cmd-publish t2 'b c'");
  assert.is.not(first, second);

  const jobs = await client.json<Job[]>('LIST_JOBS cmd-publish');
  assert.equal(
    jobs.map((job) => [job.ID, job.Type, job.Payload, job.State]),
    [
      [first, 't', '{"a":1}', 'pending'],
      [second, 't2', 'b c', 'pending'],
    ],
  );
  assert.is(await client.request('PUBLISH cmd-publish t'), 'Err: wrong-numbers-arguments');
  client.close();
});

commands('SUBSCRIBE pushes jobs in the original shape', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const worker = await LineClient.login(server.port);
  assert.is(await worker.request('SUBSCRIBE cmd-subscribe'), 'OK');
  const id = await publish(publisher, 'PUBLISH cmd-subscribe t1 {"a":1}');

  const line = await worker.next();
  const pushed = JSON.parse(line) as { Job: Job; Debug: string };
  assert.equal(Object.keys(pushed), ['Job', 'Debug']);
  assert.is(pushed.Debug, 'Dispatch data');
  // The original keys come first, then the ones this server added.
  assert.equal(Object.keys(pushed.Job), ['ID', 'State', 'Type', 'Payload', 'Attempts', 'StartedProcessingAt', 'EndProcessingAt', 'Priority', 'MaxAttempts']);
  assert.is(pushed.Job.ID, id);
  assert.is(pushed.Job.State, 'in-progress');
  assert.is(pushed.Job.Type, 't1');
  assert.is(pushed.Job.Payload, '{"a":1}');
  assert.is(pushed.Job.Attempts, 0);
  assert.match(pushed.Job.StartedProcessingAt, RFC3339);
  assert.is.not(pushed.Job.StartedProcessingAt, ZERO_TIME);
  assert.is(pushed.Job.EndProcessingAt, ZERO_TIME);
  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'OK');
  assert.is(await worker.request('SUBSCRIBE'), 'Err: wrong-numbers-arguments');
  publisher.close();
  worker.close();
});

commands('UNSUBSCRIBE stops pushes', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const worker = await LineClient.login(server.port);
  assert.is(await worker.request('SUBSCRIBE cmd-unsubscribe'), 'OK');
  assert.is(await worker.request('UNSUBSCRIBE cmd-unsubscribe'), 'OK');
  assert.is(await worker.request('UNSUBSCRIBE cmd-unsubscribe-none'), 'Err: unknown-queue');

  // Both commands run in the queue's shard in this order, so a job given to the worker
  // would already be in progress when LIST_JOBS runs.
  const id = await publish(publisher, 'PUBLISH cmd-unsubscribe t x');
  const jobs = await publisher.json<Job[]>('LIST_JOBS cmd-unsubscribe');
  assert.equal(jobs.map((job) => [job.ID, job.State]), [[id, 'pending']]);
  assert.equal(worker.lines, []);
  publisher.close();
  worker.close();
});

commands('LIST_QUEUES lists the current group only', async ({ server }) => {
  const admin = await LineClient.login(server.port, 'admin', 'adminpass', 'group3');
  const worker = await LineClient.login(server.port, 'admin', 'adminpass', 'group3');
  const other = await LineClient.login(server.port, 'user1', 'pass1', 'group1');
  await publish(other, 'PUBLISH cmd-queues-other t x');
  assert.is(await admin.request('LIST_QUEUES'), '[]');

  const id = await publish(admin, 'PUBLISH cmd-queues-a t {"n":1}');
  assert.is(await worker.request('SUBSCRIBE cmd-queues-b'), 'OK');
  assert.is(await admin.request('RECURRENT_JOB cmd-queues-b tick @hourly'), 'OK#1');

  const queues = await admin.json<Queue[]>('LIST_QUEUES');
  assert.equal(queues.map((queue) => queue.Slug), ['cmd-queues-a', 'cmd-queues-b']);
  const [a, b] = queues;
  assert.equal(Object.keys(a), ['ID', 'Slug', 'Group', 'RecurrentJobs', 'Jobs', 'Workers']);
  assert.match(a.ID, /^[A-Za-z0-9]{16}$/);
  assert.equal(a.Group, { Slug: 'group3' });
  assert.is(a.RecurrentJobs, null);
  assert.equal(a.Jobs.map((job) => [job.ID, job.State, job.Type, job.Payload, job.Attempts]), [[id, 'pending', 't', '{"n":1}', 0]]);
  assert.equal(a.Workers, []);
  assert.equal(b.RecurrentJobs, [{ EntryID: 1, Type: 'tick', CronExpression: '@hourly' }]);
  assert.equal(b.Jobs, []);
  assert.equal(b.Workers, [{ Username: 'admin', Addr: addressOf(worker), CurrentGroup: { Slug: 'group3' }, Status: 'available' }]);
  assert.ok(!JSON.stringify(queues).includes('adminpass'));

  assert.is(await admin.request('DELETE_QUEUE cmd-queues-a'), 'OK');
  assert.is(await admin.request('DELETE_QUEUE cmd-queues-b'), 'OK');
  assert.is(await admin.request('LIST_QUEUES'), '[]');
  admin.close();
  worker.close();
  other.close();
});

commands('DELETE_QUEUE removes the queue', async ({ server }) => {
  const client = await LineClient.login(server.port);
  await publish(client, 'PUBLISH cmd-delete-queue t x');
  assert.is(await client.request('DELETE_QUEUE cmd-delete-queue'), 'OK');
  assert.is(await client.request('LIST_JOBS cmd-delete-queue'), 'Err: unknown-queue');
  assert.is(await client.request('DELETE_QUEUE cmd-delete-queue'), 'Err: unknown-queue');
  const queues = await client.json<Queue[]>('LIST_QUEUES');
  assert.not.ok(queues.some((queue) => queue.Slug === 'cmd-delete-queue'));
  client.close();
});

commands('PURGE_JOBS empties the queue', async ({ server }) => {
  const client = await LineClient.login(server.port);
  await publish(client, 'PUBLISH cmd-purge-jobs t x');
  await publish(client, 'PUBLISH cmd-purge-jobs t y');
  assert.is(await client.request('PURGE_JOBS cmd-purge-jobs'), 'OK');
  assert.is(await client.request('LIST_JOBS cmd-purge-jobs'), '[]');
  assert.is(await client.request('PURGE_JOBS cmd-purge-jobs-none'), 'Err: unknown-queue');
  client.close();
});

commands('PURGE_WORKERS unsubscribes every worker', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const first = await LineClient.login(server.port);
  const second = await LineClient.login(server.port);
  assert.is(await first.request('SUBSCRIBE cmd-purge-workers'), 'OK');
  assert.is(await second.request('SUBSCRIBE cmd-purge-workers'), 'OK');
  assert.is(await publisher.request('PURGE_WORKERS cmd-purge-workers'), 'OK');

  const queues = await publisher.json<Queue[]>('LIST_QUEUES');
  const queue = queues.find((entry) => entry.Slug === 'cmd-purge-workers');
  assert.equal(queue?.Workers, []);
  const id = await publish(publisher, 'PUBLISH cmd-purge-workers t x');
  const jobs = await publisher.json<Job[]>('LIST_JOBS cmd-purge-workers');
  assert.equal(jobs.map((job) => [job.ID, job.State]), [[id, 'pending']]);
  assert.is(await publisher.request('PURGE_WORKERS cmd-purge-workers-none'), 'Err: unknown-queue');
  publisher.close();
  first.close();
  second.close();
});

commands('LIST_JOBS lists jobs in publish order', async ({ server }) => {
  const client = await LineClient.login(server.port);
  assert.is(await client.request('LIST_JOBS cmd-list-none'), 'Err: unknown-queue');
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await publish(client, `PUBLISH cmd-list t${i} {"n":${i}}`));

  const jobs = await client.json<Job[]>('LIST_JOBS cmd-list');
  assert.equal(jobs.map((job) => job.ID), ids);
  assert.equal(jobs[0], {
    ID: ids[0],
    State: 'pending',
    Type: 't0',
    Payload: '{"n":0}',
    Attempts: 0,
    StartedProcessingAt: ZERO_TIME,
    EndProcessingAt: ZERO_TIME,
    Priority: 0,
    MaxAttempts: 25,
  });
  client.close();
});

commands('LIST_JOBS pages with offset and limit', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) ids.push(await publish(client, `PUBLISH cmd-page t ${i}`));

  const page = async (offset: number | string, limit: number | string): Promise<string[]> => {
    const jobs = await client.json<Job[]>(`LIST_JOBS cmd-page ${offset} ${limit}`);
    return jobs.map((job) => job.ID);
  };
  assert.equal(await page(0, 3), ids.slice(0, 3));
  assert.equal(await page(3, 3), ids.slice(3, 6));
  assert.equal(await page(6, 3), ids.slice(6));
  assert.equal(await page(7, 3), []);
  assert.equal(await page(2, 0), []);
  assert.equal(await page(0, 2147483647), ids);
  assert.is(await client.request('LIST_JOBS cmd-page 0'), 'Err: wrong-numbers-arguments');
  assert.is(await client.request('LIST_JOBS cmd-page-none 0 1'), 'Err: unknown-queue');
  client.close();
});

commands('LIST_JOBS rejects invalid offsets', async ({ server }) => {
  const client = await LineClient.login(server.port);
  await publish(client, 'PUBLISH cmd-page-bad t x');
  const invalid = [
    ['-1', '5'],
    ['abc', '5'],
    ['1.5', '5'],
    ['1e3', '5'],
    ['2147483648', '5'],
    ['99999999999999999999', '5'],
    ['0', '-1'],
    ['0', 'NaN'],
    ['0', 'Infinity'],
  ];
  for (const [offset, limit] of invalid) {
    const reply = await client.request(`LIST_JOBS cmd-page-bad ${offset} ${limit}`);
    assert.is(errorCode(reply), 'Err: invalid-argument', `offset ${offset}, limit ${limit}`);
    assert.ok(reply.length > 'Err: invalid-argument;'.length, `"${reply}" should say which value is invalid`);
  }
  assert.is(await client.request('PING'), 'PONG');
  client.close();
});

commands('UPDATE_JOB reports outcomes', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const worker = await LineClient.login(server.port);
  assert.is(await worker.request('SUBSCRIBE cmd-update'), 'OK');
  const first = await publish(publisher, 'PUBLISH cmd-update t one');
  assert.is(parsePush(await worker.next()).ID, first);

  assert.is(await worker.request(`UPDATE_JOB ${first} in-progress`), 'OK');
  assert.is(errorCode(await worker.request(`UPDATE_JOB ${first} bogus`)), 'Err: unknown-state');
  assert.is(await worker.request(`UPDATE_JOB ${first} errored`), 'OK');
  let jobs = await publisher.json<Job[]>('LIST_JOBS cmd-update');
  assert.equal(jobs.map((job) => [job.ID, job.State, job.Attempts]), [[first, 'errored', 1]]);

  assert.is(await publisher.request('DELETE_JOB ' + first), 'OK');
  const second = await publish(publisher, 'PUBLISH cmd-update t two');
  assert.is(parsePush(await worker.next()).ID, second);
  assert.is(await worker.request(`UPDATE_JOB ${second} done`), 'OK');
  jobs = await publisher.json<Job[]>('LIST_JOBS cmd-update');
  assert.equal(jobs.map((job) => [job.ID, job.State, job.Attempts]), [[second, 'done', 0]]);
  assert.match(jobs[0].EndProcessingAt, RFC3339);
  assert.is.not(jobs[0].EndProcessingAt, ZERO_TIME);

  assert.is(await worker.request('UPDATE_JOB AAAAAAAAAAAAAAAA done'), 'Err: unknown-job');
  assert.is(await worker.request(`UPDATE_JOB ${second}`), 'Err: wrong-numbers-arguments');
  publisher.close();
  worker.close();
});

commands('DELETE_JOB deletes once', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const kept = await publish(client, 'PUBLISH cmd-delete-job t keep');
  const id = await publish(client, 'PUBLISH cmd-delete-job t drop');
  assert.is(await client.request(`DELETE_JOB ${id}`), 'OK');
  assert.is(await client.request(`DELETE_JOB ${id}`), 'Err: unknown-job');
  const jobs = await client.json<Job[]>('LIST_JOBS cmd-delete-job');
  assert.equal(jobs.map((job) => job.ID), [kept]);
  client.close();
});

commands('RECURRENT_JOB schedules and updates', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const created = await client.request('RECURRENT_JOB cmd-recurrent tick @hourly');
  assert.match(created, /^OK#\d+$/);
  const entry = Number(created.slice(3));
  assert.is(await client.request("RECURRENT_JOB cmd-recurrent tick '@every 2h'"), created);
  const other = await client.request("RECURRENT_JOB cmd-recurrent tock '0 3 * * 1'");
  assert.match(other, /^OK#\d+$/);
  assert.is.not(other, created);

  const entries = await client.json<RecurrentJob[]>('LIST_RECURRENT_JOBS cmd-recurrent');
  assert.equal(entries, [
    { EntryID: entry, Type: 'tick', CronExpression: '@every 2h' },
    { EntryID: Number(other.slice(3)), Type: 'tock', CronExpression: '0 3 * * 1' },
  ]);
  assert.is(await client.request('LIST_RECURRENT_JOBS cmd-recurrent-none'), 'Err: unknown-queue');

  assert.is(await client.request(`DELETE_RECURRENT_JOB ${other.slice(3)}`), 'OK');
  assert.is(await client.request('ADVANCE_CLOCK 7200'), 'OK');
  const jobs = await client.json<Job[]>('LIST_JOBS cmd-recurrent');
  assert.equal(jobs.map((job) => [job.Type, job.Payload, job.State]), [['tick', '', 'pending']]);

  assert.is(errorCode(await client.request("RECURRENT_JOB cmd-recurrent t 'not a cron'")), 'Err: invalid-cron');
  assert.is(await client.request(`DELETE_RECURRENT_JOB ${entry}`), 'OK');
  client.close();
});

commands('DELETE_RECURRENT_JOB removes the entry', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const created = await client.request("RECURRENT_JOB cmd-recurrent-delete t '*/5 * * * *'");
  assert.match(created, /^OK#\d+$/);
  const entry = created.slice(3);
  assert.is(await client.request(`DELETE_RECURRENT_JOB ${entry}`), 'OK');
  assert.is(await client.request('LIST_RECURRENT_JOBS cmd-recurrent-delete'), '[]');
  assert.is(errorCode(await client.request(`DELETE_RECURRENT_JOB ${entry}`)), 'Err: unknown-recurrent-job');

  // Nothing fires after the deletion.
  assert.is(await client.request('ADVANCE_CLOCK 3600'), 'OK');
  assert.is(await client.request('LIST_JOBS cmd-recurrent-delete'), '[]');
  client.close();
});

commands('HEALTH reports server statistics', async ({ server }) => {
  const anonymous = await LineClient.connect(server.port);
  assert.is(await anonymous.request('HEALTH'), 'Err: not-logged');
  const client = await LineClient.login(server.port, 'user1', 'pass1', null);
  const health = await client.json<Record<string, unknown>>('HEALTH');
  assert.equal(Object.keys(health), [
    'Uptime', 'Os', 'Version', 'NumCPU', 'NumGoroutine', 'NumSessions', 'NumAuthed', 'NumGroups',
    'NumUsers', 'NumQueues', 'NumJobs', 'NumWorkers', 'UnixTimestamp',
  ]);
  for (const [key, value] of Object.entries(health)) {
    if (key === 'Os' || key === 'Version') {
      assert.type(value, 'string', key);
    } else {
      assert.ok(Number.isInteger(value), `${key} should be an integer, got ${value}`);
      assert.ok((value as number) >= 0, `${key} should not be negative, got ${value}`);
    }
  }
  assert.is(health.Os, process.platform);
  assert.is(health.NumGroups, 3);
  assert.is(health.NumUsers, 3);
  assert.ok((health.NumSessions as number) >= 2);
  assert.ok((health.NumAuthed as number) >= 1);
  assert.ok((health.NumAuthed as number) <= (health.NumSessions as number));
  assert.ok((health.NumCPU as number) >= 1);
  assert.ok((health.NumQueues as number) >= 1);
  assert.ok(Math.abs((health.UnixTimestamp as number) - Date.now() / 1000) < 60);
  assert.is(await client.request('HEALTH now'), 'Err: wrong-numbers-arguments');
  anonymous.close();
  client.close();
});

commands('CURRENT_SESSION describes the connection', async ({ server }) => {
  const client = await LineClient.login(server.port, 'user1', 'pass1', null);
  const address = addressOf(client);
  assert.is(
    await client.request('CURRENT_SESSION'),
    `{"Username":"user1","Addr":"${address}","CurrentGroup":"","IsWorker":false,"Groups":["group1"]}`,
  );
  await client.request('USE_GROUP group1', 'OK');
  await client.request('SUBSCRIBE cmd-current-session', 'OK');
  assert.is(
    await client.request('CURRENT_SESSION'),
    `{"Username":"user1","Addr":"${address}","CurrentGroup":"group1","IsWorker":true,"Groups":["group1"]}`,
  );
  const anonymous = await LineClient.connect(server.port);
  assert.is(await anonymous.request('CURRENT_SESSION'), 'Err: not-logged');
  client.close();
  anonymous.close();
});

commands('LIST_SESSIONS lists the current group', async ({ server }) => {
  const first = await LineClient.login(server.port, 'user2', 'pass2', 'group2');
  const second = await LineClient.login(server.port, 'user2', 'pass2', 'group2');
  const elsewhere = await LineClient.login(server.port, 'user2', 'pass2', 'group3');
  await second.request('SUBSCRIBE cmd-sessions', 'OK');

  const reply = await first.request('LIST_SESSIONS');
  assert.not.ok(reply.includes('pass2'));
  const sessions = JSON.parse(reply) as Array<Record<string, unknown>>;
  assert.equal(sessions, [
    { Username: 'user2', Groups: ['group2', 'group3'], Addr: addressOf(first), CurrentGroup: { Slug: 'group2' }, Status: '' },
    { Username: 'user2', Groups: ['group2', 'group3'], Addr: addressOf(second), CurrentGroup: { Slug: 'group2' }, Status: 'available' },
  ]);
  const noGroup = await LineClient.login(server.port, 'user1', 'pass1', null);
  assert.is(await noGroup.request('LIST_SESSIONS x'), 'Err: wrong-numbers-arguments');
  first.close();
  second.close();
  elsewhere.close();
  noGroup.close();
});

commands('HELP lists commands in original order', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  const names = await client.json<string[]>('HELP');
  assert.equal(names.slice(0, ORIGINAL_COMMANDS.length), ORIGINAL_COMMANDS);
  assert.equal(names.slice(ORIGINAL_COMMANDS.length), ['PUBLISH_JOB', 'RETRY_JOB', 'PREFETCH', 'PAUSE_QUEUE', 'RESUME_QUEUE', 'GET_JOB', 'QUEUE_STATS', 'ADVANCE_CLOCK']);
  assert.is(await client.request('HELP a b'), 'Err: wrong-numbers-arguments');
  client.close();
});

commands('HELP PUBLISH describes the command', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  const expected =
    '{"Name":"PUBLISH","RequireAuth":true,"RequireGroup":true,"Args":3,' +
    '"Description":"Create a job in a queue and return the ID of the created job",' +
    '"Usage":"PUBLISH {queue_slug} {job_type} {job_payload}"}';
  assert.is(await client.request('HELP PUBLISH'), expected);
  assert.is(await client.request('help publish'), expected);
  const ping = await client.json<Record<string, unknown>>('HELP PING');
  assert.equal(Object.keys(ping), ['Name', 'RequireAuth', 'RequireGroup', 'Args', 'Description', 'Usage']);
  assert.is(ping.RequireAuth, false);
  assert.is(ping.Args, 0);
  assert.is(await client.request('HELP NOPE'), 'Err: unknown-command');
  client.close();
});

commands('PING answers PONG in any case', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request('PING'), 'PONG');
  assert.is(await client.request('ping'), 'PONG');
  assert.is(await client.request('Ping'), 'PONG');
  assert.is(await client.request('PING x'), 'Err: wrong-numbers-arguments');
  client.close();
});

commands('QUIT answers an empty line and closes', async ({ server }) => {
  const client = await LineClient.login(server.port);
  client.write('QUIT\nPING\n');
  assert.is(await client.next(), '');
  await client.waitClosed();
  assert.equal(client.lines, []);
});

commands('DISPATCH without allow_dispatch is disabled', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request('DISPATCH'), 'Err: dispatch-disabled');
  client.close();
});

commands('DEBUG and DEBUG_PARTS run in test mode', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request('DEBUG'), 'OK');
  assert.is(await client.request("DEBUG_PARTS a 'b c' d"), '["DEBUG_PARTS","a","b c","d"]');
  assert.is(await client.request('DEBUG_PARTS'), '["DEBUG_PARTS"]');
  assert.is(await client.request('debug_parts x'), '["DEBUG_PARTS","x"]');
  client.close();
});

commands('DEBUG_JSON orders queues and jobs', async ({ server }) => {
  const admin = await LineClient.login(server.port, 'admin', 'adminpass', null);
  const worker = await LineClient.login(server.port, 'user1', 'pass1', 'group1');
  // Queues are created alternately in group1 (shard 0) and group2 (shard 1).
  const slugs = ['cmd-dj-a', 'cmd-dj-b', 'cmd-dj-c', 'cmd-dj-d'];
  const groups = ['group2', 'group1', 'group2', 'group1'];
  const ids: Record<string, string[]> = {};
  for (let i = 0; i < slugs.length; i++) {
    ids[slugs[i]] = [await publish(admin, `PUBLISH ${groups[i]} ${slugs[i]} t first`)];
  }
  for (let round = 0; round < 3; round++) {
    for (let i = slugs.length - 1; i >= 0; i--) {
      ids[slugs[i]].push(await publish(admin, `PUBLISH ${groups[i]} ${slugs[i]} t r${round}`));
    }
  }
  await worker.request('SUBSCRIBE cmd-dj-e', 'OK');
  assert.match(await worker.request('RECURRENT_JOB cmd-dj-e tick @daily'), /^OK#\d+$/);

  const reply = await admin.request('DEBUG_JSON');
  const state = JSON.parse(reply) as {
    Queues: Queue[];
    Groups: Array<{ Slug: string }>;
    Sessions: Array<Record<string, unknown>>;
    Users: Array<Record<string, unknown>>;
    Host: string;
    Port: string;
  };
  assert.equal(Object.keys(state), ['Queues', 'Groups', 'Sessions', 'Users', 'Host', 'Port']);
  const mine = state.Queues.filter((queue) => queue.Slug.startsWith('cmd-dj-'));
  assert.equal(mine.map((queue) => queue.Slug), [...slugs, 'cmd-dj-e']);
  for (const queue of mine.slice(0, 4)) {
    assert.equal(queue.Jobs.map((job) => job.ID), ids[queue.Slug], `jobs of ${queue.Slug}`);
  }
  assert.equal(mine.map((queue) => queue.Group.Slug), [...groups, 'group1']);

  const workers = mine[4].Workers;
  assert.equal(workers.map((entry) => [entry.Username, entry.Status, entry.CurrentGroup.Slug]), [['user1', 'available', 'group1']]);
  const recurrent = mine[4].RecurrentJobs ?? [];
  assert.equal(recurrent.map((entry) => [entry.Type, entry.CronExpression]), [['tick', '@daily']]);
  assert.type(recurrent[0].EntryID, 'number');

  assert.equal(state.Groups, [{ Slug: 'group1' }, { Slug: 'group2' }, { Slug: 'group3' }]);
  assert.equal(state.Users, [
    { Username: 'user1', Groups: ['group1'] },
    { Username: 'user2', Groups: ['group2', 'group3'] },
    { Username: 'admin', Groups: ['*'] },
  ]);
  assert.ok(state.Sessions.some((session) => session.Addr === addressOf(worker)));
  assert.is(state.Host, '127.0.0.1');
  assert.is(state.Port, String(server.port));
  for (const password of ['pass1', 'pass2', 'adminpass']) assert.not.ok(reply.includes(password), password);

  for (let i = 0; i < slugs.length; i++) {
    await admin.request(`USE_GROUP ${groups[i]}`, 'OK');
    await admin.request(`DELETE_QUEUE ${slugs[i]}`, 'OK');
  }
  await worker.request('DELETE_QUEUE cmd-dj-e', 'OK');
  admin.close();
  worker.close();
});

commands('checks run in the original order', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request('NOPE'), 'Err: unknown-command');
  assert.is(await client.request('NOPE a b c'), 'Err: unknown-command');
  assert.is(await client.request('PUBLISH'), 'Err: not-logged');
  assert.is(await client.request('LIST_QUEUES extra'), 'Err: not-logged');
  await client.request('AUTH user1 pass1', 'Welcome!');
  assert.is(await client.request('NOPE'), 'Err: unknown-command');
  assert.is(await client.request('PUBLISH'), 'Err: group-non-selected');
  assert.is(await client.request('LIST_QUEUES extra'), 'Err: group-non-selected');
  assert.is(await client.request('HEALTH extra'), 'Err: wrong-numbers-arguments');
  await client.request('USE_GROUP group1', 'OK');
  assert.is(await client.request('PUBLISH'), 'Err: wrong-numbers-arguments');
  assert.is(await client.request('LIST_QUEUES extra'), 'Err: wrong-numbers-arguments');
  assert.is(await client.request('PING extra'), 'Err: wrong-numbers-arguments');
  client.close();
});

commands('older forms name the group', async ({ server }) => {
  const publisher = await LineClient.login(server.port, 'user1', 'pass1', null);
  const worker = await LineClient.login(server.port, 'user1', 'pass1', null);
  assert.is(await worker.request('SUBSCRIBE group1 cmd-old'), 'OK');
  const id = await publish(publisher, "PUBLISH group1 cmd-old t 'old form'");
  const job = parsePush(await worker.next());
  assert.is(job.ID, id);
  assert.is(job.Payload, 'old form');

  assert.is(await publisher.request('PUBLISH group2 cmd-old t x'), 'Err: forbidden-group');
  assert.is(await publisher.request('PUBLISH nope cmd-old t x'), 'Err: unknown-group');
  assert.is(await worker.request('SUBSCRIBE group2 cmd-old'), 'Err: forbidden-group');
  assert.is(await worker.request('SUBSCRIBE nope cmd-old'), 'Err: unknown-group');
  // The group form does not select the group for later commands.
  assert.is(await publisher.request('LIST_JOBS cmd-old'), 'Err: group-non-selected');

  const anonymous = await LineClient.connect(server.port);
  assert.is(await anonymous.request('PUBLISH group1 cmd-old t x'), 'Err: not-logged');
  anonymous.close();
  publisher.close();
  worker.close();
});

commands('JOB UPDATE is the older UPDATE_JOB', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const worker = await LineClient.login(server.port);
  await worker.request('SUBSCRIBE cmd-job-update', 'OK');
  const id = await publish(publisher, 'PUBLISH cmd-job-update t x');
  assert.is(parsePush(await worker.next()).ID, id);
  assert.is(await worker.request(`JOB UPDATE ${id} done`), 'OK');
  assert.is(errorCode(await worker.request(`job update ${id} done`)), 'Err: job-finished');
  assert.is(await worker.request('JOB UPDATE AAAAAAAAAAAAAAAA done'), 'Err: unknown-job');
  assert.is(await worker.request(`JOB DELETE ${id} done`), 'Err: unknown-command');
  assert.is(await worker.request(`JOB UPDATE ${id}`), 'Err: unknown-command');
  const jobs = await publisher.json<Job[]>('LIST_JOBS cmd-job-update');
  assert.equal(jobs.map((job) => [job.ID, job.State]), [[id, 'done']]);
  publisher.close();
  worker.close();
});

commands('older-form worker reports without USE_GROUP', async ({ server }) => {
  const publisher = await LineClient.login(server.port, 'user1', 'pass1', null);
  const worker = await LineClient.login(server.port, 'user1', 'pass1', null);
  assert.is(await worker.request('SUBSCRIBE group1 cmd-old-worker'), 'OK');
  const first = await publish(publisher, 'PUBLISH group1 cmd-old-worker t one');
  assert.is(parsePush(await worker.next()).ID, first);
  assert.is(await worker.request(`JOB UPDATE ${first} done`), 'OK');

  const second = await publish(publisher, 'PUBLISH group1 cmd-old-worker t two');
  assert.is(parsePush(await worker.next()).ID, second);
  assert.is(await worker.request(`UPDATE_JOB ${second} done`), 'OK');
  // A job this connection let go of lately is still found in its group.
  assert.is(errorCode(await worker.request(`UPDATE_JOB ${second} done`)), 'Err: job-finished');
  // A job this connection never held needs a selected group.
  assert.is(await worker.request('UPDATE_JOB AAAAAAAAAAAAAAAA done'), 'Err: group-non-selected');
  publisher.close();
  worker.close();
});

commands('large LIST_JOBS answers reply-too-large', async () => {
  const server = await startServer({ max_reply_bytes: 2048 });
  try {
    const client = await LineClient.login(server.port);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await publish(client, `PUBLISH cmd-big t '${String(i).padStart(100, '.')}'`));

    const reply = await client.request('LIST_JOBS cmd-big');
    assert.is(errorCode(reply), 'Err: reply-too-large');
    assert.ok(reply.includes('LIST_JOBS cmd-big <offset> <limit>'), `"${reply}" should name the paged form`);
    assert.is(errorCode(await client.request('LIST_QUEUES')), 'Err: reply-too-large');

    const listed: string[] = [];
    for (let offset = 0; offset < 20; offset += 5) {
      const page = await client.request(`LIST_JOBS cmd-big ${offset} 5`);
      assert.ok(Buffer.byteLength(page) <= 2048, `page at ${offset} has ${Buffer.byteLength(page)} bytes`);
      listed.push(...(JSON.parse(page) as Job[]).map((job) => job.ID));
    }
    assert.equal(listed, ids);
    assert.is(await client.request('PING'), 'PONG');
    client.close();
  } finally {
    assert.is(await server.stop(), 0);
  }
});

commands('test-mode commands off without test_mode', async () => {
  const server = await startServer({ test_mode: false, allow_dispatch: true }, { env: { TEST_MODE: '', ALLOW_DISPATCH: '' } });
  try {
    const client = await LineClient.connect(server.port);
    assert.is(await client.request('DEBUG'), 'Err: test-mode-disabled');
    assert.is(await client.request('DEBUG_JSON'), 'Err: test-mode-disabled');
    assert.is(await client.request('DEBUG_PARTS a b'), 'Err: test-mode-disabled');
    assert.is(await client.request('ADVANCE_CLOCK 10'), 'Err: test-mode-disabled');
    assert.is(await client.request('STOP_SERVER'), 'Err: forbidden');
    assert.is(await client.request('DISPATCH'), 'OK');
    assert.is(await client.request('PING'), 'PONG');
    client.close();
  } finally {
    assert.is(await server.stop(), 0);
  }
});

commands('STOP_SERVER exits with code 0', async () => {
  const server = await startServer();
  const client = await LineClient.connect(server.port);
  const other = await LineClient.login(server.port);
  client.write('STOP_SERVER\nPING\n');
  assert.is(await client.next(), 'OK');
  await client.waitClosed();
  await other.waitClosed();
  const code = await exitCodeWithin(server, 10_000);
  if (code !== 0) await server.stop();
  assert.is(code, 0);
});

commands.run();

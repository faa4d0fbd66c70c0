import * as assert from 'uvu/assert';
import { Job, LineClient, linesBeforePong, parsePush } from './helpers/client';
import { subscribe } from './helpers/jobs';
import { serverSuite } from './helpers/server';

/**
 * Sends PING and returns the jobs pushed before PONG. Every job pushed to the connection
 * before the server read the PING comes first, so this collects everything pushed so far.
 */
async function pushesBeforePong(client: LineClient): Promise<Job[]> {
  return (await linesBeforePong(client)).map(parsePush);
}

/** Declares a recurrent job and returns its entry number. */
async function declare(client: LineClient, queue: string, type: string, expression: string): Promise<number> {
  const reply = await client.request(`RECURRENT_JOB ${queue} ${type} '${expression}'`);
  assert.match(reply, /^OK#[1-9]\d*$/);
  return Number(reply.slice(3));
}

/** Checks that exactly one job of the type was pushed, and reports it done. */
async function finishOnePush(worker: LineClient, type: string): Promise<void> {
  const jobs = await pushesBeforePong(worker);
  assert.is(jobs.length, 1);
  assert.is(jobs[0].Type, type);
  assert.is(jobs[0].Payload, '');
  assert.is(jobs[0].State, 'in-progress');
  assert.is(await worker.request(`UPDATE_JOB ${jobs[0].ID} done`), 'OK');
}

const recurrent = serverSuite('recurrent jobs');

recurrent('same type answers the same entry number', async ({ server }) => {
  const queue = 'cron-declare';
  const client = await LineClient.login(server.port);
  const tick = await declare(client, queue, 'tick', '@every 1h');
  assert.is(await client.request(`LIST_RECURRENT_JOBS ${queue}`), `[{"EntryID":${tick},"Type":"tick","CronExpression":"@every 1h"}]`);

  assert.is(await declare(client, queue, 'tick', '@every 2h'), tick);
  const tock = await declare(client, queue, 'tock', '30 4 1 1 *');
  assert.is(tock, tick + 1);
  assert.is(
    await client.request(`LIST_RECURRENT_JOBS ${queue}`),
    `[{"EntryID":${tick},"Type":"tick","CronExpression":"@every 2h"},{"EntryID":${tock},"Type":"tock","CronExpression":"30 4 1 1 *"}]`,
  );
  const listed = await client.json<Array<{ EntryID: number; Type: string; CronExpression: string }>>(`LIST_RECURRENT_JOBS ${queue}`);
  assert.equal(listed, [
    { EntryID: tick, Type: 'tick', CronExpression: '@every 2h' },
    { EntryID: tock, Type: 'tock', CronExpression: '30 4 1 1 *' },
  ]);
  // Declaring alone publishes nothing unless delay_policy is IGNORE.
  assert.is(await client.request(`LIST_JOBS ${queue}`), '[]');

  assert.is(await client.request(`DELETE_RECURRENT_JOB ${tick}`), 'OK');
  assert.is(await client.request(`DELETE_RECURRENT_JOB ${tock}`), 'OK');
  client.close();
});

recurrent('DELETE_RECURRENT_JOB stops publishing', async ({ server }) => {
  const queue = 'cron-delete';
  const client = await LineClient.login(server.port);
  const worker = await subscribe(server.port, queue);
  const entry = await declare(client, queue, 'tick', '@every 2s');
  assert.is(await client.request('ADVANCE_CLOCK 2'), 'OK');
  await finishOnePush(worker, 'tick');

  assert.is(await client.request(`DELETE_RECURRENT_JOB ${entry}`), 'OK');
  assert.is(await client.request(`LIST_RECURRENT_JOBS ${queue}`), '[]');
  for (let step = 0; step < 5; step++) assert.is(await client.request('ADVANCE_CLOCK 2'), 'OK');
  assert.equal(await pushesBeforePong(worker), []);
  const jobs = await client.json<Job[]>(`LIST_JOBS ${queue}`);
  assert.equal(
    jobs.map((job) => [job.Type, job.State]),
    [['tick', 'done']],
  );
  assert.is(await client.request(`DELETE_RECURRENT_JOB ${entry}`), 'Err: unknown-recurrent-job');
  client.close();
  worker.close();
});

recurrent('@every 2s publishes once per period', async ({ server }) => {
  const queue = 'cron-every';
  const client = await LineClient.login(server.port);
  const worker = await subscribe(server.port, queue);
  const entry = await declare(client, queue, 'tick', '@every 2s');

  for (let period = 0; period < 3; period++) {
    assert.is(await client.request('ADVANCE_CLOCK 1'), 'OK');
    assert.equal(await pushesBeforePong(worker), []);
    assert.is(await client.request('ADVANCE_CLOCK 1'), 'OK');
    await finishOnePush(worker, 'tick');
  }

  // Declaring the type again applies the new period from now on.
  assert.is(await declare(client, queue, 'tick', '@every 4s'), entry);
  assert.is(await client.request('ADVANCE_CLOCK 2'), 'OK');
  assert.equal(await pushesBeforePong(worker), []);
  assert.is(await client.request('ADVANCE_CLOCK 2'), 'OK');
  await finishOnePush(worker, 'tick');

  assert.is(await client.request(`DELETE_RECURRENT_JOB ${entry}`), 'OK');
  client.close();
  worker.close();
});

recurrent('clock jump over many periods publishes once', async ({ server }) => {
  const queue = 'cron-jump';
  const client = await LineClient.login(server.port);
  const worker = await subscribe(server.port, queue);
  const entry = await declare(client, queue, 'tick', '@every 2s');
  assert.is(await client.request('ADVANCE_CLOCK 600'), 'OK');
  await finishOnePush(worker, 'tick');
  const jobs = await client.json<Job[]>(`LIST_JOBS ${queue}`);
  assert.is(jobs.length, 1);

  // The schedule goes on from the time of the jump.
  assert.is(await client.request('ADVANCE_CLOCK 2'), 'OK');
  await finishOnePush(worker, 'tick');
  assert.is(await client.request(`DELETE_RECURRENT_JOB ${entry}`), 'OK');
  client.close();
  worker.close();
});

recurrent('five-field expression fires within its period', async ({ server }) => {
  const queue = 'cron-fields';
  const client = await LineClient.login(server.port);
  const worker = await subscribe(server.port, queue);
  const entry = await declare(client, queue, 'every-five', '*/5 * * * *');
  // The next multiple of five minutes is at most 300 s away. The real clock reaches one
  // before the jump only when the test starts just before it; that run is finished here.
  for (const job of await pushesBeforePong(worker)) assert.is(await worker.request(`UPDATE_JOB ${job.ID} done`), 'OK');
  assert.is(await client.request('ADVANCE_CLOCK 300'), 'OK');
  await finishOnePush(worker, 'every-five');
  assert.is(await client.request('ADVANCE_CLOCK 300'), 'OK');
  await finishOnePush(worker, 'every-five');
  assert.is(await client.request(`DELETE_RECURRENT_JOB ${entry}`), 'OK');
  client.close();
  worker.close();
});

recurrent.run();

const ignoreDelays = serverSuite('recurrent jobs with delay_policy IGNORE', { delay_policy: 'IGNORE' });

ignoreDelays('new entry publishes one job at once', async ({ server }) => {
  const queue = 'cron-ignore';
  const client = await LineClient.login(server.port);
  const worker = await subscribe(server.port, queue);
  const tick = await declare(client, queue, 'tick', '@every 1h');
  await finishOnePush(worker, 'tick');

  // The same type again only updates the expression.
  assert.is(await declare(client, queue, 'tick', '@every 30m'), tick);
  assert.equal(await pushesBeforePong(worker), []);

  // Another type is another entry, so it publishes once too.
  const tock = await declare(client, queue, 'tock', '@yearly');
  assert.is.not(tock, tick);
  await finishOnePush(worker, 'tock');
  const jobs = await client.json<Job[]>(`LIST_JOBS ${queue}`);
  assert.equal(
    jobs.map((job) => [job.Type, job.Payload, job.State]),
    [
      ['tick', '', 'done'],
      ['tock', '', 'done'],
    ],
  );
  client.close();
  worker.close();
});

ignoreDelays.run();

import * as assert from 'uvu/assert';
import { LineClient, parsePush } from './helpers/client';
import { serverSuite } from './helpers/server';

const basics = serverSuite('basics');

basics('PING answers PONG without login', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request('PING'), 'PONG');
  client.close();
});

basics('publish, subscribe and finish a job', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const worker = await LineClient.login(server.port);
  const reply = await publisher.request('PUBLISH basics-q t {"a":1}');
  assert.match(reply, /^OK#[A-Za-z0-9]{16}$/);
  const id = reply.slice(3);
  assert.is(await worker.request('SUBSCRIBE basics-q'), 'OK');
  const job = parsePush(await worker.next());
  assert.is(job.ID, id);
  assert.is(job.State, 'in-progress');
  assert.is(job.Payload, '{"a":1}');
  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'OK');
  const jobs = await publisher.json<Array<{ ID: string; State: string }>>('LIST_JOBS basics-q');
  assert.equal(jobs.map((j) => [j.ID, j.State]), [[id, 'done']]);
  publisher.close();
  worker.close();
});

basics.run();

import * as assert from 'uvu/assert';
import { LineClient, parsePush } from './helpers/client';
import { serverSuite } from './helpers/server';

const prefetch = serverSuite('prefetch across shards', {
  shards: 2,
  groups: [{ slug: 'group1', shard: 0 }, { slug: 'group2', shard: 1 }, { slug: 'group3', shard: 1 }],
});

prefetch('worker on two shards holds one job', async ({ server }) => {
  const worker = await LineClient.login(server.port, 'admin', 'adminpass', null);
  const first = await LineClient.login(server.port, 'admin', 'adminpass', 'group1');
  const second = await LineClient.login(server.port, 'admin', 'adminpass', 'group2');
  const idOne = (await first.request('PUBLISH pf-q t one')).slice(3);
  const idTwo = (await second.request('PUBLISH pf-q t two')).slice(3);

  assert.is(await worker.request('SUBSCRIBE group1 pf-q'), 'OK');
  const pushed = parsePush(await worker.next());
  assert.is(pushed.ID, idOne);
  assert.is(await worker.request('SUBSCRIBE group2 pf-q'), 'OK');
  // The second shard offers its job too; with prefetch 1 it must wait for the first report.
  assert.is(await worker.request('PING'), 'PONG');
  const pending = await second.json<Array<{ ID: string; State: string; Attempts: number }>>('LIST_JOBS pf-q');
  assert.equal(pending, [{ ...pending[0], ID: idTwo, State: 'pending', Attempts: 0 }]);

  assert.is(await worker.request(`UPDATE_JOB ${idOne} done`), 'OK');
  const next = parsePush(await worker.next());
  assert.is(next.ID, idTwo);
  assert.is(next.Attempts, 0);
  assert.is(await worker.request(`UPDATE_JOB ${idTwo} done`), 'OK');
  worker.close();
  first.close();
  second.close();
});

prefetch.run();

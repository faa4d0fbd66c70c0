import * as assert from 'uvu/assert';
import { LineClient, waitFor } from './helpers/client';
import { serverSuite } from './helpers/server';

const limits = serverSuite('output and input limits', {
  max_output_bytes: 65536,
  max_input_buffer_bytes: 1024 * 1024,
  shards: 1,
});

limits('server stops running commands of a client that never reads', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const payload = 'x'.repeat(1024);
  for (let index = 0; index < 10; index++) publisher.send(`PUBLISH bp-big t ${payload}`);
  for (let index = 0; index < 10; index++) assert.match(await publisher.next(), /^OK#/);
  const listing = await publisher.request('LIST_JOBS bp-big');

  // Each pair is a 12 KB listing and a publish to a counting queue. The client reads
  // nothing, so once about max_output_bytes plus the socket buffers are unsent, the
  // server must stop running its commands. Without limits it would run all of them.
  const reader = await LineClient.login(server.port);
  reader.socket.pause();
  const pairs = 3000;
  reader.write('LIST_JOBS bp-big\nPUBLISH bp-count t x\n'.repeat(pairs));

  const countJobs = async (): Promise<number> => {
    const reply = await publisher.request('LIST_JOBS bp-count');
    return reply === 'Err: unknown-queue' ? 0 : (JSON.parse(reply) as unknown[]).length;
  };
  let stableRounds = 0;
  let last = -1;
  await waitFor(async () => {
    const count = await countJobs();
    stableRounds = count === last && count > 0 ? stableRounds + 1 : 0;
    last = count;
    return stableRounds >= 5;
  }, 10000, 'the count of commands run to settle');
  assert.ok(last < pairs / 2, `the server ran ${last} of ${pairs} publishes for a client that reads nothing`);

  let received = 0;
  reader.socket.resume();
  await waitFor(() => {
    while (reader.lines.length > 0) {
      const line = reader.lines.shift() as string;
      assert.is(line, received % 2 === 0 ? listing : line);
      if (received % 2 === 1) assert.match(line, /^OK#/);
      received++;
    }
    return received === pairs * 2;
  }, 30000, 'every reply');
  assert.is(await countJobs(), pairs);
  reader.close();
  publisher.close();
});

limits('partial requests share one input budget', async ({ server }) => {
  const first = await LineClient.connect(server.port);
  const second = await LineClient.connect(server.port);
  first.write(`PUBLISH bp-q t '${'a'.repeat(600 * 1024)}`);
  // The first partial request fits in the budget: no reply, the connection stays open.
  assert.is(await first.next(200).catch(() => 'no reply'), 'no reply');
  second.write(`PUBLISH bp-q t '${'b'.repeat(600 * 1024)}`);
  const reply = await second.next();
  assert.match(reply, /^Err: server-busy;/);
  await second.waitClosed();

  first.write("'\n");
  assert.is(await first.next(), 'Err: not-logged');
  const probe = await LineClient.connect(server.port);
  assert.is(await probe.request('PING'), 'PONG');
  probe.close();
  first.close();
});

limits('failing shard request answers internal-error', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const reply = await client.request('DEBUG shard-error');
  assert.match(reply, /^Err: internal-error;/);
  assert.match(await client.request('PUBLISH bp-after t x'), /^OK#/);
  assert.ok(
    server.logs.some((line) => line.includes('request failed inside the shard')),
    'the failure is logged',
  );
  client.close();
});

limits.run();

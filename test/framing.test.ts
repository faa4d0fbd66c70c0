import * as assert from 'uvu/assert';
import { Job, LineClient, parsePush } from './helpers/client';
import { serverSuite, startServer } from './helpers/server';

/** How long a negative check waits before it asserts that no reply came. */
const SILENCE_MS = 400;
const MIB = 1024 * 1024;

const framing = serverSuite('framing');

/** Waits `milliseconds`, so that consecutive writes reach the server as separate TCP segments. */
function pause(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/** Writes `data` in pieces of `size` bytes, 1 ms apart and with Nagle's algorithm off. */
async function writeInPieces(client: LineClient, data: Buffer, size: number): Promise<void> {
  client.socket.setNoDelay(true);
  for (let offset = 0; offset < data.length; offset += size) {
    client.write(data.subarray(offset, offset + size));
    await pause(1);
  }
}

/** Waits a bounded time and checks that the server sent nothing meanwhile. */
async function assertSilent(client: LineClient, what: string): Promise<void> {
  await pause(SILENCE_MS);
  assert.equal(client.lines, [], `${what}: expected no reply within ${SILENCE_MS} ms`);
}

/** Builds a Redis-style multibulk request: `*N`, then `$len` and the bytes of each argument. */
function multibulk(args: string[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(arg, 'utf8');
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

framing('command sent one byte at a time', async ({ server }) => {
  const client = await LineClient.login(server.port);
  await writeInPieces(client, Buffer.from(`PUBLISH fr-bytes t '{"k": "v w"}'\n`), 1);

  const reply = await client.next();
  assert.match(reply, /^OK#[A-Za-z0-9]{16}$/);

  const jobs = await client.json<Job[]>('LIST_JOBS fr-bytes');
  assert.equal(jobs.map((job) => [job.ID, job.Payload]), [[reply.slice(3), '{"k": "v w"}']]);
  client.close();
});

framing('1,000 pipelined commands answer in order', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const requests: string[] = [];
  for (let i = 0; i < 1000; i++) {
    if (i % 3 === 0) requests.push(`PUBLISH fr-pipe t p${i}`);
    else if (i % 3 === 1) requests.push(`DEBUG_PARTS n${i}`);
    else requests.push('PING');
  }
  client.write(requests.map((line) => `${line}\n`).join(''));

  const ids: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const reply = await client.next();
    if (i % 3 === 0) {
      assert.match(reply, /^OK#[A-Za-z0-9]{16}$/, `reply ${i}`);
      ids.push(reply.slice(3));
    } else if (i % 3 === 1) {
      assert.is(reply, `["DEBUG_PARTS","n${i}"]`, `reply ${i}`);
    } else {
      assert.is(reply, 'PONG', `reply ${i}`);
    }
  }

  const jobs = await client.json<Job[]>('LIST_JOBS fr-pipe');
  assert.equal(jobs.map((job) => job.ID), ids);
  assert.equal(
    jobs.map((job) => job.Payload),
    ids.map((_, k) => `p${k * 3}`),
  );
  client.close();
});

framing('CRLF requests get LF-only replies', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  const raw: Buffer[] = [];
  client.socket.on('data', (chunk: Buffer) => raw.push(chunk));
  client.write('AUTH user1 pass1\r\nUSE_GROUP group1\r\nPING\r\nDEBUG_PARTS a b\r\nPUBLISH fr-crlf t x\r\n');

  assert.is(await client.next(), 'Welcome!');
  assert.is(await client.next(), 'OK');
  assert.is(await client.next(), 'PONG');
  assert.is(await client.next(), '["DEBUG_PARTS","a","b"]');
  const published = await client.next();
  assert.match(published, /^OK#[A-Za-z0-9]{16}$/);
  client.write('LIST_JOBS fr-crlf\r\n');
  const jobs = JSON.parse(await client.next()) as Job[];
  assert.equal(jobs.map((job) => job.Payload), ['x']);

  const bytes = Buffer.concat(raw);
  assert.is(bytes.indexOf(0x0d), -1, 'replies must not contain \\r');
  assert.is(bytes[bytes.length - 1], 0x0a);
  client.close();
});

framing('quoted arguments keep inner spaces', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request(`DEBUG_PARTS x 'a b' '{"k": "v w"}' y`), '["DEBUG_PARTS","x","a b","{\\"k\\": \\"v w\\"}","y"]');
  assert.equal(JSON.parse(await client.request("DEBUG_PARTS a '😀 b' c")), ['DEBUG_PARTS', 'a', '😀 b', 'c']);
  assert.equal(JSON.parse(await client.request("DEBUG_PARTS 'it's fine' z")), ['DEBUG_PARTS', "it's fine", 'z']);
  client.close();
});

framing('multibulk payload kept exactly', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const payload = 'line one\nline "two" with \'quotes\'\r\n  spaced  é 😀';
  client.write(multibulk(['PUBLISH', 'fr-bulk', 't', payload]));
  const reply = await client.next();
  assert.match(reply, /^OK#[A-Za-z0-9]{16}$/);

  client.write(multibulk(['LIST_JOBS', 'fr-bulk']));
  const jobs = JSON.parse(await client.next()) as Job[];
  assert.equal(jobs.map((job) => [job.ID, job.Type, job.Payload]), [[reply.slice(3), 't', payload]]);
  client.close();
});

framing('multibulk split over many writes', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const payload = 'split\nacross "segments" ' + 'z'.repeat(40);
  const request = Buffer.concat([multibulk(['PUBLISH', 'fr-bulk-split', 't', payload]), multibulk(['PING'])]);
  await writeInPieces(client, request, 3);

  const reply = await client.next();
  assert.match(reply, /^OK#[A-Za-z0-9]{16}$/);
  assert.is(await client.next(), 'PONG');
  const jobs = await client.json<Job[]>('LIST_JOBS fr-bulk-split');
  assert.equal(jobs.map((job) => job.Payload), [payload]);
  client.close();
});

framing('1 MiB payload pushed to a subscriber', async ({ server }) => {
  const publisher = await LineClient.login(server.port);
  const worker = await LineClient.login(server.port);
  const payload = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(MIB / 36)).slice(0, MIB);

  const reply = await publisher.request(`PUBLISH fr-big t '${payload}'`);
  assert.match(reply, /^OK#[A-Za-z0-9]{16}$/);
  assert.is(await worker.request('SUBSCRIBE fr-big'), 'OK');

  const job = parsePush(await worker.next());
  assert.is(job.ID, reply.slice(3));
  assert.is(job.Payload.length, MIB);
  assert.ok(job.Payload === payload, 'pushed payload differs from the published one');
  assert.is(await worker.request(`UPDATE_JOB ${job.ID} done`), 'OK');
  publisher.close();
  worker.close();
});

framing('login and publish in one write', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  client.write("AUTH user1 pass1\nUSE_GROUP group1\nPING\nPUBLISH fr-one-write t 'a b'\n");

  assert.is(await client.next(), 'Welcome!');
  assert.is(await client.next(), 'OK');
  assert.is(await client.next(), 'PONG');
  const reply = await client.next();
  assert.match(reply, /^OK#[A-Za-z0-9]{16}$/);
  const jobs = await client.json<Job[]>('LIST_JOBS fr-one-write');
  assert.equal(jobs.map((job) => [job.ID, job.Payload]), [[reply.slice(3), 'a b']]);
  client.close();
});

framing('Go CLI requests without newline run when idle', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  client.write('AUTH user1 pass1 ');
  assert.is(await client.next(2000), 'Welcome!');
  client.write('USE_GROUP group1 ');
  assert.is(await client.next(2000), 'OK');
  client.write("PUBLISH fr-cli t 'x y' ");
  const reply = await client.next(2000);
  assert.match(reply, /^OK#[A-Za-z0-9]{16}$/);
  client.write('LIST_JOBS fr-cli ');
  const jobs = JSON.parse(await client.next(2000)) as Job[];
  assert.equal(jobs.map((job) => [job.ID, job.Payload]), [[reply.slice(3), 'x y']]);
  client.close();
});

framing('idle rule off after a newline was sent', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request('PING'), 'PONG');
  client.write('AUTH user1 pass1 ');
  await assertSilent(client, 'partial line after a newline');
  client.write('\n');
  assert.is(await client.next(), 'Welcome!');
  client.close();
});

framing('idle rule off while a quote is open', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  client.write("DEBUG_PARTS 'a b ");
  await assertSilent(client, 'partial line with an open quote');
  client.write("c'\n");
  assert.is(await client.next(), '["DEBUG_PARTS","a b c"]');
  client.close();
});

framing('idle rule needs a trailing space', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  client.write('PING');
  await assertSilent(client, 'partial line without a trailing space');
  client.write('\n');
  assert.is(await client.next(), 'PONG');
  client.close();
});

framing('cli_idle_ms 0 turns the idle rule off', async () => {
  const server = await startServer({ cli_idle_ms: 0 });
  try {
    const client = await LineClient.connect(server.port);
    client.write('AUTH user1 pass1 ');
    await assertSilent(client, 'partial line with cli_idle_ms 0');
    client.write('\n');
    assert.is(await client.next(), 'Welcome!');
    client.close();
  } finally {
    assert.is(await server.stop(), 0);
  }
});

framing('parse error waits for earlier replies', async ({ server }) => {
  const client = await LineClient.login(server.port);
  assert.match(await client.request('PUBLISH order-a t x'), /^OK#/);
  // Later requests wait for the reply to LIST_JOBS, so PING is still in the inbox when
  // the invalid line is read.
  client.write(Buffer.concat([Buffer.from('LIST_JOBS order-a\nPING\n'), Buffer.from([0xff, 0x0a]), Buffer.from('PING\n')]));
  const listing = await client.next();
  assert.ok(listing.startsWith('['), listing);
  assert.is(await client.next(), 'PONG');
  assert.match(await client.next(), /^Err: invalid-utf8;/);
  assert.is(await client.next(), 'PONG');
  client.close();
});

framing('blank line keeps its place in a long pipeline', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const count = 300;
  client.write(`${Array.from({ length: count }, (_, n) => `PUBLISH order-b t ${n}\n`).join('')}\nPING\n`);
  for (let index = 0; index < count; index++) assert.match(await client.next(), /^OK#/);
  assert.is(await client.next(), 'Err: unknown-command');
  assert.is(await client.next(), 'PONG');
  client.close();
});

for (const [name, tail] of [
  ['a blank line', Buffer.from('\nPING\n')],
  ['invalid UTF-8 and an open quote', Buffer.concat([Buffer.from([0xff, 0x0a]), Buffer.from("X 'open\n")])],
  ['a bad multibulk header', Buffer.from('*x\n')],
] as const) {
  framing(`nothing after QUIT is answered: ${name}`, async ({ server }) => {
    const client = await LineClient.connect(server.port);
    client.write(Buffer.concat([Buffer.from('PING\nQUIT\n'), tail]));
    await client.waitClosed();
    assert.equal(client.lines, ['PONG', '']);
  });
}

framing.run();

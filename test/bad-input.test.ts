import * as assert from 'uvu/assert';
import { errorCode, LineClient, parsePush, waitFor } from './helpers/client';
import { cpuTicks } from './helpers/process';
import { serverSuite, startServer } from './helpers/server';

/** A small line limit keeps the over-long input tests fast. */
const MAX_LINE_BYTES = 65536;
const MIB = 1024 * 1024;
const PASSWORDS = ['pass1', 'pass2', 'adminpass', 'wrongpass'];

const badInput = serverSuite('bad input', { max_line_bytes: MAX_LINE_BYTES });

async function sessionCount(client: LineClient): Promise<number> {
  const health = await client.json<{ NumSessions: number }>('HEALTH');
  return health.NumSessions;
}

badInput('out-of-range numbers get one error each', async ({ server }) => {
  const client = await LineClient.login(server.port);
  assert.match(await client.request('PUBLISH br-numbers t existing'), /^OK#/);
  const cases: Array<[string, string]> = [
    ['DELETE_RECURRENT_JOB 3000000000', 'Err: unknown-recurrent-job'],
    ['DELETE_RECURRENT_JOB -1', 'Err: unknown-recurrent-job'],
    ['DELETE_RECURRENT_JOB 1e3', 'Err: unknown-recurrent-job'],
    ['DELETE_RECURRENT_JOB 99999999999999999999999', 'Err: unknown-recurrent-job'],
    ['DELETE_RECURRENT_JOB 0', 'Err: unknown-recurrent-job'],
    ["RECURRENT_JOB br-numbers t '@every 99999999999h'", 'Err: invalid-cron'],
    ["RECURRENT_JOB br-numbers t '@every -5s'", 'Err: invalid-cron'],
    ["RECURRENT_JOB br-numbers t '@every 0s'", 'Err: invalid-cron'],
    ["RECURRENT_JOB br-numbers t '@every NaNs'", 'Err: invalid-cron'],
    ["RECURRENT_JOB br-numbers t '61 25 32 13 8'", 'Err: invalid-cron'],
    ["RECURRENT_JOB br-numbers t '0 0 0 * * *'", 'Err: invalid-cron'],
    ["RECURRENT_JOB br-numbers t '* * * *'", 'Err: invalid-cron'],
  ];
  // The lines go in one write, so an extra reply line would shift every later one.
  client.write(cases.map(([line]) => `${line}\n`).join('') + 'PING\n');
  for (const [line, code] of cases) {
    const reply = await client.next();
    assert.is(errorCode(reply), code, line);
    if (code === 'Err: invalid-cron') {
      assert.ok(reply.length > 'Err: invalid-cron;'.length, `"${reply}" should say what is wrong`);
    }
  }
  assert.is(await client.next(), 'PONG');
  assert.is(await client.request('LIST_RECURRENT_JOBS br-numbers'), '[]');

  // Nothing was scheduled, so moving the clock creates no job and leaves the server idle.
  assert.is(await client.request('ADVANCE_CLOCK 86400'), 'OK');
  const jobs = await client.json<Array<{ Payload: string }>>('LIST_JOBS br-numbers');
  assert.equal(jobs.map((job) => job.Payload), ['existing']);
  const before = cpuTicks(server.pid);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const used = cpuTicks(server.pid) - before;
  assert.ok(used < 25, `server used ${used} clock ticks of CPU in 500 ms while idle`);
  client.close();
});

badInput('cron messages name the bad field', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const hours = await client.request("RECURRENT_JOB br-cron t '0 25 * * *'");
  assert.is(errorCode(hours), 'Err: invalid-cron');
  assert.match(hours.toLowerCase(), /hour/);
  const fields = await client.request("RECURRENT_JOB br-cron t '0 0 0 * * *'");
  assert.match(fields, /5 fields/);
  const every = await client.request("RECURRENT_JOB br-cron t '@every -5s'");
  assert.match(every, /-5s/);
  client.close();
});

badInput('ADVANCE_CLOCK rejects invalid seconds', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  for (const value of ['NaN', 'Infinity', '-Infinity', '-1', '9007199254740993', '1e3', '0x10', 'abc']) {
    const reply = await client.request(`ADVANCE_CLOCK ${value}`);
    assert.is(errorCode(reply), 'Err: invalid-argument', value);
    assert.ok(reply.includes(value), `"${reply}" should name the value`);
  }
  assert.is(await client.request('ADVANCE_CLOCK 0'), 'OK');
  assert.is(await client.request('PING'), 'PONG');
  client.close();
});

badInput('over-long line closes the connection', async ({ server }) => {
  const watcher = await LineClient.login(server.port);
  await watcher.request('SUBSCRIBE br-long', 'OK');
  const client = await LineClient.login(server.port);
  client.write(`PUBLISH br-long t '${'a'.repeat(MIB)}'\n`);

  assert.is(await client.next(), `Err: line-too-long;request exceeds max_line_bytes (${MAX_LINE_BYTES} bytes)`);
  await client.waitClosed();
  assert.equal(client.lines, []);
  assert.is(await watcher.request('PING'), 'PONG');
  assert.is(await watcher.request('LIST_JOBS br-long'), '[]');
  assert.equal(watcher.lines, []);
  watcher.close();
});

badInput('line limit holds at the exact size', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const prefix = "PUBLISH br-limit t '";
  const fits = prefix + 'b'.repeat(MAX_LINE_BYTES - prefix.length - 1) + "'";
  assert.is(Buffer.byteLength(fits), MAX_LINE_BYTES);
  client.write(`${fits}\n`);
  assert.match(await client.next(), /^OK#[A-Za-z0-9]{16}$/);

  // One byte more, sent in one write with its newline.
  client.write(`${prefix}${'c'.repeat(MAX_LINE_BYTES - prefix.length)}'\n`);
  assert.is(errorCode(await client.next()), 'Err: line-too-long');
  await client.waitClosed();

  const checker = await LineClient.login(server.port);
  const jobs = await checker.json<Array<{ Payload: string }>>('LIST_JOBS br-limit');
  assert.equal(jobs.map((job) => job.Payload.length), [MAX_LINE_BYTES - prefix.length - 1]);
  checker.close();
});

badInput('over-long multibulk argument closes the connection', async ({ server }) => {
  const client = await LineClient.login(server.port);
  client.write(`*4\r\n$7\r\nPUBLISH\r\n$9\r\nbr-bulk-a\r\n$1\r\nt\r\n$${MIB}\r\n`);
  assert.is(await client.next(), `Err: line-too-long;request exceeds max_line_bytes (${MAX_LINE_BYTES} bytes)`);
  await client.waitClosed();

  const checker = await LineClient.login(server.port);
  assert.is(await checker.request('LIST_JOBS br-bulk-a'), 'Err: unknown-queue');
  checker.close();
});

badInput('10 MiB without newline then close', async ({ server }) => {
  const watcher = await LineClient.login(server.port, 'user1', 'pass1', null);
  const sessions = await sessionCount(watcher);
  const client = await LineClient.connect(server.port);
  client.socket.end(Buffer.alloc(10 * MIB, 'x'));

  await client.waitClosed(10_000);
  assert.is(await watcher.request('PING'), 'PONG');
  await waitFor(async () => (await sessionCount(watcher)) === sessions, 5000, 'session count back to its value before');
  const fresh = await LineClient.connect(server.port);
  assert.is(await fresh.request('PING'), 'PONG');
  fresh.close();
  watcher.close();
});

badInput('invalid UTF-8 payload is rejected', async ({ server }) => {
  const worker = await LineClient.login(server.port);
  await worker.request('SUBSCRIBE br-utf8', 'OK');
  const raw: Buffer[] = [];
  worker.socket.on('data', (chunk: Buffer) => raw.push(chunk));
  const client = await LineClient.login(server.port);

  client.write(Buffer.concat([Buffer.from("PUBLISH br-utf8 t '"), Buffer.from([0xc3, 0x28]), Buffer.from("'\n")]));
  const reply = await client.next();
  assert.is(errorCode(reply), 'Err: invalid-utf8');
  assert.match(reply, /UTF-8/);

  const bulk = Buffer.concat([
    Buffer.from('*4\r\n$7\r\nPUBLISH\r\n$7\r\nbr-utf8\r\n$1\r\nt\r\n$3\r\n'),
    Buffer.from([0x61, 0xc3, 0x28]),
    Buffer.from('\r\n'),
  ]);
  client.write(bulk);
  assert.is(errorCode(await client.next()), 'Err: invalid-utf8');

  const payload = '{"m":"😀 é 中"}';
  const published = await client.request(`PUBLISH br-utf8 t '${payload}'`);
  assert.match(published, /^OK#[A-Za-z0-9]{16}$/);
  const job = parsePush(await worker.next());
  assert.is(job.ID, published.slice(3));
  assert.is(job.Payload, payload);
  // The pushed line carries the UTF-8 bytes themselves, not escapes or replacements.
  assert.ok(Buffer.concat(raw).includes(Buffer.from(JSON.stringify(payload), 'utf8')), 'pushed bytes differ');

  const listed = Buffer.from(await client.request('LIST_JOBS br-utf8'), 'utf8');
  const jobs = JSON.parse(listed.toString('utf8')) as Array<{ ID: string; Payload: string }>;
  assert.equal(jobs.map((entry) => entry.ID), [job.ID]);
  assert.ok(Buffer.from(jobs[0].Payload, 'utf8').equals(Buffer.from(payload, 'utf8')), 'listed payload bytes differ');
  assert.is(await client.request('PING'), 'PONG');
  client.close();
  worker.close();
});

badInput('binary garbage gets an error', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  const garbage = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x01, 0x9f, 0xc0, 0xc1, 0xf5, 0x20, 0xbf, 0x0a]);
  client.write(garbage);
  assert.is(errorCode(await client.next()), 'Err: invalid-utf8');
  client.write('\x00\x01\x02 \x7f\n');
  assert.is(await client.next(), 'Err: unknown-command');
  client.write('$5\r\nhello\r\n');
  assert.is(await client.next(), 'Err: unknown-command');
  assert.is(await client.next(), 'Err: unknown-command');
  assert.is(await client.request('PING'), 'PONG');

  // A bad multibulk header leaves no way to find the next request, so the connection ends.
  client.write('*2\r\nPING\r\n');
  assert.is(errorCode(await client.next()), 'Err: invalid-syntax');
  await client.waitClosed();
  const other = await LineClient.connect(server.port);
  other.write('*x\r\n');
  assert.is(errorCode(await other.next()), 'Err: invalid-syntax');
  await other.waitClosed();
});

badInput('random bytes leave the server serving', async ({ server }) => {
  // A fixed-seed generator keeps the bytes, and so the expected outcome, the same each run.
  let seed = 0x2545f491;
  const random = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const bytes = Buffer.alloc(64 * 1024);
  for (let i = 0; i < bytes.length; i++) bytes[i] = random() & 0xff;

  const client = await LineClient.connect(server.port);
  client.write(Buffer.concat([bytes, Buffer.from('\nPING\n')]));
  let last = '';
  while (!client.closed || client.lines.length > 0) {
    last = await client.next().catch(() => 'closed');
    if (last === 'PONG' || last === 'closed') break;
    assert.match(last, /^Err: /);
  }
  if (last !== 'PONG') assert.ok(client.closed, `expected PONG or a closed connection, got "${last}"`);

  const other = await LineClient.connect(server.port);
  assert.is(await other.request('PING'), 'PONG');
  client.close();
  other.close();
});

badInput('unbalanced quotes get invalid-syntax', async ({ server }) => {
  const client = await LineClient.login(server.port);
  const publish = await client.request("PUBLISH br-quote t 'abc");
  assert.is(errorCode(publish), 'Err: invalid-syntax');
  assert.ok(publish.length > 'Err: invalid-syntax;'.length, `"${publish}" should say what is wrong`);
  assert.is(errorCode(await client.request("DEBUG_PARTS 'a b")), 'Err: invalid-syntax');
  assert.is(errorCode(await client.request("DEBUG_PARTS a 'b'c")), 'Err: invalid-syntax');
  assert.is(await client.request('PING'), 'PONG');
  assert.is(await client.request('LIST_JOBS br-quote'), 'Err: unknown-queue');
  client.close();
});

badInput('no password in replies or logs', async () => {
  const server = await startServer({ log_level: 'trace' });
  const replies: string[] = [];
  try {
    const client = await LineClient.connect(server.port);
    const worker = await LineClient.login(server.port, 'user2', 'pass2', 'group2');
    await worker.request('SUBSCRIBE br-secret', 'OK');
    const lines = [
      'AUTH user1 wrongpass',
      'AUTH user1 pass1',
      'AUTH admin adminpass',
      'USE_GROUP group2',
      'PUBLISH br-secret t x',
      "AUTH user1 'pass1",
      'CURRENT_SESSION',
      'LIST_SESSIONS',
      'LIST_QUEUES',
      'HEALTH',
      'DEBUG',
      'DEBUG_JSON',
    ];
    for (const line of lines) replies.push(await client.request(line));
    assert.is(replies[0], 'Err: invalid-creds');
    assert.is(replies[1], 'Welcome!');
    replies.push(await worker.next());

    const response = await fetch(`http://127.0.0.1:${server.webPort}/gateway`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        commands: ['AUTH user1 wrongpass', 'AUTH user1 pass1', 'USE_GROUP group1', 'CURRENT_SESSION', 'LIST_SESSIONS', 'DEBUG_JSON'],
      }),
    });
    replies.push(await response.text());
    assert.is(response.status, 400);
    client.close();
    worker.close();
  } finally {
    assert.is(await server.stop(), 0);
  }
  // The exit can come before the last output lines are read from the pipes.
  await Promise.all(
    [server.process.stdout, server.process.stderr].map(
      (stream) => new Promise<void>((resolve) => (stream === null || stream.readableEnded ? resolve() : stream.once('end', () => resolve()))),
    ),
  );

  const logs = server.logs.join('\n');
  assert.ok(server.logs.some((line) => line.includes('"level":20')), 'expected debug lines in the log');
  assert.ok(logs.includes('login failed'), 'expected the failed login in the log');
  for (const password of PASSWORDS) {
    assert.not.ok(replies.some((reply) => reply.includes(password)), `a reply contains "${password}"`);
    assert.not.ok(logs.includes(password), `the log contains "${password}"`);
  }
});

badInput.run();

import net from 'node:net';
import * as assert from 'uvu/assert';
import { LineClient, Wakeups } from './helpers/client';
import { serverSuite } from './helpers/server';

/** Jobs in the heavy queue before the flood starts: each LIST_JOBS renders all of them. */
const PREFILLED_JOBS = 2000;
/** Connections that flood the heavy group at once. */
const FLOOD_CONNECTIONS = 4;
/** Requests each flooding connection sends in one write. */
const FLOOD_REQUESTS = 1000;
/** Every LIST_EVERY-th flood request is a LIST_JOBS of the big queue, and the others are PUBLISH. */
const LIST_EVERY = 10;
/** Round trips of each kind the light group makes during the flood. */
const LIGHT_ROUND_TRIPS = 40;
/** Generous bound on the light group's median round trip, in milliseconds. */
const MEDIAN_BOUND_MS = 50;
/** Bound on every single light round trip: far below the seconds the flood keeps the heavy shard busy. */
const MAX_BOUND_MS = 1000;
const REPLY_TIMEOUT_MS = 5000;
const PREFILL_TIMEOUT_MS = 60000;

const PAYLOAD = JSON.stringify({ report: 'monthly', rows: 'x'.repeat(80) });

/**
 * A TCP client that only counts reply lines, so that megabytes of LIST_JOBS replies cost
 * the test process little. Lines are counted by their `\n` bytes.
 */
class CountingClient {
  received = 0;
  private readonly wakeups = new Wakeups();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      let index = chunk.indexOf(10);
      while (index !== -1) {
        this.received++;
        index = chunk.indexOf(10, index + 1);
      }
      this.wakeups.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<CountingClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(new CountingClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Resolves once `count` lines arrived in all, or rejects after the timeout. */
  async waitForLines(count: number, timeoutMs: number): Promise<void> {
    await this.wakeups.waitUntil(
      () => this.received >= count,
      timeoutMs,
      () => `${this.received} of ${count} lines within ${timeoutMs} ms`,
    );
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Sends one request and returns its reply and round-trip time in milliseconds. */
async function timedRequest(client: LineClient, line: string): Promise<{ reply: string; ms: number }> {
  const started = process.hrtime.bigint();
  const reply = await client.request(line, undefined, REPLY_TIMEOUT_MS);
  return { reply, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

const isolation = serverSuite('shard isolation', {
  shards: 2,
  groups: [
    { slug: 'heavy', shard: 0 },
    { slug: 'light', shard: 1 },
  ],
  users: [
    { username: 'heavyuser', password: 'heavypass', groups: ['heavy'] },
    { username: 'lightuser', password: 'lightpass', groups: ['light'] },
  ],
});

isolation('light group stays fast under heavy flood', async ({ server }) => {
  const prefill = await CountingClient.connect(server.port);
  const prefillRequests = ['AUTH heavyuser heavypass', 'USE_GROUP heavy'];
  for (let index = 0; index < PREFILLED_JOBS; index++) prefillRequests.push(`PUBLISH big report ${PAYLOAD}`);
  prefill.socket.write(prefillRequests.join('\n') + '\n');
  await prefill.waitForLines(PREFILLED_JOBS + 2, PREFILL_TIMEOUT_MS);
  prefill.destroy();

  const light = await LineClient.login(server.port, 'lightuser', 'lightpass', 'light');
  const flooders: CountingClient[] = [];
  for (let index = 0; index < FLOOD_CONNECTIONS; index++) flooders.push(await CountingClient.connect(server.port));
  try {
    const requests = ['AUTH heavyuser heavypass', 'USE_GROUP heavy'];
    for (let index = 0; index < FLOOD_REQUESTS; index++) {
      requests.push(index % LIST_EVERY === 0 ? 'LIST_JOBS big' : `PUBLISH big report ${PAYLOAD}`);
    }
    const flood = requests.join('\n') + '\n';
    for (const flooder of flooders) flooder.socket.write(flood);
    // Once every flooder is logged in, the server is reading its requests into the heavy
    // shard's batches. The checks on outstanding replies below show that the flood lasted
    // through the whole measurement.
    await Promise.all(flooders.map((flooder) => flooder.waitForLines(2, REPLY_TIMEOUT_MS)));

    const pings: number[] = [];
    const publishes: number[] = [];
    for (let index = 0; index < LIGHT_ROUND_TRIPS; index++) {
      const ping = await timedRequest(light, 'PING');
      assert.is(ping.reply, 'PONG');
      pings.push(ping.ms);
      const publish = await timedRequest(light, `PUBLISH light-q report ${PAYLOAD}`);
      assert.match(publish.reply, /^OK#[A-Za-z0-9]{16}$/);
      publishes.push(publish.ms);
    }
    const heavyReceived = flooders.reduce((sum, flooder) => sum + flooder.received, 0);
    const heavyExpected = FLOOD_CONNECTIONS * requests.length;

    const summary =
      `PING median ${median(pings).toFixed(1)} ms, max ${Math.max(...pings).toFixed(1)} ms; ` +
      `PUBLISH median ${median(publishes).toFixed(1)} ms, max ${Math.max(...publishes).toFixed(1)} ms; ` +
      `heavy replies ${heavyReceived} of ${heavyExpected}`;
    assert.ok(heavyReceived < heavyExpected, `the heavy group still owed replies when the light group finished: ${summary}`);
    assert.ok(median(pings) < MEDIAN_BOUND_MS, `PING during the flood: ${summary}`);
    assert.ok(median(publishes) < MEDIAN_BOUND_MS, `PUBLISH during the flood: ${summary}`);
    assert.ok(Math.max(...pings, ...publishes) < MAX_BOUND_MS, `slowest light round trip: ${summary}`);
  } finally {
    light.close();
    for (const flooder of flooders) flooder.destroy();
  }
});

isolation.run();

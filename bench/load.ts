/**
 * Load generator: publishers send jobs with a window of requests in flight, workers finish
 * every pushed job, and the run reports throughput with duplicate and lost job counts.
 *
 *   node dist/bench/load.js --port 8962 --user demo --password demo --group demo \
 *     --jobs 100000 --publishers 4 --workers 4 --inflight 64
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

interface Options {
  host: string;
  port: number;
  user: string;
  password: string;
  group: string;
  queue: string;
  jobs: number;
  publishers: number;
  workers: number;
  inflight: number;
  payloadBytes: number;
  timeoutMs: number;
}

/** Reads `\n`-terminated lines from a socket. */
function onLines(socket: net.Socket, handle: (line: string) => void): void {
  let partial = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) handle(line);
  });
}

function connect(options: Options): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: options.host, port: options.port, noDelay: true }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function makePayload(bytes: number, index: number): string {
  const head = `{"n":${index},"pad":"`;
  return head + 'x'.repeat(Math.max(0, bytes - head.length - 2)) + '"}';
}

/** Publishes `count` jobs on one connection, keeping `inflight` requests outstanding. */
async function publish(options: Options, count: number, firstIndex: number): Promise<void> {
  const socket = await connect(options);
  socket.write(`AUTH ${options.user} ${options.password}\nUSE_GROUP ${options.group}\n`);
  let sent = 0;
  let answered = -2;
  await new Promise<void>((resolve, reject) => {
    const sendNext = (): void => {
      socket.write(`PUBLISH ${options.queue} load ${makePayload(options.payloadBytes, firstIndex + sent)}\n`);
      sent++;
    };
    onLines(socket, (line) => {
      answered++;
      if (answered <= 0) {
        if (line !== 'Welcome!' && line !== 'OK') reject(new Error(`login failed: ${line}`));
        return;
      }
      if (!line.startsWith('OK#')) reject(new Error(`PUBLISH failed: ${line}`));
      if (answered === count) resolve();
      else if (sent < count) sendNext();
    });
    while (sent < Math.min(options.inflight, count)) sendNext();
  });
  socket.end();
}

/** Finishes pushed jobs until `stop` is called; records each delivered id. */
async function work(options: Options, delivered: Map<string, number>, onJob: () => void): Promise<() => void> {
  const socket = await connect(options);
  socket.write(`AUTH ${options.user} ${options.password}\nUSE_GROUP ${options.group}\nSUBSCRIBE ${options.queue}\n`);
  onLines(socket, (line) => {
    if (!line.startsWith('{"Job"')) return;
    const id = line.slice(14, 30);
    delivered.set(id, (delivered.get(id) ?? 0) + 1);
    socket.write(`UPDATE_JOB ${id} done\n`);
    onJob();
  });
  return () => socket.end();
}

async function run(options: Options): Promise<void> {
  const delivered = new Map<string, number>();
  let finished = 0;
  let onAllDone: () => void = () => undefined;
  const allDone = new Promise<void>((resolve) => {
    onAllDone = resolve;
  });
  const stops = await Promise.all(
    Array.from({ length: options.workers }, () =>
      work(options, delivered, () => {
        finished++;
        if (finished === options.jobs) onAllDone();
      }),
    ),
  );
  const started = process.hrtime.bigint();
  const perPublisher = Math.ceil(options.jobs / options.publishers);
  await Promise.all(
    Array.from({ length: options.publishers }, (_, index) => {
      const count = Math.min(perPublisher, options.jobs - index * perPublisher);
      return count > 0 ? publish(options, count, index * perPublisher) : Promise.resolve();
    }),
  );
  const published = process.hrtime.bigint();
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, options.timeoutMs).unref());
  await Promise.race([allDone, timeout]);
  const ended = process.hrtime.bigint();
  for (const stop of stops) stop();

  const duplicates = [...delivered.values()].filter((count) => count > 1).length;
  const seconds = Number(ended - started) / 1e9;
  const report = {
    jobs: options.jobs,
    publish_seconds: Number(published - started) / 1e9,
    end_to_end_seconds: seconds,
    jobs_per_second: Math.round(finished / seconds),
    delivered: delivered.size,
    duplicates,
    lost: options.jobs - delivered.size,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

const USAGE = `Usage: node dist/bench/load.js [options]
  --host ADDRESS        server address (127.0.0.1)
  --port PORT           server TCP port (8962)
  --user NAME, --password TEXT, --group SLUG   login (demo, demo, demo)
  --queue SLUG          queue to load (load)
  --jobs N              jobs to publish (100000)
  --publishers N        publishing connections (4)
  --workers N           worker connections (4)
  --inflight N          PUBLISH requests in flight per publisher (64)
  --payload-bytes N     payload size in bytes (100)
  --timeout-seconds N   give up waiting for workers after this long (300)
`;

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8962' },
      user: { type: 'string', default: 'demo' },
      password: { type: 'string', default: 'demo' },
      group: { type: 'string', default: 'demo' },
      queue: { type: 'string', default: 'load' },
      jobs: { type: 'string', default: '100000' },
      publishers: { type: 'string', default: '4' },
      workers: { type: 'string', default: '4' },
      inflight: { type: 'string', default: '64' },
      'payload-bytes': { type: 'string', default: '100' },
      'timeout-seconds': { type: 'string', default: '300' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return null;
  }
  const integer = (name: string, text: string | undefined, min: number): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer of at least ${min}, got "${text}"`);
    return value;
  };
  return {
    host: values.host as string,
    port: integer('port', values.port, 1),
    user: values.user as string,
    password: values.password as string,
    group: values.group as string,
    queue: values.queue as string,
    jobs: integer('jobs', values.jobs, 1),
    publishers: integer('publishers', values.publishers, 1),
    workers: integer('workers', values.workers, 1),
    inflight: integer('inflight', values.inflight, 1),
    payloadBytes: integer('payload-bytes', values['payload-bytes'], 0),
    timeoutMs: integer('timeout-seconds', values['timeout-seconds'], 1) * 1000,
  };
}

if (require.main === module) {
  let options: Options | null;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`load: ${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (options !== null) {
    run(options).catch((error: Error) => {
      process.stderr.write(`load: ${error.message}\n`);
      process.exit(1);
    });
  }
}

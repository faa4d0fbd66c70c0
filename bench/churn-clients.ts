/**
 * The clients of the retry-churn workload, for Jobatator and for beanstalkd. The adapters of
 * the other workloads finish every job. These fail every job, and each delivery then writes
 * a new attempt to the broker's store.
 */
import { Endpoint } from './adapters/types';
import { LineSocket } from './line-socket';
import { PAYLOAD_BYTES } from './payload';

/** The jobs left in the broker once the workers closed. */
export interface ChurnCheck {
  /** Jobs of the churning queue, in any state. */
  stored: number;
  /** Whether the job that failed for good before the churn is still there, still failed. */
  parkedKept: boolean;
}

export interface ChurnWorker {
  /** Failures the broker confirmed so far. */
  readonly failures: number;
  close(): Promise<void>;
}

export interface ChurnClient {
  /** Stores `jobs` jobs that are retried for ever, and one job that fails once and stays failed. */
  fill(jobs: number): Promise<void>;
  /** Opens a worker that fails every job it gets, holding up to `prefetch` at once. */
  openWorker(prefetch: number, onError: (error: Error) => void): Promise<ChurnWorker>;
  check(): Promise<ChurnCheck>;
}

/** Queue names of one run: the churning queue and the queue of the parked job. */
export interface ChurnQueues {
  churn: string;
  parked: string;
  /** Jobatator's group; beanstalkd has none. */
  group: string;
}

const HEAD = '{"churn":"';
const PAYLOAD = `${HEAD}${'x'.repeat(PAYLOAD_BYTES - HEAD.length - 2)}"}`;

/**
 * Sends the lines in one write and resolves with the next `count` reply lines. Replaces the
 * socket's line handler, so it is for a connection that gets no pushes.
 */
function exchange(socket: LineSocket, lines: string[], count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const replies: string[] = [];
    socket.onFailure = reject;
    socket.onLine((line) => {
      replies.push(line);
      if (replies.length === count) resolve(replies);
    });
    for (const line of lines) socket.send(line);
  });
}

function expectAll(replies: string[], prefix: string, request: string): void {
  const wrong = replies.find((reply) => !reply.startsWith(prefix));
  if (wrong !== undefined) throw new Error(`${request} got the reply "${wrong.slice(0, 200)}", expected "${prefix}..."`);
}

export function jobatatorChurn(endpoint: Endpoint, queues: ChurnQueues): ChurnClient {
  let parkedId = '';

  const login = async (): Promise<LineSocket> => {
    const socket = await LineSocket.connect(endpoint.host, endpoint.port, '\n');
    await socket.request(`AUTH ${endpoint.user} ${endpoint.password}`, 'Welcome!');
    await socket.request(`USE_GROUP ${queues.group}`, 'OK');
    return socket;
  };

  return {
    async fill(jobs) {
      const socket = await login();
      try {
        const forever = `PUBLISH_JOB ${queues.churn} churn ${PAYLOAD} {"max_attempts":0,"retry_delay":0}\n`;
        expectAll(await exchange(socket, new Array<string>(jobs).fill(forever), jobs), 'OK#', 'PUBLISH_JOB');
        const [published] = await exchange(socket, [`PUBLISH_JOB ${queues.parked} parked ${PAYLOAD} {"max_attempts":1}\n`], 1);
        expectAll([published], 'OK#', 'PUBLISH_JOB');
        parkedId = published.slice(3);
        // The push follows the OK of SUBSCRIBE on the same connection.
        const [subscribed, push] = await exchange(socket, [`SUBSCRIBE ${queues.parked}\n`], 2);
        if (subscribed !== 'OK' || !push.includes(`"ID":"${parkedId}"`)) throw new Error(`SUBSCRIBE ${queues.parked} got "${subscribed}" then "${push.slice(0, 200)}"`);
        const [failed] = await exchange(socket, [`UPDATE_JOB ${parkedId} errored\n`], 1);
        if (failed !== 'OK') throw new Error(`UPDATE_JOB ${parkedId} errored got "${failed.slice(0, 200)}"`);
      } finally {
        await socket.close();
      }
    },

    async openWorker(prefetch, onError) {
      const socket = await login();
      await socket.request(`PREFETCH ${prefetch}`, 'OK');
      await socket.request(`SUBSCRIBE ${queues.churn}`, 'OK');
      const worker = { failures: 0, close: () => socket.close() };
      socket.onFailure = onError;
      socket.onLine((line) => {
        if (line === 'OK') {
          worker.failures++;
        } else if (line.startsWith('{"Job":{"ID":"')) {
          socket.send(`UPDATE_JOB ${line.slice(14, line.indexOf('"', 14))} errored\n`);
        } else {
          onError(new Error(`a worker got the line "${line.slice(0, 200)}"`));
        }
      });
      return worker;
    },

    async check() {
      const socket = await login();
      try {
        const [job, stats] = await exchange(socket, [`GET_JOB ${parkedId}\n`, `QUEUE_STATS ${queues.churn}\n`], 2);
        const counts = JSON.parse(stats) as Record<string, unknown>;
        const stored = ['Scheduled', 'Pending', 'InProgress', 'Errored', 'Done', 'Dead'].reduce((sum, key) => sum + Number(counts[key]), 0);
        return { stored, parkedKept: job.startsWith('{') && (JSON.parse(job) as { State?: string }).State === 'dead' };
      } finally {
        await socket.close();
      }
    },
  };
}

/** Time a reserved job may stay unreleased before beanstalkd takes it back. */
const TIME_TO_RUN_SECONDS = 60;

export function beanstalkdChurn(endpoint: Endpoint, queues: ChurnQueues): ChurnClient {
  let parkedId = '';
  const connect = (): Promise<LineSocket> => LineSocket.connect(endpoint.host, endpoint.port, '\r\n');
  const put = `put 0 0 ${TIME_TO_RUN_SECONDS} ${PAYLOAD_BYTES}\r\n${PAYLOAD}\r\n`;

  return {
    async fill(jobs) {
      const socket = await connect();
      try {
        await socket.request(`use ${queues.churn}`, `USING ${queues.churn}`);
        expectAll(await exchange(socket, new Array<string>(jobs).fill(put), jobs), 'INSERTED ', 'put');
        const [using, inserted] = await exchange(socket, [`use ${queues.parked}\r\n`, put], 2);
        expectAll([inserted], 'INSERTED ', `${using}, put`);
        parkedId = inserted.split(' ')[1];
        // A reserve returns two lines: RESERVED <id> <bytes>, then the body.
        const replies = await exchange(socket, [`watch ${queues.parked}\r\n`, 'ignore default\r\n', 'reserve\r\n'], 4);
        if (replies[2] !== `RESERVED ${parkedId} ${PAYLOAD_BYTES}`) throw new Error(`reserve of the parked job got "${replies[2]}"`);
        const [buried] = await exchange(socket, [`bury ${parkedId} 0\r\n`], 1);
        if (buried !== 'BURIED') throw new Error(`bury ${parkedId} got "${buried}"`);
      } finally {
        await socket.close();
      }
    },

    async openWorker(prefetch, onError) {
      const socket = await connect();
      await socket.request(`watch ${queues.churn}`, 'WATCHING 2');
      await socket.request('ignore default', 'WATCHING 1');
      const worker = { failures: 0, close: () => socket.close() };
      let bodyOf: string | null = null;
      socket.onFailure = onError;
      socket.onLine((line) => {
        if (bodyOf !== null) {
          // `release <id> <priority> <delay>` makes the job ready again at once.
          socket.send(`release ${bodyOf} 0 0\r\nreserve\r\n`);
          bodyOf = null;
        } else if (line === 'RELEASED') {
          worker.failures++;
        } else if (line.startsWith('RESERVED ')) {
          bodyOf = line.split(' ')[1];
        } else {
          onError(new Error(`a worker got the line "${line.slice(0, 200)}"`));
        }
      });
      socket.send('reserve\r\n'.repeat(prefetch));
      return worker;
    },

    async check() {
      const socket = await connect();
      try {
        // peek-buried replies FOUND <id> <bytes> and the body; stats-tube replies OK <bytes>
        // and a YAML document whose lines end in a bare LF, so it reads as one line here.
        const replies = await exchange(socket, [`use ${queues.parked}\r\n`, 'peek-buried\r\n', `stats-tube ${queues.churn}\r\n`], 5);
        let stored = 0;
        for (const match of replies[4].matchAll(/current-jobs-(?:ready|reserved|delayed|buried): (\d+)/g)) stored += Number(match[1]);
        return { stored, parkedKept: replies[1] === `FOUND ${parkedId} ${PAYLOAD_BYTES}` };
      } finally {
        await socket.close();
      }
    },
  };
}

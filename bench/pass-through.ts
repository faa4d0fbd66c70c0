/**
 * Drives jobs through a broker from the harness process with a bound on the jobs the broker
 * stores: publishers send a job only while fewer than `maxUndelivered` jobs are sent and not
 * yet delivered. The load generator processes cannot do this, because publishers and
 * workers run in separate processes there.
 */
import { loadAdapter } from './adapters';
import { AdapterName, Endpoint, Lane, PublisherClient, WorkerClient } from './adapters/types';
import { makePayload, nowMicros } from './payload';

export interface PassThroughSpec {
  adapter: AdapterName;
  endpoint: Endpoint;
  lane: Lane;
  /** Jobs published and confirmed before the workers start. */
  prefill: number;
  /** Jobs in all, the prefill included. */
  total: number;
  /** Maximum jobs sent and not yet delivered once the workers run. */
  maxUndelivered: number;
  /** Publisher connections, and worker connections. */
  connections: number;
  prefetch: number;
  /** Requests in flight per publisher connection. */
  inflight: number;
  timeoutMs: number;
}

export interface PassThroughResult {
  /** Distinct jobs delivered: `total` once the run succeeded. */
  delivered: number;
  duplicates: number;
  /** Monotonic clock, microseconds, when the workers started. */
  startedAt: number;
  /** Monotonic clock, microseconds, when the last job was delivered. */
  endedAt: number;
}

interface Waiter {
  condition: () => boolean;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Publishes the prefill, runs `onPrefilled`, then starts the workers and publishes the rest.
 * Resolves once every job was delivered; rejects on the first error or after the timeout.
 */
export async function passThrough(spec: PassThroughSpec, onPrefilled: () => void): Promise<PassThroughResult> {
  const adapter = await loadAdapter(spec.adapter);
  const deadline = Date.now() + spec.timeoutMs;
  const publishers: PublisherClient[] = [];
  const workers: WorkerClient[] = [];
  const seen = new Uint8Array(spec.total);
  const inflight = new Array<number>(spec.connections).fill(0);
  const result: PassThroughResult = { delivered: 0, duplicates: 0, startedAt: 0, endedAt: 0 };
  let sent = 0;
  let confirmed = 0;
  let target = 0;
  let limit = 0;
  let nextPublisher = 0;
  let waiter: Waiter | null = null;
  let failure: Error | null = null;

  const check = (): void => {
    if (waiter !== null && waiter.condition()) {
      const current = waiter;
      waiter = null;
      current.resolve();
    }
  };
  const fail = (error: Error): void => {
    failure ??= error;
    const current = waiter;
    waiter = null;
    current?.reject(error);
  };
  const until = (condition: () => boolean, what: string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (failure !== null) {
        reject(failure);
        return;
      }
      const timer = setTimeout(() => {
        waiter = null;
        reject(new Error(`timed out waiting for ${what}: ${sent} jobs sent, ${confirmed} confirmed, ${result.delivered} delivered of ${spec.total}`));
      }, Math.max(0, deadline - Date.now()));
      const settle = (): void => clearTimeout(timer);
      waiter = {
        condition,
        resolve: () => {
          settle();
          resolve();
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      };
      check();
    });

  // Sends jobs round-robin over the publishers that have room in their window.
  const pump = (): void => {
    while (sent < target && sent - result.delivered < limit && failure === null) {
      let chosen = -1;
      for (let step = 0; step < spec.connections; step++) {
        const candidate = (nextPublisher + step) % spec.connections;
        if (inflight[candidate] < spec.inflight) {
          chosen = candidate;
          break;
        }
      }
      if (chosen === -1) return;
      nextPublisher = (chosen + 1) % spec.connections;
      inflight[chosen]++;
      const index = sent++;
      publishers[chosen].publish(makePayload(index, nowMicros()), (error) => {
        inflight[chosen]--;
        if (error !== null) {
          fail(error);
          return;
        }
        confirmed++;
        check();
        pump();
      });
    }
  };
  const onJob = (index: number): void => {
    if (index >= spec.total) {
      fail(new Error(`delivered job index ${index} is outside the run's ${spec.total} jobs`));
      return;
    }
    if (seen[index] === 1) {
      result.duplicates++;
      return;
    }
    seen[index] = 1;
    result.delivered++;
    result.endedAt = nowMicros();
    check();
    pump();
  };

  try {
    for (let index = 0; index < spec.connections; index++) publishers.push(await adapter.openPublisher(spec.endpoint, spec.lane));
    target = Math.min(spec.prefill, spec.total);
    limit = target;
    pump();
    await until(() => confirmed === target, 'the prefill confirmations');
    onPrefilled();

    for (let index = 0; index < spec.connections; index++) workers.push(await adapter.openWorker(spec.endpoint, spec.lane, spec.prefetch, onJob, fail));
    result.startedAt = nowMicros();
    target = spec.total;
    limit = spec.maxUndelivered;
    pump();
    await until(() => result.delivered === spec.total && confirmed === spec.total, 'every job to be delivered');
    return result;
  } finally {
    // Workers close their sending side, so the server still runs the last UPDATE_JOB requests.
    await Promise.all([...workers, ...publishers].map((client) => client.close()));
  }
}

/**
 * One measured run: starts the load generator processes of each stream, reads the broker's
 * CPU time around the run, and collects the results.
 */
import { Endpoint, Lane } from './adapters/types';
import { BrokerInstance } from './brokers';
import { LoadProcess } from './children';
import { PublisherLane, PublishersResult, PublishersSpec, WorkersResult, WorkersSpec } from './messages';
import { cpuMicros, cpuMicrosByThread, machineBusyMicros } from './proc';
import { nowMicros } from './payload';

/** Publishers with, unless the jobs are to stay pending, workers on the same queues. */
export interface Stream {
  publishers: PublishersSpec;
  workers: WorkersSpec | null;
  /** Time after the others' start at which this stream starts. */
  delayMs: number;
}

export interface StreamResult {
  publishers: PublishersResult;
  workers: WorkersResult | null;
}

export interface Measurement {
  streams: StreamResult[];
  /** CPU time of the broker's processes during the run, all threads. */
  brokerCpuMicros: number;
  /** CPU time of the broker's main thread during the run. */
  mainThreadCpuMicros: number;
  /** CPU time of the broker's busiest other thread during the run. */
  busiestOtherThreadCpuMicros: number;
  /** CPU time of the load generator processes. */
  clientCpuMicros: number;
  /**
   * CPU time the whole machine spent during the run beyond the broker, the load generators and
   * the harness: other programs that competed for the cores. Includes the kernel's network work.
   */
  otherCpuMicros: number;
  wallMicros: number;
}

export interface MeasureHooks {
  /** Runs once every load generator is connected, just before the start. */
  onReady?: () => Promise<void> | void;
  /** Runs once every publisher got its confirmations, before waiting for the workers. */
  onPublished?: () => Promise<void> | void;
}

/** Splits `count` jobs at `rate` jobs/s (0: unpaced) over `connections` publisher lanes of one queue. */
export function publisherLanes(lane: Lane, count: number, rate: number, connections: number, firstIndex = 0): PublisherLane[] {
  const lanes: PublisherLane[] = [];
  let next = firstIndex;
  for (let index = 0; index < connections; index++) {
    const share = Math.floor(count / connections) + (index < count % connections ? 1 : 0);
    lanes.push({ ...lane, count: share, firstIndex: next, rate: rate / connections });
    next += share;
  }
  return lanes;
}

export function publishersSpec(broker: BrokerInstance, lanes: PublisherLane[], inflight: number, timeoutMs: number): PublishersSpec {
  return { role: 'publishers', adapter: broker.adapter, endpoint: broker.endpoint, lanes, inflight, timeoutMs };
}

export function workersSpec(broker: BrokerInstance, lanes: Lane[], totalJobs: number, prefetch: number, latency: boolean, timeoutMs: number): WorkersSpec {
  return { role: 'workers', adapter: broker.adapter, endpoint: broker.endpoint, lanes, prefetch, totalJobs, latency, timeoutMs };
}

/** Returns CPU time per thread id of the broker's main process. */
function threadTimes(pid: number): Map<number, number> {
  return new Map(cpuMicrosByThread(pid).map((thread) => [thread.tid, thread.micros]));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Refreshes each spec's endpoint, which changes when a broker restarts. */
function withEndpoint<T extends { endpoint: Endpoint }>(spec: T, endpoint: Endpoint): T {
  return { ...spec, endpoint };
}

export async function measure(broker: BrokerInstance, streams: Stream[], hooks: MeasureHooks = {}): Promise<Measurement> {
  const processes: LoadProcess[] = [];
  try {
    // Load generators start together; none sends a job before every one of them is connected.
    const started = await Promise.all(
      streams.map(async (stream) => {
        const [workers, publishers] = await Promise.all([
          stream.workers === null ? null : LoadProcess.start(withEndpoint(stream.workers, broker.endpoint), processes),
          LoadProcess.start(withEndpoint(stream.publishers, broker.endpoint), processes),
        ]);
        return { publishers, workers };
      }),
    );
    const pids = broker.pids();
    await hooks.onReady?.();
    const cpuBefore = cpuMicros(pids);
    const machineBefore = machineBusyMicros();
    const harnessBefore = process.cpuUsage();
    const threadsBefore = threadTimes(broker.mainPid());
    const wallBefore = nowMicros();

    const publisherResults = await Promise.all(
      started.map(async ({ publishers, workers }, index) => {
        if (streams[index].delayMs > 0) await delay(streams[index].delayMs);
        workers?.post({ type: 'start' });
        publishers.post({ type: 'start' });
        const result = (await publishers.result()) as PublishersResult;
        workers?.post({ type: 'expect', count: result.published });
        return result;
      }),
    );
    await hooks.onPublished?.();
    const workerResults = await Promise.all(started.map(async ({ workers }) => (workers === null ? null : ((await workers.result()) as WorkersResult))));

    const wallMicros = nowMicros() - wallBefore;
    const brokerCpuMicros = cpuMicros(pids) - cpuBefore;
    const harness = process.cpuUsage(harnessBefore);
    const machineMicros = machineBusyMicros() - machineBefore;
    const threadsAfter = threadTimes(broker.mainPid());
    let mainThreadCpuMicros = 0;
    let busiestOtherThreadCpuMicros = 0;
    for (const [tid, micros] of threadsAfter) {
      const used = micros - (threadsBefore.get(tid) ?? 0);
      if (tid === broker.mainPid()) mainThreadCpuMicros = used;
      else busiestOtherThreadCpuMicros = Math.max(busiestOtherThreadCpuMicros, used);
    }
    let clientCpuMicros = 0;
    for (const result of [...publisherResults, ...workerResults]) clientCpuMicros += result?.cpuMicros ?? 0;
    const otherCpuMicros = Math.max(0, machineMicros - brokerCpuMicros - clientCpuMicros - harness.user - harness.system);
    return {
      streams: publisherResults.map((publishers, index) => ({ publishers, workers: workerResults[index] })),
      brokerCpuMicros,
      mainThreadCpuMicros,
      busiestOtherThreadCpuMicros,
      clientCpuMicros,
      otherCpuMicros,
      wallMicros,
    };
  } finally {
    for (const load of processes) load.kill();
  }
}

/** Throws when publishing failed or timed out, with the first error the load generator saw. */
export function checkPublishers(result: PublishersResult): void {
  if (result.failed > 0) throw new Error(`${result.failed} publishes failed; first error: ${result.firstError}`);
  if (result.timedOut) throw new Error(`publishing timed out with ${result.published} jobs confirmed`);
}

/** Throws when the workers timed out or reported errors. */
export function checkWorkers(result: WorkersResult | null): void {
  if (result === null) return;
  if (result.errors > 0) throw new Error(`workers saw ${result.errors} errors; first: ${result.firstError}`);
  if (result.timedOut) throw new Error(`workers timed out with ${result.delivered} distinct jobs delivered, ${result.lost} missing`);
}

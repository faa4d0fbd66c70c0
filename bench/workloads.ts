/**
 * The workloads. Each one runs a warm-up (unless turned off) and then the measured runs,
 * going through every broker once per run so that a drift of the machine touches all of
 * them alike, and records one set of figures per run.
 */
import { Lane } from './adapters/types';
import { BrokerInstance, BrokerName, JobatatorSettings, startJobatator } from './brokers';
import { Measurement, checkPublishers, checkWorkers, measure, publisherLanes, publishersSpec, workersSpec, Stream } from './measure';
import { PublisherLane } from './messages';
import { BenchOptions, WorkloadName } from './options';
import { rssBytes } from './proc';

/** The figures of one run, by name; see FIGURES in report.ts for units. */
export type Figures = Record<string, number>;

export interface RunRecord {
  workload: WorkloadName;
  broker: BrokerName;
  /** A setting that differs between rows of one broker, such as "shards: 2". */
  variant: string;
  /** 1-based index of the measured run. */
  run: number;
  figures: Figures;
  error?: string;
}

export interface WorkloadContext {
  options: BenchOptions;
  /** Started or attached brokers other than Jobatator, which each workload starts with its own settings. */
  brokers: Map<BrokerName, BrokerInstance>;
  /** Returns a Jobatator server with these settings, started on first use and shared by the workloads. */
  sharedJobatator(settings: JobatatorSettings): Promise<BrokerInstance>;
  /** Stores a measured run and prints its progress line. */
  record(record: RunRecord): void;
  /** Prints a line about a run that is not recorded, such as a warm-up. */
  note(text: string): void;
}

/** The isolation workload floods at this share of the flooded group's measured maximum. */
const FLOOD_SHARE = 0.8;
/**
 * The light group starts this long after the flood (at most a quarter of the measurement),
 * so that it meets a flood at full speed.
 */
const LIGHT_START_DELAY_MS = 500;

let queueCounter = 0;

/** Returns a queue name used by no earlier run of this harness process. */
export function freshQueue(workload: string): string {
  queueCounter++;
  return `bench-${workload}-${process.pid}-${queueCounter}`;
}

/** Returns the warm-up size: a tenth of the measured size, but at least 1,000 (or the size itself if smaller). */
export function warmupSize(size: number): number {
  return Math.max(Math.min(size, 1000), Math.round(size / 10));
}

export function perSecond(count: number, micros: number): number {
  return micros > 0 ? (count * 1e6) / micros : Number.NaN;
}

function milliseconds(micros: number | undefined): number {
  return micros === undefined ? Number.NaN : micros / 1000;
}

/** CPU figures common to every workload. */
export function cpuFigures(measurement: Measurement, jobs: number): Figures {
  return {
    cpu_us_per_job: measurement.brokerCpuMicros / jobs,
    client_cpu_us_per_job: measurement.clientCpuMicros / jobs,
    main_thread_util_pct: (100 * measurement.mainThreadCpuMicros) / measurement.wallMicros,
    busiest_other_thread_util_pct: (100 * measurement.busiestOtherThreadCpuMicros) / measurement.wallMicros,
    other_cpu_pct: (100 * measurement.otherCpuMicros) / measurement.wallMicros,
  };
}

export function jobatatorSettings(options: BenchOptions, groups: JobatatorSettings['groups'], shards = options.shards): JobatatorSettings {
  return { shards, prefetch: options.prefetch, groups };
}

export const BENCH_GROUP = 'bench';

/** Peers that store every job on disk before they confirm it, which the durability workload compares. */
export const DURABLE_PEERS: BrokerName[] = ['beanstalkd-binlog', 'beanstalkd-fsync', 'rabbitmq'];

/** Peers with no per-job delay: RabbitMQ needs a plugin for one, and bench/setup starts it without plugins. */
export const PEERS_WITHOUT_DELAYS: BrokerName[] = ['rabbitmq'];

/**
 * Returns the brokers of a workload in the order of --brokers. The ceiling takes part in
 * publish only, beanstalkd-fsync in durability only, retry-churn measures Jobatator and
 * beanstalkd-binlog, the startup and disk-bound workloads measure Jobatator alone, and the
 * delays workload leaves out the peers without delays.
 */
export function brokersFor(workload: WorkloadName, options: BenchOptions): BrokerName[] {
  return options.brokers.filter((name) => {
    if (workload === 'isolation' || workload === 'scaling' || workload === 'startup' || workload === 'disk-bound') return name === 'jobatator';
    if (workload === 'durability') return name === 'jobatator' || DURABLE_PEERS.includes(name);
    if (workload === 'retry-churn') return name === 'jobatator' || name === 'beanstalkd-binlog';
    if (name === 'ceiling') return workload === 'publish';
    if (workload === 'delays' && PEERS_WITHOUT_DELAYS.includes(name)) return false;
    return name !== 'beanstalkd-fsync';
  });
}

/** A workload body for one broker: runs once with the given size scale (1 measured, smaller for warm-up). */
type RunOnce = (broker: BrokerInstance, warmup: boolean) => Promise<{ figures: Figures; error?: string }>;

/** Runs one body, resets the broker afterwards, and turns a thrown error into a failed run. */
export async function attempt(broker: BrokerInstance, body: RunOnce, warmup: boolean, lanes: Lane[]): Promise<{ figures: Figures; error?: string }> {
  let outcome: { figures: Figures; error?: string };
  try {
    outcome = await body(broker, warmup);
  } catch (error) {
    outcome = { figures: {}, error: (error as Error).message };
  }
  try {
    await broker.reset(lanes);
  } catch (error) {
    outcome.error = `${outcome.error ?? ''} reset after the run failed: ${(error as Error).message}`.trim();
  }
  return outcome;
}

/**
 * Runs a workload whose body is the same for every broker: warm-ups first, then run 1 on
 * every broker, run 2 on every broker, and so on. Each run gets `laneCount` fresh queues
 * of the benchmark group (one unless given).
 */
export async function acrossBrokers(
  context: WorkloadContext,
  workload: WorkloadName,
  body: (broker: BrokerInstance, warmup: boolean, lanes: Lane[]) => Promise<{ figures: Figures; error?: string }>,
  options: { warmup: boolean; freshBroker?: boolean; laneCount?: number } = { warmup: true },
): Promise<void> {
  const names = brokersFor(workload, context.options);
  if (names.length === 0) return;
  const settings = jobatatorSettings(context.options, [{ slug: BENCH_GROUP }]);
  // A workload that restarts its broker gets a server of its own; the others share one.
  let ownJobatator: BrokerInstance | null = null;
  try {
    let jobatator: BrokerInstance | null = null;
    if (names.includes('jobatator')) {
      jobatator = options.freshBroker ? (ownJobatator = await startJobatator(settings)) : await context.sharedJobatator(settings);
    }
    const instances = names.map((name) => (name === 'jobatator' ? (jobatator as BrokerInstance) : (context.brokers.get(name) as BrokerInstance)));
    // A server started just now is as fresh as a restarted one.
    const pristine = new Set<BrokerInstance>(ownJobatator === null ? [] : [ownJobatator]);
    const runOnce = async (broker: BrokerInstance, warmup: boolean): Promise<{ figures: Figures; error?: string }> => {
      if (options.freshBroker && !pristine.delete(broker)) await broker.restart();
      const lanes: Lane[] = Array.from({ length: options.laneCount ?? 1 }, () => ({ queue: freshQueue(workload), group: BENCH_GROUP }));
      return attempt(broker, (instance, isWarmup) => body(instance, isWarmup, lanes), warmup, lanes);
    };
    if (options.warmup && context.options.warmup) {
      for (const broker of instances) {
        const outcome = await runOnce(broker, true);
        context.note(`[${workload}] ${broker.name} warm-up${outcome.error === undefined ? ' done' : ` failed: ${outcome.error}`}`);
      }
    }
    for (let run = 1; run <= context.options.runs; run++) {
      for (const broker of instances) {
        const outcome = await runOnce(broker, false);
        context.record({ workload, broker: broker.name, variant: '', run, ...outcome });
      }
    }
  } finally {
    await ownJobatator?.stop();
  }
}

export function timeoutMs(options: BenchOptions): number {
  return options.timeoutSeconds * 1000;
}

/** Publishes `jobs` over `connections` publishers with no workers; jobs/s from the first send to the last confirmation. */
export async function publishRun(broker: BrokerInstance, options: BenchOptions, lane: Lane, jobs: number, connections = options.connections): Promise<{ figures: Figures }> {
  const stream: Stream = {
    publishers: publishersSpec(broker, publisherLanes(lane, jobs, 0, connections), options.inflight, timeoutMs(options)),
    workers: null,
    delayMs: 0,
  };
  const measurement = await measure(broker, [stream]);
  const publishers = measurement.streams[0].publishers;
  checkPublishers(publishers);
  return {
    figures: { jobs_per_s: perSecond(publishers.published, publishers.endedAt - publishers.startedAt), ...cpuFigures(measurement, jobs) },
  };
}

/** Publish: connections x inflight requests, no workers. */
export async function publishWorkload(context: WorkloadContext): Promise<void> {
  const { options } = context;
  await acrossBrokers(context, 'publish', async (broker, warmup, [lane]) => {
    const jobs = warmup ? warmupSize(options.publishJobs) : options.publishJobs;
    return publishRun(broker, options, lane, jobs);
  });
}

/**
 * Runs one publisher connection per entry of `publisherLaneList` and one worker connection per
 * entry of `workerLanes`, and returns throughput, duplicates and lost jobs.
 */
export async function endToEndRun(broker: BrokerInstance, options: BenchOptions, publisherLaneList: Lane[], workerLanes: Lane[], jobs: number): Promise<{ figures: Figures; error?: string }> {
  const perLane: PublisherLane[] = [];
  let next = 0;
  for (const [index, lane] of publisherLaneList.entries()) {
    const count = Math.floor(jobs / publisherLaneList.length) + (index < jobs % publisherLaneList.length ? 1 : 0);
    perLane.push({ ...lane, count, firstIndex: next, rate: 0 });
    next += count;
  }
  const stream: Stream = {
    publishers: publishersSpec(broker, perLane, options.inflight, timeoutMs(options)),
    workers: workersSpec(broker, workerLanes, jobs, options.prefetch, false, timeoutMs(options)),
    delayMs: 0,
  };
  const measurement = await measure(broker, [stream]);
  const { publishers, workers } = measurement.streams[0];
  checkPublishers(publishers);
  const finished = workers as NonNullable<typeof workers>;
  const figures: Figures = {
    jobs_per_s: perSecond(finished.delivered, finished.lastAt - publishers.startedAt),
    ...cpuFigures(measurement, jobs),
    duplicates: finished.duplicates,
    lost: finished.lost,
  };
  try {
    checkWorkers(finished);
  } catch (error) {
    return { figures, error: (error as Error).message };
  }
  return { figures };
}

/** End to end: connections publishers and as many workers that finish every job. */
export async function endToEndWorkload(context: WorkloadContext): Promise<void> {
  const { options } = context;
  await acrossBrokers(context, 'end-to-end', async (broker, warmup, [lane]) => {
    const jobs = warmup ? warmupSize(options.endToEndJobs) : options.endToEndJobs;
    const lanes = Array.from({ length: options.connections }, () => lane);
    return endToEndRun(broker, options, lanes, lanes, jobs);
  });
}

/** Builds a paced stream: `rate` jobs/s for `seconds` over the publisher connections, with workers. */
function pacedStream(broker: BrokerInstance, options: BenchOptions, lane: Lane, rate: number, seconds: number, latency: boolean, delayMs = 0): Stream {
  const jobs = Math.round(rate * seconds);
  const workerLanes = Array.from({ length: options.connections }, () => lane);
  return {
    publishers: publishersSpec(broker, publisherLanes(lane, jobs, rate, options.connections), options.inflight, timeoutMs(options)),
    workers: workersSpec(broker, workerLanes, jobs, options.prefetch, latency, timeoutMs(options)),
    delayMs,
  };
}

/** Latency figures of a paced stream, in milliseconds from the publish of a job to its delivery. */
function latencyFigures(measurement: Measurement, index: number, prefix = ''): Figures {
  const { publishers, workers } = measurement.streams[index];
  const latency = workers?.latency;
  return {
    [`${prefix}p50_ms`]: milliseconds(latency?.p50),
    [`${prefix}p99_ms`]: milliseconds(latency?.p99),
    [`${prefix}max_ms`]: milliseconds(latency?.max),
    [`${prefix}jobs_per_s`]: perSecond(publishers.published, publishers.endedAt - publishers.startedAt),
  };
}

function checkStream(measurement: Measurement, index: number): void {
  checkPublishers(measurement.streams[index].publishers);
  checkWorkers(measurement.streams[index].workers);
}

/** Latency: a fixed rate for a fixed time with workers; p50, p99 and max from publish to delivery. */
export async function latencyWorkload(context: WorkloadContext): Promise<void> {
  const { options } = context;
  await acrossBrokers(context, 'latency', async (broker, warmup, [lane]) => {
    const seconds = warmup ? Math.min(options.latencySeconds, Math.max(1, options.latencySeconds / 5)) : options.latencySeconds;
    const measurement = await measure(broker, [pacedStream(broker, options, lane, options.latencyRate, seconds, true)]);
    checkStream(measurement, 0);
    const jobs = measurement.streams[0].publishers.published;
    return { figures: { ...latencyFigures(measurement, 0), ...cpuFigures(measurement, jobs) } };
  });
}

/** Memory: a fresh broker, N pending jobs, and the growth of its resident memory per job. */
export async function memoryWorkload(context: WorkloadContext): Promise<void> {
  const { options } = context;
  await acrossBrokers(
    context,
    'memory',
    async (broker, _warmup, [lane]) => {
      const jobs = options.memoryJobs;
      let before = 0;
      let after = 0;
      const stream: Stream = {
        publishers: publishersSpec(broker, publisherLanes(lane, jobs, 0, options.connections), options.inflight, timeoutMs(options)),
        workers: null,
        delayMs: 0,
      };
      const measurement = await measure(broker, [stream], {
        onReady: () => {
          before = rssBytes(broker.pids());
        },
        onPublished: async () => {
          await new Promise((resolve) => setTimeout(resolve, options.memorySettleMs));
          after = rssBytes(broker.pids());
        },
      });
      checkPublishers(measurement.streams[0].publishers);
      return {
        figures: {
          bytes_per_job: (after - before) / jobs,
          rss_before_mib: before / 2 ** 20,
          rss_after_mib: after / 2 ** 20,
          ...cpuFigures(measurement, jobs),
        },
      };
    },
    { warmup: false, freshBroker: true },
  );
}

/**
 * Isolation: Jobatator with two shards and two groups pinned to different shards. The light
 * group's latency is measured alone, then while the other group is flooded at 80% of the
 * maximum that group reaches alone.
 */
export async function isolationWorkload(context: WorkloadContext): Promise<void> {
  const { options } = context;
  if (!options.brokers.includes('jobatator')) return;
  const light: Lane = { queue: freshQueue('light'), group: 'light' };
  const flood: Lane = { queue: freshQueue('flood'), group: 'flood' };
  const server = await startJobatator(
    jobatatorSettings(
      options,
      [
        { slug: 'light', shard: 0 },
        { slug: 'flood', shard: 1 },
      ],
      2,
    ),
  );
  try {
    let floodRate = options.floodRate;
    if (floodRate === null) {
      const lanes = Array.from({ length: options.connections }, () => flood);
      const probe = await attempt(server, () => endToEndRun(server, options, lanes, lanes, options.isolationProbeJobs), false, [flood]);
      if (probe.error !== undefined || !(probe.figures.jobs_per_s > 0)) {
        context.record({ workload: 'isolation', broker: 'jobatator', variant: 'flood maximum', run: 1, figures: probe.figures, error: probe.error ?? 'no throughput measured' });
        return;
      }
      floodRate = Math.round(FLOOD_SHARE * probe.figures.jobs_per_s);
      context.note(`isolation jobatator: the flooded group alone reached ${Math.round(probe.figures.jobs_per_s)} jobs/s end to end; flooding at ${floodRate} jobs/s`);
    }
    const rate = floodRate;
    if (options.warmup) {
      const warm = await attempt(
        server,
        async () => {
          const measurement = await measure(server, [pacedStream(server, options, light, options.isolationRate, 1, true)]);
          checkStream(measurement, 0);
          return { figures: {} };
        },
        true,
        [light],
      );
      context.note(`[isolation] jobatator warm-up${warm.error === undefined ? ' done' : ` failed: ${warm.error}`}`);
    }
    for (let run = 1; run <= options.runs; run++) {
      const outcome = await attempt(
        server,
        async () => {
          const alone = await measure(server, [pacedStream(server, options, light, options.isolationRate, options.isolationSeconds, true)]);
          checkStream(alone, 0);
          const lightDelayMs = Math.min(LIGHT_START_DELAY_MS, (options.isolationSeconds * 1000) / 4);
          // The flood lasts until the light group is done, and as long again as the light group's delay.
          const floodSeconds = options.isolationSeconds + (2 * lightDelayMs) / 1000;
          const flooded = await measure(server, [
            pacedStream(server, options, flood, rate, floodSeconds, false),
            pacedStream(server, options, light, options.isolationRate, options.isolationSeconds, true, lightDelayMs),
          ]);
          checkStream(flooded, 0);
          checkStream(flooded, 1);
          const aloneFigures = latencyFigures(alone, 0);
          const floodedFigures = latencyFigures(flooded, 1);
          const floodFigures = latencyFigures(flooded, 0);
          const floodJobs = flooded.streams[0].publishers.published + flooded.streams[1].publishers.published;
          return {
            figures: {
              p99_alone_ms: aloneFigures.p99_ms,
              p99_flooded_ms: floodedFigures.p99_ms,
              p99_ratio: floodedFigures.p99_ms / aloneFigures.p99_ms,
              p50_alone_ms: aloneFigures.p50_ms,
              p50_flooded_ms: floodedFigures.p50_ms,
              max_flooded_ms: floodedFigures.max_ms,
              flood_target_jobs_per_s: rate,
              flood_jobs_per_s: floodFigures.jobs_per_s,
              ...cpuFigures(flooded, floodJobs),
            },
          };
        },
        false,
        [light, flood],
      );
      context.record({ workload: 'isolation', broker: 'jobatator', variant: 'shards: 2', run, ...outcome });
    }
  } finally {
    await server.stop();
  }
}

/** Scaling: 8 groups pinned round-robin to the shards, end to end, one server per shard count. */
export async function scalingWorkload(context: WorkloadContext): Promise<void> {
  const { options } = context;
  if (!options.brokers.includes('jobatator')) return;
  const groupCount = 8;
  const servers = new Map<number, BrokerInstance>();
  try {
    await Promise.all(
      options.scalingShards.map(async (shards) => {
        const groups = Array.from({ length: groupCount }, (_, index) => ({ slug: `g${index + 1}`, shard: index % shards }));
        servers.set(shards, await startJobatator(jobatatorSettings(options, groups, shards)));
      }),
    );
    const runOnce = async (shards: number, warmup: boolean): Promise<{ figures: Figures; error?: string }> => {
      const server = servers.get(shards) as BrokerInstance;
      const queue = freshQueue('scaling');
      const lanes: Lane[] = Array.from({ length: groupCount }, (_, index) => ({ queue, group: `g${index + 1}` }));
      const jobs = warmup ? warmupSize(options.scalingJobs) : options.scalingJobs;
      return attempt(server, () => endToEndRun(server, options, lanes, lanes, jobs), warmup, lanes);
    };
    if (options.warmup) {
      for (const shards of options.scalingShards) {
        const outcome = await runOnce(shards, true);
        context.note(`[scaling] jobatator (shards: ${shards}) warm-up${outcome.error === undefined ? ' done' : ` failed: ${outcome.error}`}`);
      }
    }
    for (let run = 1; run <= options.runs; run++) {
      for (const shards of options.scalingShards) {
        const outcome = await runOnce(shards, false);
        context.record({ workload: 'scaling', broker: 'jobatator', variant: `shards: ${shards}`, run, ...outcome });
      }
    }
  } finally {
    for (const server of servers.values()) await server.stop();
  }
}

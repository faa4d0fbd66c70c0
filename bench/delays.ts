/**
 * Delays: how close to their due time delayed jobs are delivered while the broker carries a
 * steady end-to-end load. The load runs on another queue of the same group, so in Jobatator
 * it shares the shard thread that keeps the delayed jobs until they are due.
 *
 * Each delayed job's payload carries its due time: the time its publish request was written
 * plus its delay, on the monotonic clock that every load generator process reads (see
 * nowMicros). Its lateness is the time a worker reads it minus that due time.
 *
 * NOTE: the brokers time delays on the wall clock. The two clocks advance at the same rate
 * unless the wall clock is slewed or stepped during a run (an NTP slew is at most 0.5 ms
 * per second).
 */
import { Lane } from './adapters/types';
import { BrokerInstance } from './brokers';
import { checkPublishers, checkWorkers, measure, Measurement, publisherLanes, publishersSpec, Stream, workersSpec } from './measure';
import { BenchOptions } from './options';
import { acrossBrokers, cpuFigures, Figures, perSecond, timeoutMs, warmupSize, WorkloadContext } from './workloads';

/** A delayed job delivered at most this long after its due time is on time. Jobatator's target is a p99 lateness of at most this. */
export const ON_TIME_MS = 50;

/**
 * A delayed job delivered more than this long before its due time counts as early. Jobatator
 * and BullMQ start a delay from Date.now(), which drops the fraction of the current
 * millisecond, so a job may come due up to 1 ms before the due time in its payload.
 */
export const EARLY_TOLERANCE_MS = 1;

/**
 * Time the delayed jobs' worker waits past the longest delay before it gives up on the rest,
 * which then count as lost. It includes a second for beanstalkd, whose delays are rounded
 * to whole seconds and may pass the longest one asked for.
 */
export const LATE_LIMIT_MS = 11_000;

/** The load goes on this long after the last delayed job is due. */
const LOAD_TAIL_MS = 1000;

/**
 * The delayed jobs start this long after the load (at most the shortest delay), so that they
 * meet the load at its steady rate, past the first requests of new connections and queues.
 */
export const LOAD_LEAD_MS = 1000;

/** A warm-up run shortens the delays and the publish time to this share. */
const WARMUP_TIME_SHARE = 0.25;

/** Size and times of one run, the times in milliseconds. */
interface DelayPlan {
  jobs: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** Time from the start of the load to the start of the delayed jobs. */
  leadMs: number;
}

function planFor(options: BenchOptions, warmup: boolean): DelayPlan {
  const share = warmup ? WARMUP_TIME_SHARE : 1;
  // At least 1 ms, because the delayed jobs are published over the shortest delay.
  const minDelayMs = Math.max(1, Math.round(options.delaySeconds.min * 1000 * share));
  return {
    jobs: warmup ? warmupSize(options.delayJobs) : options.delayJobs,
    minDelayMs,
    maxDelayMs: Math.max(minDelayMs, Math.round(options.delaySeconds.max * 1000 * share)),
    leadMs: Math.min(LOAD_LEAD_MS, minDelayMs),
  };
}

/**
 * Builds the stream of delayed jobs: one publisher that spreads them evenly over the first
 * `minDelayMs`, and one worker that records each job's lateness.
 */
function delayedStream(broker: BrokerInstance, options: BenchOptions, lane: Lane, plan: DelayPlan): Stream {
  const rate = plan.jobs / (plan.minDelayMs / 1000);
  const lanes = publisherLanes(lane, plan.jobs, rate, 1).map((publisherLane) => ({
    ...publisherLane,
    delays: { minMs: plan.minDelayMs, maxMs: plan.maxDelayMs },
  }));
  const workerTimeoutMs = Math.min(timeoutMs(options), plan.minDelayMs + plan.maxDelayMs + LATE_LIMIT_MS);
  return {
    publishers: publishersSpec(broker, lanes, options.inflight, timeoutMs(options)),
    workers: {
      ...workersSpec(broker, [lane], plan.jobs, options.prefetch, true, workerTimeoutMs),
      lateness: { onTimeMicros: ON_TIME_MS * 1000, earlyMicros: EARLY_TOLERANCE_MS * 1000 },
    },
    delayMs: plan.leadMs,
  };
}

/** Builds the load: `--delay-load-rate` jobs/s end to end over the usual connections, until after the last delayed job is due. */
function loadStream(broker: BrokerInstance, options: BenchOptions, lane: Lane, plan: DelayPlan): Stream {
  const seconds = (plan.leadMs + plan.minDelayMs + plan.maxDelayMs + LOAD_TAIL_MS) / 1000;
  const jobs = Math.round(options.delayLoadRate * seconds);
  const workerLanes = Array.from({ length: options.connections }, () => lane);
  return {
    publishers: publishersSpec(broker, publisherLanes(lane, jobs, options.delayLoadRate, options.connections), options.inflight, timeoutMs(options)),
    workers: workersSpec(broker, workerLanes, jobs, options.prefetch, true, timeoutMs(options)),
    delayMs: 0,
  };
}

/** Computes the figures of one run from its two streams, the delayed jobs first and the load second. */
function delayFigures(measurement: Measurement): Figures {
  const [delayed, load] = measurement.streams;
  const workers = delayed.workers;
  const latency = workers?.latency;
  const lateness = workers?.lateness ?? null;
  const published = delayed.publishers.published;
  const jobs = published + load.publishers.published;
  return {
    p50_ms: (latency?.p50 ?? Number.NaN) / 1000,
    p99_ms: (latency?.p99 ?? Number.NaN) / 1000,
    max_ms: (latency?.max ?? Number.NaN) / 1000,
    min_ms: (lateness?.min ?? Number.NaN) / 1000,
    // Lost jobs count against the share, as they were never on time.
    on_time_pct: lateness === null || published === 0 ? Number.NaN : (100 * lateness.onTime) / published,
    early: lateness?.early ?? Number.NaN,
    lost: workers?.lost ?? Number.NaN,
    duplicates: workers?.duplicates ?? Number.NaN,
    // Delivered, not published, jobs/s: a broker that falls behind the load gets a lower rate.
    load_jobs_per_s: perSecond(load.workers?.delivered ?? 0, (load.workers?.lastAt ?? 0) - load.publishers.startedAt),
    load_p50_ms: (load.workers?.latency?.p50 ?? Number.NaN) / 1000,
    load_p99_ms: (load.workers?.latency?.p99 ?? Number.NaN) / 1000,
    ...cpuFigures(measurement, jobs),
  };
}

/** Runs the delayed jobs beside the load once. A run whose worker timed out keeps its figures and reports the error. */
async function delayRun(broker: BrokerInstance, options: BenchOptions, warmup: boolean, [delayedLane, loadLane]: Lane[]): Promise<{ figures: Figures; error?: string }> {
  const plan = planFor(options, warmup);
  const measurement = await measure(broker, [delayedStream(broker, options, delayedLane, plan), loadStream(broker, options, loadLane, plan)]);
  const figures = delayFigures(measurement);
  try {
    for (const stream of measurement.streams) {
      checkPublishers(stream.publishers);
      checkWorkers(stream.workers);
    }
  } catch (error) {
    return { figures, error: (error as Error).message };
  }
  return { figures };
}

/** Runs the delays workload on every broker with per-job delays, each run on two fresh queues. */
export async function delaysWorkload(context: WorkloadContext): Promise<void> {
  const { options } = context;
  await acrossBrokers(context, 'delays', (broker, warmup, lanes) => delayRun(broker, options, warmup, lanes), { warmup: true, laneCount: 2 });
}

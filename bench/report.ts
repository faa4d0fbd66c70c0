/**
 * Turns the recorded runs into the results page (Markdown) and its chart (SVG). The page
 * keeps any text outside its generated block, so notes written by hand survive a new run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BrokerName } from './brokers';
import { ChartPanel, renderChart } from './chart';
import { EARLY_TOLERANCE_MS, LATE_LIMIT_MS, LOAD_LEAD_MS, ON_TIME_MS } from './delays';
import { MachineInfo } from './machine';
import { BenchOptions, WORKLOAD_NAMES, WorkloadName } from './options';
import { PAYLOAD_BYTES } from './payload';
import { Spread, spread } from './stats';
import { RunRecord } from './workloads';

export interface Results {
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  options: BenchOptions;
  runs: RunRecord[];
}

/** The runs of one broker (and variant) in one workload, with the spread of each figure. */
export interface Row {
  broker: BrokerName;
  variant: string;
  figures: Record<string, Spread>;
  runs: number;
  errors: string[];
}

interface Column {
  key: string;
  label: string;
  format: (value: number) => string;
}

interface RatioColumn {
  key: string;
  label: string;
}

/** A figure computed from the rows' medians, listed under a table with the bound it should meet. */
interface Target {
  label: string;
  value: (rows: Row[]) => number | undefined;
  format: (value: number) => string;
  /** The bound as the page shows it, and its check; absent for a figure listed for comparison only. */
  bound?: { text: string; met: (value: number) => boolean };
}

interface Table {
  title: string;
  describe: (options: BenchOptions) => string;
  columns: Column[];
  /**
   * `jobatator`: Jobatator's median divided by the row's median, for comparing with peers.
   * `first-row`: the row's median divided by the first row's, for comparing settings.
   */
  ratioMode: 'jobatator' | 'first-row';
  ratios: RatioColumn[];
  targets?: (options: BenchOptions) => Target[];
  /** Runs per broker when the workload ignores --runs. */
  runs?: number;
}

const integer = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a');
const decimal = (digits: number) => (value: number): string => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
/** Milliseconds with two decimals, or whole with thousands separators from 100 ms up. */
const ms = (value: number): string => {
  if (!Number.isFinite(value)) return 'n/a';
  return value < 100 ? value.toFixed(2) : integer(value);
};
const micros = (value: number): string => {
  if (!Number.isFinite(value)) return 'n/a';
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
};

/** Formats a ratio with two significant digits, or at least two decimals. */
const ratio = (value: number): string => {
  if (!Number.isFinite(value)) return 'n/a';
  return `${value >= 0.1 ? value.toFixed(2) : value.toPrecision(2)}x`;
};
const seconds = (value: number): string => (Number.isFinite(value) ? value.toFixed(2) : 'n/a');

const JOBS_PER_S: Column = { key: 'jobs_per_s', label: 'jobs/s', format: integer };
const CPU: Column = { key: 'cpu_us_per_job', label: 'broker CPU µs/job', format: micros };
const CLIENT_CPU: Column = { key: 'client_cpu_us_per_job', label: 'client CPU µs/job', format: micros };
const MAIN_THREAD: Column = { key: 'main_thread_util_pct', label: 'main thread %', format: decimal(0) };
const OTHER_THREAD: Column = { key: 'busiest_other_thread_util_pct', label: 'busiest other thread %', format: decimal(0) };
const OTHER_LOAD: Column = { key: 'other_cpu_pct', label: 'other load %', format: decimal(0) };

export const TABLES: Record<WorkloadName, Table> = {
  publish: {
    title: 'Publish',
    describe: (o) =>
      `${integer(o.publishJobs)} jobs over ${o.connections} connections with ${o.inflight} requests in flight each, no workers. ` +
      'Jobs/s counts from the first request to the last confirmation.',
    columns: [JOBS_PER_S, CPU, CLIENT_CPU, MAIN_THREAD, OTHER_LOAD],
    ratioMode: 'jobatator',
    ratios: [
      { key: 'jobs_per_s', label: 'Jobatator ÷ row, jobs/s' },
      { key: 'cpu_us_per_job', label: 'Jobatator ÷ row, CPU/job' },
    ],
  },
  'end-to-end': {
    title: 'End to end',
    describe: (o) =>
      `${integer(o.endToEndJobs)} jobs from ${o.connections} publishers (${o.inflight} in flight each) to ${o.connections} workers ` +
      `that hold up to ${o.prefetch} jobs each and finish every job. Jobs/s counts from the first publish to the last delivery.`,
    columns: [JOBS_PER_S, CPU, { key: 'duplicates', label: 'duplicates', format: integer }, { key: 'lost', label: 'lost', format: integer }, CLIENT_CPU, MAIN_THREAD, OTHER_LOAD],
    ratioMode: 'jobatator',
    ratios: [
      { key: 'jobs_per_s', label: 'Jobatator ÷ row, jobs/s' },
      { key: 'cpu_us_per_job', label: 'Jobatator ÷ row, CPU/job' },
    ],
  },
  latency: {
    title: 'Latency',
    describe: (o) =>
      `${integer(o.latencyRate)} jobs/s for ${o.latencySeconds} s, paced over ${o.connections} publishers, ${o.connections} workers. ` +
      'Latency runs from the moment a publisher writes a job to the moment a worker reads it. Publishers follow a schedule. A publisher held back by the broker sends its next jobs late, and that wait is not counted; the stall shows in the latency of the jobs it had already sent.',
    columns: [
      { key: 'p50_ms', label: 'p50 ms', format: ms },
      { key: 'p99_ms', label: 'p99 ms', format: ms },
      { key: 'max_ms', label: 'max ms', format: ms },
      { key: 'jobs_per_s', label: 'jobs/s reached', format: integer },
      CPU,
      OTHER_LOAD,
    ],
    ratioMode: 'jobatator',
    ratios: [
      { key: 'p99_ms', label: 'Jobatator ÷ row, p99' },
      { key: 'cpu_us_per_job', label: 'Jobatator ÷ row, CPU/job' },
    ],
  },
  memory: {
    title: 'Memory',
    describe: (o) =>
      `${integer(o.memoryJobs)} pending jobs of ${PAYLOAD_BYTES} bytes published into a freshly started broker, no workers. ` +
      'Bytes/job is the growth of the resident memory (VmRSS of all its processes) from before the first publish to one second after the last confirmation, divided by the jobs.',
    columns: [
      { key: 'bytes_per_job', label: 'bytes/job', format: integer },
      { key: 'rss_before_mib', label: 'RSS before MiB', format: decimal(1) },
      { key: 'rss_after_mib', label: 'RSS after MiB', format: decimal(1) },
      CPU,
      OTHER_LOAD,
    ],
    ratioMode: 'jobatator',
    ratios: [{ key: 'bytes_per_job', label: 'Jobatator ÷ row, bytes/job' }],
  },
  isolation: {
    title: 'Isolation',
    describe: (o) =>
      `Jobatator with shards: 2 and two groups pinned to different shards. The light group publishes ${o.isolationRate} jobs/s for ` +
      `${o.isolationSeconds} s with ${o.connections} workers, first alone, then while the other group is flooded ` +
      `(${o.floodRate === null ? '80% of the maximum it reached alone, end to end' : `${o.floodRate} jobs/s`}) with its own workers.`,
    columns: [
      { key: 'p99_alone_ms', label: 'light p99 alone ms', format: ms },
      { key: 'p99_flooded_ms', label: 'light p99 flooded ms', format: ms },
      { key: 'p99_ratio', label: 'flooded ÷ alone', format: decimal(2) },
      { key: 'max_flooded_ms', label: 'light max flooded ms', format: ms },
      { key: 'flood_target_jobs_per_s', label: 'flood target jobs/s', format: integer },
      { key: 'flood_jobs_per_s', label: 'flood reached jobs/s', format: integer },
      OTHER_LOAD,
    ],
    ratioMode: 'jobatator',
    ratios: [],
  },
  scaling: {
    title: 'Scaling',
    describe: (o) =>
      `${integer(o.scalingJobs)} jobs end to end over 8 groups pinned round-robin to the shards, one publisher and one worker ` +
      'connection per group. The thread columns give CPU time as a share of one core over the run.',
    columns: [JOBS_PER_S, CPU, MAIN_THREAD, OTHER_THREAD, CLIENT_CPU, OTHER_LOAD],
    ratioMode: 'first-row',
    ratios: [
      { key: 'jobs_per_s', label: 'row ÷ first row, jobs/s' },
      { key: 'cpu_us_per_job', label: 'row ÷ first row, CPU/job' },
    ],
  },
  durability: {
    title: 'Durability',
    describe: (o) =>
      `Each row runs ${integer(o.durabilityJobs)} jobs from ${o.connections} publishers (unless the row says otherwise; ${o.inflight} in flight each) with no workers, ` +
      `then ${integer(o.durabilityJobs)} jobs end to end to ${o.connections} workers that hold up to ${o.prefetch} jobs each. ` +
      'Jobatator runs one server per `durability` mode, each with a fresh data_dir. A state-changing reply leaves once its batch is committed (`os`), or committed and synced to disk (`fsync`). ' +
      'Other load % is the higher of the two runs.',
    columns: [
      { key: 'publish_jobs_per_s', label: 'publish jobs/s', format: integer },
      { key: 'publish_cpu_us_per_job', label: 'publish broker CPU µs/job', format: micros },
      { key: 'jobs_per_s', label: 'end-to-end jobs/s', format: integer },
      { key: 'cpu_us_per_job', label: 'end-to-end broker CPU µs/job', format: micros },
      { key: 'duplicates', label: 'duplicates', format: integer },
      { key: 'lost', label: 'lost', format: integer },
      OTHER_LOAD,
    ],
    ratioMode: 'jobatator',
    ratios: [],
    targets: (o) => {
      const memory = { broker: 'jobatator', variant: 'memory' } as const;
      const durable = { broker: 'jobatator', variant: 'os' } as const;
      const synced = { broker: 'jobatator', variant: 'fsync' } as const;
      const beanstalkd = { broker: 'beanstalkd-fsync', variant: '' } as const;
      const fsyncLabel = `fsync (${o.connections} publishers)`;
      return [
        ratioTarget(`os ÷ memory, end-to-end jobs/s`, durable, memory, 'jobs_per_s', 0.75),
        ratioTarget(`os ÷ memory, publish jobs/s`, durable, memory, 'publish_jobs_per_s'),
        ratioTarget(`os ÷ memory, end-to-end CPU/job`, durable, memory, 'cpu_us_per_job'),
        ratioTarget(`${fsyncLabel} ÷ os, end-to-end jobs/s`, synced, durable, 'jobs_per_s', 0.5),
        ratioTarget(`${fsyncLabel} ÷ os, publish jobs/s`, synced, durable, 'publish_jobs_per_s'),
        ratioTarget(`${fsyncLabel} ÷ beanstalkd-fsync, end-to-end jobs/s`, synced, beanstalkd, 'jobs_per_s', 5),
        ratioTarget(`${fsyncLabel} ÷ beanstalkd-fsync, publish jobs/s`, synced, beanstalkd, 'publish_jobs_per_s'),
      ];
    },
  },
  startup: {
    title: 'Start-up',
    describe: (o) =>
      `Each run starts a Jobatator server with \`durability: os\` on a fresh data_dir, publishes ${integer(o.startupJobs)} jobs through it ` +
      `(${o.connections} connections, ${o.inflight} in flight each, no workers), stops it with SIGTERM, and starts it again. ` +
      'Start-up runs from the spawn of the process to its "listening" log line, and to the PONG of a PING sent on that line; the server logs "listening" after it loaded every stored job. ' +
      'The harness then checks that HEALTH counts every job. The data_dir was just written, so its files are in the page cache. ' +
      'Bytes/job divides the blocks allocated to the data_dir (as `du` counts them) by the jobs; apparent bytes/job divides the file sizes.',
    columns: [
      { key: 'fill_jobs_per_s', label: 'fill jobs/s', format: integer },
      { key: 'fill_cpu_us_per_job', label: 'fill broker CPU µs/job', format: micros },
      { key: 'data_dir_mib', label: 'data_dir MiB', format: decimal(1) },
      { key: 'bytes_per_job', label: 'bytes/job', format: integer },
      { key: 'apparent_bytes_per_job', label: 'apparent bytes/job', format: integer },
      { key: 'stop_s', label: 'stop s', format: seconds },
      { key: 'empty_start_s', label: 'start, empty data_dir s', format: seconds },
      { key: 'start_s', label: 'start to listening s', format: seconds },
      { key: 'start_pong_s', label: 'start to PONG s', format: seconds },
    ],
    ratioMode: 'jobatator',
    ratios: [],
    targets: (o) => [
      {
        label: `start to PONG with ${integer(o.startupJobs)} stored jobs, seconds`,
        value: (rows) => medianOf(rows, { broker: 'jobatator', variant: 'os' }, 'start_pong_s'),
        format: seconds,
        bound: { text: 'under 5', met: (value) => value < 5 },
      },
    ],
  },
  'disk-bound': {
    title: 'Disk bound',
    describe: (o) =>
      `Each run starts a Jobatator server with \`durability: os\` and \`job_timeout: 0\` on a fresh data_dir and publishes ${integer(o.diskPending)} jobs, ` +
      `whose data_dir size is the baseline. Then ${o.connections} workers (holding up to ${o.prefetch} jobs each) finish jobs while ${o.connections} publishers ` +
      `add more, until ${integer(o.diskJobs)} jobs in all have been done and deleted, with at most ${integer(o.diskPending)} stored at once. ` +
      'The size after is measured once the server holds no job. Sizes are the blocks allocated to the data_dir (as `du` counts them); ' +
      'the apparent ratio divides the file sizes. The clients run in the harness process, which the CPU figure leaves out.',
    columns: [
      JOBS_PER_S,
      CPU,
      { key: 'baseline_kib', label: 'baseline KiB', format: integer },
      { key: 'after_kib', label: 'after KiB', format: integer },
      { key: 'size_ratio', label: 'after ÷ baseline', format: decimal(2) },
      { key: 'apparent_size_ratio', label: 'apparent after ÷ baseline', format: decimal(2) },
      { key: 'duplicates', label: 'duplicates', format: integer },
    ],
    ratioMode: 'jobatator',
    ratios: [],
    targets: (o) => [
      {
        // NOTE: 3x is one reading of "no bigger than a few times the baseline"; no measured need sets it.
        label: `data_dir after ${integer(o.diskJobs)} jobs ÷ with ${integer(o.diskPending)} stored`,
        value: (rows) => medianOf(rows, { broker: 'jobatator', variant: 'os' }, 'size_ratio'),
        format: ratio,
        bound: { text: 'at most 3x', met: (value) => value <= 3 },
      },
    ],
  },
  'retry-churn': {
    title: 'Retry churn',
    describe: (o) =>
      `Each broker starts from an empty store: Jobatator with \`durability: os\`, beanstalkd with a binlog. It stores ${integer(o.churnJobs)} jobs, and one job that fails once ` +
      'and stays failed (Jobatator: `max_attempts: 1`, so it is dead; beanstalkd: buried). ' +
      `Then ${o.connections} workers, holding up to ${o.prefetch} jobs each, fail every job they get for ${integer(o.churnSeconds)} s: ` +
      '`UPDATE_JOB <id> errored` with `retry_delay: 0` and no attempt limit, or `release <id> 0 0`. ' +
      'The data directory (blocks allocated, as `du` counts them) and the resident memory are sampled at every tenth of the run, at most every 30 s. ' +
      'The baseline is the size once the jobs are stored, before the workers start; the trend divides the last sample by the first. ' +
      'Lost counts churned jobs missing after the workers closed; parked kept is 1 when the failed job is still there. One run per broker.',
    columns: [
      { key: 'jobs_per_s', label: 'failures/s', format: integer },
      { key: 'cpu_us_per_job', label: 'broker CPU µs/failure', format: micros },
      { key: 'baseline_kib', label: 'baseline KiB', format: integer },
      { key: 'max_kib', label: 'max KiB', format: integer },
      { key: 'size_ratio', label: 'max ÷ baseline', format: decimal(2) },
      { key: 'size_trend_ratio', label: 'size last ÷ first sample', format: decimal(2) },
      { key: 'rss_baseline_mib', label: 'RSS baseline MiB', format: decimal(1) },
      { key: 'rss_max_mib', label: 'RSS max MiB', format: decimal(1) },
      { key: 'rss_trend_ratio', label: 'RSS last ÷ first sample', format: decimal(2) },
      { key: 'lost', label: 'lost', format: integer },
      { key: 'parked_kept', label: 'parked kept', format: integer },
    ],
    ratioMode: 'jobatator',
    ratios: [{ key: 'jobs_per_s', label: 'Jobatator ÷ row, failures/s' }],
    runs: 1,
    targets: () => {
      const durable = { broker: 'jobatator', variant: 'os' } as const;
      return [
        {
          label: 'Jobatator data_dir, largest sample ÷ baseline',
          value: (rows) => medianOf(rows, durable, 'size_ratio'),
          format: ratio,
          bound: { text: 'at most 4x', met: (value) => value <= 4 },
        },
        {
          // NOTE: 1.25x is one reading of "stays bounded": no growth beyond sampling noise once the churn runs.
          label: 'Jobatator data_dir, last ÷ first sample',
          value: (rows) => medianOf(rows, durable, 'size_trend_ratio'),
          format: ratio,
          bound: { text: 'at most 1.25x', met: (value) => value <= 1.25 },
        },
        {
          label: 'Jobatator RSS, last ÷ first sample',
          value: (rows) => medianOf(rows, durable, 'rss_trend_ratio'),
          format: ratio,
          bound: { text: 'at most 1.25x', met: (value) => value <= 1.25 },
        },
      ];
    },
  },
  delays: {
    title: 'Delayed jobs under load',
    describe: (o) =>
      `${integer(o.delayJobs)} jobs published with delays from ${o.delaySeconds.min} to ${o.delaySeconds.max} s, at an even pace over the first ${o.delaySeconds.min} s, ` +
      `to one worker that holds up to ${o.prefetch} jobs and finishes each at once. Meanwhile ${integer(o.delayLoadRate)} jobs/s run end to end on another queue of the same group ` +
      `(in Jobatator, the same shard thread) with ${o.connections} publishers and ${o.connections} workers. The load starts ${Math.min(LOAD_LEAD_MS / 1000, o.delaySeconds.min)} s before the first delayed job and lasts until a second after the last one is due. ` +
      'Lateness is the time the worker reads a job minus its due time, which is the time its publish was written plus its delay, on one monotonic clock. ' +
      'Jobatator and beanstalkd count a delay from the moment they handle the publish, so their lateness includes the time the request takes to reach them. BullMQ counts it from the time its client creates the job. ' +
      'beanstalkd takes delays in whole seconds, so its delays are rounded to whole seconds and its due times computed from those. ' +
      'RabbitMQ takes no part because it has no per-message delay without a plugin. ' +
      `Within ${ON_TIME_MS} ms counts the jobs delivered at most ${ON_TIME_MS} ms late, and not early, as a share of the jobs published. ` +
      `Early counts the jobs delivered more than ${EARLY_TOLERANCE_MS} ms before their due time. The margin allows for brokers that start a delay from a clock in whole milliseconds. ` +
      'Earliest ms is the smallest lateness, negative for a job delivered before its due time. ' +
      `Lost counts the jobs not delivered within about ${LATE_LIMIT_MS / 1000} s after the last due time. ` +
      'Load jobs/s delivered divides the jobs of the load by the time from its first publish to its last delivery, so a broker that falls behind the load gets less than the offered rate. ' +
      'The load latency columns give the publish-to-delivery latency of the load in the same run: the time a job with no delay takes through the broker.',
    columns: [
      { key: 'p50_ms', label: 'lateness p50 ms', format: ms },
      { key: 'p99_ms', label: 'lateness p99 ms', format: ms },
      { key: 'max_ms', label: 'lateness max ms', format: ms },
      { key: 'min_ms', label: 'earliest ms', format: ms },
      { key: 'on_time_pct', label: `within ${ON_TIME_MS} ms %`, format: decimal(1) },
      { key: 'early', label: 'early', format: integer },
      { key: 'lost', label: 'lost', format: integer },
      { key: 'duplicates', label: 'duplicates', format: integer },
      { key: 'load_jobs_per_s', label: 'load jobs/s delivered', format: integer },
      { key: 'load_p50_ms', label: 'load latency p50 ms', format: ms },
      { key: 'load_p99_ms', label: 'load latency p99 ms', format: ms },
      CPU,
      OTHER_LOAD,
    ],
    ratioMode: 'jobatator',
    ratios: [
      { key: 'p99_ms', label: 'Jobatator ÷ row, lateness p99' },
      { key: 'max_ms', label: 'Jobatator ÷ row, lateness max' },
    ],
    targets: () => {
      const jobatator = { broker: 'jobatator', variant: '' } as const;
      return [
        {
          label: 'Jobatator lateness p99, ms',
          value: (rows) => medianOf(rows, jobatator, 'p99_ms'),
          format: ms,
          bound: { text: `at most ${ON_TIME_MS}`, met: (value) => value <= ON_TIME_MS },
        },
        {
          label: `Jobatator jobs delivered more than ${EARLY_TOLERANCE_MS} ms early, highest of the runs`,
          value: (rows) => maxOf(rows, jobatator, 'early'),
          format: integer,
          bound: { text: '0', met: (value) => value === 0 },
        },
        {
          label: 'Jobatator delayed jobs lost or duplicated, highest of the runs',
          value: (rows) => sumOf(maxOf(rows, jobatator, 'lost'), maxOf(rows, jobatator, 'duplicates')),
          format: integer,
          bound: { text: '0', met: (value) => value === 0 },
        },
      ];
    },
  },
};

/** A broker, and a setting of it, that names one row. */
interface RowRef {
  broker: BrokerName;
  variant: string;
}

/** Returns a row's median of a figure, or undefined when the row or the figure is missing. */
function medianOf(rows: Row[], ref: RowRef, key: string): number | undefined {
  return rows.find((row) => row.broker === ref.broker && row.variant === ref.variant)?.figures[key]?.median;
}

/** Returns a row's highest value of a figure over its runs, or undefined when the row or the figure is missing. */
function maxOf(rows: Row[], ref: RowRef, key: string): number | undefined {
  return rows.find((row) => row.broker === ref.broker && row.variant === ref.variant)?.figures[key]?.max;
}

function sumOf(first: number | undefined, second: number | undefined): number | undefined {
  return first === undefined || second === undefined ? undefined : first + second;
}

/** Builds a target on the ratio of two rows' medians; without `min` it is listed for comparison only. */
function ratioTarget(label: string, numerator: RowRef, denominator: RowRef, key: string, min?: number): Target {
  return {
    label,
    value: (rows) => {
      const top = medianOf(rows, numerator, key);
      const bottom = medianOf(rows, denominator, key);
      return top === undefined || bottom === undefined || bottom === 0 ? undefined : top / bottom;
    },
    format: ratio,
    bound: min === undefined ? undefined : { text: `at least ${min}x`, met: (value) => value >= min },
  };
}

function renderTargets(targets: Target[], rows: Row[]): string {
  const lines = ['| figure | target | this run | met |', '| --- | --- | ---: | --- |'];
  for (const target of targets) {
    const value = target.value(rows);
    const valueText = value === undefined ? 'n/a' : target.format(value);
    let met = '—';
    if (target.bound !== undefined) met = value === undefined ? 'n/a' : target.bound.met(value) ? 'yes' : 'no';
    lines.push(`| ${target.label} | ${target.bound?.text ?? '—'} | ${valueText} | ${met} |`);
  }
  return lines.join('\n');
}

/** Groups the runs of a workload by broker and variant, in the order they ran. */
export function rowsOf(runs: RunRecord[], workload: WorkloadName): Row[] {
  const groups = new Map<string, RunRecord[]>();
  for (const record of runs) {
    if (record.workload !== workload) continue;
    const key = `${record.broker}\u0000${record.variant}`;
    const list = groups.get(key) ?? [];
    list.push(record);
    groups.set(key, list);
  }
  return [...groups.values()].map((records) => {
    const keys = new Set(records.flatMap((record) => Object.keys(record.figures)));
    const figures: Record<string, Spread> = {};
    for (const key of keys) {
      const values = records.map((record) => record.figures[key]).filter((value) => value !== undefined && Number.isFinite(value));
      if (values.length > 0) figures[key] = spread(values);
    }
    return {
      broker: records[0].broker,
      variant: records[0].variant,
      figures,
      runs: records.length,
      errors: records.filter((record) => record.error !== undefined).map((record) => `run ${record.run}: ${record.error}`),
    };
  });
}

function cell(value: Spread | undefined, format: (value: number) => string, runs: number): string {
  if (value === undefined) return 'n/a';
  if (runs <= 1 || value.min === value.max) return format(value.median);
  return `${format(value.median)} (${format(value.min)}–${format(value.max)})`;
}

/** Formats the ratio of two medians. */
function ratioCell(numerator: Spread | undefined, denominator: Spread | undefined): string {
  if (numerator === undefined || denominator === undefined || denominator.median === 0) return 'n/a';
  return ratio(numerator.median / denominator.median);
}

function rowLabel(row: Row): string {
  return row.variant === '' ? row.broker : `${row.broker}, ${row.variant}`;
}

function renderTable(table: Table, rows: Row[]): string {
  const jobatator = rows.find((row) => row.broker === 'jobatator');
  const header = ['broker', ...table.columns.map((column) => column.label), ...table.ratios.map((ratio) => ratio.label)];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, index) => (index === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const row of rows) {
    const cells = [rowLabel(row), ...table.columns.map((column) => cell(row.figures[column.key], column.format, row.runs))];
    for (const ratio of table.ratios) {
      if (table.ratioMode === 'jobatator') {
        cells.push(row === jobatator ? '—' : ratioCell(jobatator?.figures[ratio.key], row.figures[ratio.key]));
      } else {
        cells.push(row === rows[0] ? '—' : ratioCell(row.figures[ratio.key], rows[0].figures[ratio.key]));
      }
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Brokers whose runs make a program's version worth listing. */
const VERSION_OWNERS: Record<string, BrokerName[]> = {
  beanstalkd: ['beanstalkd-memory', 'beanstalkd-binlog', 'beanstalkd-fsync'],
  'redis-server': ['bullmq'],
  'rabbitmq-server': ['rabbitmq'],
  erlang: ['rabbitmq'],
  amqplib: ['rabbitmq'],
  bullmq: ['bullmq'],
  ioredis: ['bullmq'],
};

function renderMachine(results: Results): string {
  const { machine } = results;
  const versions = Object.entries(machine.versions)
    .filter(([name]) => VERSION_OWNERS[name]?.some((broker) => results.options.brokers.includes(broker)) ?? true)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  return [
    `- CPU: ${machine.cpuModel}${machine.cpuMHz === null ? '' : ` at ${machine.cpuMHz} MHz`}, ${machine.cores} cores (load generator and brokers share them)`,
    `- Memory: ${machine.memoryGiB} GiB`,
    `- OS: ${machine.kernel}; Node.js ${machine.node}`,
    ...(machine.dataFileSystems === undefined ? [] : [`- Disk: ${machine.dataFileSystems}`]),
    `- Peers and clients: ${versions}`,
  ].join('\n');
}

function renderSettings(options: BenchOptions): string {
  return [
    `- Payload: ${PAYLOAD_BYTES}-byte JSON objects; ${options.runs} measured run(s) per figure${options.warmup ? ', after one untimed warm-up run at a tenth of the size' : ', no warm-up'}.`,
    `- Jobatator: in memory unless the table gives a \`durability\` mode, \`shards: ${options.shards}\` unless the table says otherwise, \`prefetch: ${options.prefetch}\`, \`job_timeout: 0\` (a finished job is deleted at once, as the peers do).`,
    `- beanstalkd-memory: beanstalkd without a binlog. beanstalkd-binlog: with \`-b DIR\` and its default fsync, at most once every 50 ms. beanstalkd-fsync: with \`-b DIR -f 0\`, an fsync after every write to the binlog, before the reply. Workers keep ${options.prefetch} \`reserve\` commands outstanding.`,
    `- rabbitmq: a durable classic queue, persistent messages, publisher confirms, manual acks, \`prefetch ${options.prefetch}\` (amqplib).`,
    `- bullmq: BullMQ workers with \`concurrency: ${options.prefetch}\` on Redis without persistence; jobs are removed on completion. The CPU counted is Redis's.`,
    '- ceiling: a bare Node.js TCP server that replies to every line with a fixed `OK#` line, driven by the Jobatator publisher code.',
  ].join('\n');
}

/** Returns the figures as Markdown: machine, settings, one table per workload, the chart and failed runs. */
export function renderResults(results: Results, chartFile: string | null): string {
  const { options } = results;
  const parts: string[] = [];
  if (options.note !== null) parts.push(options.note, '');
  parts.push(
    `Measured ${results.startedAt} to ${results.finishedAt} with \`${results.command}\`.`,
    '',
    'Each cell is the median of the runs, with the minimum and maximum in brackets. Broker CPU is the user and system time of the broker\'s processes ' +
      '(every thread and child process, from /proc), divided by the jobs of the run. Client CPU is the same for the load generator processes. ' +
      'A ratio column divides medians measured in this same invocation. Main thread % is the CPU time of the broker\'s main thread as a share of one core over the run. ' +
      'Other load % estimates, from /proc/stat, the CPU time that programs other than the broker and the load generators used during the run, as a share of one core: ' +
      'a high value means that something else competed for the cores and the run is less trustworthy.',
    '',
    '## Machine',
    '',
    renderMachine(results),
    '',
    '## Settings',
    '',
    renderSettings(options),
  );
  if (chartFile !== null) parts.push('', `![Throughput and p99 latency per broker](${chartFile})`);
  const failures: string[] = [];
  for (const workload of WORKLOAD_NAMES) {
    const rows = rowsOf(results.runs, workload);
    if (rows.length === 0) continue;
    const table = TABLES[workload];
    parts.push('', `## ${table.title}`, '', table.describe(options), '', renderTable(table, rows));
    if (table.targets !== undefined) parts.push('', renderTargets(table.targets(options), rows));
    for (const row of rows) for (const error of row.errors) failures.push(`- ${table.title}, ${rowLabel(row)}, ${error}`);
  }
  if (failures.length > 0) parts.push('', '## Failed runs', '', ...failures);
  return `${parts.join('\n')}\n`;
}

/** Returns the chart: publish and end-to-end throughput, and latency p99, per broker. */
export function renderResultsChart(results: Results): string {
  const panel = (workload: WorkloadName, key: string, title: string, format: (value: number) => string, logScale = false): ChartPanel => ({
    title,
    format,
    logScale,
    bars: rowsOf(results.runs, workload).map((row) => {
      const value = row.figures[key];
      return {
        label: rowLabel(row),
        median: value?.median ?? Number.NaN,
        min: value?.min ?? Number.NaN,
        max: value?.max ?? Number.NaN,
        highlight: row.broker === 'jobatator',
      };
    }),
  });
  const { options, machine } = results;
  return renderChart(
    'Jobatator and its peers, medians with min–max of the runs',
    `${machine.cpuModel}, ${machine.cores} cores, Node.js ${machine.node}; ${results.startedAt.slice(0, 10)}`,
    [
      panel('publish', 'jobs_per_s', `Publish, jobs/s (${options.connections} connections x ${options.inflight} in flight)`, integer),
      panel('end-to-end', 'jobs_per_s', `End to end, jobs/s (${options.connections} publishers, ${options.connections} workers)`, integer),
      panel('latency', 'p99_ms', `Latency p99 at ${integer(options.latencyRate)} jobs/s, ms, logarithmic axis (shorter is better)`, (value) => `${ms(value)} ms`, true),
    ],
  );
}

const BLOCK_START = '<!-- Generated by npm run bench: the text between these markers is replaced on every run. -->';
const BLOCK_END = '<!-- End of generated results. -->';

/** Writes the page, replacing only the generated block of an existing page. */
export function writeResultsPage(file: string, results: Results, chartFile: string | null): void {
  const block = `${BLOCK_START}\n\n${renderResults(results, chartFile)}\n${BLOCK_END}`;
  let page: string;
  const existing = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  const start = existing?.indexOf(BLOCK_START) ?? -1;
  const end = existing?.indexOf(BLOCK_END) ?? -1;
  if (existing !== null && start !== -1 && end > start) {
    page = existing.slice(0, start) + block + existing.slice(end + BLOCK_END.length);
  } else {
    page = `# Benchmark results\n\nHow to run: \`bench/setup\`, then \`npm run bench\`, then \`bench/setup stop\`.\n\n${block}\n`;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, page);
}

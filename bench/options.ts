import os from 'node:os';
import { parseArgs } from 'node:util';
import { BROKER_NAMES, BrokerName } from './brokers';

export const WORKLOAD_NAMES = ['publish', 'end-to-end', 'latency', 'memory', 'isolation', 'scaling', 'durability', 'startup', 'disk-bound', 'retry-churn', 'delays'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

export interface BenchOptions {
  workloads: WorkloadName[];
  brokers: BrokerName[];
  runs: number;
  warmup: boolean;
  publishJobs: number;
  endToEndJobs: number;
  latencyRate: number;
  latencySeconds: number;
  memoryJobs: number;
  isolationRate: number;
  isolationSeconds: number;
  /** Flood rate in jobs/s; null measures the flooded group's maximum and uses 80% of it. */
  floodRate: number | null;
  isolationProbeJobs: number;
  scalingJobs: number;
  scalingShards: number[];
  /** Jobs of each publish run and each end-to-end run of the durability workload. */
  durabilityJobs: number;
  /** Pending jobs stored before the timed start of the startup workload. */
  startupJobs: number;
  /** Jobs that pass through the server in the disk-bound workload. */
  diskJobs: number;
  /** Maximum jobs stored at once in the disk-bound workload, and the stored jobs of its baseline. */
  diskPending: number;
  /** Jobs that fail and are retried throughout the retry-churn workload. */
  churnJobs: number;
  /** Duration of the retry-churn workload's single run per broker, in seconds. */
  churnSeconds: number;
  /** Delayed jobs of each run of the delays workload. */
  delayJobs: number;
  /** Jobs/s of the end-to-end load that runs beside the delayed jobs. */
  delayLoadRate: number;
  /** Shortest and longest delay of the delays workload, in seconds. */
  delaySeconds: { min: number; max: number };
  /** Time the memory workload waits after the last confirmation before it reads RSS. */
  memorySettleMs: number;
  /** Jobatator's shard threads in every workload but isolation and scaling. */
  shards: number;
  prefetch: number;
  connections: number;
  inflight: number;
  timeoutSeconds: number;
  output: string | null;
  svg: string | null;
  json: string | null;
  note: string | null;
  /** A results JSON file to render as the page and chart, instead of running anything. */
  render: string | null;
  smoke: boolean;
}

export const USAGE = `Usage: npm run bench -- [options]
Runs the workloads against each broker, prints one progress line per run, and writes the
results page. Peers (every broker but jobatator and ceiling) need bench/setup first.

  --workloads LIST        comma-separated, from: ${WORKLOAD_NAMES.join(', ')} (all)
  --brokers LIST          comma-separated, from: ${BROKER_NAMES.join(', ')} (all);
                          the ceiling takes part in publish only, beanstalkd-fsync in
                          durability only, retry-churn runs Jobatator and beanstalkd-binlog,
                          startup and disk-bound run Jobatator only, and delays runs every
                          broker but rabbitmq
  --runs N                measured runs per figure; figures are their median (3)
  --no-warmup             skip the untimed run at a tenth of the size before the measured runs
  --publish-jobs N        jobs of the publish workload (200000)
  --end-to-end-jobs N     jobs of the end-to-end workload (100000)
  --latency-rate N        jobs/s of the latency workload (2000)
  --latency-seconds N     duration of the latency workload in seconds (20)
  --memory-jobs N         pending jobs of the memory workload (1000000)
  --isolation-rate N      jobs/s of the light group in the isolation workload (500)
  --isolation-seconds N   duration of each isolation measurement in seconds (20)
  --flood-rate N          jobs/s of the flooded group; default 80% of its measured maximum
                          (2000 with --smoke)
  --isolation-probe-jobs N  jobs of the end-to-end run that measures that maximum (50000)
  --scaling-jobs N        jobs of each scaling run (100000)
  --scaling-shards LIST   comma-separated shard counts of the scaling workload (1,2,4)
  --durability-jobs N     jobs of each publish and each end-to-end run of the durability
                          workload (50000)
  --startup-jobs N        pending jobs stored before the timed start of the startup
                          workload (1000000)
  --disk-jobs N           jobs that pass through the server in the disk-bound workload
                          (1000000)
  --disk-pending N        maximum jobs stored at once in the disk-bound workload, and the
                          stored jobs of its baseline size (1000)
  --churn-jobs N          jobs that fail and are retried throughout the retry-churn
                          workload (1000)
  --churn-seconds N       duration of the retry-churn workload, whose figures come from
                          one run per broker whatever --runs says (600)
  --delay-jobs N          delayed jobs of each run of the delays workload (2000)
  --delay-load-rate N     jobs/s of the end-to-end load on another queue of the same group
                          while the delayed jobs wait and arrive (2000)
  --delay-seconds MIN,MAX shortest and longest delay of the delays workload, in seconds
                          (2,10; 0.2,0.6 with --smoke). The delayed jobs are published at an
                          even pace over the first MIN seconds. beanstalkd takes whole
                          seconds, so its delays are rounded to them (at least 1). rabbitmq
                          takes no part because it has no per-message delay without a plugin
  --shards N              Jobatator's shards elsewhere (CPU count - 1, at least 1)
  --prefetch N            unfinished jobs each worker holds, on every broker (16)
  --connections N         publisher connections, and worker connections (4)
  --inflight N            requests in flight per publisher connection (64)
  --timeout-seconds N     limit of one run, after which it counts as failed (600)
  --output FILE           results page to write (bench/RESULTS.md; none with --smoke)
  --svg FILE              chart to write (results.svg beside the page)
  --json FILE             raw results as JSON (none)
  --note TEXT             paragraph to put at the top of the results
  --render FILE           write the page and chart from a --json file of an earlier run,
                          without running anything
  --smoke                 a few hundred jobs per workload, Jobatator and the ceiling unless
                          --brokers says otherwise, one run, no warm-up, a 0.1 s memory settle time: checks that
                          the harness works
  --help                  show this text
`;

export function integer(name: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new Error(`--${name} must be an integer ${range}, got "${text}"`);
  }
  return value;
}

/** Largest `shards:` value the server accepts. */
const MAX_SHARDS = 256;

function positiveNumber(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a number above 0, got "${text}"`);
  return value;
}

/** Parses `--delay-seconds MIN,MAX`: two numbers above 0, MIN at most MAX. */
function delayRange(text: string): { min: number; max: number } {
  const parts = text.split(',').map((part) => part.trim());
  if (parts.length !== 2) throw new Error(`--delay-seconds must be two numbers MIN,MAX such as 2,10, got "${text}"`);
  const min = positiveNumber('delay-seconds', parts[0]);
  const max = positiveNumber('delay-seconds', parts[1]);
  if (min > max) throw new Error(`--delay-seconds must give the shorter delay first, got "${text}"`);
  return { min, max };
}

/** Returns the flood rate option; without it, smoke mode floods at a fixed 2,000 jobs/s and a real run measures. */
function floodRate(text: string | undefined, smoke: boolean): number | null {
  if (text !== undefined) return integer('flood-rate', text, 1);
  return smoke ? 2000 : null;
}

export function list<T extends string>(name: string, text: string, allowed: readonly T[]): T[] {
  const items = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new Error(`--${name}: unknown "${item}"; expected some of ${allowed.join(', ')}`);
  }
  if (items.length === 0) throw new Error(`--${name} is empty`);
  const repeated = items.find((item, index) => items.indexOf(item) !== index);
  if (repeated !== undefined) throw new Error(`--${name} lists "${repeated}" twice; name each once`);
  return items as T[];
}

/** Parses the command line; returns null after printing the usage for --help. */
export function parseOptions(argv: string[], defaultOutput: string): BenchOptions | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean' },
      smoke: { type: 'boolean' },
      'no-warmup': { type: 'boolean' },
      workloads: { type: 'string' },
      brokers: { type: 'string' },
      runs: { type: 'string' },
      'publish-jobs': { type: 'string' },
      'end-to-end-jobs': { type: 'string' },
      'latency-rate': { type: 'string' },
      'latency-seconds': { type: 'string' },
      'memory-jobs': { type: 'string' },
      'isolation-rate': { type: 'string' },
      'isolation-seconds': { type: 'string' },
      'flood-rate': { type: 'string' },
      'isolation-probe-jobs': { type: 'string' },
      'scaling-jobs': { type: 'string' },
      'scaling-shards': { type: 'string' },
      'durability-jobs': { type: 'string' },
      'startup-jobs': { type: 'string' },
      'disk-jobs': { type: 'string' },
      'disk-pending': { type: 'string' },
      'churn-jobs': { type: 'string' },
      'churn-seconds': { type: 'string' },
      'delay-jobs': { type: 'string' },
      'delay-load-rate': { type: 'string' },
      'delay-seconds': { type: 'string' },
      shards: { type: 'string' },
      prefetch: { type: 'string' },
      connections: { type: 'string' },
      inflight: { type: 'string' },
      'timeout-seconds': { type: 'string' },
      output: { type: 'string' },
      svg: { type: 'string' },
      json: { type: 'string' },
      note: { type: 'string' },
      render: { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return null;
  }
  const smoke = values.smoke === true;
  // The smoke preset: small enough for the test suite, large enough to cross every code path.
  const defaults = smoke
    ? { runs: '1', publish: '400', endToEnd: '400', latencyRate: '1000', latencySeconds: '0.3', memory: '400', isolationRate: '1000', isolationSeconds: '0.3', probe: '400', scaling: '400', scalingShards: '1,2', durability: '400', startup: '400', disk: '2000', diskPending: '100', churnJobs: '100', churnSeconds: '2', delayJobs: '200', delayLoadRate: '1000', delaySeconds: '0.2,0.6', brokers: 'jobatator,ceiling' }
    : { runs: '3', publish: '200000', endToEnd: '100000', latencyRate: '2000', latencySeconds: '20', memory: '1000000', isolationRate: '500', isolationSeconds: '20', probe: '50000', scaling: '100000', scalingShards: '1,2,4', durability: '50000', startup: '1000000', disk: '1000000', diskPending: '1000', churnJobs: '1000', churnSeconds: '600', delayJobs: '2000', delayLoadRate: '2000', delaySeconds: '2,10', brokers: BROKER_NAMES.join(',') };
  const output = values.output ?? (smoke ? null : defaultOutput);
  const options: BenchOptions = {
    workloads: list('workloads', values.workloads ?? WORKLOAD_NAMES.join(','), WORKLOAD_NAMES),
    brokers: list('brokers', values.brokers ?? defaults.brokers, BROKER_NAMES),
    runs: integer('runs', values.runs ?? defaults.runs, 1),
    warmup: !smoke && values['no-warmup'] !== true,
    publishJobs: integer('publish-jobs', values['publish-jobs'] ?? defaults.publish, 1),
    endToEndJobs: integer('end-to-end-jobs', values['end-to-end-jobs'] ?? defaults.endToEnd, 1),
    latencyRate: integer('latency-rate', values['latency-rate'] ?? defaults.latencyRate, 1),
    latencySeconds: positiveNumber('latency-seconds', values['latency-seconds'] ?? defaults.latencySeconds),
    memoryJobs: integer('memory-jobs', values['memory-jobs'] ?? defaults.memory, 1),
    isolationRate: integer('isolation-rate', values['isolation-rate'] ?? defaults.isolationRate, 1),
    isolationSeconds: positiveNumber('isolation-seconds', values['isolation-seconds'] ?? defaults.isolationSeconds),
    floodRate: floodRate(values['flood-rate'], smoke),
    isolationProbeJobs: integer('isolation-probe-jobs', values['isolation-probe-jobs'] ?? defaults.probe, 1),
    scalingJobs: integer('scaling-jobs', values['scaling-jobs'] ?? defaults.scaling, 1),
    scalingShards: (values['scaling-shards'] ?? defaults.scalingShards).split(',').map((text) => integer('scaling-shards', text.trim(), 1, MAX_SHARDS)),
    durabilityJobs: integer('durability-jobs', values['durability-jobs'] ?? defaults.durability, 1),
    startupJobs: integer('startup-jobs', values['startup-jobs'] ?? defaults.startup, 1),
    diskJobs: integer('disk-jobs', values['disk-jobs'] ?? defaults.disk, 1),
    diskPending: integer('disk-pending', values['disk-pending'] ?? defaults.diskPending, 1),
    churnJobs: integer('churn-jobs', values['churn-jobs'] ?? defaults.churnJobs, 1),
    churnSeconds: positiveNumber('churn-seconds', values['churn-seconds'] ?? defaults.churnSeconds),
    delayJobs: integer('delay-jobs', values['delay-jobs'] ?? defaults.delayJobs, 1),
    delayLoadRate: integer('delay-load-rate', values['delay-load-rate'] ?? defaults.delayLoadRate, 1),
    delaySeconds: delayRange(values['delay-seconds'] ?? defaults.delaySeconds),
    memorySettleMs: smoke ? 100 : 1000,
    shards: integer('shards', values.shards ?? String(Math.max(1, os.availableParallelism() - 1)), 1, MAX_SHARDS),
    prefetch: integer('prefetch', values.prefetch ?? '16', 1),
    connections: integer('connections', values.connections ?? '4', 1),
    inflight: integer('inflight', values.inflight ?? '64', 1),
    timeoutSeconds: integer('timeout-seconds', values['timeout-seconds'] ?? '600', 1),
    output,
    svg: values.svg ?? (output === null ? null : output.replace(/[^/]*$/, 'results.svg')),
    json: values.json ?? null,
    note: values.note ?? null,
    render: values.render ?? null,
    smoke,
  };
  checkDiskPending(options);
  return options;
}

/**
 * Rejects a disk-bound window that the workers' unfinished jobs would fill: a job pushed to a
 * worker stays stored until the server has run its UPDATE_JOB, so the publishers keep at most
 * `--disk-pending` minus connections x prefetch jobs undelivered.
 */
function checkDiskPending(options: BenchOptions): void {
  if (!options.workloads.includes('disk-bound')) return;
  const maxHeld = options.connections * options.prefetch;
  if (options.diskPending <= maxHeld) {
    throw new Error(`--disk-pending must be above --connections x --prefetch (${maxHeld}), the jobs the workers may hold, got ${options.diskPending}; raise it or lower --prefetch`);
  }
}

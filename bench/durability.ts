/**
 * Durability: publish and end-to-end throughput of Jobatator in each `durability` mode, next to
 * the peers that write every job to disk. Each mode runs on a server of its own with a fresh
 * temporary data_dir, which the server's stop removes.
 */
import { DURABILITY_MODES } from '../src/config/types';
import { Lane } from './adapters/types';
import { BrokerInstance, JobatatorServer, startJobatator } from './brokers';
import { BenchOptions } from './options';
import { attempt, BENCH_GROUP, brokersFor, endToEndRun, Figures, freshQueue, jobatatorSettings, publishRun, warmupSize, WorkloadContext } from './workloads';

/** One row of the durability table: a broker, or one mode of Jobatator, with its publisher count. */
interface DurabilityRow {
  broker: BrokerInstance;
  variant: string;
  /** Publisher connections; every row has --connections workers. */
  publishers: number;
}

/**
 * Starts one Jobatator server per durability mode, adding each to `servers` for the caller
 * to stop, and lists the rows in the order of --brokers.
 */
async function startRows(context: WorkloadContext, servers: JobatatorServer[]): Promise<DurabilityRow[]> {
  const { options } = context;
  const rows: DurabilityRow[] = [];
  for (const name of brokersFor('durability', options)) {
    if (name !== 'jobatator') {
      rows.push({ broker: context.brokers.get(name) as BrokerInstance, variant: '', publishers: options.connections });
      continue;
    }
    const started = await Promise.allSettled(
      DURABILITY_MODES.map(async (durability) => {
        const server = await startJobatator({ ...jobatatorSettings(options, [{ slug: BENCH_GROUP }]), durability });
        servers.push(server);
        return server;
      }),
    );
    for (const [index, outcome] of started.entries()) {
      if (outcome.status === 'rejected') throw outcome.reason;
      const durability = DURABILITY_MODES[index];
      rows.push({ broker: outcome.value, variant: durability, publishers: options.connections });
      // One publisher shows what fsync costs when fewer requests share each commit. It runs no
      // code that the other rows skip, so smoke mode leaves it out to stay short.
      if (durability === 'fsync' && options.connections > 1 && !options.smoke) rows.push({ broker: outcome.value, variant: 'fsync, 1 publisher', publishers: 1 });
    }
  }
  return rows;
}

/** Runs the publish run, then the end-to-end run, of one row; each starts on an empty queue. */
async function runRow(row: DurabilityRow, options: BenchOptions, warmup: boolean): Promise<{ figures: Figures; error?: string }> {
  const jobs = warmup ? warmupSize(options.durabilityJobs) : options.durabilityJobs;
  const publishLane: Lane = { queue: freshQueue('durability'), group: BENCH_GROUP };
  const published = await attempt(row.broker, (broker) => publishRun(broker, options, publishLane, jobs, row.publishers), warmup, [publishLane]);
  const lane: Lane = { queue: freshQueue('durability'), group: BENCH_GROUP };
  const publisherLanes = Array.from({ length: row.publishers }, () => lane);
  const workerLanes = Array.from({ length: options.connections }, () => lane);
  const finished = await attempt(row.broker, (broker) => endToEndRun(broker, options, publisherLanes, workerLanes, jobs), warmup, [lane]);

  const figures: Figures = { ...finished.figures };
  if (published.figures.jobs_per_s !== undefined) figures.publish_jobs_per_s = published.figures.jobs_per_s;
  if (published.figures.cpu_us_per_job !== undefined) figures.publish_cpu_us_per_job = published.figures.cpu_us_per_job;
  // The busier of the two runs decides how far other programs may have disturbed the row.
  const otherLoad = [published.figures.other_cpu_pct, finished.figures.other_cpu_pct].filter((value) => value !== undefined);
  if (otherLoad.length > 0) figures.other_cpu_pct = Math.max(...otherLoad);
  const errors = [published.error === undefined ? null : `publish: ${published.error}`, finished.error === undefined ? null : `end to end: ${finished.error}`];
  const error = errors.filter((text) => text !== null).join('; ');
  return error === '' ? { figures } : { figures, error };
}

/** Durability: every row once per run, so that a drift of the machine touches all rows alike. */
export async function durabilityWorkload(context: WorkloadContext): Promise<void> {
  const { options } = context;
  const servers: JobatatorServer[] = [];
  try {
    const rows = await startRows(context, servers);
    const label = (row: DurabilityRow): string => (row.variant === '' ? row.broker.name : `${row.broker.name} (${row.variant})`);
    if (options.warmup) {
      for (const row of rows) {
        const outcome = await runRow(row, options, true);
        context.note(`[durability] ${label(row)} warm-up${outcome.error === undefined ? ' done' : ` failed: ${outcome.error}`}`);
      }
    }
    for (let run = 1; run <= options.runs; run++) {
      for (const row of rows) {
        const outcome = await runRow(row, options, false);
        context.record({ workload: 'durability', broker: row.broker.name, variant: row.variant, run, ...outcome });
      }
    }
  } finally {
    for (const server of servers) await server.stop();
  }
}

/**
 * Retry churn: whether the store and the memory of a broker stay bounded while jobs fail and
 * are retried for a long time, next to one job that failed for good before the churn began
 * and stays. A store that reclaims space only behind its oldest live record grows without
 * end here. Each broker starts from an empty store: a fresh Jobatator server in `os` mode,
 * and beanstalkd with a binlog, restarted.
 *
 * The data directory's size and the broker's resident memory are sampled at a fixed
 * interval. Each broker gets one run, regardless of --runs, because one run lasts
 * --churn-seconds.
 */
import path from 'node:path';
import { BrokerInstance, BrokerName, peersFile, startJobatator } from './brokers';
import { beanstalkdChurn, ChurnClient, ChurnWorker, jobatatorChurn } from './churn-clients';
import { directorySize } from './disk-usage';
import { BenchOptions } from './options';
import { cpuMicros, rssBytes } from './proc';
import { BENCH_GROUP, brokersFor, Figures, freshQueue, jobatatorSettings, WorkloadContext } from './workloads';

/** Maximum interval between two samples. A run shorter than ten such intervals takes ten samples. */
const MAX_SAMPLE_MS = 30_000;

interface ChurnTarget {
  broker: BrokerInstance;
  dataDir: string;
  client: ChurnClient;
}

interface Sample {
  seconds: number;
  bytes: number;
  rss: number;
  failures: number;
}

const KIB = 1024;
const MIB = 1024 * 1024;

/** Returns the data directory that bench/setup gives a peer started with a binlog. */
function peerDataDir(name: BrokerName): string {
  return path.join(path.dirname(peersFile()), `${name}-data`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function measureChurn(target: ChurnTarget, options: BenchOptions, figures: Figures, note: (text: string) => void): Promise<void> {
  const { broker, dataDir, client } = target;
  await client.fill(options.churnJobs);
  const baselineBytes = directorySize(dataDir).allocatedBytes;
  const baselineRss = rssBytes(broker.pids());
  figures.baseline_kib = baselineBytes / KIB;
  figures.rss_baseline_mib = baselineRss / MIB;

  const errors: Error[] = [];
  const workers: ChurnWorker[] = [];
  const cpuBefore = cpuMicros(broker.pids());
  const startedAt = performance.now();
  const samples: Sample[] = [];
  try {
    for (let index = 0; index < options.connections; index++) workers.push(await client.openWorker(options.prefetch, (error) => errors.push(error)));
    const durationMs = options.churnSeconds * 1000;
    const intervalMs = Math.min(MAX_SAMPLE_MS, durationMs / 10);
    for (let next = intervalMs; next <= durationMs + 1; next += intervalMs) {
      await sleep(Math.max(0, startedAt + next - performance.now()));
      if (errors.length > 0) throw errors[0];
      const failures = workers.reduce((sum, worker) => sum + worker.failures, 0);
      const previous = samples.at(-1)?.failures ?? 0;
      if (failures === previous) throw new Error(`no failure was confirmed in the ${Math.round(intervalMs / 1000)} s before ${Math.round(next / 1000)} s`);
      const sample = { seconds: (performance.now() - startedAt) / 1000, bytes: directorySize(dataDir).allocatedBytes, rss: rssBytes(broker.pids()), failures };
      samples.push(sample);
      note(`[retry-churn] ${broker.name} at ${sample.seconds.toFixed(sample.seconds < 10 ? 1 : 0)} s: data_dir ${Math.round(sample.bytes / KIB).toLocaleString('en-US')} KiB, RSS ${(sample.rss / MIB).toFixed(1)} MiB, ${failures.toLocaleString('en-US')} failures`);
    }
  } finally {
    for (const worker of workers) await worker.close();
  }

  const last = samples[samples.length - 1];
  figures.jobs_per_s = last.failures / last.seconds;
  figures.cpu_us_per_job = (cpuMicros(broker.pids()) - cpuBefore) / last.failures;
  figures.max_kib = Math.max(...samples.map((sample) => sample.bytes)) / KIB;
  figures.last_kib = last.bytes / KIB;
  figures.size_ratio = (figures.max_kib * KIB) / baselineBytes;
  figures.size_trend_ratio = last.bytes / samples[0].bytes;
  figures.rss_max_mib = Math.max(...samples.map((sample) => sample.rss)) / MIB;
  figures.rss_trend_ratio = last.rss / samples[0].rss;

  const remaining = await client.check();
  figures.lost = options.churnJobs - remaining.stored;
  figures.parked_kept = remaining.parkedKept ? 1 : 0;
  if (figures.lost !== 0) throw new Error(`${options.churnJobs} jobs churned and ${remaining.stored} are left`);
  if (!remaining.parkedKept) throw new Error('the job parked in its failed state before the churn is gone');
}

async function startTarget(name: BrokerName, context: WorkloadContext, started: BrokerInstance[]): Promise<ChurnTarget> {
  const queues = { churn: freshQueue('churn'), parked: freshQueue('parked'), group: BENCH_GROUP };
  if (name === 'jobatator') {
    const server = await startJobatator({ ...jobatatorSettings(context.options, [{ slug: BENCH_GROUP }]), durability: 'os' });
    started.push(server);
    return { broker: server, dataDir: server.dataDir as string, client: jobatatorChurn(server.endpoint, queues) };
  }
  const broker = context.brokers.get(name) as BrokerInstance;
  // bench/setup empties the binlog directory when it restarts beanstalkd.
  await broker.restart();
  return { broker, dataDir: peerDataDir(name), client: beanstalkdChurn(broker.endpoint, queues) };
}

/** Retry churn: Jobatator in `os` mode and beanstalkd with a binlog, one run each. */
export async function retryChurnWorkload(context: WorkloadContext): Promise<void> {
  for (const name of brokersFor('retry-churn', context.options)) {
    const figures: Figures = {};
    const started: BrokerInstance[] = [];
    let error: string | undefined;
    try {
      const target = await startTarget(name, context, started);
      await measureChurn(target, context.options, figures, (text) => context.note(text));
    } catch (caught) {
      error = (caught as Error).message;
    } finally {
      for (const broker of started) await broker.stop();
    }
    context.record({ workload: 'retry-churn', broker: name, variant: name === 'jobatator' ? 'os' : '', run: 1, figures, ...(error === undefined ? {} : { error }) });
  }
}

/**
 * Disk-bound: whether a data_dir stays small while many jobs pass through. A server in `os`
 * mode first stores `--disk-pending` jobs, whose data_dir size is the baseline. Then workers
 * finish those and the rest of `--disk-jobs` jobs pass through, with at most
 * `--disk-pending` stored at once. `job_timeout: 0` deletes each job once it is done. The
 * size after the run, with no job left, is compared with the baseline. Both are measured
 * while the server runs.
 */
import { Lane } from './adapters/types';
import { JobatatorServer } from './brokers';
import { runOnFreshServers } from './fresh-server';
import { directorySize, DirectorySize } from './disk-usage';
import { BenchOptions } from './options';
import { passThrough } from './pass-through';
import { cpuMicros } from './proc';
import { jobCount } from './server-probe';
import { BENCH_GROUP, Figures, freshQueue, perSecond, timeoutMs, WorkloadContext } from './workloads';

/** Time the server may take, after the workers closed, to delete the last jobs. */
const DRAIN_TIMEOUT_MS = 5000;
const DRAIN_POLL_MS = 50;

/** Waits until the server stores no job, and throws with the count left after the timeout. */
async function waitUntilEmpty(server: JobatatorServer): Promise<void> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  for (;;) {
    const left = await jobCount(server.endpoint);
    if (left === 0) return;
    if (Date.now() >= deadline) throw new Error(`${left} jobs were still stored ${DRAIN_TIMEOUT_MS} ms after every job was delivered`);
    await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
  }
}

async function measureDiskBound(server: JobatatorServer, options: BenchOptions, figures: Figures): Promise<void> {
  const dataDir = server.dataDir as string;
  const lane: Lane = { queue: freshQueue('disk-bound'), group: BENCH_GROUP };

  let baseline: DirectorySize = { apparentBytes: 0, allocatedBytes: 0 };
  let cpuBefore = 0;
  const result = await passThrough(
    {
      adapter: server.adapter,
      endpoint: server.endpoint,
      lane,
      prefill: options.diskPending,
      total: options.diskJobs,
      // A job pushed to a worker stays stored until the server has run its UPDATE_JOB.
      maxUndelivered: options.diskPending - options.connections * options.prefetch,
      connections: options.connections,
      prefetch: options.prefetch,
      inflight: options.inflight,
      timeoutMs: timeoutMs(options),
    },
    () => {
      baseline = directorySize(dataDir);
      cpuBefore = cpuMicros(server.pids());
    },
  );

  figures.jobs_per_s = perSecond(result.delivered, result.endedAt - result.startedAt);
  figures.cpu_us_per_job = (cpuMicros(server.pids()) - cpuBefore) / result.delivered;
  figures.duplicates = result.duplicates;
  figures.baseline_kib = baseline.allocatedBytes / 1024;

  // Each UPDATE_JOB reply left after its deletion was committed, and the workers closed after
  // the server wrote every reply, so the files already hold the last deletions.
  await waitUntilEmpty(server);
  const after = directorySize(dataDir);
  figures.after_kib = after.allocatedBytes / 1024;
  figures.size_ratio = after.allocatedBytes / baseline.allocatedBytes;
  figures.apparent_size_ratio = after.apparentBytes / baseline.apparentBytes;
}

/** Disk-bound: one fresh server per run, Jobatator only; no warm-up. */
export function diskBoundWorkload(context: WorkloadContext): Promise<void> {
  return runOnFreshServers(context, 'disk-bound', measureDiskBound);
}

/**
 * Start-up: how long a Jobatator server in `os` mode takes to start on a data_dir that stores
 * many pending jobs. Each run fills a fresh data_dir through the server, stops the server
 * with SIGTERM (a graceful stop), and times a new start until the server replies PONG to a PING.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Lane } from './adapters/types';
import { JobatatorServer } from './brokers';
import { runOnFreshServers } from './fresh-server';
import { directorySize } from './disk-usage';
import { BenchOptions } from './options';
import { jobCount, pingMs } from './server-probe';
import { BENCH_GROUP, Figures, freshQueue, publishRun, WorkloadContext } from './workloads';

/** Fills, stops, measures and restarts one server; the figures gathered so far survive an error. */
async function measureStartup(server: JobatatorServer, options: BenchOptions, figures: Figures): Promise<void> {
  const jobs = options.startupJobs;
  figures.empty_start_s = server.startMs / 1000;
  const lane: Lane = { queue: freshQueue('startup'), group: BENCH_GROUP };
  const fill = await publishRun(server, options, lane, jobs);
  figures.fill_jobs_per_s = fill.figures.jobs_per_s;
  figures.fill_cpu_us_per_job = fill.figures.cpu_us_per_job;

  const stopStartedAt = performance.now();
  await server.stopProcess();
  figures.stop_s = (performance.now() - stopStartedAt) / 1000;
  const dataDir = server.dataDir as string;
  // The server deletes this file as the last step of a graceful stop; the harness kills a server that takes too long.
  if (fs.existsSync(path.join(dataDir, 'server.pid'))) throw new Error(`the server did not stop gracefully: ${dataDir}/server.pid is still there`);
  const size = directorySize(dataDir);
  figures.data_dir_mib = size.allocatedBytes / 2 ** 20;
  figures.bytes_per_job = size.allocatedBytes / jobs;
  figures.apparent_bytes_per_job = size.apparentBytes / jobs;

  await server.startProcess();
  figures.start_s = server.startMs / 1000;
  // The PING goes out as soon as the harness read the "listening" line, so spawn to PONG is
  // the start time plus one connection and round trip.
  figures.start_pong_s = (server.startMs + (await pingMs(server.endpoint))) / 1000;
  const loaded = await jobCount(server.endpoint);
  if (loaded !== jobs) throw new Error(`HEALTH of the restarted server counts ${loaded} jobs, expected the ${jobs} stored before the stop`);
}

/** Start-up: one fresh server per run, so each run fills its own data_dir; no warm-up. */
export function startupWorkload(context: WorkloadContext): Promise<void> {
  return runOnFreshServers(context, 'startup', measureStartup);
}

/** Runs a Jobatator-only measurement once per run, each time on a fresh server in `os` mode. */
import { JobatatorServer, startJobatator } from './brokers';
import { BenchOptions, WorkloadName } from './options';
import { BENCH_GROUP, Figures, jobatatorSettings, WorkloadContext } from './workloads';

export type Measure = (server: JobatatorServer, options: BenchOptions, figures: Figures) => Promise<void>;

/**
 * Starts a server with a fresh data_dir for each run, lets `measure` fill the figures and
 * records them, with the error of a failed run. The figures gathered before an error stay.
 */
export async function runOnFreshServers(context: WorkloadContext, workload: WorkloadName, measure: Measure): Promise<void> {
  const { options } = context;
  if (!options.brokers.includes('jobatator')) return;
  for (let run = 1; run <= options.runs; run++) {
    const figures: Figures = {};
    let error: string | undefined;
    let server: JobatatorServer | null = null;
    try {
      server = await startJobatator({ ...jobatatorSettings(options, [{ slug: BENCH_GROUP }]), durability: 'os' });
      await measure(server, options, figures);
    } catch (caught) {
      error = (caught as Error).message;
    } finally {
      await server?.stop();
    }
    context.record({ workload, broker: 'jobatator', variant: 'os', run, figures, ...(error === undefined ? {} : { error }) });
  }
}

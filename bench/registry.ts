/** The function that runs each workload, by the name --workloads uses. */
import { delaysWorkload } from './delays';
import { diskBoundWorkload } from './disk-bound';
import { durabilityWorkload } from './durability';
import { WorkloadName } from './options';
import { retryChurnWorkload } from './retry-churn';
import { startupWorkload } from './startup';
import { endToEndWorkload, isolationWorkload, latencyWorkload, memoryWorkload, publishWorkload, scalingWorkload, WorkloadContext } from './workloads';

export const WORKLOADS: Record<WorkloadName, (context: WorkloadContext) => Promise<void>> = {
  publish: publishWorkload,
  'end-to-end': endToEndWorkload,
  latency: latencyWorkload,
  memory: memoryWorkload,
  isolation: isolationWorkload,
  scaling: scalingWorkload,
  durability: durabilityWorkload,
  startup: startupWorkload,
  'disk-bound': diskBoundWorkload,
  'retry-churn': retryChurnWorkload,
  delays: delaysWorkload,
};

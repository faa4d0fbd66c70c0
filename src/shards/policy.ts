import type { JobPolicy } from './model';

/** Policy fields a publish may set; the others come from the server's policy. */
export interface PolicyOptions {
  priority?: number;
  maxAttempts?: number;
  backoff?: JobPolicy['backoff'];
  retryDelayMs?: number;
  retryMaxDelayMs?: number;
  leaseMs?: number;
}

/** A stored policy: `[priority, maxAttempts, backoff, retryDelayMs, retryMaxDelayMs, leaseMs]`. */
export type PolicyRecord = [number, number, JobPolicy['backoff'], number, number, number];

/** Distinct policies kept for sharing; past it, each new combination gets its own object. */
const MAX_INTERNED = 4096;

/**
 * The policies of a shard's jobs: the server's policy, and one shared object for each
 * combination of options seen, so a million jobs with the same options cost one policy.
 */
export class Policies {
  private readonly interned = new Map<string, JobPolicy>();

  constructor(readonly base: JobPolicy) {}

  /** Returns the server's policy with the given options applied. */
  resolve(options: PolicyOptions | undefined): JobPolicy {
    if (options === undefined) return this.base;
    return this.intern({
      priority: options.priority ?? this.base.priority,
      maxAttempts: options.maxAttempts ?? this.base.maxAttempts,
      backoff: options.backoff ?? this.base.backoff,
      retryDelayMs: options.retryDelayMs ?? this.base.retryDelayMs,
      retryMaxDelayMs: options.retryMaxDelayMs ?? this.base.retryMaxDelayMs,
      leaseMs: options.leaseMs ?? this.base.leaseMs,
    });
  }

  /** Returns the policy of a stored record; null stands for the server's policy. */
  fromRecord(record: PolicyRecord | null | undefined): JobPolicy {
    if (record === null || record === undefined) return this.base;
    const [priority, maxAttempts, backoff, retryDelayMs, retryMaxDelayMs, leaseMs] = record;
    return this.intern({ priority, maxAttempts, backoff, retryDelayMs, retryMaxDelayMs, leaseMs });
  }

  /** Returns the record to store for a policy; null for the server's policy, which follows the config. */
  toRecord(policy: JobPolicy): PolicyRecord | null {
    if (policy === this.base) return null;
    return [policy.priority, policy.maxAttempts, policy.backoff, policy.retryDelayMs, policy.retryMaxDelayMs, policy.leaseMs];
  }

  private intern(policy: JobPolicy): JobPolicy {
    if (samePolicy(policy, this.base)) return this.base;
    const key = `${policy.priority}|${policy.maxAttempts}|${policy.backoff}|${policy.retryDelayMs}|${policy.retryMaxDelayMs}|${policy.leaseMs}`;
    const known = this.interned.get(key);
    if (known !== undefined) return known;
    if (this.interned.size < MAX_INTERNED) this.interned.set(key, policy);
    return policy;
  }
}

function samePolicy(left: JobPolicy, right: JobPolicy): boolean {
  return (
    left.priority === right.priority &&
    left.maxAttempts === right.maxAttempts &&
    left.backoff === right.backoff &&
    left.retryDelayMs === right.retryDelayMs &&
    left.retryMaxDelayMs === right.retryMaxDelayMs &&
    left.leaseMs === right.leaseMs
  );
}

/**
 * Returns how long a job waits after its `attempts`-th failed delivery. An exponential
 * backoff doubles the base at each attempt up to the cap, then keeps between half and all
 * of that (jitter), so jobs that failed together do not all come back at once.
 */
export function retryWait(policy: JobPolicy, attempts: number, random: () => number = Math.random): number {
  if (policy.backoff === 'fixed' || policy.retryDelayMs === 0) return policy.retryDelayMs;
  const cap = Math.max(policy.retryMaxDelayMs, policy.retryDelayMs);
  const full = Math.min(cap, policy.retryDelayMs * 2 ** Math.min(attempts - 1, 40));
  return Math.round(full / 2 + (random() * full) / 2);
}

import type { Job, RecurrentEntry } from '../shards/model';

/**
 * Persistence of one shard's job state. The shard keeps its state in memory and reports
 * every change here. A durable store writes the changes and resolves `commit` once they
 * are safe, and the shard replies to state-changing commands only after that.
 */
export interface JobStore {
  /** Records a new job or a change of its state, attempts or times. */
  jobChanged(group: string, job: Job): void;
  jobRemoved(group: string, job: Job): void;
  recurrentChanged(group: string, entry: RecurrentEntry): void;
  recurrentRemoved(group: string, entry: RecurrentEntry): void;
  /** Resolves when every change reported so far is stored; null when there is nothing to wait for. */
  commit(): Promise<void> | null;
  close(): Promise<void>;
}

/** Keeps nothing: every job lives only in memory, as in the original server. */
export class MemoryStore implements JobStore {
  jobChanged(): void {}
  jobRemoved(): void {}
  recurrentChanged(): void {}
  recurrentRemoved(): void {}
  commit(): null {
    return null;
  }
  async close(): Promise<void> {}
}

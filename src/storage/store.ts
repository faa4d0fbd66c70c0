import type { Job, Queue, RecurrentEntry } from '../shards/model';

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
  /** Records whether a queue is paused; a queue that is not paused needs no record. */
  queueChanged(group: string, queue: Queue): void;
  /**
   * Resolves when every change reported so far is stored; null when there is nothing to
   * wait for. On a failure, the changes are kept for `rewriteLost`.
   */
  commit(): Promise<void> | null;
  /** True while changes of a failed commit wait to be written again. */
  hasLostChanges(): boolean;
  /** Writes the changes of failed commits again, as they are now, and commits them. */
  rewriteLost(): Promise<void> | null;
  /** Test mode: while on, every commit fails as a failing disk would. */
  setFault(on: boolean): void;
  close(): Promise<void>;
}

/** Keeps nothing: every job lives only in memory, as in the original server. */
export class MemoryStore implements JobStore {
  jobChanged(): void {}
  jobRemoved(): void {}
  recurrentChanged(): void {}
  recurrentRemoved(): void {}
  queueChanged(): void {}
  commit(): null {
    return null;
  }
  hasLostChanges(): boolean {
    return false;
  }
  rewriteLost(): null {
    return null;
  }
  setFault(): void {}
  async close(): Promise<void> {}
}

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Key, open, RootDatabase } from 'lmdb';
import { Job, JobState, Queue, RecurrentEntry } from '../shards/model';
import type { PolicyRecord } from '../shards/policy';
import type { JobStore } from './store';

/**
 * Version of the record layout below. A store of version 1, whose job records end at
 * endedAt, is read as is and marked version 2. A store of any other version is refused.
 */
const FORMAT_VERSION = 2;
const READABLE_FORMATS = new Set([1, 2]);
const FORMAT_KEY = 'format';
const JOB_KEY = 'job';
const RECURRENT_KEY = 'recurrent';
/** One record per group: the slugs of its paused queues, which are few. */
const PAUSED_KEY = 'paused';

/**
 * A stored job: `[id, queue slug, type JSON, payload JSON, state, attempts, startedAt,
 * endedAt, dueAt, policy, publishedAt, uniqueKey, uniqueUntil]`, with a null policy for the
 * server's and an empty uniqueKey for a job without one. Records of format 1 end at endedAt.
 */
export type JobRecord = [string, string, string, string, JobState, number, number, number, number?, (PolicyRecord | null)?, number?, string?, number?];

/** A stored recurrent job: `[entry id, queue slug, type, cron expression, last run]`. */
export type RecurrentRecord = [number, string, string, string, number];

/** How long closing a store waits for its last writes to reach the disk. */
const CLOSE_FLUSH_WAIT_MS = 2000;

/** lmdb rejects a failed commit with a generic error and the cause in a second promise. */
function describeCommitError(error: unknown): Promise<never> {
  const cause = (error as { commitError?: Promise<unknown> } | null)?.commitError;
  if (cause === undefined) return Promise.reject(error);
  return cause.then(
    () => Promise.reject(error),
    (reason: unknown) => Promise.reject(reason instanceof Error ? reason : new Error(String(reason))),
  );
}

function delay(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds).unref());
}

/** Thrown when a store cannot be opened or was written by another version. */
export class StoreOpenError extends Error {}

/**
 * Returns the directory of one group's store: the slug's letters, digits, `-` and `_` for
 * people to read, then a hash of the whole slug. The hash gives `..`, long slugs and slugs
 * that differ only in case names of their own on every file system.
 */
export function groupDirectory(dataDir: string, slug: string): string {
  const readable = slug.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  const hash = createHash('sha256').update(slug).digest('hex').slice(0, 16);
  return path.join(dataDir, 'groups', `${readable}-${hash}`);
}

/**
 * Jobs of a shard's groups in lmdb, one environment per group, so that a group can move to
 * another shard between restarts. lmdb's own thread commits the writes of each turn of the
 * event loop in one transaction. `commit` resolves once the turn's writes are committed
 * (`os`), or once they are also synced to disk (`fsync`).
 */
export class LmdbStore implements JobStore {
  private readonly databases = new Map<string, RootDatabase>();
  /** Databases written since the last commit. */
  private readonly written = new Set<RootDatabase>();
  /** Jobs, recurrent jobs and queues changed since the last commit. */
  private changed: Array<Job | RecurrentEntry | Queue> = [];
  /** Jobs, recurrent jobs and queues whose last change was in a commit that failed. */
  private readonly lost = new Set<Job | RecurrentEntry | Queue>();
  /** Test mode: while on, no write reaches lmdb and every commit fails. */
  private fault = false;
  /**
   * The fault state from the next commit on. A switch takes effect between two commits,
   * so the writes of one commit are all stored or all refused, as with a real disk.
   */
  private nextFault = false;
  /** Cause that refuses the writes of the current commit because the disk is nearly full, or null. */
  private lowSpace: Error | null = null;

  constructor(
    private readonly dataDir: string,
    groups: string[],
    private readonly fsync: boolean,
    /** Free bytes the disk of data_dir must keep; under it, writes are refused. */
    private readonly reserveBytes: number,
  ) {
    for (const slug of groups) {
      const directory = groupDirectory(dataDir, slug);
      let database: RootDatabase;
      try {
        fs.mkdirSync(directory, { recursive: true });
        // TODO: lmdb-js flushes every commit in the background (overlappingSync). That keeps
        // the store whole after a machine crash, but it paces commits by the disk's flush
        // time, so os mode moved 0.30x of memory's jobs end to end against a goal of 0.75x.
        // noSync reached 0.56x but may corrupt the store on a machine crash. Next to try are
        // fewer, larger commits, and replies that wait only for the write, not the flush.
        database = open({ path: directory, compression: false });
      } catch (error) {
        throw new StoreOpenError(`cannot open the store of group ${slug} in ${directory}: ${(error as Error).message}; check data_dir and the limit on open files (about 3 per group)`);
      }
      const format = database.get(FORMAT_KEY) as unknown;
      if (format !== undefined && !READABLE_FORMATS.has(format as number)) {
        throw new StoreOpenError(`the store of group ${slug} in ${directory} has format ${String(format)}, and this server reads formats ${[...READABLE_FORMATS].join(' and ')}; start the version that wrote it, or move the directory away`);
      }
      if (format !== FORMAT_VERSION) database.putSync(FORMAT_KEY, FORMAT_VERSION);
      this.databases.set(slug, database);
    }
  }

  /**
   * Passes the stored jobs of a group to `restore` in publish order, one at a time, so a
   * large store is never held twice in memory. Returns the number of jobs.
   */
  load(group: string, restore: (seq: number, record: JobRecord) => void): number {
    let count = 0;
    for (const { key, value } of this.database(group).getRange({ start: [JOB_KEY, 0], end: [JOB_KEY, Infinity] })) {
      restore((key as [string, number])[1], value as JobRecord);
      count++;
    }
    return count;
  }

  /**
   * Records a change and returns true when its write must be skipped: the fault switch is
   * on, or the disk has less free space than the reserve. lmdb crashes on some failed
   * writes of a full disk, so the space is checked before the first write of each commit.
   */
  private skip(item: Job | RecurrentEntry | Queue): boolean {
    if (this.changed.length === 0 && !this.fault) this.lowSpace = this.checkSpace();
    this.changed.push(item);
    return this.fault || this.lowSpace !== null;
  }

  private checkSpace(): Error | null {
    if (this.reserveBytes === 0) return null;
    let free: number;
    try {
      const stats = fs.statfsSync(this.dataDir);
      free = stats.bavail * stats.bsize;
    } catch (error) {
      return new Error(`cannot read the free space of data_dir ${this.dataDir}: ${(error as Error).message}`);
    }
    if (free >= this.reserveBytes) return null;
    return new Error(`the disk of data_dir has ${free} bytes free, under disk_reserve_bytes (${this.reserveBytes})`);
  }

  jobChanged(group: string, job: Job): void {
    if (job.state === 'removed') return;
    if (this.skip(job)) return;
    // A restart makes a job in progress pending again, so it is stored as pending.
    const state = job.state === 'in-progress' ? 'pending' : job.state;
    const record: JobRecord = [
      job.id,
      job.queue.slug,
      job.typeJson,
      job.payloadJson,
      state,
      job.attempts,
      job.startedAt,
      job.endedAt,
      job.dueAt,
      job.queue.policies.toRecord(job.policy),
      job.publishedAt,
      job.history?.uniqueKey ?? '',
      job.history?.uniqueUntil ?? 0,
    ];
    this.put(group, [JOB_KEY, job.seq], record);
  }

  jobRemoved(group: string, job: Job): void {
    if (this.skip(job)) return;
    this.remove(group, [JOB_KEY, job.seq]);
  }

  /** Queues a write for the next commit; lmdb's own thread makes it. */
  private put(group: string, key: Key, value: unknown): void {
    const database = this.database(group);
    void database.put(key, value);
    this.written.add(database);
  }

  private remove(group: string, key: Key): void {
    const database = this.database(group);
    void database.remove(key);
    this.written.add(database);
  }

  /** Returns the stored recurrent jobs of a group, by entry id. */
  loadRecurrent(group: string): RecurrentRecord[] {
    const records: RecurrentRecord[] = [];
    for (const { value } of this.database(group).getRange({ start: [RECURRENT_KEY, 0], end: [RECURRENT_KEY, Infinity] })) {
      records.push(value as RecurrentRecord);
    }
    return records;
  }

  recurrentChanged(group: string, entry: RecurrentEntry): void {
    if (entry.deleted) return;
    if (this.skip(entry)) return;
    const record: RecurrentRecord = [entry.id, entry.queue.slug, entry.type, entry.expression, entry.lastRun];
    this.put(group, [RECURRENT_KEY, entry.id], record);
  }

  recurrentRemoved(group: string, entry: RecurrentEntry): void {
    if (this.skip(entry)) return;
    this.remove(group, [RECURRENT_KEY, entry.id]);
  }

  /** Returns the slugs of the group's paused queues. */
  loadPausedQueues(group: string): string[] {
    return (this.database(group).get(PAUSED_KEY) as string[] | undefined) ?? [];
  }

  queueChanged(group: string, queue: Queue): void {
    if (this.skip(queue)) return;
    const paused = [...queue.group.queues.values()].filter((candidate) => candidate.paused).map((candidate) => candidate.slug);
    this.put(group, PAUSED_KEY, paused);
  }

  commit(): Promise<void> | null {
    const faulty = this.fault;
    const lowSpace = this.lowSpace;
    this.fault = this.nextFault;
    this.lowSpace = null;
    if (this.changed.length === 0) return null;
    const changed = this.changed;
    this.changed = [];
    if (faulty || lowSpace !== null) {
      for (const item of changed) this.lost.add(item);
      return Promise.reject(lowSpace ?? new Error('storage fault switched on by DEBUG storage-fault'));
    }
    const pending: Array<PromiseLike<unknown>> = [];
    for (const database of this.written) {
      pending.push(database.committed);
      // lmdb's flushed promise never settles when a commit fails, so the commit decides.
      if (this.fsync) pending.push(database.flushed);
    }
    this.written.clear();
    return Promise.all(pending).then(
      () => undefined,
      (error: unknown) => {
        for (const item of changed) this.lost.add(item);
        return describeCommitError(error);
      },
    );
  }

  hasLostChanges(): boolean {
    return this.lost.size > 0;
  }

  /** Writes again, from their state now, the jobs and recurrent jobs of commits that failed. */
  rewriteLost(): Promise<void> | null {
    const lost = [...this.lost];
    this.lost.clear();
    for (const item of lost) {
      if (item instanceof Queue) {
        this.queueChanged(item.group.slug, item);
      } else if ('seq' in item) {
        if (item.state === 'removed') this.jobRemoved(item.queue.group.slug, item);
        else this.jobChanged(item.queue.group.slug, item);
      } else if (item.deleted) {
        this.recurrentRemoved(item.queue.group.slug, item);
      } else {
        this.recurrentChanged(item.queue.group.slug, item);
      }
    }
    return this.commit();
  }

  setFault(on: boolean): void {
    this.nextFault = on;
    if (this.changed.length === 0) this.fault = on;
  }

  async close(): Promise<void> {
    for (const database of this.databases.values()) {
      // A store whose disk failed may never finish its last flush, so the close waits for it a short while only.
      await Promise.race([Promise.all([database.committed, database.flushed]).catch(() => undefined), delay(CLOSE_FLUSH_WAIT_MS)]);
      await database.close();
    }
    this.databases.clear();
  }

  private database(group: string): RootDatabase {
    const database = this.databases.get(group);
    if (database === undefined) throw new Error(`group ${group} has no store on this shard`);
    return database;
  }
}

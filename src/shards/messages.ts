import type { Durability } from '../config/types';
import type { JobPolicy } from './model';
import type { PolicyOptions } from './policy';

/** Options of one publish, checked on the main thread. Times are in milliseconds. */
export interface JobOptions extends PolicyOptions {
  /** Time the job waits, scheduled, before it is pending. */
  delayMs?: number;
  /** Epoch time at which the job becomes pending; set instead of delayMs. */
  runAt?: number;
  /** A publish with the key of an unfinished job of the queue gets that job's id instead. */
  uniqueKey?: string;
  /** How long after its publish the key holds; without it, as long as the job is unfinished. */
  uniqueForMs?: number;
}

/**
 * Messages between the main thread and the shard threads. Both directions carry
 * msgpack-encoded batches of tuples, so one message crosses threads per batch, not per
 * command.
 */

/** Operation codes of the main-to-shard tuples. */
export const enum Op {
  Publish = 1,
  Subscribe,
  Unsubscribe,
  ListQueues,
  DeleteQueue,
  PurgeJobs,
  PurgeWorkers,
  ListJobs,
  UpdateJob,
  DeleteJob,
  RecurrentJob,
  ListRecurrentJobs,
  DeleteRecurrentJob,
  /** Broadcast: run dispatch on every queue. */
  Dispatch,
  /** Broadcast: counts for HEALTH. Replies a ShardStats. */
  Stats,
  /** Broadcast: every queue with jobs and workers, for DEBUG_JSON. */
  DebugQueues,
  /** Broadcast: move the clock forward by args[0] milliseconds. */
  AdvanceClock,
  /** A connection closed: its held jobs go back to pending. No reply. */
  Close,
  /** A connection's output is over its limit (args[0] true) or drained (false). No reply. */
  Pause,
  /** Test mode: throws inside the shard, to show a failing request leaves the shard running. */
  Fail,
  /**
   * The push of job args[0] (of group args[1]) was not delivered. Either the connection
   * already has `prefetch` jobs from other shards, so the job goes back to pending and
   * the shard pushes nothing more to it until Credit, or the connection had closed, so
   * the attempt its loss counted is taken back. No reply.
   */
  Bounce,
  /** The connection has fewer than `prefetch` unfinished jobs again. No reply. */
  Credit,
  /** Test mode: args[0] true makes every commit of the shard's store fail, false stops it. */
  StorageFault,
  /** RETRY_JOB: makes a dead, errored or scheduled job pending at once. */
  RetryJob,
  /** PREFETCH: args[0] is the connection's new prefetch. No reply. */
  SetPrefetch,
  /** PAUSE_QUEUE: the queue keeps taking jobs and pushes none. */
  PauseQueue,
  ResumeQueue,
  /** GET_JOB: one job with every field. */
  GetJob,
  /** QUEUE_STATS: counts by state and traffic of one queue. */
  QueueStats,
  /** Test mode: ends the shard thread with an uncaught error, as a crash would. */
  Crash,
  /**
   * First request to a restarted shard: args[0] lists the open connections as
   * RestoredConnection tuples. Replies the `[connectionId, jobId]` pairs of held jobs
   * that the shard no longer has.
   */
  Restore,
}

/**
 * State the main thread keeps of one connection, for a restarted shard:
 * `[id, username, address, subscriptions as [group, queue] pairs, held jobs as
 * [group, jobId] pairs, ids of revoked jobs not yet reported on, output paused, waiting
 * for credit, prefetch set by PREFETCH or 0]`.
 */
export type RestoredConnection = [number, string, string, Array<[string, string]>, Array<[string, string]>, string[], boolean, boolean, number];

/**
 * One request: `[op, requestId, connectionId, group, ...args]`. A requestId of 0 means no
 * reply is expected.
 */
export type Request = [Op, number, number, string, ...unknown[]];

/** Kinds of the shard-to-main tuples. */
export const enum Out {
  /** `[Reply, requestId, value]`: the reply to a request: a reply line or structured data. */
  Reply = 0,
  /** `[Push, connectionId, line, jobId, group]`: a job pushed to a worker. */
  Push = 1,
  /**
   * `[Release, connectionId, jobId, counted]`: the job is no longer reserved for the
   * connection. With `counted`, it was revoked and still counts against the connection's
   * prefetch until the connection reports on it.
   */
  Release = 2,
}

export type Output =
  | [Out.Reply, number, unknown]
  | [Out.Push, number, string, string, string]
  | [Out.Release, number, string, boolean];

/**
 * A shard-to-main message: `[answersBatch, outputs]`. `answersBatch` is true for the reply
 * to the batch in flight. Messages sent by timers and cron carry false.
 */
export type ShardMessage = [boolean, Output[]];

/** Start-up data for one shard thread, sent with its attach task. */
export interface ShardInit {
  index: number;
  groups: string[];
  /** Limits and policy defaults of the groups that set any, by slug. */
  groupSettings: Record<string, GroupSettings>;
  settings: ShardSettings;
}

/** Settings a group's config gives its jobs, with times in milliseconds. */
export interface GroupSettings {
  maxPendingJobs: number;
  defaults?: PolicyOptions;
  queues?: Record<string, PolicyOptions>;
  /** Time zone of the group's recurrent jobs without a CRON_TZ prefix. */
  timeZone?: string;
  /** The same for single queues, by queue slug. */
  queueTimeZones?: Record<string, string>;
}

/** The part of the config a shard needs. */
export interface ShardSettings {
  jobTimeoutMs: number;
  deadJobTtlMs: number;
  /** Delivery and retry policy of jobs published without options. */
  policy: JobPolicy;
  /** Most unfinished jobs per queue; 0 for no limit. */
  maxPendingJobs: number;
  prefetch: number;
  ignoreDelays: boolean;
  maxReplyBytes: number;
  logLevel: string;
  /** Absolute directory of the job stores. */
  dataDir: string;
  durability: Durability;
  /** Free bytes the disk of dataDir must keep; under it, changes get storage-unavailable. */
  diskReserveBytes: number;
}

export interface ShardStats {
  queues: number;
  jobs: number;
  workerConnections: number[];
}

/** A queue as DEBUG_JSON shows it, with the main-thread sequence number of its creation. */
export interface DebugQueue {
  createdAt: number;
  json: string;
}

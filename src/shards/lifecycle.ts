import type { JobRecord } from '../storage/lmdb-store';
import type { JobStore } from '../storage/store';
import { newJobId } from './ids';
import type { JobOptions, ShardSettings } from './messages';
import { DeliveryHistory, isUnfinished, Job, JobPolicy, Queue, WorkerConnection } from './model';
import { retryWait } from './policy';
import type { Timers } from './timers';

/** Shard services the job transitions use. */
export interface ShardContext {
  readonly settings: ShardSettings;
  readonly timers: Timers;
  readonly store: JobStore;
  /** Schedules a dispatch round for the queue at the end of the current turn. */
  markDirty(queue: Queue): void;
  emitPush(worker: WorkerConnection, job: Job): void;
  emitRelease(connectionId: number, jobId: string, counted: boolean): void;
}

/** Cause of a failed delivery. Each failure counts one attempt. */
export type FailureCause = 'errored' | 'lease-expired' | 'worker-lost';

/** Expired holders remembered per job, so late reports of recent holders get lease-expired. */
const MAX_EXPIRED_HOLDERS = 8;

let nextSeq = 1;

/** Makes later jobs take publish numbers above `seq`, once stored jobs are loaded. */
export function reserveSeqThrough(seq: number): void {
  if (seq >= nextSeq) nextSeq = seq + 1;
}

/**
 * Escapes a payload for JSON as one flat string. JSON.stringify returns a long result as a
 * chain of joined parts, which would cost two extra string headers for as long as the job
 * lives. Decoding its bytes again yields a single string.
 */
function flatJson(payload: string): string {
  const json = JSON.stringify(payload);
  return json.length < 32 ? json : Buffer.from(json, 'utf8').toString('utf8');
}

/** Creates a pending job and adds it to its queue's list and its group's index. */
function addJob(queue: Queue, id: string, seq: number, typeJson: string, payloadJson: string, policy: JobPolicy): Job {
  const job: Job = {
    id,
    seq,
    queue,
    typeJson,
    payloadJson,
    state: 'pending',
    policy,
    dueAt: 0,
    attempts: 0,
    publishedAt: 0,
    startedAt: 0,
    endedAt: 0,
    holder: null,
    timer: null,
    history: null,
    queued: false,
    version: 0,
    prev: null,
    next: null,
  };
  queue.linkJob(job);
  queue.group.jobs.set(id, job);
  countUnfinished(job, 1);
  return job;
}

/** Counts a job into, or out of, its queue's and group's unfinished jobs. */
function countUnfinished(job: Job, delta: number): void {
  job.queue.unfinished += delta;
  job.queue.group.unfinished += delta;
}

/** Takes a job that leaves the unfinished states out of the counts and frees its unique key. */
function leaveUnfinished(job: Job): void {
  countUnfinished(job, -1);
  const key = job.history?.uniqueKey;
  if (key !== undefined && key !== '' && job.queue.unique.get(key) === job) job.queue.unique.delete(key);
}

/** Marks a job as unique for its key: publishes with that key get its id until `until` (0: while unfinished). */
export function makeUnique(job: Job, key: string, until: number): void {
  const history = historyOf(job);
  history.uniqueKey = key;
  history.uniqueUntil = until;
  job.queue.unique.set(key, job);
}

/**
 * Publishes a job. With a delay or a run time in the future it is scheduled until then,
 * unless delay_policy is IGNORE.
 */
export function publishJob(ctx: ShardContext, queue: Queue, type: string, payload: string, options?: JobOptions): Job {
  let id = newJobId();
  while (queue.group.jobs.has(id)) id = newJobId();
  const job = addJob(queue, id, nextSeq++, queue.typeJson(type), flatJson(payload), queue.policies.resolve(options));
  const now = ctx.timers.now();
  job.publishedAt = now;
  queue.published.add(now);
  if (options?.uniqueKey !== undefined) makeUnique(job, options.uniqueKey, options.uniqueForMs === undefined ? 0 : now + options.uniqueForMs);
  const due = options?.runAt ?? (options?.delayMs === undefined ? 0 : now + options.delayMs);
  if (due > now && !ctx.settings.ignoreDelays) {
    scheduleJob(ctx, job, due);
  } else {
    queue.addFresh(job);
    ctx.markDirty(queue);
  }
  ctx.store.jobChanged(queue.group.slug, job);
  return job;
}

/** Keeps a job scheduled until `due`, when it becomes pending. */
function scheduleJob(ctx: ShardContext, job: Job, due: number): void {
  job.state = 'scheduled';
  job.dueAt = due;
  const version = job.version;
  setJobTimer(ctx, job, due, () => {
    if (job.version === version && job.state === 'scheduled') makePending(ctx, job);
  });
}

/**
 * Rebuilds a stored job at start-up. A job that was in progress was stored as pending, so
 * it is delivered anew. A done or dead job keeps its expiry clock. A scheduled or errored
 * job waits for its time, and runs at once when that time passed while the server was down.
 */
export function restoreJob(ctx: ShardContext, queue: Queue, seq: number, record: JobRecord): void {
  const [id, , typeJson, payloadJson, state, attempts, startedAt, endedAt, storedDueAt, policyRecord, publishedAt, uniqueKey, uniqueUntil] = record;
  reserveSeqThrough(seq);
  const policy = queue.policies.fromRecord(policyRecord);
  const job = addJob(queue, id, seq, typeJson, payloadJson, policy);
  job.attempts = attempts;
  job.startedAt = startedAt;
  job.endedAt = endedAt;
  job.publishedAt = publishedAt ?? 0;
  if (uniqueKey !== undefined && uniqueKey !== '' && isUnfinished(state)) makeUnique(job, uniqueKey, uniqueUntil ?? 0);
  // Records of the first format have no due time: an errored job was due retry_delay after it failed.
  const dueAt = storedDueAt ?? (state === 'errored' ? endedAt + policy.retryDelayMs : 0);
  if (state === 'done' || state === 'dead') {
    job.state = state;
    countUnfinished(job, -1);
    expireLater(ctx, job, state === 'done' ? ctx.settings.jobTimeoutMs : ctx.settings.deadJobTtlMs);
    return;
  }
  const waiting = (state === 'errored' || state === 'scheduled') && !ctx.settings.ignoreDelays && dueAt > ctx.timers.now();
  if (waiting && state === 'scheduled') {
    scheduleJob(ctx, job, dueAt);
    return;
  }
  if (waiting) {
    job.state = 'errored';
    job.dueAt = dueAt;
    setJobTimer(ctx, job, dueAt, () => {
      if (job.version === 0 && job.state === 'errored') makePending(ctx, job);
    });
    return;
  }
  queue.addFresh(job);
  if (state !== 'pending') ctx.store.jobChanged(queue.group.slug, job);
  ctx.markDirty(queue);
}

/** Deletes a finished job `ttlMs` after it ended, or at once for a ttl of 0. */
function expireLater(ctx: ShardContext, job: Job, ttlMs: number): void {
  if (ttlMs === 0) {
    removeJob(ctx, job);
    return;
  }
  const version = job.version;
  setJobTimer(ctx, job, job.endedAt + ttlMs, () => {
    if (job.version === version) removeJob(ctx, job);
  });
}

/** Hands a pending job to a worker and starts its lease. */
export function assignJob(ctx: ShardContext, job: Job, worker: WorkerConnection): void {
  hold(ctx, job, worker);
  if (worker.subscriptions.size > 1) {
    // The queue goes behind the worker's other queues, which then come first when a slot
    // frees, so a busy queue cannot starve them.
    worker.subscriptions.delete(job.queue);
    worker.subscriptions.add(job.queue);
  }
  ctx.emitPush(worker, job);
}

/** Makes `worker` the holder of `job`, as on a push or an `in-progress` report on an unheld job. */
export function hold(ctx: ShardContext, job: Job, worker: WorkerConnection): void {
  if (job.queued) job.queue.noteStale();
  // A pending job is already stored as pending, which is how a held job is stored, so only
  // a job taken while it waited for a retry needs a write.
  const stored = job.state === 'pending';
  job.state = 'in-progress';
  job.holder = worker;
  job.startedAt = ctx.timers.now();
  job.version++;
  worker.held.add(job);
  scheduleLeaseCheck(ctx, job, job.version, job.startedAt + job.policy.leaseMs);
  if (!stored) ctx.store.jobChanged(job.queue.group.slug, job);
}

/** Extends the holder's lease by the configured duration: the lease check moves to the new end. */
export function renewLease(ctx: ShardContext, job: Job): void {
  scheduleLeaseCheck(ctx, job, job.version, ctx.timers.now() + job.policy.leaseMs);
}

/**
 * Sets the job's one active timer (lease check, retry or done expiry), cancelling the one
 * before, so a finished or deleted job is not kept in memory by an old timer.
 */
function setJobTimer(ctx: ShardContext, job: Job, due: number, fire: () => void): void {
  ctx.timers.cancel(job.timer);
  job.timer = ctx.timers.at(due, fire);
}

function clearJobTimer(ctx: ShardContext, job: Job): void {
  ctx.timers.cancel(job.timer);
  job.timer = null;
}

function scheduleLeaseCheck(ctx: ShardContext, job: Job, version: number, due: number): void {
  setJobTimer(ctx, job, due, () => {
    if (job.version !== version || job.state !== 'in-progress' || job.holder === null) return;
    const holder = job.holder;
    const expired = historyOf(job).expiredHolders;
    expired.push(holder.id);
    if (expired.length > MAX_EXPIRED_HOLDERS) expired.shift();
    revoke(ctx, holder, job);
    failJob(ctx, job, 'lease-expired');
  });
}

function historyOf(job: Job): DeliveryHistory {
  return job.history ?? (job.history = { expiredHolders: [], lostBy: 0, uniqueKey: '', uniqueUntil: 0 });
}

/** Takes a job back from its holder, which keeps it counted until it reports on it. */
function revoke(ctx: ShardContext, holder: WorkerConnection, job: Job): void {
  holder.revoked.add(job.id);
  ctx.emitRelease(holder.id, job.id, true);
}

/** Frees the prefetch slot of a revoked job once its former holder reported on it. */
export function settleRevoked(ctx: ShardContext, worker: WorkerConnection, jobId: string): void {
  if (!worker.revoked.delete(jobId)) return;
  for (const queue of worker.subscriptions) ctx.markDirty(queue);
}

function releaseHolder(ctx: ShardContext, job: Job): void {
  const holder = job.holder;
  if (holder === null) return;
  holder.held.delete(job);
  job.holder = null;
  for (const queue of holder.subscriptions) ctx.markDirty(queue);
}

/** Finishes a job; it stays listed as done for job_timeout, then is deleted. */
export function finishJob(ctx: ShardContext, job: Job): void {
  if (job.queued && job.state === 'pending') job.queue.noteStale();
  releaseHolder(ctx, job);
  leaveUnfinished(job);
  job.state = 'done';
  job.endedAt = ctx.timers.now();
  job.queue.finished.add(job.endedAt);
  job.version++;
  ctx.store.jobChanged(job.queue.group.slug, job);
  expireLater(ctx, job, ctx.settings.jobTimeoutMs);
}

/**
 * Counts a failed delivery. Past its max_attempts a job is dead. Else an errored job waits
 * for its backoff before it is pending again, and a job whose lease expired or whose
 * worker was lost is pending again at once.
 */
export function failJob(ctx: ShardContext, job: Job, cause: FailureCause): void {
  releaseHolder(ctx, job);
  job.attempts++;
  job.version++;
  job.queue.failed.add(ctx.timers.now());
  if (job.policy.maxAttempts > 0 && job.attempts >= job.policy.maxAttempts) {
    killJob(ctx, job);
    return;
  }
  const wait = cause !== 'errored' || ctx.settings.ignoreDelays ? 0 : retryWait(job.policy, job.attempts);
  if (wait === 0) {
    makePending(ctx, job);
    return;
  }
  job.state = 'errored';
  job.endedAt = ctx.timers.now();
  job.dueAt = job.endedAt + wait;
  ctx.store.jobChanged(job.queue.group.slug, job);
  const version = job.version;
  setJobTimer(ctx, job, job.dueAt, () => {
    if (job.version === version && job.state === 'errored') makePending(ctx, job);
  });
}

/** Makes a job that used up its attempts dead; it stays listed for dead_job_ttl. */
function killJob(ctx: ShardContext, job: Job): void {
  if (job.queued && job.state === 'pending') job.queue.noteStale();
  clearJobTimer(ctx, job);
  leaveUnfinished(job);
  job.state = 'dead';
  job.endedAt = ctx.timers.now();
  job.dueAt = 0;
  ctx.store.jobChanged(job.queue.group.slug, job);
  expireLater(ctx, job, ctx.settings.deadJobTtlMs);
}

/**
 * Makes a dead, errored or scheduled job pending at once. A dead job starts again with no
 * attempts counted.
 */
export function retryJob(ctx: ShardContext, job: Job): void {
  if (job.state === 'dead') {
    job.attempts = 0;
    countUnfinished(job, 1);
  }
  job.version++;
  makePending(ctx, job);
}

function makePending(ctx: ShardContext, job: Job): void {
  clearJobTimer(ctx, job);
  job.dueAt = 0;
  job.state = 'pending';
  job.queue.addReturned(job);
  ctx.store.jobChanged(job.queue.group.slug, job);
  ctx.markDirty(job.queue);
}

/**
 * Takes back a job whose push was not delivered, without counting an attempt. The job
 * keeps its place among the oldest pending jobs.
 */
export function returnUndelivered(ctx: ShardContext, job: Job): void {
  releaseHolder(ctx, job);
  job.version++;
  makePending(ctx, job);
}

/**
 * Deletes a job in any state. A holder other than `requester` (the connection that asked
 * for the deletion, 0 for none) has the job revoked.
 */
export function removeJob(ctx: ShardContext, job: Job, requester = 0): void {
  if (job.state === 'removed') return;
  if (job.holder !== null) {
    if (job.holder.id === requester) ctx.emitRelease(requester, job.id, false);
    else revoke(ctx, job.holder, job);
  }
  releaseHolder(ctx, job);
  clearJobTimer(ctx, job);
  if (job.queued && job.state === 'pending') job.queue.noteStale();
  if (isUnfinished(job.state)) leaveUnfinished(job);
  job.state = 'removed';
  job.version++;
  job.queue.unlinkJob(job);
  job.queue.group.jobs.delete(job.id);
  ctx.store.jobRemoved(job.queue.group.slug, job);
}

/**
 * Removes a job whose push never left the shard. Its holder drops it without a release,
 * since the main thread never learnt of the push.
 */
export function dropUnseenJob(ctx: ShardContext, job: Job): void {
  releaseHolder(ctx, job);
  removeJob(ctx, job);
}

/** Returns every job a closed connection held to pending, each counting one attempt. */
export function dropWorker(ctx: ShardContext, worker: WorkerConnection): void {
  for (const queue of worker.subscriptions) queue.removeWorker(worker);
  worker.subscriptions.clear();
  for (const job of [...worker.held]) {
    failJob(ctx, job, 'worker-lost');
    historyOf(job).lostBy = worker.id;
  }
}

/**
 * Takes back the attempt counted when a connection closed, for a job whose push reached
 * the main thread only after the connection was gone: that job never ran.
 */
export function undoLostAttempt(ctx: ShardContext, job: Job, connectionId: number): void {
  if (job.history === null || job.history.lostBy !== connectionId || job.attempts === 0) return;
  job.history.lostBy = 0;
  job.attempts--;
  if (job.state === 'dead') {
    // The loss that made the job dead did not happen, so the job has attempts left.
    countUnfinished(job, 1);
    job.version++;
    makePending(ctx, job);
    return;
  }
  ctx.store.jobChanged(job.queue.group.slug, job);
}

/**
 * Pushes pending jobs of a queue to its available workers, oldest job first. Each shard
 * counts the jobs it pushed to a connection. The main thread bounces a push that would take
 * a connection past `prefetch` with the jobs of other shards.
 */
export function dispatchQueue(ctx: ShardContext, queue: Queue): void {
  if (queue.paused) return;
  while (queue.workers.length > 0 && queue.hasPending()) {
    const worker = queue.nextWorker(ctx.settings.prefetch);
    if (worker === undefined) return;
    const job = queue.takePending() as Job;
    assignJob(ctx, job, worker);
  }
}

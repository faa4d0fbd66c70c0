import { errorReply, ErrorCode, ProtocolError } from '../protocol/errors';
import { okWithId, Reply } from '../protocol/replies';
import { CronError, parseSchedule } from './cron';
import { newJobId } from './ids';
import {
  dispatchQueue,
  dropWorker,
  failJob,
  finishJob,
  hold,
  publishJob,
  removeJob,
  renewLease,
  retryJob,
  returnUndelivered,
  settleRevoked,
  undoLostAttempt,
} from './lifecycle';
import { DebugQueue, JobOptions, Op, Request, RestoredConnection, ShardStats } from './messages';
import { Group, isUnfinished, Job, Queue, RecurrentEntry, WorkerConnection } from './model';
import { JsonArrayBuilder, renderJob, renderJobDetail, renderQueue, renderRecurrent, ReplyTooLarge } from './render';
import type { Shard } from './shard';

/** A shard operation: runs one request and returns its reply (a line or structured data). */
type Operation = (shard: Shard, request: Request) => unknown;

const JOB_STATES = new Set(['done', 'errored', 'in-progress']);
/** Largest offset or limit accepted by LIST_JOBS (2^31 - 1). */
const MAX_PAGE_VALUE = 2_147_483_647;

export function getOrCreateQueue(group: Group, slug: string, createdAt: number): Queue {
  let queue = group.queues.get(slug);
  if (queue === undefined) {
    queue = new Queue(newJobId(), slug, group, createdAt);
    group.queues.set(slug, queue);
  }
  return queue;
}

function existingQueue(group: Group, slug: string): Queue {
  const queue = group.queues.get(slug);
  if (queue === undefined) throw new ProtocolError(ErrorCode.UNKNOWN_QUEUE);
  return queue;
}

function tooLarge(paged: string): string {
  return errorReply(ErrorCode.REPLY_TOO_LARGE, `the reply would exceed max_reply_bytes; ${paged}`);
}

/**
 * UPDATE_JOB `[id, status, username, address]`. Only the holder reports on a held job; a
 * former holder whose lease was taken back gets lease-expired, anyone else job-held. An
 * unheld job (pending or waiting for a retry) accepts a report from anyone in its group.
 */
function updateJob(shard: Shard, request: Request): string {
  const [, , connectionId, groupSlug, id, status, username, address] = request as [Op, number, number, string, string, string, string, string];
  const reporter = shard.connections.get(connectionId);
  if (reporter !== undefined) settleRevoked(shard, reporter, id);
  if (!JOB_STATES.has(status)) {
    // An error code of the original server is sent bare, without a detail.
    throw new ProtocolError(ErrorCode.UNKNOWN_STATE);
  }
  const job = shard.group(groupSlug).jobs.get(id);
  if (job === undefined) throw new ProtocolError(ErrorCode.UNKNOWN_JOB);
  if (job.state === 'done') {
    throw new ProtocolError(ErrorCode.JOB_FINISHED, `job ${id} is already done; it accepts no more reports`);
  }
  if (job.state === 'dead') {
    throw new ProtocolError(ErrorCode.WRONG_STATE, `job ${id} is dead after ${job.attempts} failed attempts; RETRY_JOB ${id} makes it pending again`);
  }
  if (job.state === 'scheduled') {
    throw new ProtocolError(ErrorCode.WRONG_STATE, `job ${id} is scheduled; it accepts reports once it is pending, or after RETRY_JOB ${id}`);
  }
  const holder = job.holder;
  if (holder !== null && holder.id !== connectionId) {
    if (job.history?.expiredHolders.includes(connectionId)) {
      throw new ProtocolError(ErrorCode.LEASE_EXPIRED, `your lease on job ${id} expired and the job went to another worker; drop your result`);
    }
    throw new ProtocolError(ErrorCode.JOB_HELD, `job ${id} is held by another worker`);
  }
  if (holder === null && job.history?.expiredHolders.includes(connectionId)) {
    throw new ProtocolError(ErrorCode.LEASE_EXPIRED, `your lease on job ${id} expired and the job is ${job.state} again; drop your result`);
  }
  if (status === 'done') {
    finishJob(shard, job);
  } else if (status === 'errored') {
    failJob(shard, job, 'errored');
  } else if (holder === null) {
    hold(shard, job, shard.connection(connectionId, username, address));
  } else {
    renewLease(shard, job);
  }
  return Reply.OK;
}

function listJobs(shard: Shard, request: Request): string {
  const [, , , groupSlug, slug, offsetText, limitText] = request as [Op, number, number, string, string, string?, string?];
  const queue = existingQueue(shard.group(groupSlug), slug);
  let offset = 0;
  let limit = Infinity;
  if (offsetText !== undefined && limitText !== undefined) {
    offset = parsePageValue('offset', offsetText);
    limit = parsePageValue('limit', limitText);
  }
  const page = new JsonArrayBuilder(shard.settings.maxReplyBytes);
  let index = 0;
  try {
    for (let job = queue.oldestJob; job !== null; job = job.next) {
      if (index >= offset + limit) break;
      if (index >= offset) page.add(renderJob(job));
      index++;
    }
  } catch (error) {
    if (error instanceof ReplyTooLarge) return tooLarge(`list one page with LIST_JOBS ${slug} <offset> <limit>`);
    throw error;
  }
  return page.toString();
}

function parsePageValue(name: string, text: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > MAX_PAGE_VALUE) {
    throw new ProtocolError(ErrorCode.INVALID_ARGUMENT, `${name} must be an integer from 0 to ${MAX_PAGE_VALUE}, got "${text.slice(0, 40)}"`);
  }
  return Number(text);
}

function recurrentJob(shard: Shard, request: Request): string {
  const [, , , groupSlug, slug, type, expression, createdAt] = request as [Op, number, number, string, string, string, string, number];
  let schedule;
  try {
    schedule = parseSchedule(expression, shard.group(groupSlug).timeZoneFor(slug));
  } catch (error) {
    if (error instanceof CronError) throw new ProtocolError(ErrorCode.INVALID_CRON, error.message);
    throw error;
  }
  const group = shard.group(groupSlug);
  const queue = getOrCreateQueue(group, slug, createdAt);
  const existing = queue.recurrent.get(type);
  if (existing !== undefined) {
    existing.expression = expression;
    existing.schedule = schedule;
    existing.version++;
    scheduleRecurrent(shard, existing);
    shard.store.recurrentChanged(groupSlug, existing);
    return okWithId(existing.id);
  }
  const entry: RecurrentEntry = { id: group.nextEntryId++, queue, type, expression, schedule, lastRun: shard.timers.now(), version: 0, deleted: false, timer: null };
  queue.recurrent.set(type, entry);
  group.recurrent.set(entry.id, entry);
  shard.store.recurrentChanged(groupSlug, entry);
  if (shard.settings.ignoreDelays) publishJob(shard, queue, type, '');
  scheduleRecurrent(shard, entry);
  return okWithId(entry.id);
}

/** Arms the next run of a recurrent job. Runs missed while the clock jumped fire once. */
export function scheduleRecurrent(shard: Shard, entry: RecurrentEntry): void {
  const next = entry.schedule.nextAfter(shard.timers.now());
  if (next === null) return;
  const version = entry.version;
  shard.timers.cancel(entry.timer);
  entry.timer = shard.timers.at(next, () => {
    if (entry.deleted || entry.version !== version) return;
    runRecurrent(shard, entry);
    scheduleRecurrent(shard, entry);
  });
}

/** Publishes one job of a recurrent entry and records the run; a full queue skips the job. */
export function runRecurrent(shard: Shard, entry: RecurrentEntry): void {
  try {
    checkRoom(shard, entry.queue);
    publishJob(shard, entry.queue, entry.type, '');
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    shard.logger.warn({ group: entry.queue.group.slug, queue: entry.queue.slug, entry: entry.id, reason: error.detail }, 'recurrent job skipped: its queue is full');
  }
  entry.lastRun = shard.timers.now();
  shard.store.recurrentChanged(entry.queue.group.slug, entry);
}

function deleteRecurrent(shard: Shard, entry: RecurrentEntry, group: Group): void {
  shard.timers.cancel(entry.timer);
  entry.timer = null;
  entry.deleted = true;
  entry.version++;
  entry.queue.recurrent.delete(entry.type);
  group.recurrent.delete(entry.id);
}

function deleteRecurrentJob(shard: Shard, request: Request): string {
  const [, , , groupSlug, idText] = request as [Op, number, number, string, string];
  if (!/^[1-9]\d{0,9}$/.test(idText)) {
    // An error code of the original server is sent bare, without a detail.
    throw new ProtocolError(ErrorCode.UNKNOWN_RECURRENT_JOB);
  }
  const group = shard.group(groupSlug);
  const entry = group.recurrent.get(Number(idText));
  if (entry === undefined) throw new ProtocolError(ErrorCode.UNKNOWN_RECURRENT_JOB);
  deleteRecurrent(shard, entry, group);
  shard.store.recurrentRemoved(groupSlug, entry);
  return Reply.OK;
}

function deleteQueue(shard: Shard, request: Request): string {
  const group = shard.group(request[3]);
  const queue = existingQueue(group, request[4] as string);
  for (const job of queue.jobList()) removeJob(shard, job, request[2]);
  for (const worker of queue.workers) worker.subscriptions.delete(queue);
  queue.workers.length = 0;
  for (const entry of [...queue.recurrent.values()]) {
    deleteRecurrent(shard, entry, group);
    shard.store.recurrentRemoved(group.slug, entry);
  }
  queue.clearPending();
  group.queues.delete(queue.slug);
  if (queue.paused) shard.store.queueChanged(group.slug, queue);
  return Reply.OK;
}

function subscribeWorker(shard: Shard, queue: Queue, worker: WorkerConnection): void {
  if (!worker.subscriptions.has(queue)) {
    worker.subscriptions.add(queue);
    queue.workers.push(worker);
  }
  shard.markDirty(queue);
}

/**
 * Rebuilds, in a restarted shard, the connections the main thread kept: their
 * subscriptions, the jobs they hold (with a new lease) and their revoked jobs. Returns the
 * held jobs the shard no longer has, which the main thread then drops.
 */
function restoreConnections(shard: Shard, request: Request): Array<[number, string]> {
  const connections = request[4] as RestoredConnection[];
  const missing: Array<[number, string]> = [];
  for (const [id, username, address, subscriptions, held, revoked, paused, awaitingCredit, prefetch] of connections) {
    const worker = shard.connection(id, username, address);
    worker.prefetch = prefetch;
    worker.paused = paused;
    worker.awaitingCredit = awaitingCredit;
    for (const [groupSlug, slug] of subscriptions) {
      const group = shard.groups.get(groupSlug);
      if (group !== undefined) subscribeWorker(shard, getOrCreateQueue(group, slug, 0), worker);
    }
    for (const [groupSlug, jobId] of held) {
      const job = shard.groups.get(groupSlug)?.jobs.get(jobId);
      if (job === undefined || job.state === 'done' || job.holder !== null) {
        missing.push([id, jobId]);
        continue;
      }
      hold(shard, job, worker);
    }
    for (const jobId of revoked) worker.revoked.add(jobId);
  }
  return missing;
}

/** Returns, for QUEUE_STATS, the jobs of a queue by state, its traffic over the last minute and its oldest pending job. */
function queueStats(shard: Shard, request: Request): string {
  const queue = existingQueue(shard.group(request[3]), request[4] as string);
  const counts: Record<string, number> = { scheduled: 0, pending: 0, 'in-progress': 0, errored: 0, done: 0, dead: 0 };
  const now = shard.timers.now();
  let oldestPending: Job | null = null;
  for (let job = queue.oldestJob; job !== null; job = job.next) {
    counts[job.state]++;
    if (job.state === 'pending' && (oldestPending === null || job.publishedAt < oldestPending.publishedAt)) oldestPending = job;
  }
  const oldestAge = oldestPending === null || oldestPending.publishedAt === 0 ? 0 : Math.max(0, now - oldestPending.publishedAt) / 1000;
  return JSON.stringify({
    Queue: queue.slug,
    Scheduled: counts.scheduled,
    Pending: counts.pending,
    InProgress: counts['in-progress'],
    Errored: counts.errored,
    Done: counts.done,
    Dead: counts.dead,
    PublishedLastMinute: queue.published.total(now),
    FinishedLastMinute: queue.finished.total(now),
    FailedLastMinute: queue.failed.total(now),
    OldestPendingAge: oldestAge,
    Workers: queue.workers.length,
    Paused: queue.paused,
  });
}

/** Returns the unfinished job whose unique key still blocks a publish with that key, if any. */
function uniqueTwin(shard: Shard, queue: Queue, key: string): Job | undefined {
  const job = queue.unique.get(key);
  if (job === undefined || !isUnfinished(job.state)) return undefined;
  const until = job.history?.uniqueUntil ?? 0;
  return until === 0 || shard.timers.now() < until ? job : undefined;
}

/** Throws queue-full when the queue or its group already keeps max_pending_jobs unfinished jobs. */
export function checkRoom(shard: Shard, queue: Queue): void {
  const perQueue = shard.settings.maxPendingJobs;
  if (perQueue > 0 && queue.unfinished >= perQueue) {
    throw new ProtocolError(ErrorCode.QUEUE_FULL, `queue ${queue.slug} keeps ${queue.unfinished} unfinished jobs, and its max_pending_jobs is ${perQueue}; retry once workers finish some`);
  }
  const group = queue.group;
  if (group.maxPendingJobs > 0 && group.unfinished >= group.maxPendingJobs) {
    throw new ProtocolError(ErrorCode.QUEUE_FULL, `group ${group.slug} keeps ${group.unfinished} unfinished jobs, and its max_pending_jobs is ${group.maxPendingJobs}; retry once workers finish some`);
  }
}

function stats(shard: Shard): ShardStats {
  let queues = 0;
  let jobs = 0;
  for (const group of shard.groups.values()) {
    queues += group.queues.size;
    jobs += group.jobs.size;
  }
  const workerConnections: number[] = [];
  for (const connection of shard.connections.values()) {
    if (connection.subscriptions.size > 0) workerConnections.push(connection.id);
  }
  return { queues, jobs, workerConnections };
}

function debugQueues(shard: Shard): DebugQueue[] | string {
  const out: DebugQueue[] = [];
  try {
    for (const group of shard.groups.values()) {
      for (const queue of group.queues.values()) {
        out.push({ createdAt: queue.createdAt, json: renderQueue(queue, shard.settings.prefetch, shard.settings.maxReplyBytes) });
      }
    }
  } catch (error) {
    if (error instanceof ReplyTooLarge) return tooLarge('inspect the queues one at a time with LIST_JOBS <queue> <offset> <limit>');
    throw error;
  }
  return out;
}

export const OPERATIONS: Record<number, Operation> = {
  [Op.Publish]: (shard, [, , , group, slug, type, payload, createdAt, options]) => {
    const queue = getOrCreateQueue(shard.group(group), slug as string, createdAt as number);
    const jobOptions = options as JobOptions | undefined;
    const twin = jobOptions?.uniqueKey === undefined ? undefined : uniqueTwin(shard, queue, jobOptions.uniqueKey);
    if (twin !== undefined) return okWithId(twin.id);
    checkRoom(shard, queue);
    const job = publishJob(shard, queue, type as string, payload as string, jobOptions);
    shard.notePublished(job);
    return okWithId(job.id);
  },
  [Op.Subscribe]: (shard, [, , connectionId, group, slug, username, address, createdAt, prefetch]) => {
    const queue = getOrCreateQueue(shard.group(group), slug as string, createdAt as number);
    const worker = shard.connection(connectionId, username as string, address as string);
    worker.prefetch = prefetch as number;
    subscribeWorker(shard, queue, worker);
    return Reply.OK;
  },
  [Op.SetPrefetch]: (shard, [, , connectionId, , prefetch]) => {
    const worker = shard.connections.get(connectionId);
    if (worker === undefined) return undefined;
    worker.prefetch = prefetch as number;
    for (const queue of worker.subscriptions) shard.markDirty(queue);
    return undefined;
  },
  [Op.Unsubscribe]: (shard, [, , connectionId, group, slug]) => {
    const queue = existingQueue(shard.group(group), slug as string);
    const worker = shard.connections.get(connectionId);
    if (worker !== undefined) {
      worker.subscriptions.delete(queue);
      queue.removeWorker(worker);
    }
    return Reply.OK;
  },
  [Op.ListQueues]: (shard, [, , , groupSlug]) => {
    const list = new JsonArrayBuilder(shard.settings.maxReplyBytes);
    try {
      for (const queue of shard.group(groupSlug).queues.values()) {
        list.add(renderQueue(queue, shard.settings.prefetch, shard.settings.maxReplyBytes));
      }
    } catch (error) {
      if (error instanceof ReplyTooLarge) return tooLarge('list the jobs of one queue with LIST_JOBS <queue> <offset> <limit>');
      throw error;
    }
    return list.toString();
  },
  [Op.DeleteQueue]: deleteQueue,
  [Op.PurgeJobs]: (shard, [, , connectionId, group, slug]) => {
    const queue = existingQueue(shard.group(group), slug as string);
    for (const job of queue.jobList()) removeJob(shard, job, connectionId);
    queue.clearPending();
    return Reply.OK;
  },
  [Op.PurgeWorkers]: (shard, [, , , group, slug]) => {
    const queue = existingQueue(shard.group(group), slug as string);
    for (const worker of queue.workers) worker.subscriptions.delete(queue);
    queue.workers.length = 0;
    return Reply.OK;
  },
  [Op.ListJobs]: listJobs,
  [Op.UpdateJob]: updateJob,
  [Op.DeleteJob]: (shard, [, , connectionId, group, id]) => {
    const job = shard.group(group).jobs.get(id as string);
    if (job === undefined) throw new ProtocolError(ErrorCode.UNKNOWN_JOB);
    removeJob(shard, job, connectionId);
    return Reply.OK;
  },
  [Op.PauseQueue]: (shard, [, , , group, slug, createdAt]) => {
    const queue = getOrCreateQueue(shard.group(group), slug as string, createdAt as number);
    queue.paused = true;
    shard.store.queueChanged(group, queue);
    return Reply.OK;
  },
  [Op.ResumeQueue]: (shard, [, , , group, slug]) => {
    const queue = existingQueue(shard.group(group), slug as string);
    queue.paused = false;
    shard.store.queueChanged(group, queue);
    shard.markDirty(queue);
    return Reply.OK;
  },
  [Op.GetJob]: (shard, [, , , group, id]) => {
    const job = shard.group(group).jobs.get(id as string);
    if (job === undefined) throw new ProtocolError(ErrorCode.UNKNOWN_JOB);
    return renderJobDetail(job);
  },
  [Op.QueueStats]: queueStats,
  [Op.RetryJob]: (shard, [, , , group, id]) => {
    const job = shard.group(group).jobs.get(id as string);
    if (job === undefined) throw new ProtocolError(ErrorCode.UNKNOWN_JOB);
    if (job.state !== 'dead' && job.state !== 'errored' && job.state !== 'scheduled') {
      throw new ProtocolError(ErrorCode.WRONG_STATE, `job ${job.id} is ${job.state}; RETRY_JOB takes dead, errored or scheduled jobs`);
    }
    // A dead job counts again among the unfinished jobs once it is retried.
    if (job.state === 'dead') checkRoom(shard, job.queue);
    retryJob(shard, job);
    return Reply.OK;
  },
  [Op.RecurrentJob]: recurrentJob,
  [Op.ListRecurrentJobs]: (shard, [, , , group, slug]) => {
    const queue = existingQueue(shard.group(group), slug as string);
    return `[${[...queue.recurrent.values()].map(renderRecurrent).join(',')}]`;
  },
  [Op.DeleteRecurrentJob]: deleteRecurrentJob,
  [Op.Dispatch]: (shard) => {
    for (const group of shard.groups.values()) {
      for (const queue of group.queues.values()) dispatchQueue(shard, queue);
    }
    return Reply.OK;
  },
  [Op.Stats]: stats,
  [Op.DebugQueues]: debugQueues,
  [Op.AdvanceClock]: (shard, [, , , , milliseconds]) => {
    shard.timers.advance(milliseconds as number);
    return Reply.OK;
  },
  [Op.Close]: (shard, [, , connectionId]) => {
    const worker = shard.connections.get(connectionId);
    if (worker === undefined) return undefined;
    shard.connections.delete(connectionId);
    dropWorker(shard, worker);
    return undefined;
  },
  [Op.Fail]: () => {
    throw new Error('failure requested by DEBUG shard-error');
  },
  [Op.Crash]: () => {
    setImmediate(() => {
      throw new Error('shard thread crash requested by DEBUG shard-crash');
    });
    return Reply.OK;
  },
  [Op.Restore]: restoreConnections,
  [Op.StorageFault]: (shard, [, , , , on]) => {
    shard.setStorageFault(on as boolean);
    return Reply.OK;
  },
  [Op.Bounce]: (shard, [, , connectionId, , jobId, group]) => {
    const job = shard.group(group as string).jobs.get(jobId as string);
    const worker = shard.connections.get(connectionId);
    if (worker === undefined) {
      // The connection closed before the push reached it.
      if (job !== undefined) undoLostAttempt(shard, job, connectionId);
      return undefined;
    }
    worker.awaitingCredit = true;
    // The connection never saw this job, so a revocation of it meanwhile must not count.
    settleRevoked(shard, worker, jobId as string);
    if (job !== undefined && job.holder === worker) returnUndelivered(shard, job);
    return undefined;
  },
  [Op.Credit]: (shard, [, , connectionId]) => {
    const worker = shard.connections.get(connectionId);
    if (worker === undefined) return undefined;
    worker.awaitingCredit = false;
    for (const queue of worker.subscriptions) shard.markDirty(queue);
    return undefined;
  },
  [Op.Pause]: (shard, [, , connectionId, , paused]) => {
    const worker = shard.connections.get(connectionId);
    if (worker === undefined) return undefined;
    worker.paused = paused as boolean;
    if (!worker.paused) for (const queue of worker.subscriptions) shard.markDirty(queue);
    return undefined;
  },
};

import type { MessagePort } from 'node:worker_threads';
import Denque from 'denque';
import pino, { Logger } from 'pino';
import { errorReply, ErrorCode, ProtocolError } from '../protocol/errors';
import { LmdbStore, RecurrentRecord } from '../storage/lmdb-store';
import { JobStore, MemoryStore } from '../storage/store';
import { decode, encode } from './codec';
import { dispatchQueue, dropUnseenJob, restoreJob, ShardContext } from './lifecycle';
import { GroupSettings, Op, Out, Output, Request, ShardInit, ShardMessage, ShardSettings } from './messages';
import { Group, Job, Queue, RecurrentEntry, WorkerConnection } from './model';
import { parseSchedule } from './cron';
import { getOrCreateQueue, OPERATIONS, runRecurrent, scheduleRecurrent } from './operations';
import { Policies } from './policy';
import { renderPush } from './render';
import { Timers } from './timers';

/**
 * Reply characters after which a batch's outputs so far are sent at once, so one batch of
 * large listings never builds a message of many times max_reply_bytes.
 */
const EARLY_SEND_CHARS = 32 * 1024 * 1024;

/** Interval between attempts to write again after the store failed. */
const STORAGE_RETRY_MS = 500;

/** Operations that change stored state and are refused while the store fails. */
const WRITING_OPS = new Set<Op>([
  Op.Publish,
  Op.DeleteQueue,
  Op.PurgeJobs,
  Op.DeleteJob,
  Op.RetryJob,
  Op.PauseQueue,
  Op.ResumeQueue,
  Op.RecurrentJob,
  Op.DeleteRecurrentJob,
]);

/** A message built by a turn and waiting for the commit of that turn's changes. */
interface PendingMessage {
  answersBatch: boolean;
  outputs: Output[];
  /** Replies that an unstored change turns into storage-unavailable, with their requests. */
  writeReplies: Output[];
  writeRequests: Request[];
  /** Jobs published by the turn's requests, taken back when the change is not stored. */
  published: Job[];
}

/** Returns true for a request whose change must be stored before its reply is sent. */
function writes(request: Request): boolean {
  if (request[0] === Op.UpdateJob) return request[5] !== 'in-progress';
  return WRITING_OPS.has(request[0]);
}

/**
 * One shard: the queues, jobs, workers and timers of the groups placed on this thread. It
 * runs the requests of each batch in order, then one dispatch round for the queues that
 * changed, and replies to the batch with one message that contains the replies, pushes and releases.
 */
export class Shard implements ShardContext {
  readonly settings: ShardSettings;
  readonly timers: Timers;
  readonly store: JobStore;
  readonly policies: Policies;
  /** True when changes are stored, so replies wait for commits. */
  private readonly durable: boolean;
  readonly logger: Logger;
  readonly groups = new Map<string, Group>();
  readonly connections = new Map<number, WorkerConnection>();
  private readonly dirty = new Set<Queue>();
  private outputs: Output[] = [];
  /** Length of the reply strings in `outputs`, to send large replies in parts. */
  private outputChars = 0;
  /** True while a batch runs; outputs of timers fired by ADVANCE_CLOCK then go with the batch reply. */
  private inBatch = false;
  /** Settles once every message so far was posted. Messages wait for their changes to be stored. */
  private posted: Promise<void> = Promise.resolve();
  /** Messages waiting for a commit before they are posted, oldest first. */
  private readonly waiting = new Denque<PendingMessage>();
  /** Replies of this turn to requests that change stored state, with their requests. */
  private writeReplies: Output[] = [];
  private writeRequests: Request[] = [];
  /** Jobs published by requests of this turn. */
  private published: Job[] = [];
  /** The cause of the last failed commit, while the store has not recovered; null when it works. */
  private storageFailure: Error | null = null;
  private recoveryTimer: NodeJS.Timeout | null = null;

  constructor(
    init: ShardInit,
    private readonly port: MessagePort,
  ) {
    this.settings = init.settings;
    this.policies = new Policies(init.settings.policy);
    this.logger = pino({ level: init.settings.logLevel, base: { shard: init.index } });
    for (const slug of init.groups) this.groups.set(slug, this.createGroup(slug, init.groupSettings[slug]));
    this.timers = new Timers(
      () => this.finishTurn(false),
      (error) => this.logger.error({ err: error }, 'timer failed inside the shard'),
    );
    this.durable = init.settings.durability !== 'memory';
    if (!this.durable) {
      this.store = new MemoryStore();
    } else {
      const { dataDir, durability, diskReserveBytes } = init.settings;
      const store = new LmdbStore(dataDir, init.groups, durability === 'fsync', diskReserveBytes);
      this.store = store;
      this.loadJobs(store);
    }
  }

  /** Creates a group with the policies its config sets over the server's. */
  private createGroup(slug: string, settings: GroupSettings | undefined): Group {
    if (settings === undefined) return new Group(slug, this.policies);
    const base = settings.defaults === undefined ? this.policies : new Policies(this.policies.resolve(settings.defaults));
    const queues = new Map<string, Policies>();
    for (const [queue, options] of Object.entries(settings.queues ?? {})) queues.set(queue, new Policies(base.resolve(options)));
    const zones = new Map<string, string>(Object.entries(settings.queueTimeZones ?? {}));
    if (settings.timeZone !== undefined) zones.set('', settings.timeZone);
    return new Group(slug, base, queues, settings.maxPendingJobs, zones);
  }

  /**
   * Rebuilds the jobs of every group from the store, in publish order.
   * NOTE: 1,000,000 stored jobs take 6 to 8 s to load, over the 5 s goal. A profile puts a
   * third in garbage collection and a quarter in creating jobs and indexing them by id.
   */
  private loadJobs(store: LmdbStore): void {
    let loaded = 0;
    for (const group of this.groups.values()) {
      loaded += store.load(group.slug, (seq, record) => restoreJob(this, getOrCreateQueue(group, record[1], 0), seq, record));
      for (const record of store.loadRecurrent(group.slug)) this.restoreRecurrent(group, record);
      for (const slug of store.loadPausedQueues(group.slug)) getOrCreateQueue(group, slug, 0).paused = true;
    }
    // Removals of done jobs past their job_timeout are written before the first request.
    void this.store.commit();
    this.dirty.clear();
    this.logger.info({ jobs: loaded, groups: this.groups.size }, 'jobs loaded from the store');
  }

  /** Runs one batch from the main thread and sends the reply message. */
  handleBatch(bytes: Uint8Array): void {
    const requests = decode<Request[]>(bytes);
    this.inBatch = true;
    for (const request of requests) this.run(request);
    this.inBatch = false;
    this.finishTurn(true);
  }

  private run(request: Request): void {
    const [op, requestId] = request;
    let reply: unknown;
    const writing = requestId !== 0 && this.durable && writes(request);
    try {
      const operation = OPERATIONS[op];
      if (operation === undefined) throw new Error(`unknown operation ${op}`);
      if (writing && this.storageFailure !== null) throw new ProtocolError(ErrorCode.STORAGE_UNAVAILABLE, this.storageDetail(this.storageFailure));
      reply = operation(this, request);
    } catch (error) {
      if (error instanceof ProtocolError) {
        reply = error.toReply();
      } else {
        this.logger.error({ err: error, op, connection: request[2], group: request[3] }, 'request failed inside the shard');
        reply = errorReply(ErrorCode.INTERNAL_ERROR, 'the request failed inside the server; see the server log');
      }
    }
    if (requestId === 0) return;
    const output: Output = [Out.Reply, requestId, reply];
    this.outputs.push(output);
    if (writing) {
      this.writeReplies.push(output);
      this.writeRequests.push(request);
    }
    if (typeof reply === 'string') this.outputChars += reply.length;
    if (this.outputChars > EARLY_SEND_CHARS) this.sendOutputs(false);
  }

  /**
   * Rebuilds a stored recurrent job under its old id. Runs missed while the server was
   * down fire once, now.
   */
  private restoreRecurrent(group: Group, [id, slug, type, expression, lastRun]: RecurrentRecord): void {
    const queue = getOrCreateQueue(group, slug, 0);
    const entry: RecurrentEntry = { id, queue, type, expression, schedule: parseSchedule(expression, group.timeZoneFor(slug)), lastRun, version: 0, deleted: false, timer: null };
    queue.recurrent.set(type, entry);
    group.recurrent.set(id, entry);
    group.nextEntryId = Math.max(group.nextEntryId, id + 1);
    const missed = entry.schedule.nextAfter(lastRun);
    if (missed !== null && missed <= this.timers.now()) runRecurrent(this, entry);
    scheduleRecurrent(this, entry);
  }

  /**
   * Sends the outputs collected so far in one message, once the changes they report are
   * stored. Messages keep their order, so a push never overtakes a reply before it.
   */
  private sendOutputs(answersBatch: boolean): void {
    const message: PendingMessage = { answersBatch, outputs: this.outputs, writeReplies: this.writeReplies, writeRequests: this.writeRequests, published: this.published };
    this.outputs = [];
    this.writeReplies = [];
    this.writeRequests = [];
    this.published = [];
    this.outputChars = 0;
    const commit = this.store.commit();
    if (commit === null && this.waiting.length === 0) {
      this.post(message);
      return;
    }
    this.waiting.push(message);
    const failure = commit === null ? null : commit.then(() => null, (error: unknown) => (error instanceof Error ? error : new Error(String(error))));
    this.posted = Promise.all([this.posted, failure]).then(([, error]) => {
      this.waiting.shift();
      try {
        if (error !== null) this.notStored(message, error);
      } catch (failed) {
        this.logger.error({ err: failed }, 'taking back unstored changes failed');
      }
      this.post(message);
    });
  }

  private post(message: PendingMessage): void {
    const encoded: ShardMessage = [message.answersBatch, message.outputs];
    this.port.postMessage(encode(encoded));
  }

  private storageDetail(cause: Error): string {
    return `the store failed (${cause.message}) and nothing was changed; retry once the disk of data_dir works again`;
  }

  /**
   * Handles a message whose changes were not stored: its replies to changes become storage-unavailable
   * and the jobs its requests published are taken back, so no client gets OK for a change
   * that a restart would lose. Other changes stay in memory and are written again once the
   * store works.
   */
  private notStored(message: PendingMessage, cause: Error): void {
    if (this.storageFailure === null) {
      this.storageFailure = cause;
      this.logger.error({ err: cause }, 'the store failed; requests that change jobs get storage-unavailable until a write succeeds');
      this.scheduleRecovery();
    }
    const notMade = errorReply(ErrorCode.STORAGE_UNAVAILABLE, this.storageDetail(cause));
    const keptInMemory = errorReply(
      ErrorCode.STORAGE_UNAVAILABLE,
      `the store failed (${cause.message}); the change holds in memory and is stored once the disk of data_dir works again, unless the server stops first`,
    );
    message.writeReplies.forEach((output, index) => {
      if (typeof output[2] !== 'string' || output[2].startsWith('Err: ')) return;
      const request = message.writeRequests[index];
      output[2] = request[0] === Op.Publish ? notMade : keptInMemory;
      // A final report took effect in memory, so the job is no longer the reporter's and
      // the main thread must free its prefetch slot even though the reply is an error.
      if (request[0] === Op.UpdateJob) message.outputs.push([Out.Release, request[2], request[4] as string, false]);
    });
    for (const job of message.published) this.takeBack(job, message);
  }

  /**
   * Removes a published job that was not stored. Its pushes have not left the shard, since
   * they wait behind the message with the reply to its publish, so they are dropped.
   */
  private takeBack(job: Job, message: PendingMessage): void {
    if (job.state === 'removed') return;
    const id = job.id;
    const unseen = (output: Output): boolean => !((output[0] === Out.Push && output[3] === id) || (output[0] === Out.Release && output[2] === id));
    message.outputs = message.outputs.filter(unseen);
    for (const later of this.waiting.toArray()) later.outputs = later.outputs.filter(unseen);
    this.outputs = this.outputs.filter(unseen);
    for (const connection of this.connections.values()) connection.revoked.delete(id);
    dropUnseenJob(this, job);
  }

  /** Writes the lost changes again until a commit succeeds, then accepts changes again. */
  private scheduleRecovery(): void {
    if (this.recoveryTimer !== null) return;
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = null;
      this.tryRecovery();
    }, STORAGE_RETRY_MS);
  }

  private tryRecovery(): void {
    const commit = this.store.rewriteLost();
    if (commit === null) {
      this.storageFailure = null;
      return;
    }
    commit.then(
      () => {
        if (this.store.hasLostChanges()) {
          this.scheduleRecovery();
          return;
        }
        if (this.storageFailure !== null) this.logger.info('the store works again; requests that change jobs are accepted');
        this.storageFailure = null;
      },
      () => this.scheduleRecovery(),
    );
  }

  /** Test mode: makes every commit fail (a fault seam for tests), or stops doing so. */
  setStorageFault(on: boolean): void {
    this.store.setFault(on);
  }

  /** Runs the dispatch rounds this turn asked for and sends what the turn produced. */
  private finishTurn(answersBatch: boolean): void {
    if (this.inBatch) return;
    for (const queue of this.dirty) {
      this.dirty.delete(queue);
      dispatchQueue(this, queue);
    }
    if (!answersBatch && this.outputs.length === 0) return;
    this.sendOutputs(answersBatch);
  }

  notePublished(job: Job): void {
    if (this.durable) this.published.push(job);
  }

  /** Asks for a dispatch round of the queue; the rounds run in the order of the latest requests. */
  markDirty(queue: Queue): void {
    this.dirty.delete(queue);
    this.dirty.add(queue);
  }

  emitPush(worker: WorkerConnection, job: Job): void {
    this.outputs.push([Out.Push, worker.id, renderPush(job), job.id, job.queue.group.slug]);
  }

  emitRelease(connectionId: number, jobId: string, counted: boolean): void {
    this.outputs.push([Out.Release, connectionId, jobId, counted]);
  }

  group(slug: string): Group {
    const group = this.groups.get(slug);
    if (group === undefined) throw new Error(`group ${slug} is not placed on this shard`);
    return group;
  }

  /** Returns the shard's record of a connection, creating it on first use. */
  connection(id: number, username: string, address: string): WorkerConnection {
    let connection = this.connections.get(id);
    if (connection === undefined) {
      connection = { id, username, address, held: new Set(), revoked: new Set(), subscriptions: new Set(), paused: false, awaitingCredit: false, prefetch: 0 };
      this.connections.set(id, connection);
    }
    return connection;
  }

  /** Stops the timers and closes the store once every message was posted. */
  async stop(): Promise<void> {
    this.timers.stop();
    if (this.recoveryTimer !== null) clearTimeout(this.recoveryTimer);
    this.recoveryTimer = null;
    await this.posted;
    await this.store.close();
  }
}

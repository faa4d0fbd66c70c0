import type { MessagePort } from 'node:worker_threads';
import pino, { Logger } from 'pino';
import { errorReply, ErrorCode, ProtocolError } from '../protocol/errors';
import { LmdbStore, RecurrentRecord } from '../storage/lmdb-store';
import { JobStore, MemoryStore } from '../storage/store';
import { decode, encode } from './codec';
import { dispatchQueue, restoreJob, ShardContext } from './lifecycle';
import { Out, Output, Request, ShardInit, ShardMessage, ShardSettings } from './messages';
import { Group, Job, Queue, RecurrentEntry, WorkerConnection } from './model';
import { parseSchedule } from './cron';
import { getOrCreateQueue, OPERATIONS, runRecurrent, scheduleRecurrent } from './operations';
import { renderPush } from './render';
import { Timers } from './timers';

/**
 * One shard: the queues, jobs, workers and timers of the groups placed on this thread. It
 * runs the requests of each batch in order, then one dispatch round for the queues that
 * changed, and replies to the batch with one message that contains the replies, pushes and releases.
 */
/**
 * Reply characters after which a batch's outputs so far are sent at once, so one batch of
 * large listings never builds a message of many times max_reply_bytes.
 */
const EARLY_SEND_CHARS = 32 * 1024 * 1024;

export class Shard implements ShardContext {
  readonly settings: ShardSettings;
  readonly timers: Timers;
  readonly store: JobStore;
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
  /** Messages waiting for a commit before they are posted. */
  private waiting = 0;

  constructor(
    init: ShardInit,
    private readonly port: MessagePort,
  ) {
    this.settings = init.settings;
    this.logger = pino({ level: init.settings.logLevel, base: { shard: init.index } });
    for (const slug of init.groups) this.groups.set(slug, new Group(slug));
    this.timers = new Timers(
      () => this.finishTurn(false),
      (error) => this.logger.error({ err: error }, 'timer failed inside the shard'),
    );
    if (init.settings.durability === 'memory') {
      this.store = new MemoryStore();
    } else {
      const store = new LmdbStore(init.settings.dataDir, init.groups, init.settings.durability === 'fsync');
      this.store = store;
      this.loadJobs(store);
    }
  }

  /** Rebuilds the jobs of every group from the store, in publish order. */
  private loadJobs(store: LmdbStore): void {
    let loaded = 0;
    for (const group of this.groups.values()) {
      for (const { seq, record } of store.load(group.slug)) {
        restoreJob(this, getOrCreateQueue(group, record[1], 0), seq, record);
        loaded++;
      }
      for (const record of store.loadRecurrent(group.slug)) this.restoreRecurrent(group, record);
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
    try {
      const operation = OPERATIONS[op];
      if (operation === undefined) throw new Error(`unknown operation ${op}`);
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
    this.outputs.push([Out.Reply, requestId, reply]);
    if (typeof reply === 'string') this.outputChars += reply.length;
    if (this.outputChars > EARLY_SEND_CHARS) this.sendOutputs(false);
  }

  /**
   * Rebuilds a stored recurrent job under its old id. Runs missed while the server was
   * down fire once, now.
   */
  private restoreRecurrent(group: Group, [id, slug, type, expression, lastRun]: RecurrentRecord): void {
    const queue = getOrCreateQueue(group, slug, 0);
    const entry: RecurrentEntry = { id, queue, type, expression, schedule: parseSchedule(expression), lastRun, version: 0, deleted: false, timer: null };
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
    const message: ShardMessage = [answersBatch, this.outputs];
    this.outputs = [];
    this.outputChars = 0;
    const commit = this.store.commit();
    if (commit === null && this.waiting === 0) {
      this.port.postMessage(encode(message));
      return;
    }
    this.waiting++;
    this.posted = Promise.all([this.posted, commit]).then(
      () => {
        this.waiting--;
        this.port.postMessage(encode(message));
      },
      (error: unknown) => {
        // TODO: reply storage-unavailable instead of posting, and recover once the disk does.
        this.waiting--;
        this.logger.error({ err: error }, 'storing a batch failed');
        this.port.postMessage(encode(message));
      },
    );
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

  markDirty(queue: Queue): void {
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
      connection = { id, username, address, held: new Set(), revoked: new Set(), subscriptions: new Set(), paused: false, awaitingCredit: false };
      this.connections.set(id, connection);
    }
    return connection;
  }

  /** Stops the timers and closes the store once every message was posted. */
  async stop(): Promise<void> {
    this.timers.stop();
    await this.posted;
    await this.store.close();
  }
}

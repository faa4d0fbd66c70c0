import path from 'node:path';
import { MessageChannel, MessagePort } from 'node:worker_threads';
import Denque from 'denque';
import Piscina from 'piscina';
import type { Logger } from 'pino';
import { Config, JobDefaults } from '../config/types';
import { errorReply, ErrorCode } from '../protocol/errors';
import { decode, encode } from './codec';
import { GroupSettings, Op, Out, Output, Request, RestoredConnection, ShardInit, ShardMessage, ShardSettings } from './messages';
import type { PolicyOptions } from './policy';
import { placeGroup } from './placement';

/** Receives a shard's reply to one request. */
export type ReplySink = (value: unknown) => void;

export interface ShardEvents {
  onPush(connectionId: number, line: string, jobId: string, group: string): void;
  onRelease(connectionId: number, jobId: string, counted: boolean): void;
  /** Returns the open connections as a restarted shard needs them. */
  connectionsOf(shard: number): RestoredConnection[];
  /** A connection's held job is gone with a restarted shard. */
  onJobLost(connectionId: number, jobId: string): void;
}

/** Plain string messages that are not batches. */
const READY = 'ready';
const SHUTDOWN = 'shutdown';

const WORKER_FILE = path.join(__dirname, 'worker.js');

/**
 * Requests per batch. A larger backlog goes in several batches, so a request queued behind
 * thousands of others on a busy shard waits for a few batches, not for all of them.
 */
const MAX_BATCH_REQUESTS = 512;

/** A shard thread that dies more often than this within RESTART_WINDOW_MS stays down. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

/** Converts job defaults of the config, in seconds, to policy options in milliseconds. */
function policyOptions(values: JobDefaults): PolicyOptions {
  const options: PolicyOptions = {};
  if (values.priority !== undefined) options.priority = values.priority;
  if (values.max_attempts !== undefined) options.maxAttempts = values.max_attempts;
  if (values.backoff !== undefined) options.backoff = values.backoff;
  if (values.retry_delay !== undefined) options.retryDelayMs = values.retry_delay * 1000;
  if (values.retry_max_delay !== undefined) options.retryMaxDelayMs = values.retry_max_delay * 1000;
  if (values.lease !== undefined) options.leaseMs = values.lease * 1000;
  return options;
}

/** Main-thread side of one shard thread: its pool, its port and its outgoing batch. */
class ShardHandle {
  pool: Piscina;
  port: MessagePort;
  attach: Promise<unknown>;
  ready: Promise<void>;
  /** Requests waiting for the next batch. */
  queued: Request[] = [];
  /**
   * Receivers of the replies still owed, oldest first, with their request ids. A shard
   * replies to its requests in the order it received them, so replies are matched from the front.
   */
  sinks = new Denque<[number, ReplySink]>();
  inFlight = false;
  scheduled = false;
  alive = true;
  /** Start times of the threads this handle replaced, for the restart limit. */
  restarts: number[] = [];

  constructor(
    readonly index: number,
    init: ShardInit,
    onMessage: (handle: ShardHandle, data: unknown) => void,
  ) {
    this.pool = new Piscina({
      filename: WORKER_FILE,
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: Infinity,
      // The default atomics mode parks an idle thread in Atomics.wait, which would stop
      // the shard's timers and its port. A shard must run without a task arriving.
      atomics: 'disabled',
    });
    const channel = new MessageChannel();
    this.port = channel.port1;
    let markReady: () => void = () => undefined;
    this.ready = new Promise((resolve) => {
      markReady = resolve;
    });
    this.port.on('message', (data: unknown) => {
      if (data === READY) {
        markReady();
        return;
      }
      onMessage(this, data);
    });
    this.attach = this.pool.run({ ...init, port: channel.port2 }, { transferList: [channel.port2] as never });
  }
}

/**
 * Routes requests to the shard that owns their group. At most one batch is in flight per
 * shard, and requests that arrive meanwhile join the next batch.
 */
export class ShardPool {
  private readonly handles: ShardHandle[] = [];
  private readonly groupShard = new Map<string, number>();
  private settings: ShardSettings | undefined;
  private nextRequestId = 1;
  private closing = false;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly events: ShardEvents,
  ) {
    for (const group of config.groups) {
      this.groupShard.set(group.slug, placeGroup(group, config.shards));
    }
  }

  get size(): number {
    return this.handles.length;
  }

  /** Starts every shard thread and waits until each has attached. */
  async start(): Promise<void> {
    const settings: ShardSettings = (this.settings = {
      jobTimeoutMs: this.config.job_timeout * 1000,
      deadJobTtlMs: this.config.dead_job_ttl * 1000,
      policy: {
        priority: 0,
        maxAttempts: this.config.max_attempts,
        backoff: this.config.backoff,
        retryDelayMs: this.config.retry_delay * 1000,
        retryMaxDelayMs: this.config.retry_max_delay * 1000,
        leaseMs: this.config.lease * 1000,
      },
      maxPendingJobs: this.config.max_pending_jobs,
      prefetch: this.config.prefetch,
      ignoreDelays: this.config.delay_policy === 'IGNORE',
      maxReplyBytes: this.config.max_reply_bytes,
      logLevel: this.config.log_level,
      dataDir: path.resolve(this.config.data_dir),
      durability: this.config.durability,
      diskReserveBytes: this.config.disk_reserve_bytes,
    });
    for (let index = 0; index < this.config.shards; index++) {
      this.handles.push(this.startThread(index, settings));
    }
    // A thread that fails while it starts (a store that cannot be opened) stops the start-up.
    await Promise.all(
      this.handles.map((handle) =>
        Promise.race([
          handle.ready,
          handle.attach.then(() => {
            throw new Error(`shard ${handle.index} stopped while it started`);
          }),
        ]),
      ),
    );
  }

  private startThread(index: number, settings: ShardSettings): ShardHandle {
    const groups = [...this.groupShard].filter(([, shard]) => shard === index).map(([slug]) => slug);
    const groupSettings: Record<string, GroupSettings> = {};
    for (const group of this.config.groups) {
      if (!groups.includes(group.slug)) continue;
      const queues = group.queues === undefined ? undefined : Object.fromEntries(Object.entries(group.queues).map(([slug, values]) => [slug, policyOptions(values)]));
      const queueTimeZones: Record<string, string> = {};
      for (const [slug, values] of Object.entries(group.queues ?? {})) if (values.time_zone !== undefined) queueTimeZones[slug] = values.time_zone;
      groupSettings[group.slug] = {
        maxPendingJobs: group.max_pending_jobs ?? 0,
        ...(group.defaults?.time_zone === undefined ? {} : { timeZone: group.defaults.time_zone }),
        queueTimeZones,
        ...(group.defaults === undefined ? {} : { defaults: policyOptions(group.defaults) }),
        ...(queues === undefined ? {} : { queues }),
      };
    }
    const handle = new ShardHandle(index, { index, groups, groupSettings, settings }, (h, data) => this.onMessage(h, data));
    handle.attach.then(
      () => this.onDetached(handle, undefined),
      (error: unknown) => this.onDetached(handle, error),
    );
    this.logger.debug({ shard: index, groups }, 'shard starting');
    return handle;
  }

  /** Returns the shard index that owns a configured group. */
  shardOf(group: string): number {
    const shard = this.groupShard.get(group);
    if (shard === undefined) throw new Error(`group ${group} has no shard`);
    return shard;
  }

  /** Queues a request for the group's shard. `sink` receives the reply. */
  request(group: string, op: Op, connectionId: number, args: unknown[], sink: ReplySink): void {
    this.enqueue(this.handles[this.shardOf(group)], op, connectionId, group, args, sink);
  }

  /** Sends a request to every shard and resolves with their replies in shard order. */
  broadcast(op: Op, args: unknown[] = []): Promise<unknown[]> {
    return Promise.all(
      this.handles.map(
        (handle) =>
          new Promise<unknown>((resolve) => {
            this.enqueue(handle, op, 0, '', args, resolve);
          }),
      ),
    );
  }

  /** Sends a request that expects no reply to the given shards. */
  notify(shards: Iterable<number>, op: Op, connectionId: number, args: unknown[] = []): void {
    for (const index of shards) {
      this.enqueue(this.handles[index], op, connectionId, '', args, undefined);
    }
  }

  /** Stops every shard thread after the batches in flight get their replies. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.handles.map(async (handle) => {
        if (handle.alive) handle.port.postMessage(SHUTDOWN);
        await handle.attach.catch(() => undefined);
        handle.port.close();
        await handle.pool.close({ force: true });
      }),
    );
  }

  private enqueue(
    handle: ShardHandle,
    op: Op,
    connectionId: number,
    group: string,
    args: unknown[],
    sink: ReplySink | undefined,
  ): void {
    if (!handle.alive) {
      sink?.(errorReply(ErrorCode.SHARD_UNAVAILABLE, `shard ${handle.index} is not running; retry later`));
      return;
    }
    let requestId = 0;
    if (sink !== undefined) {
      requestId = this.nextRequestId++;
      handle.sinks.push([requestId, sink]);
    }
    handle.queued.push([op, requestId, connectionId, group, ...args]);
    if (!handle.inFlight) this.scheduleFlush(handle);
  }

  /**
   * Sends the next batch once the current turn of the event loop has read every socket
   * that was ready, so that one batch carries all the requests of the turn. Each batch
   * costs a wake-up of the shard thread and of the main thread, whatever its size.
   */
  private scheduleFlush(handle: ShardHandle): void {
    if (handle.scheduled) return;
    handle.scheduled = true;
    setImmediate(() => {
      handle.scheduled = false;
      this.flush(handle);
    });
  }

  // TODO: each batch wakes the shard thread and then the main thread through a MessagePort,
  // about 50 µs of CPU per round trip on a small machine, which dominates at low rates and
  // with many shards. A shared-memory ring signalled with Atomics.waitAsync measured a third
  // less in a microbenchmark.
  private flush(handle: ShardHandle): void {
    if (handle.inFlight || handle.queued.length === 0 || !handle.alive) return;
    let batch = handle.queued;
    if (batch.length > MAX_BATCH_REQUESTS) {
      batch = batch.splice(0, MAX_BATCH_REQUESTS);
    } else {
      handle.queued = [];
    }
    handle.inFlight = true;
    // Copied, not transferred: for batches of a few kilobytes a copy costs less than
    // detaching the buffer and handing it over.
    handle.port.postMessage(encode(batch));
  }

  private onMessage(handle: ShardHandle, data: unknown): void {
    const [answersBatch, outputs] = decode<ShardMessage>(data as Uint8Array);
    for (const output of outputs) {
      try {
        this.deliver(handle, output);
      } catch (error) {
        this.logger.error({ err: error, shard: handle.index, kind: output[0] }, 'failed to deliver a shard output');
      }
    }
    if (answersBatch) {
      handle.inFlight = false;
      if (handle.queued.length > 0) this.scheduleFlush(handle);
    }
  }

  private deliver(handle: ShardHandle, output: Output): void {
    switch (output[0]) {
      case Out.Reply: {
        const entry = handle.sinks.shift();
        if (entry === undefined || entry[0] !== output[1]) {
          throw new Error(`shard ${handle.index} replied to request ${output[1]} out of order`);
        }
        entry[1](output[2]);
        break;
      }
      case Out.Push:
        this.events.onPush(output[1], output[2], output[3], output[4]);
        break;
      case Out.Release:
        this.events.onRelease(output[1], output[2], output[3]);
        break;
    }
  }

  private onDetached(handle: ShardHandle, error: unknown): void {
    handle.alive = false;
    if (this.closing) {
      if (error !== undefined) this.logger.error({ shard: handle.index, err: error }, 'shard thread failed while stopping');
      return;
    }
    const now = Date.now();
    const restarts = handle.restarts.filter((time) => now - time < RESTART_WINDOW_MS);
    if (restarts.length >= MAX_RESTARTS || this.settings === undefined) {
      this.logger.error({ shard: handle.index, err: error, restarts: restarts.length }, 'shard thread stopped again; its groups stay unavailable until the server restarts');
      this.failRequests(handle, handle.sinks.toArray(), errorReply(ErrorCode.SHARD_UNAVAILABLE, `shard ${handle.index} stopped; restart the server`));
      handle.sinks.clear();
      handle.queued = [];
      return;
    }
    const lost = this.settings.durability === 'memory' ? '; durability is memory, so the jobs of its groups are lost' : '';
    this.logger.error({ shard: handle.index, err: error }, `shard thread stopped; restarting it${lost}`);
    this.restart(handle, [...restarts, now]);
  }

  /**
   * Replaces a dead shard thread. The requests of the batch in flight get an error, since
   * they may or may not have run. The new thread loads its groups from the store, gets the
   * connections back first, then the requests that were waiting.
   */
  private restart(dead: ShardHandle, restarts: number[]): void {
    const waiting = new Set(dead.queued.map((request) => request[1]));
    const inFlight = dead.sinks.toArray().filter(([id]) => !waiting.has(id));
    const carried = dead.sinks.toArray().filter(([id]) => waiting.has(id));
    const handle = this.startThread(dead.index, this.settings as ShardSettings);
    handle.restarts = restarts;
    this.handles[dead.index] = handle;
    this.enqueue(handle, Op.Restore, 0, '', [this.events.connectionsOf(dead.index)], (value) => {
      for (const [connectionId, jobId] of value as Array<[number, string]>) this.events.onJobLost(connectionId, jobId);
      this.logger.info({ shard: dead.index }, 'shard thread restarted');
    });
    for (const entry of carried) handle.sinks.push(entry);
    handle.queued.push(...dead.queued);
    dead.queued = [];
    dead.sinks.clear();
    this.failRequests(dead, inFlight, errorReply(ErrorCode.SHARD_UNAVAILABLE, `shard ${dead.index} stopped while running this request, which may or may not have taken effect; check and retry`));
    dead.port.close();
    void dead.pool.destroy().catch(() => undefined);
  }

  private failRequests(handle: ShardHandle, sinks: Array<[number, ReplySink]>, reply: string): void {
    for (const [, sink] of sinks) {
      try {
        sink(reply);
      } catch (error) {
        this.logger.error({ err: error, shard: handle.index }, 'failed to deliver a shard error');
      }
    }
  }
}

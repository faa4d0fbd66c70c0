import os from 'node:os';
import { Op, ShardStats, DebugQueue } from '../../shards/messages';
import type { ServerContext } from '../context';
import { ErrorCode, ProtocolError } from '../errors';
import { Reply } from '../replies';
import type { Client } from '../session';
import { renderSession, type Handler } from './session';

/** Maximum clock step of ADVANCE_CLOCK: ten years, in seconds. */
const MAX_CLOCK_STEP_SECONDS = 10 * 365 * 24 * 3600;

function requireTestMode(ctx: ServerContext, code: typeof ErrorCode.TEST_MODE_DISABLED | typeof ErrorCode.FORBIDDEN = ErrorCode.TEST_MODE_DISABLED): void {
  if (!ctx.config.test_mode) throw new ProtocolError(code);
}

/** Returns a shard's reply to a broadcast, or throws the error reply it sent instead. */
function shardValue<T>(value: unknown): T {
  if (typeof value === 'string' && value.startsWith('Err: ')) {
    const [code, detail] = value.slice('Err: '.length).split(/;(.*)/s);
    throw new ProtocolError(code as typeof ErrorCode.INTERNAL_ERROR, detail);
  }
  return value as T;
}

async function health(ctx: ServerContext): Promise<string> {
  const answers = await ctx.shards.broadcast(Op.Stats);
  let queues = 0;
  let jobs = 0;
  const workers = new Set<number>();
  for (const answer of answers) {
    const stats = shardValue<ShardStats>(answer);
    queues += stats.queues;
    jobs += stats.jobs;
    for (const id of stats.workerConnections) workers.add(id);
  }
  let authed = 0;
  for (const client of ctx.clients.values()) if (client.session.user !== null) authed++;
  return JSON.stringify({
    Uptime: Math.floor((Date.now() - ctx.startedAt) / 1000),
    Os: process.platform,
    Version: `node${process.versions.node}`,
    NumCPU: os.availableParallelism(),
    NumGoroutine: ctx.shards.size + 1,
    NumSessions: ctx.clients.size,
    NumAuthed: authed,
    NumGroups: ctx.groups.size,
    NumUsers: ctx.config.users.length,
    NumQueues: queues,
    NumJobs: jobs,
    NumWorkers: workers.size,
    UnixTimestamp: Math.floor(Date.now() / 1000),
  });
}

async function debugJson(ctx: ServerContext): Promise<string> {
  requireTestMode(ctx);
  const answers = await ctx.shards.broadcast(Op.DebugQueues);
  const queues: DebugQueue[] = answers.flatMap((answer) => shardValue<DebugQueue[]>(answer));
  queues.sort((a, b) => a.createdAt - b.createdAt);
  const sessions = [...ctx.clients.values()].map((client) => renderSession(ctx, client));
  const users = ctx.config.users.map((user) => JSON.stringify({ Username: user.username, Groups: user.groups }));
  const groups = [...ctx.groups].map((slug) => JSON.stringify({ Slug: slug }));
  const { host, port } = ctx.tcpAddress();
  return (
    `{"Queues":[${queues.map((queue) => queue.json).join(',')}],"Groups":[${groups.join(',')}],` +
    `"Sessions":[${sessions.join(',')}],"Users":[${users.join(',')}],` +
    `"Host":${JSON.stringify(host)},"Port":"${port}"}`
  );
}

async function dispatch(ctx: ServerContext): Promise<string> {
  if (!ctx.config.allow_dispatch) throw new ProtocolError(ErrorCode.DISPATCH_DISABLED);
  for (const answer of await ctx.shards.broadcast(Op.Dispatch)) shardValue(answer);
  return Reply.OK;
}

async function advanceClock(ctx: ServerContext, _client: Client, [secondsText]: string[]): Promise<string> {
  requireTestMode(ctx);
  const seconds = Number(secondsText);
  if (!/^\d+(\.\d+)?$/.test(secondsText) || !(seconds >= 0 && seconds <= MAX_CLOCK_STEP_SECONDS)) {
    throw new ProtocolError(ErrorCode.INVALID_ARGUMENT, `seconds must be a number from 0 to ${MAX_CLOCK_STEP_SECONDS}, got "${secondsText.slice(0, 40)}"`);
  }
  for (const answer of await ctx.shards.broadcast(Op.AdvanceClock, [Math.round(seconds * 1000)])) shardValue(answer);
  return Reply.OK;
}

/** Sends a test-mode request to the shard of the client's group and returns its reply. */
function toGroupShard(ctx: ServerContext, client: Client, op: Op, args: unknown[]): Promise<string> {
  const group = client.session.group;
  if (group === null) throw new ProtocolError(ErrorCode.GROUP_NOT_SELECTED);
  client.session.shards.add(ctx.shards.shardOf(group));
  return new Promise((resolve) => ctx.shards.request(group, op, client.id, args, (value) => resolve(String(value))));
}

/**
 * DEBUG logs the server state. `DEBUG shard-error` makes the shard of the current group
 * fail one request, which must reply internal-error and leave the shard running.
 * `DEBUG storage-fault on|off` makes every commit of that shard's store fail, as a failing
 * disk would, or stops doing so. `DEBUG shard-crash` ends that shard's thread with an
 * uncaught error, so the main thread restarts it.
 */
function debug(ctx: ServerContext, client: Client, args: string[]): string | Promise<string> {
  requireTestMode(ctx);
  if (args[0] === 'shard-error') return toGroupShard(ctx, client, Op.Fail, []);
  if (args[0] === 'shard-crash') return toGroupShard(ctx, client, Op.Crash, []);
  if (args[0] === 'storage-fault') {
    if (args.length !== 2 || (args[1] !== 'on' && args[1] !== 'off')) {
      throw new ProtocolError(ErrorCode.INVALID_ARGUMENT, 'use DEBUG storage-fault on, or DEBUG storage-fault off');
    }
    if (ctx.config.durability === 'memory') {
      throw new ProtocolError(ErrorCode.INVALID_ARGUMENT, 'durability is memory, so there is no store to fail; set durability to os or fsync');
    }
    return toGroupShard(ctx, client, Op.StorageFault, [args[1] === 'on']);
  }
  ctx.logger.info({ sessions: ctx.clients.size, groups: [...ctx.groups], shards: ctx.shards.size }, 'debug state');
  return Reply.OK;
}

function debugParts(ctx: ServerContext, _client: Client, args: string[]): string {
  requireTestMode(ctx);
  return JSON.stringify(['DEBUG_PARTS', ...args]);
}

function stopServer(ctx: ServerContext, client: Client): string {
  requireTestMode(ctx, ErrorCode.FORBIDDEN);
  client.closeAfterReplies();
  setImmediate(() => ctx.stop('STOP_SERVER command'));
  return Reply.OK;
}

export const ADMIN_HANDLERS: Record<string, Handler> = {
  HEALTH: health,
  DEBUG_JSON: debugJson,
  DEBUG: debug,
  DEBUG_PARTS: debugParts,
  DISPATCH: dispatch,
  STOP_SERVER: stopServer,
  ADVANCE_CLOCK: advanceClock,
};

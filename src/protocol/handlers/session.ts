import type { UserConfig } from '../../config/types';
import { Op } from '../../shards/messages';
import { COMMANDS, findCommand } from '../commands';
import type { ServerContext } from '../context';
import { ErrorCode, errorReply, ProtocolError } from '../errors';
import { Reply } from '../replies';
import type { Client } from '../session';

/** Logs failed logins, at most one line per interval with a count of the others. */
class FailureLog {
  private lastLogged = 0;
  private suppressed = 0;

  constructor(private readonly intervalMs: number) {}

  record(logger: ServerContext['logger'], fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now - this.lastLogged < this.intervalMs) {
      this.suppressed++;
      return;
    }
    logger.info({ ...fields, suppressed: this.suppressed }, 'login failed');
    this.lastLogged = now;
    this.suppressed = 0;
  }
}

const loginFailures = new FailureLog(1000);

export type Handler = (ctx: ServerContext, client: Client, args: string[]) => string | Promise<string>;

function auth(ctx: ServerContext, client: Client, [username, password]: string[]): string | Promise<string> {
  const session = client.session;
  const finish = (user: UserConfig | null): string => {
    if (user === null) {
      loginFailures.record(ctx.logger, { connection: client.id, address: client.address, username });
      return errorReply(ErrorCode.INVALID_CREDENTIALS);
    }
    const previous = session.user;
    if (previous !== null && previous.username !== user.username && (session.isWorker || session.held.size > 0 || session.revoked.size > 0)) {
      // Subscriptions and held jobs belong to the user who made them, and a shard cannot
      // drop them without racing the pushes already on their way.
      return errorReply(
        ErrorCode.USER_LOCKED,
        `this connection subscribed or holds jobs as ${previous.username}, so it stays logged in as ${previous.username}; log in as ${user.username} on a new connection`,
      );
    }
    session.user = user;
    // A new login must not keep a group the new user may not use.
    if (session.group !== null && !session.mayUse(session.group)) session.group = null;
    ctx.logger.debug({ connection: client.id, username }, 'logged in');
    return Reply.WELCOME;
  };
  const result = ctx.authenticator.verify(username, password);
  return result instanceof Promise ? result.then(finish) : finish(result);
}

function useGroup(ctx: ServerContext, client: Client, [group]: string[]): string {
  if (!ctx.groups.has(group)) throw new ProtocolError(ErrorCode.UNKNOWN_GROUP);
  if (!client.session.mayUse(group)) throw new ProtocolError(ErrorCode.FORBIDDEN_GROUP);
  client.session.group = group;
  return Reply.OK;
}

/** Returns a client's status for listings: a worker is available while under its prefetch. */
export function workerStatus(ctx: ServerContext, client: Client): string {
  if (!client.session.isWorker) return '';
  return client.session.held.size < (client.session.prefetch || ctx.config.prefetch) ? 'available' : 'busy';
}

/** Renders a session for LIST_SESSIONS and DEBUG_JSON, without the password. */
export function renderSession(ctx: ServerContext, client: Client): string {
  const { user, group } = client.session;
  return JSON.stringify({
    Username: user?.username ?? '',
    Groups: user?.groups ?? [],
    Addr: client.address,
    CurrentGroup: { Slug: group ?? '' },
    Status: workerStatus(ctx, client),
  });
}

function currentSession(_ctx: ServerContext, client: Client): string {
  const { user, group, isWorker } = client.session;
  return JSON.stringify({
    Username: user?.username ?? '',
    Addr: client.address,
    CurrentGroup: group ?? '',
    IsWorker: isWorker,
    Groups: user?.groups ?? [],
  });
}

/** Lists the sessions of the caller's group; without a group, only the caller's own. */
function listSessions(ctx: ServerContext, client: Client): string {
  const group = client.session.group;
  if (group === null) return `[${renderSession(ctx, client)}]`;
  const sessions: string[] = [];
  for (const other of ctx.clients.values()) {
    if (other.session.group === group) sessions.push(renderSession(ctx, other));
  }
  return `[${sessions.join(',')}]`;
}

function help(_ctx: ServerContext, _client: Client, args: string[]): string {
  if (args.length === 0) {
    return JSON.stringify(COMMANDS.filter((command) => command.listed).map((command) => command.name));
  }
  const command = findCommand(args[0].toUpperCase());
  if (command === undefined) throw new ProtocolError(ErrorCode.UNKNOWN_COMMAND);
  return JSON.stringify({
    Name: command.name,
    RequireAuth: command.requireAuth,
    RequireGroup: command.requireGroup,
    Args: command.forms[0].args,
    Description: command.description,
    Usage: command.usage,
  });
}

/** Largest PREFETCH value, as for the prefetch config key. */
const MAX_PREFETCH = 100_000;

/**
 * Sets, for PREFETCH, how many unfinished jobs this connection may hold at once, as AMQP's
 * basic.qos does. The shards that serve it apply the new value at once.
 */
function prefetch(ctx: ServerContext, client: Client, [countText]: string[]): string {
  const count = Number(countText);
  if (!/^\d{1,6}$/.test(countText) || count < 1 || count > MAX_PREFETCH) {
    throw new ProtocolError(ErrorCode.INVALID_ARGUMENT, `prefetch must be an integer from 1 to ${MAX_PREFETCH}, got "${countText.slice(0, 40)}"`);
  }
  const session = client.session;
  session.prefetch = count;
  ctx.shards.notify(session.shards, Op.SetPrefetch, client.id, [count]);
  if (session.awaitingCredit.size > 0 && session.held.size < count) {
    ctx.shards.notify(session.awaitingCredit, Op.Credit, client.id);
    session.awaitingCredit.clear();
  }
  return Reply.OK;
}

function quit(_ctx: ServerContext, client: Client): string {
  client.closeAfterReplies();
  return Reply.GOODBYE;
}

export const SESSION_HANDLERS: Record<string, Handler> = {
  AUTH: auth,
  USE_GROUP: useGroup,
  CURRENT_SESSION: currentSession,
  LIST_SESSIONS: listSessions,
  HELP: help,
  PING: () => Reply.PONG,
  PREFETCH: prefetch,
  QUIT: quit,
};

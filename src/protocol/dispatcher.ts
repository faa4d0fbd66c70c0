import { Op } from '../shards/messages';
import { CommandSpec, findCommand, matchForm } from './commands';
import type { ServerContext } from './context';
import { errorReply, ErrorCode, ProtocolError } from './errors';
import { MAIN_HANDLERS } from './handlers';
import { parseJobOptions } from './job-options';
import type { Client } from './session';

/** Shard operation of each command that runs in a shard. */
const SHARD_OPS: Record<string, Op> = {
  PUBLISH: Op.Publish,
  PUBLISH_JOB: Op.Publish,
  RETRY_JOB: Op.RetryJob,
  GET_JOB: Op.GetJob,
  PAUSE_QUEUE: Op.PauseQueue,
  RESUME_QUEUE: Op.ResumeQueue,
  QUEUE_STATS: Op.QueueStats,
  SUBSCRIBE: Op.Subscribe,
  UNSUBSCRIBE: Op.Unsubscribe,
  LIST_QUEUES: Op.ListQueues,
  DELETE_QUEUE: Op.DeleteQueue,
  PURGE_JOBS: Op.PurgeJobs,
  PURGE_WORKERS: Op.PurgeWorkers,
  LIST_JOBS: Op.ListJobs,
  UPDATE_JOB: Op.UpdateJob,
  DELETE_JOB: Op.DeleteJob,
  RECURRENT_JOB: Op.RecurrentJob,
  LIST_RECURRENT_JOBS: Op.ListRecurrentJobs,
  DELETE_RECURRENT_JOB: Op.DeleteRecurrentJob,
};

/** Commands an HTTP gateway session cannot run, because the session ends with its request. */
const GATEWAY_UNSUPPORTED = new Set(['SUBSCRIBE', 'QUIT', 'STOP_SERVER']);

const FINAL_REPORTS = new Set(['done', 'errored']);

/** Commands whose reply may be as large as max_reply_bytes. */
const LISTINGS = new Set(['LIST_JOBS', 'LIST_QUEUES']);

/**
 * Returns true when the client's next commands must wait for this one's reply. A listing
 * waits, so that one client has at most one large reply in flight. So do the commands whose
 * reply changes what later commands read: whether the connection is a worker, and the jobs
 * it holds.
 */
function waitsForReply(name: string, args: string[]): boolean {
  return LISTINGS.has(name) || name === 'SUBSCRIBE' || (name === 'UPDATE_JOB' && args[1] === 'in-progress');
}

/**
 * Runs parsed commands: looks the name up, applies the checks in the original order
 * (unknown command, authentication, group, argument count), then runs the command on the
 * main thread or sends it to the shard of its group. Replies keep request order.
 */
export class Dispatcher {
  /** Orders the requests sent to shards; queues record it as their creation order. */
  private sequence = 1;

  constructor(private readonly ctx: ServerContext) {}

  /**
   * Runs one command. Returns a Promise when later commands of the client must wait for
   * this one (a login checked against a password hash).
   */
  execute(client: Client, args: string[]): void | Promise<void> {
    const output = client.output;
    try {
      const resolved = this.check(client, args);
      if (resolved === null) return;
      const { command, group } = resolved;
      let commandArgs = resolved.args;
      if (client.isGateway && GATEWAY_UNSUPPORTED.has(command.name)) {
        throw new ProtocolError(ErrorCode.GATEWAY_UNSUPPORTED, `${command.name} needs a TCP connection; a gateway session ends with its request`);
      }
      if (command.target === 'main') {
        const reply = MAIN_HANDLERS[command.name](this.ctx, client, commandArgs);
        if (typeof reply === 'string') {
          output.send(reply);
          return;
        }
        const slot = output.reserve();
        const done = reply.then(
          (text) => output.fill(slot, text),
          (error: unknown) => {
            const text = error instanceof ProtocolError ? error.toReply() : this.internalError(client, command.name, error);
            output.fill(slot, text);
          },
        );
        // A login changes what the next commands may do, and DEBUG_JSON may be large, so
        // the client's next commands wait for them.
        return command.name === 'AUTH' || command.name === 'DEBUG_JSON' ? done : undefined;
      }
      if (command.name === 'JOB') commandArgs = commandArgs.slice(1);
      return this.sendToShard(client, command, group as string, commandArgs);
    } catch (error) {
      if (error instanceof ProtocolError) {
        output.send(error.toReply());
        return;
      }
      output.send(this.internalError(client, args[0], error));
    }
  }

  /**
   * Applies the checks shared by every command. Returns null when a reply was already
   * sent, else the command, its arguments and the group it works in.
   */
  private check(client: Client, args: string[]): { command: CommandSpec; args: string[]; group: string | null } | null {
    const session = client.session;
    let command = findCommand(args[0].toUpperCase());
    if (command !== undefined && command.name === 'JOB' && (args.length !== 4 || args[1].toUpperCase() !== 'UPDATE')) {
      command = undefined;
    }
    if (command === undefined) throw new ProtocolError(ErrorCode.UNKNOWN_COMMAND);
    if (command.requireAuth && session.user === null) throw new ProtocolError(ErrorCode.NOT_LOGGED);
    const commandArgs = args.slice(1);
    const form = matchForm(command, commandArgs.length);
    let group = session.group;
    if (form !== undefined && (command.name === 'JOB' || command.name === 'UPDATE_JOB')) {
      // A job this connection holds, or held lately, is found whatever group is current. A
      // worker that subscribed with the older `SUBSCRIBE group queue` form then reports
      // without USE_GROUP, and a late report gets the job's own reply, such as job-finished.
      const id = command.name === 'JOB' ? commandArgs[1] : commandArgs[0];
      group = session.held.get(id) ?? session.recentlyHeld.get(id) ?? group;
    }
    if (form?.groupArg !== undefined) {
      group = commandArgs[form.groupArg];
      this.checkGroup(client, group);
      commandArgs.splice(form.groupArg, 1);
    } else if (command.requireGroup && group === null) {
      throw new ProtocolError(ErrorCode.GROUP_NOT_SELECTED);
    }
    if (form === undefined) throw new ProtocolError(ErrorCode.WRONG_ARGUMENT_COUNT);
    return { command, args: commandArgs, group };
  }

  /** Checks that a group exists and the user may use it. */
  checkGroup(client: Client, group: string): void {
    if (!this.ctx.groups.has(group)) throw new ProtocolError(ErrorCode.UNKNOWN_GROUP);
    if (!client.session.mayUse(group)) throw new ProtocolError(ErrorCode.FORBIDDEN_GROUP);
  }

  /**
   * Sends a command to its group's shard. Returns a Promise when the connection's next
   * command must wait for this one's reply (see waitsForReply).
   */
  private sendToShard(client: Client, command: CommandSpec, group: string, args: string[]): Promise<void> | undefined {
    const session = client.session;
    const name = command.name === 'JOB' ? 'UPDATE_JOB' : command.name;
    const op = SHARD_OPS[name];
    const username = session.user?.username ?? '';
    let requestArgs: unknown[] = args;
    let onReply: ((text: string) => void) | undefined;
    switch (name) {
      case 'PUBLISH':
      case 'RECURRENT_JOB':
        requestArgs = [...args, this.sequence++];
        break;
      case 'PAUSE_QUEUE':
        requestArgs = [args[0], this.sequence++];
        break;
      case 'PUBLISH_JOB':
        requestArgs = [args[0], args[1], args[2], this.sequence++, parseJobOptions(args[3])];
        break;
      case 'SUBSCRIBE':
        requestArgs = [args[0], username, client.address, this.sequence++, session.prefetch];
        onReply = (text) => {
          if (text !== 'OK') return;
          session.isWorker = true;
          session.subscribe(group, args[0]);
        };
        break;
      case 'UNSUBSCRIBE':
        onReply = (text) => {
          if (text === 'OK') session.unsubscribe(group, args[0]);
        };
        break;
      case 'PURGE_WORKERS':
      case 'DELETE_QUEUE':
        // Both drop every worker of the queue.
        onReply = (text) => {
          if (text !== 'OK') return;
          for (const other of this.ctx.clients.values()) other.session.unsubscribe(group, args[0]);
        };
        break;
      case 'UPDATE_JOB': {
        const [id, status] = args;
        requestArgs = [id, status, username, client.address];
        onReply = (text) => {
          if (session.revoked.has(id)) {
            this.ctx.releaseHeld(client, id);
            return;
          }
          if (text !== 'OK') return;
          if (FINAL_REPORTS.has(status)) this.ctx.releaseHeld(client, id);
          else session.held.set(id, group);
        };
        break;
      }
    }
    const shardIndex = this.ctx.shards.shardOf(group);
    session.shards.add(shardIndex);
    const slot = client.output.reserve();
    let answered: (() => void) | undefined;
    const barrier = waitsForReply(name, args) ? new Promise<void>((resolve) => (answered = resolve)) : undefined;
    this.ctx.shards.request(group, op, client.id, requestArgs, (value) => {
      const text = typeof value === 'string' ? value : errorReply(ErrorCode.INTERNAL_ERROR, 'unexpected shard reply');
      onReply?.(text);
      client.output.fill(slot, text);
      answered?.();
    });
    return barrier;
  }

  private internalError(client: Client, command: string, error: unknown): string {
    this.ctx.logger.error({ err: error, connection: client.id, command }, 'command failed');
    return errorReply(ErrorCode.INTERNAL_ERROR, 'the command failed inside the server; see the server log');
  }
}

/**
 * The command table: argument counts, checks and help text of every command. The order is
 * the order HELP lists them in, which is the original server's.
 */

/** Thread a command runs on once its checks pass. */
export type CommandTarget = 'main' | 'shard';

export interface CommandForm {
  /** Argument count without the command name; -1 accepts any count. */
  args: number;
  /** Index of the argument that names the group, for the older forms that carry one. */
  groupArg?: number;
}

export interface CommandSpec {
  name: string;
  requireAuth: boolean;
  requireGroup: boolean;
  /** Accepted forms; the first one is shown by HELP. */
  forms: CommandForm[];
  target: CommandTarget;
  description: string;
  usage: string;
  /** Listed by HELP. */
  listed: boolean;
}

function spec(
  name: string,
  requireAuth: boolean,
  requireGroup: boolean,
  forms: CommandForm[],
  target: CommandTarget,
  usage: string,
  description: string,
  listed = true,
): CommandSpec {
  return { name, requireAuth, requireGroup, forms, target, usage, description, listed };
}

const ANY: CommandForm[] = [{ args: -1 }];
const none: CommandForm[] = [{ args: 0 }];
const one: CommandForm[] = [{ args: 1 }];

export const COMMANDS: readonly CommandSpec[] = [
  spec('AUTH', false, false, [{ args: 2 }], 'main', 'AUTH {username} {password}', 'Log in as a configured user'),
  spec('USE_GROUP', true, false, one, 'main', 'USE_GROUP {group_slug}', 'Select the group that later commands work in'),
  spec('PUBLISH', true, true, [{ args: 3 }, { args: 4, groupArg: 0 }], 'shard', 'PUBLISH {queue_slug} {job_type} {job_payload}', 'Create a job in a queue and return the ID of the created job'),
  spec('SUBSCRIBE', true, true, [{ args: 1 }, { args: 2, groupArg: 0 }], 'shard', 'SUBSCRIBE {queue_slug}', 'Become a worker of a queue: its jobs are pushed to this connection'),
  spec('UNSUBSCRIBE', true, true, one, 'shard', 'UNSUBSCRIBE {queue_slug}', 'Stop receiving new jobs of a queue; held jobs stay with the worker'),
  spec('LIST_QUEUES', true, true, none, 'shard', 'LIST_QUEUES', 'List the queues of the current group as JSON'),
  spec('DELETE_QUEUE', true, true, one, 'shard', 'DELETE_QUEUE {queue_slug}', 'Delete a queue with its jobs'),
  spec('PURGE_JOBS', true, true, one, 'shard', 'PURGE_JOBS {queue_slug}', 'Delete every job of a queue'),
  spec('PURGE_WORKERS', true, true, one, 'shard', 'PURGE_WORKERS {queue_slug}', 'Unsubscribe every worker of a queue'),
  spec('LIST_JOBS', true, true, [{ args: 1 }, { args: 3 }], 'shard', 'LIST_JOBS {queue_slug} [{offset} {limit}]', 'List the jobs of a queue as JSON, optionally one page'),
  spec('UPDATE_JOB', true, true, [{ args: 2 }], 'shard', 'UPDATE_JOB {job_id} {done|errored|in-progress}', 'Report the outcome of a job, or renew its lease with in-progress'),
  spec('DELETE_JOB', true, true, one, 'shard', 'DELETE_JOB {job_id}', 'Delete a job'),
  spec('DISPATCH', false, false, none, 'main', 'DISPATCH', 'Push pending jobs to available workers now (needs allow_dispatch)'),
  spec('RECURRENT_JOB', true, true, [{ args: 3 }], 'shard', 'RECURRENT_JOB {queue_slug} {job_type} {cron_expression}', 'Publish a job on a cron schedule; the same type on the same queue updates the schedule'),
  spec('LIST_RECURRENT_JOBS', true, true, one, 'shard', 'LIST_RECURRENT_JOBS {queue_slug}', 'List the recurrent jobs of a queue as JSON'),
  spec('DELETE_RECURRENT_JOB', true, true, one, 'shard', 'DELETE_RECURRENT_JOB {entry_id}', 'Delete a recurrent job of the current group'),
  spec('HEALTH', true, false, none, 'main', 'HEALTH', 'Report server statistics as JSON'),
  spec('DEBUG_PARTS', false, false, ANY, 'main', 'DEBUG_PARTS {args...}', 'Return the parsed arguments as JSON (test mode only)'),
  spec('DEBUG', false, false, ANY, 'main', 'DEBUG', 'Log the server state (test mode only)'),
  spec('DEBUG_JSON', false, false, none, 'main', 'DEBUG_JSON', 'Return the whole server state as JSON (test mode only)'),
  spec('STOP_SERVER', false, false, none, 'main', 'STOP_SERVER', 'Stop the server (test mode only)'),
  spec('PING', false, false, none, 'main', 'PING', 'Answer PONG'),
  spec('QUIT', false, false, none, 'main', 'QUIT', 'Close the connection'),
  spec('CURRENT_SESSION', true, false, none, 'main', 'CURRENT_SESSION', 'Describe this connection as JSON'),
  spec('LIST_SESSIONS', true, false, none, 'main', 'LIST_SESSIONS', 'List the sessions in the current group as JSON'),
  spec('PUBLISH_JOB', true, true, [{ args: 4 }], 'shard', 'PUBLISH_JOB {queue_slug} {job_type} {job_payload} {options_json}', 'Create a job with options such as {"priority":5,"delay":30} and return its ID'),
  spec('RETRY_JOB', true, true, one, 'shard', 'RETRY_JOB {job_id}', 'Make a dead, errored or scheduled job pending at once; a dead job starts again with no attempts'),
  spec('PREFETCH', true, false, one, 'main', 'PREFETCH {count}', 'Set how many unfinished jobs this connection may hold at once'),
  spec('PAUSE_QUEUE', true, true, one, 'shard', 'PAUSE_QUEUE {queue_slug}', 'Stop pushing the jobs of a queue; it still takes new jobs'),
  spec('RESUME_QUEUE', true, true, one, 'shard', 'RESUME_QUEUE {queue_slug}', 'Push the jobs of a paused queue again'),
  spec('GET_JOB', true, true, one, 'shard', 'GET_JOB {job_id}', 'Show one job with every field as JSON'),
  spec('QUEUE_STATS', true, true, one, 'shard', 'QUEUE_STATS {queue_slug}', 'Count the jobs of a queue by state, with its traffic over the last minute'),
  spec('ADVANCE_CLOCK', false, false, one, 'main', 'ADVANCE_CLOCK {seconds}', 'Move the server clock forward for leases, delays and cron (test mode only)'),
  spec('HELP', false, false, [{ args: 0 }, { args: 1 }], 'main', 'HELP [{command}]', 'List the commands, or describe one', false),
  // `JOB UPDATE id status`, from the original README, runs as UPDATE_JOB.
  spec('JOB', true, true, [{ args: 3 }], 'shard', 'JOB UPDATE {job_id} {status}', 'Older form of UPDATE_JOB', false),
];

const BY_NAME = new Map(COMMANDS.map((command) => [command.name, command]));

/** Finds a command by its upper-cased name. */
export function findCommand(name: string): CommandSpec | undefined {
  return BY_NAME.get(name);
}

/** Picks the form matching an argument count, if any. */
export function matchForm(command: CommandSpec, count: number): CommandForm | undefined {
  return command.forms.find((form) => form.args === -1 || form.args === count);
}

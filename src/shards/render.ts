import { formatTime } from '../protocol/replies';
import { Job, Queue, RecurrentEntry, WorkerConnection } from './model';

/**
 * JSON shapes of the original server, with its PascalCase keys. The original's empty nested
 * `Queue` and `Group` objects inside jobs are left out: no client reads them, and pushed jobs
 * must stay short for clients that read at most 2,000 bytes of a line. Keys this server
 * added follow the original ones: `Priority` and `MaxAttempts` always, `RunAt` while the job
 * is scheduled and `RetryAt` while it waits for a retry.
 */
export function renderJob(job: Job): string {
  let due = '';
  if (job.state === 'scheduled') due = `,"RunAt":"${formatTime(job.dueAt)}"`;
  else if (job.state === 'errored') due = `,"RetryAt":"${formatTime(job.dueAt)}"`;
  return (
    `{"ID":"${job.id}","State":"${job.state}","Type":${job.typeJson},` +
    `"Payload":${job.payloadJson},"Attempts":${job.attempts},` +
    `"StartedProcessingAt":"${formatTime(job.startedAt)}","EndProcessingAt":"${formatTime(job.endedAt)}",` +
    `"Priority":${job.policy.priority},"MaxAttempts":${job.policy.maxAttempts}${due}}`
  );
}

/**
 * Renders one job with every field, for GET_JOB: the keys of renderJob, then its queue,
 * publish time, retry policy and, while it is held, the end of its lease.
 */
export function renderJobDetail(job: Job): string {
  const base = renderJob(job);
  const leaseEnd = job.state === 'in-progress' && job.timer !== null ? `,"LeaseEndsAt":"${formatTime(job.timer.due)}"` : '';
  const policy = job.policy;
  return (
    `${base.slice(0, -1)},"Queue":${JSON.stringify(job.queue.slug)},"PublishedAt":"${formatTime(job.publishedAt)}",` +
    `"Backoff":"${policy.backoff}","RetryDelay":${policy.retryDelayMs / 1000},"RetryMaxDelay":${policy.retryMaxDelayMs / 1000},` +
    `"Lease":${policy.leaseMs / 1000}${leaseEnd}}`
  );
}

/** Renders the line pushed to a worker. */
export function renderPush(job: Job): string {
  return `{"Job":${renderJob(job)},"Debug":"Dispatch data"}`;
}

export function renderWorker(worker: WorkerConnection, queue: Queue, prefetch: number): string {
  const status = worker.held.size < (worker.prefetch || prefetch) ? 'available' : 'busy';
  return (
    `{"Username":${JSON.stringify(worker.username)},"Addr":${JSON.stringify(worker.address)},` +
    `"CurrentGroup":{"Slug":${JSON.stringify(queue.group.slug)}},"Status":"${status}"}`
  );
}

export function renderRecurrent(entry: RecurrentEntry): string {
  return `{"EntryID":${entry.id},"Type":${JSON.stringify(entry.type)},"CronExpression":${JSON.stringify(entry.expression)}}`;
}

/** Thrown when a reply would pass `max_reply_bytes`. */
export class ReplyTooLarge extends Error {}

/**
 * Joins JSON elements into an array, counting bytes as it goes so that a listing larger
 * than the limit stops early instead of building the whole string.
 */
export class JsonArrayBuilder {
  private readonly parts: string[] = [];
  private length = 2;

  constructor(private readonly maxBytes: number) {}

  add(element: string): void {
    // String length counts UTF-16 units; UTF-8 may take up to 3 bytes for each.
    this.length += Buffer.byteLength(element) + 1;
    if (this.length > this.maxBytes) throw new ReplyTooLarge();
    this.parts.push(element);
  }

  toString(): string {
    return `[${this.parts.join(',')}]`;
  }
}

/** Renders a queue as LIST_QUEUES and DEBUG_JSON show it. */
export function renderQueue(queue: Queue, prefetch: number, maxBytes: number): string {
  const jobs = new JsonArrayBuilder(maxBytes);
  for (let job = queue.oldestJob; job !== null; job = job.next) jobs.add(renderJob(job));
  const workers = queue.workers.map((worker) => renderWorker(worker, queue, prefetch));
  const recurrent = [...queue.recurrent.values()].map(renderRecurrent);
  const json =
    `{"ID":"${queue.id}","Slug":${JSON.stringify(queue.slug)},"Group":{"Slug":${JSON.stringify(queue.group.slug)}},` +
    `"RecurrentJobs":${recurrent.length > 0 ? `[${recurrent.join(',')}]` : 'null'},` +
    `"Jobs":${jobs.toString()},"Workers":[${workers.join(',')}]}`;
  if (Buffer.byteLength(json) > maxBytes) throw new ReplyTooLarge();
  return json;
}

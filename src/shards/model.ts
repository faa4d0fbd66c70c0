import { Heap } from 'heap-js';
import { Schedule } from './cron';
import type { TimerEntry } from './timers';
import type { Policies } from './policy';

/** Job states shown to clients, and `removed` for a deleted job that old references may still reach. */
export type JobState = 'scheduled' | 'pending' | 'in-progress' | 'errored' | 'done' | 'dead' | 'removed';

/**
 * Delivery and retry rules of a job. Jobs published without options share the server's
 * policy, and jobs with the same options share one object, so a job carries one reference.
 */
export interface JobPolicy {
  /** Higher goes first; jobs of one priority go in publish order. */
  priority: number;
  /** Failed deliveries after which the job is dead; 0 for no limit. */
  maxAttempts: number;
  backoff: 'exponential' | 'fixed';
  /** Wait after the first failure, and the base of an exponential backoff. */
  retryDelayMs: number;
  /** Maximum wait of an exponential backoff. */
  retryMaxDelayMs: number;
  /** Time a worker may hold the job without a report. */
  leaseMs: number;
}

/** Rarely needed facts about a job, kept apart to keep jobs small. */
export interface DeliveryHistory {
  /** Connections whose lease on the job was taken back, so their late reports are refused. */
  expiredHolders: number[];
  /** Connection whose loss counted the last attempt, or 0; see undoLostAttempt. */
  lostBy: number;
  /** Key of a unique job: a publish with the same key in the queue gets this job's id. */
  uniqueKey: string;
  /** Time after which the key no longer holds back a publish; 0 while the job is unfinished. */
  uniqueUntil: number;
}

/** True for the states of a job that is not finished yet, which max_pending_jobs counts. */
export function isUnfinished(state: JobState): boolean {
  return state === 'pending' || state === 'in-progress' || state === 'errored' || state === 'scheduled';
}

export interface Job {
  id: string;
  /** Publish order within the shard; lower is older. */
  seq: number;
  queue: Queue;
  /** The job type and payload as JSON strings, escaped once at publish for every render. */
  typeJson: string;
  payloadJson: string;
  state: JobState;
  policy: JobPolicy;
  /** Time a scheduled job becomes pending, or an errored job is retried; 0 otherwise. */
  dueAt: number;
  /** Failed deliveries: errored reports, expired leases and lost workers. */
  attempts: number;
  /** Time of the publish, on the shard clock. */
  publishedAt: number;
  startedAt: number;
  endedAt: number;
  /** Connection holding the job while in progress, else null. */
  holder: WorkerConnection | null;
  /** The job's active timer: due time, lease check, retry, or expiry of a done or dead job. */
  timer: TimerEntry | null;
  history: DeliveryHistory | null;
  /** True while an entry for the job sits in one of the queue's heaps of pending jobs. */
  queued: boolean;
  /** Bumped on each hand-over and removal, so timers set before it do nothing. */
  version: number;
  /** Neighbours in the queue's list of jobs, in publish order. */
  prev: Job | null;
  next: Job | null;
}

/** Shard-side record of a client connection: its reserved jobs and the queues it serves. */
export interface WorkerConnection {
  id: number;
  username: string;
  address: string;
  held: Set<Job>;
  subscriptions: Set<Queue>;
  /** The main thread stopped writing to it because its output is over the limit. */
  paused: boolean;
  /**
   * Ids of jobs taken back from it (expired lease, deleted by another client). They count
   * against its prefetch until it reports on them, so a worker still busy with such a job
   * gets no new push before the reply to its report.
   */
  revoked: Set<string>;
  /** Its prefetch is used up by jobs of other shards; set by a bounced push until Credit. */
  awaitingCredit: boolean;
  /** Unfinished jobs it may hold at once, set by PREFETCH; 0 for the config's prefetch. */
  prefetch: number;
}

export interface RecurrentEntry {
  id: number;
  queue: Queue;
  type: string;
  expression: string;
  schedule: Schedule;
  /** Time of the last run, or of the declaration before the first one, on the shard clock. */
  lastRun: number;
  /** Bumped when the expression changes or the entry is deleted, to drop older timers. */
  version: number;
  /** Timer of the next run. */
  timer: TimerEntry | null;
  deleted: boolean;
}

const bySeq = (a: Job, b: Job): number => a.seq - b.seq;

/** Counts events over the last minute in one-second buckets. */
export class MinuteCounter {
  private readonly buckets = new Array<number>(60).fill(0);
  private readonly seconds = new Array<number>(60).fill(-1);

  add(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    const index = second % 60;
    if (this.seconds[index] !== second) {
      this.seconds[index] = second;
      this.buckets[index] = 0;
    }
    this.buckets[index]++;
  }

  /** Returns the events of the 60 seconds up to now. */
  total(nowMs: number): number {
    const second = Math.floor(nowMs / 1000);
    let sum = 0;
    for (let index = 0; index < 60; index++) {
      if (second - this.seconds[index] < 60) sum += this.buckets[index];
    }
    return sum;
  }
}
const byPriorityThenSeq = (a: Job, b: Job): number => b.policy.priority - a.policy.priority || a.seq - b.seq;

/** Stale pending entries a queue may carry before they are compacted away. */
const MIN_STALE_FOR_COMPACTION = 1024;

/** Distinct job types per queue whose JSON form is kept for reuse. */
const MAX_CACHED_TYPES = 256;

export class Queue {
  /**
   * Every job of the queue in publish order, as a list linked through the jobs: adding
   * and removing cost no hashing and no entry outside the job.
   */
  private firstJob: Job | null = null;
  private lastJob: Job | null = null;
  private count = 0;
  /** JSON of each job type seen, so jobs of one type share one string. */
  private readonly typeJsons = new Map<string, string>();
  /**
   * The oldest job never handed out, or null. Jobs waiting for their first delivery are
   * found by walking the job list from here, so they need no entry of their own.
   */
  private freshCursor: Job | null = null;
  /** Jobs of priority 0 that came back (lost worker, expired lease, retry), oldest publish first. */
  private readonly returned = new Heap<Job>(bySeq);
  /**
   * Pending jobs of any other priority, highest first. Those above 0 go before the jobs of
   * priority 0, those below after them.
   */
  private readonly prioritized = new Heap<Job>(byPriorityThenSeq);
  readonly workers: WorkerConnection[] = [];
  readonly recurrent = new Map<string, RecurrentEntry>();
  /** Set by PAUSE_QUEUE: the queue takes jobs and pushes none. */
  paused = false;
  /** Jobs not finished yet: scheduled, pending, in progress or errored. */
  unfinished = 0;
  /** Unfinished jobs published with a unique_key, by key. */
  readonly unique = new Map<string, Job>();
  /** Jobs published, finished and failed over the last minute, for QUEUE_STATS. */
  readonly published = new MinuteCounter();
  readonly finished = new MinuteCounter();
  readonly failed = new MinuteCounter();
  /** Next index in `workers` for round-robin delivery. */
  private cursor = 0;
  /** Entries whose job left the pending state while queued; see noteStale. */
  private stale = 0;

  /** Policies of the queue's jobs: the server's, with the group's and the queue's defaults. */
  readonly policies: Policies;

  constructor(
    readonly id: string,
    readonly slug: string,
    readonly group: Group,
    /** Main-thread sequence number of the command that created the queue. */
    readonly createdAt: number,
  ) {
    this.policies = group.policiesFor(slug);
  }

  get jobCount(): number {
    return this.count;
  }

  get oldestJob(): Job | null {
    return this.firstJob;
  }

  /** Returns the JSON form of a job type, shared by the queue's jobs of that type. */
  typeJson(type: string): string {
    let json = this.typeJsons.get(type);
    if (json === undefined) {
      json = JSON.stringify(type);
      if (this.typeJsons.size < MAX_CACHED_TYPES) this.typeJsons.set(type, json);
    }
    return json;
  }

  /** Adds a job at the end of the queue's job list. */
  linkJob(job: Job): void {
    job.prev = this.lastJob;
    job.next = null;
    if (this.lastJob === null) this.firstJob = job;
    else this.lastJob.next = job;
    this.lastJob = job;
    this.count++;
  }

  unlinkJob(job: Job): void {
    if (this.freshCursor === job) this.freshCursor = job.next;
    if (job.prev === null) this.firstJob = job.next;
    else job.prev.next = job.next;
    if (job.next === null) this.lastJob = job.prev;
    else job.next.prev = job.prev;
    job.prev = null;
    job.next = null;
    this.count--;
  }

  /** Returns the queue's jobs in publish order, as a copy that may be changed while walked. */
  jobList(): Job[] {
    const list: Job[] = [];
    for (let job = this.firstJob; job !== null; job = job.next) list.push(job);
    return list;
  }

  /** Makes a newly published job, already linked at the end, wait for its first delivery. */
  addFresh(job: Job): void {
    if (job.policy.priority !== 0) {
      this.addReturned(job);
      return;
    }
    if (this.freshCursor === null) this.freshCursor = job;
  }

  /**
   * Queues a job that is pending again, or a job the fresh cursor has passed (a scheduled
   * job that became due). It goes before every job of its priority published after it.
   */
  addReturned(job: Job): void {
    if (job.queued) return;
    job.queued = true;
    if (job.policy.priority === 0) this.returned.push(job);
    else this.prioritized.push(job);
  }

  /** Removes and returns the next pending job: highest priority, then oldest. */
  takePending(): Job | undefined {
    const prioritized = this.heapHead(this.prioritized);
    if (prioritized !== undefined && prioritized.policy.priority > 0) return this.popHeap(this.prioritized);
    const fresh = this.freshHead();
    const returned = this.heapHead(this.returned);
    if (fresh === undefined && returned === undefined) {
      return prioritized === undefined ? undefined : this.popHeap(this.prioritized);
    }
    if (returned === undefined || (fresh !== undefined && fresh.seq < returned.seq)) {
      const job = fresh as Job;
      this.freshCursor = job.next;
      return job;
    }
    return this.popHeap(this.returned);
  }

  hasPending(): boolean {
    return this.freshHead() !== undefined || this.heapHead(this.returned) !== undefined || this.heapHead(this.prioritized) !== undefined;
  }

  private popHeap(heap: Heap<Job>): Job {
    const job = heap.pop() as Job;
    job.queued = false;
    return job;
  }

  /**
   * Records that a job in the returned heap left the pending state. Stale entries are
   * dropped lazily at the head, which never happens on a queue without workers, so once
   * they outnumber the valid ones the heap is rebuilt without them.
   */
  noteStale(): void {
    this.stale++;
    const entries = this.returned.size() + this.prioritized.size();
    if (this.stale < MIN_STALE_FOR_COMPACTION || this.stale * 2 <= entries) return;
    const keep = (job: Job): boolean => {
      if (!Queue.isStale(job)) return true;
      job.queued = false;
      return false;
    };
    this.returned.init(this.returned.toArray().filter(keep));
    this.prioritized.init(this.prioritized.toArray().filter(keep));
    this.stale = 0;
  }

  /** Entries go stale when their job is taken, finished or removed while queued. */
  private static isStale(job: Job): boolean {
    return job.state !== 'pending';
  }

  /**
   * Moves the fresh cursor past jobs that left the pending state before their first
   * delivery (a report or a deletion) and past jobs waiting in the returned heap.
   */
  private freshHead(): Job | undefined {
    let head = this.freshCursor;
    while (head !== null && (head.state !== 'pending' || head.queued)) head = head.next;
    this.freshCursor = head;
    return head ?? undefined;
  }

  private heapHead(heap: Heap<Job>): Job | undefined {
    let head = heap.peek();
    while (head !== undefined && Queue.isStale(head)) {
      head.queued = false;
      heap.pop();
      head = heap.peek();
    }
    return head;
  }

  /**
   * Picks the next worker that can take a job, round robin; undefined when all are full.
   * `prefetch` applies to workers that did not set their own.
   */
  nextWorker(prefetch: number): WorkerConnection | undefined {
    const count = this.workers.length;
    for (let step = 0; step < count; step++) {
      const index = (this.cursor + step) % count;
      const worker = this.workers[index];
      if (!worker.paused && !worker.awaitingCredit && worker.held.size + worker.revoked.size < (worker.prefetch || prefetch)) {
        this.cursor = (index + 1) % count;
        return worker;
      }
    }
    return undefined;
  }

  removeWorker(worker: WorkerConnection): void {
    const index = this.workers.indexOf(worker);
    if (index < 0) return;
    this.workers.splice(index, 1);
    if (this.cursor > index) this.cursor--;
    if (this.cursor >= this.workers.length) this.cursor = 0;
  }

  clearPending(): void {
    this.freshCursor = null;
    this.returned.clear();
    this.prioritized.clear();
  }
}

export class Group {
  readonly queues = new Map<string, Queue>();
  readonly jobs = new Map<string, Job>();
  readonly recurrent = new Map<number, RecurrentEntry>();
  nextEntryId = 1;
  /** Jobs of all its queues not finished yet. */
  unfinished = 0;

  constructor(
    readonly slug: string,
    /** Policies of the jobs of queues without defaults of their own. */
    readonly policies: Policies,
    /** Policies of the queues the config gives defaults, by queue slug. */
    private readonly queuePolicies: ReadonlyMap<string, Policies> = new Map(),
    /** Most unfinished jobs the group may keep; 0 for no limit. */
    readonly maxPendingJobs = 0,
    /** Time zones of recurrent jobs: '' for the group's queues by default, or a queue slug. */
    private readonly timeZones: ReadonlyMap<string, string> = new Map(),
  ) {}

  /** Returns the time zone of a queue's recurrent jobs without a CRON_TZ prefix. */
  timeZoneFor(queue: string): string {
    return this.timeZones.get(queue) ?? this.timeZones.get('') ?? 'UTC';
  }

  /** Returns the policies of the jobs of a queue. */
  policiesFor(queue: string): Policies {
    return this.queuePolicies.get(queue) ?? this.policies;
  }
}

import type { UserConfig } from '../config/types';
import type { OrderedOutput } from './ordered-output';

/** Number of released jobs whose group a session remembers. */
const RECENTLY_HELD_LIMIT = 256;

/** Per-connection state kept on the main thread. */
export class Session {
  user: UserConfig | null = null;
  group: string | null = null;
  /** Jobs pushed to this connection and not yet reported, by id, with their group. */
  readonly held = new Map<string, string>();
  /**
   * Groups of the jobs this connection let go of most recently, oldest first, so that a late
   * report on one reaches its group when no group is selected.
   */
  readonly recentlyHeld = new Map<string, string>();
  /** Shards that may keep state for this connection and must hear when it closes. */
  readonly shards = new Set<number>();
  /** Set once a SUBSCRIBE succeeded. */
  isWorker = false;
  /** Queues this connection subscribes to, by group, so a restarted shard gets them back. */
  readonly subscriptions = new Map<string, Set<string>>();
  /** True while the connection's unsent output is over max_output_bytes. */
  pushPaused = false;
  /** Unfinished jobs the connection may hold, set by PREFETCH; 0 for the config's prefetch. */
  prefetch = 0;
  /** Held jobs the shard took back; they count against prefetch until reported on. */
  readonly revoked = new Set<string>();
  /** Shards whose push was bounced because the prefetch was used up; they wait for Credit. */
  readonly awaitingCredit = new Set<number>();

  /** Removes a job from the held ones and remembers its group among the recent ones. */
  letGo(jobId: string): boolean {
    const group = this.held.get(jobId);
    if (group === undefined) return false;
    this.held.delete(jobId);
    this.recentlyHeld.delete(jobId);
    this.recentlyHeld.set(jobId, group);
    if (this.recentlyHeld.size > RECENTLY_HELD_LIMIT) this.recentlyHeld.delete(this.recentlyHeld.keys().next().value as string);
    return true;
  }

  subscribe(group: string, queue: string): void {
    let queues = this.subscriptions.get(group);
    if (queues === undefined) {
      queues = new Set();
      this.subscriptions.set(group, queues);
    }
    queues.add(queue);
  }

  unsubscribe(group: string, queue: string): void {
    this.subscriptions.get(group)?.delete(queue);
  }

  /** True when the logged-in user may select the group. */
  mayUse(group: string): boolean {
    const groups = this.user?.groups ?? [];
    return groups.includes('*') || groups.includes(group);
  }
}

/** A protocol client: a TCP connection or one HTTP gateway request. */
export interface Client {
  readonly id: number;
  readonly address: string;
  readonly session: Session;
  readonly output: OrderedOutput;
  /** True for HTTP gateway sessions, which end with their request. */
  readonly isGateway: boolean;
  /** False once the client is closing: a job pushed now could not be reported on. */
  readonly acceptsPushes: boolean;
  /** Closes the client once every reply before this call has been written. */
  closeAfterReplies(): void;
}

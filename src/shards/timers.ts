import { Heap } from 'heap-js';

/** A scheduled timer; `cancel` drops its callback, and with it what the callback references. */
export interface TimerEntry {
  due: number;
  order: number;
  fire: (() => void) | null;
}

/** Cancelled entries the heap may carry before it is rebuilt without them. */
const MIN_CANCELLED_FOR_COMPACTION = 1024;

/** Maximum delay of setTimeout (2^31 - 1 ms); later deadlines are re-armed when it fires. */
const MAX_TIMEOUT_MS = 2_147_483_647;

/**
 * The shard clock and its timers. Time is wall-clock milliseconds plus an offset that the
 * test-mode ADVANCE_CLOCK command moves forward, so leases, retries and cron can be tested
 * without waiting. All deadlines share one heap and one setTimeout for the earliest.
 */
export class Timers {
  private offsetMs = 0;
  private order = 0;
  private readonly heap = new Heap<TimerEntry>((a, b) => a.due - b.due || a.order - b.order);
  private handle: NodeJS.Timeout | undefined;
  private armedFor = Infinity;
  private cancelled = 0;

  constructor(
    /** Called after a round of due timers has fired. */
    private readonly afterFire: () => void,
    /** Receives an error thrown by a timer; the other timers still run. */
    private readonly onError: (error: unknown) => void,
  ) {}

  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** Runs `fire` once the clock reaches `due` (epoch milliseconds on this clock). */
  at(due: number, fire: () => void): TimerEntry {
    const entry: TimerEntry = { due, order: this.order++, fire };
    this.heap.push(entry);
    if (due < this.armedFor) this.arm();
    return entry;
  }

  /**
   * Cancels a timer. The entry stays in the heap until it is due or until cancelled
   * entries outnumber live ones, when the heap is rebuilt, so memory follows live timers.
   */
  cancel(entry: TimerEntry | null): void {
    if (entry === null || entry.fire === null) return;
    entry.fire = null;
    this.cancelled++;
    const size = this.heap.size();
    if (this.cancelled >= MIN_CANCELLED_FOR_COMPACTION && this.cancelled * 2 > size) {
      const live = this.heap.toArray().filter((item) => item.fire !== null);
      this.heap.init(live);
      this.cancelled = 0;
    }
  }

  /** Moves the clock forward and fires what became due. */
  advance(ms: number): void {
    this.offsetMs += ms;
    this.runDue();
  }

  get size(): number {
    return this.heap.size();
  }

  stop(): void {
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.handle = undefined;
    this.armedFor = Infinity;
  }

  private arm(): void {
    this.stop();
    const next = this.heap.peek();
    if (next === undefined) return;
    const delay = Math.min(Math.max(0, next.due - this.now()), MAX_TIMEOUT_MS);
    this.armedFor = next.due;
    this.handle = setTimeout(() => {
      this.handle = undefined;
      this.armedFor = Infinity;
      this.runDue();
    }, delay);
  }

  private runDue(): void {
    const now = this.now();
    let fired = false;
    for (;;) {
      const next = this.heap.peek();
      if (next === undefined || next.due > now) break;
      this.heap.pop();
      const fire = next.fire;
      if (fire === null) {
        this.cancelled = Math.max(0, this.cancelled - 1);
        continue;
      }
      next.fire = null;
      fired = true;
      try {
        fire();
      } catch (error) {
        this.onError(error);
      }
    }
    this.arm();
    if (fired) this.afterFire();
  }
}

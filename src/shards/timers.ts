import { Heap } from 'heap-js';

interface TimerEntry {
  due: number;
  order: number;
  fire: () => void;
}

/** Longest delay setTimeout accepts (2^31 - 1 ms); later deadlines are re-armed when it fires. */
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
  at(due: number, fire: () => void): void {
    this.heap.push({ due, order: this.order++, fire });
    if (due < this.armedFor) this.arm();
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
      fired = true;
      try {
        next.fire();
      } catch (error) {
        this.onError(error);
      }
    }
    this.arm();
    if (fired) this.afterFire();
  }
}

/** The delay of each delayed job of a run, shared by the load generator and the workload. */
import { DelayRange } from './messages';

/** Fractional part of the golden ratio: successive multiples of it fill [0, 1) evenly. */
const GOLDEN_FRACTION = 0.6180339887498949;

/**
 * Returns the delay in milliseconds of the job with this index: spread evenly over the range
 * and mixed, so that neighbouring jobs get far-apart delays, then rounded to a whole multiple
 * of `stepMs` (at least one step).
 */
export function delayFor(index: number, range: DelayRange, stepMs: number): number {
  const fraction = (index * GOLDEN_FRACTION) % 1;
  const exact = range.minMs + fraction * (range.maxMs - range.minMs);
  return Math.max(stepMs, Math.round(exact / stepMs) * stepMs);
}

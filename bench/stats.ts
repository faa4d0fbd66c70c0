/** Returns the median of the values; NaN for none. */
export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Median, minimum and maximum of repeated measurements of one figure. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/** Returns the nearest-rank percentile (0 < p <= 100) of values already sorted ascending. */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Latency percentiles in microseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export function summarizeLatency(samples: Float64Array): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  return {
    count: sorted.length,
    p50: percentileOfSorted(sorted, 50),
    p99: percentileOfSorted(sorted, 99),
    max: sorted.length > 0 ? sorted[sorted.length - 1] : Number.NaN,
  };
}

/** Delayed jobs sorted by their delivery time against their due time. */
export interface LatenessCounts {
  /** Jobs delivered from `earlyMicros` before their due time to `onTimeMicros` after it. */
  onTime: number;
  /** Jobs delivered more than `earlyMicros` before their due time. */
  early: number;
  /** The smallest lateness in microseconds, negative when a job was delivered before its due time. */
  min: number;
}

/** Counts the on-time and early jobs among lateness samples in microseconds. */
export function countLateness(samples: Float64Array, onTimeMicros: number, earlyMicros: number): LatenessCounts {
  let onTime = 0;
  let early = 0;
  let min = Number.POSITIVE_INFINITY;
  for (const lateness of samples) {
    if (lateness < -earlyMicros) early++;
    else if (lateness <= onTimeMicros) onTime++;
    min = Math.min(min, lateness);
  }
  return { onTime, early, min: samples.length > 0 ? min : Number.NaN };
}

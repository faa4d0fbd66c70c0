/** Specs and results exchanged over IPC between the harness and its load generator processes. */
import { AdapterName, Endpoint, Lane } from './adapters/types';
import { LatenessCounts, LatencySummary } from './stats';

export interface PublisherLane extends Lane {
  /** Jobs this connection publishes. */
  count: number;
  /** Index of this connection's first job within the run; indices are unique across lanes. */
  firstIndex: number;
  /** Jobs per second this connection publishes at; 0 publishes as fast as the window allows. */
  rate: number;
  /** Range of the delays this connection gives its jobs, or absent for jobs due at once. */
  delays?: DelayRange;
}

/** Delays in milliseconds, spread over the jobs of a run as `delayFor` in delay-spread.ts picks them. */
export interface DelayRange {
  minMs: number;
  maxMs: number;
}

/** Bounds that sort delayed jobs by the time of their delivery against the time they were due. */
export interface LatenessBounds {
  /** A job delivered at most this long after its due time is on time. */
  onTimeMicros: number;
  /** A job delivered more than this long before its due time is early. */
  earlyMicros: number;
}

export interface PublishersSpec {
  role: 'publishers';
  adapter: AdapterName;
  endpoint: Endpoint;
  /** One connection per lane. */
  lanes: PublisherLane[];
  /** Requests each connection keeps in flight. */
  inflight: number;
  timeoutMs: number;
}

export interface WorkersSpec {
  role: 'workers';
  adapter: AdapterName;
  endpoint: Endpoint;
  /** One connection per lane. */
  lanes: Lane[];
  /** Unfinished jobs each connection may hold. */
  prefetch: number;
  /** Number of job indices in the run (0 to totalJobs - 1), which sizes the delivery counters. */
  totalJobs: number;
  /**
   * Records, for every job, the delivery time minus the time in its payload: the publish
   * time, or the due time of a delayed job, whose lateness it then is.
   */
  latency: boolean;
  /** Counts on-time and early jobs among the recorded latencies; needs `latency`. */
  lateness?: LatenessBounds;
  timeoutMs: number;
}

export type LoadSpec = PublishersSpec | WorkersSpec;

export interface PublishersResult {
  role: 'publishers';
  published: number;
  failed: number;
  firstError: string | null;
  /** Monotonic clock, microseconds, when the first job was sent. */
  startedAt: number;
  /** Monotonic clock, microseconds, when the last confirmation arrived. */
  endedAt: number;
  timedOut: boolean;
  /** CPU time of the load generator process, microseconds. */
  cpuMicros: number;
}

export interface WorkersResult {
  role: 'workers';
  /** Distinct jobs delivered. */
  delivered: number;
  /** Jobs delivered more than once (each counted once). */
  duplicates: number;
  /** Jobs confirmed to the publishers but never delivered. */
  lost: number;
  firstAt: number;
  lastAt: number;
  latency: LatencySummary | null;
  /** Set when the spec has `lateness`. */
  lateness: LatenessCounts | null;
  errors: number;
  firstError: string | null;
  timedOut: boolean;
  cpuMicros: number;
}

export type LoadResult = PublishersResult | WorkersResult;

/** Messages from the harness to a load generator. */
export type ParentMessage =
  | { type: 'spec'; spec: LoadSpec }
  | { type: 'start' }
  /** Tells workers how many jobs the publishers got confirmed, so they know when to stop. */
  | { type: 'expect'; count: number };

/** Messages from a load generator to the harness. */
export type ChildMessage = { type: 'ready' } | { type: 'result'; result: LoadResult } | { type: 'error'; message: string };

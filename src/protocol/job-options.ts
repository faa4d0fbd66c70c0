import { BACKOFF_KINDS } from '../config/types';
import type { JobOptions } from '../shards/messages';
import { ErrorCode, ProtocolError } from './errors';

/** Maximum delay, lease or retry wait of a job: one year, in seconds. */
const MAX_SECONDS = 31_536_000;
const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;
/** Latest run_at accepted: the year 2500, in Unix seconds. */
const MAX_RUN_AT = 16_725_225_600;

interface NumberRule {
  min: number;
  max: number;
  integer: boolean;
  /** Meaning of the value, for the error message. */
  unit: string;
  apply(options: JobOptions, value: number): void;
}

const NUMBER_OPTIONS: Record<string, NumberRule> = {
  priority: { min: INT32_MIN, max: INT32_MAX, integer: true, unit: 'higher runs first', apply: (options, value) => (options.priority = value) },
  delay: { min: 0, max: MAX_SECONDS, integer: false, unit: 'seconds', apply: (options, value) => (options.delayMs = Math.round(value * 1000)) },
  run_at: { min: 0, max: MAX_RUN_AT, integer: false, unit: 'Unix time in seconds', apply: (options, value) => (options.runAt = Math.round(value * 1000)) },
  max_attempts: { min: 0, max: 1_000_000, integer: true, unit: 'attempts, 0 for no limit', apply: (options, value) => (options.maxAttempts = value) },
  retry_delay: { min: 0, max: MAX_SECONDS, integer: false, unit: 'seconds', apply: (options, value) => (options.retryDelayMs = Math.round(value * 1000)) },
  retry_max_delay: { min: 0, max: MAX_SECONDS, integer: false, unit: 'seconds', apply: (options, value) => (options.retryMaxDelayMs = Math.round(value * 1000)) },
  lease: { min: 1, max: MAX_SECONDS, integer: false, unit: 'seconds', apply: (options, value) => (options.leaseMs = Math.round(value * 1000)) },
  unique_for: { min: 1, max: MAX_SECONDS, integer: false, unit: 'seconds', apply: (options, value) => (options.uniqueForMs = Math.round(value * 1000)) },
};

const KNOWN_OPTIONS = [...Object.keys(NUMBER_OPTIONS), 'backoff', 'unique_key'];
/** Maximum length of a unique_key, in characters. */
const MAX_UNIQUE_KEY = 256;

function invalid(detail: string): ProtocolError {
  return new ProtocolError(ErrorCode.INVALID_ARGUMENT, detail);
}

/** Returns a value as the error message shows it: its JSON, cut to 40 characters. */
function shown(value: unknown): string {
  // JSON shows an infinite number, such as 1e400 once parsed, as null.
  const text = typeof value === 'number' && !Number.isFinite(value) ? String(value) : (JSON.stringify(value) ?? String(value));
  return Array.from(text).slice(0, 40).join('');
}

/**
 * Parses the options of PUBLISH_JOB: one JSON object such as `{"priority":5,"delay":30}`.
 * Throws invalid-argument naming the option and its range for any value out of range,
 * and for unknown options.
 */
export function parseJobOptions(text: string): JobOptions {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid(`options must be a JSON object such as {"priority":5,"delay":30}, got ${shown(text)}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalid(`options must be a JSON object such as {"priority":5,"delay":30}, got ${shown(parsed)}`);
  }
  const options: JobOptions = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === 'backoff') {
      if (typeof value !== 'string' || !(BACKOFF_KINDS as readonly string[]).includes(value)) {
        throw invalid(`option backoff must be one of ${BACKOFF_KINDS.join(', ')}, got ${shown(value)}`);
      }
      options.backoff = value as JobOptions['backoff'];
      continue;
    }
    if (name === 'unique_key') {
      if (typeof value !== 'string' || value.length === 0 || Array.from(value).length > MAX_UNIQUE_KEY) {
        throw invalid(`option unique_key must be a string of 1 to ${MAX_UNIQUE_KEY} characters, got ${shown(value)}`);
      }
      options.uniqueKey = value;
      continue;
    }
    const rule = Object.hasOwn(NUMBER_OPTIONS, name) ? NUMBER_OPTIONS[name] : undefined;
    if (rule === undefined) throw invalid(`unknown option ${shown(name)}; the options are ${KNOWN_OPTIONS.join(', ')}`);
    const kind = rule.integer ? 'an integer' : 'a number';
    if (typeof value !== 'number' || !Number.isFinite(value) || (rule.integer && !Number.isInteger(value)) || value < rule.min || value > rule.max) {
      throw invalid(`option ${name} must be ${kind} from ${rule.min} to ${rule.max} (${rule.unit}), got ${shown(value)}`);
    }
    rule.apply(options, value);
  }
  if (options.delayMs !== undefined && options.runAt !== undefined) {
    throw invalid('give either delay or run_at, not both');
  }
  if (options.uniqueForMs !== undefined && options.uniqueKey === undefined) {
    throw invalid('option unique_for needs a unique_key');
  }
  return options;
}

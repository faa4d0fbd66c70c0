import { Cron } from 'croner';

/** A recurrence: the next run strictly after a time, in epoch milliseconds, or null for none. */
export interface Schedule {
  nextAfter(epochMs: number): number | null;
}

/** Thrown with a message that names the bad part of an expression. */
export class CronError extends Error {}

const GO_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.Duration maximum, about 292 years. */
const MAX_GO_DURATION_MS = 9_223_372_036_854.775;

/**
 * Parses a Go duration such as `1h30m`, `90s` or `1.5h` into milliseconds, as robfig/cron
 * reads `@every`. Signs are rejected: an interval must be positive.
 */
export function parseGoDuration(text: string): number {
  if (text === '' || !/^(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))*$/.test(text)) {
    throw new CronError(`invalid duration "${text}" after @every; use a positive Go duration such as 90s, 5m or 1h30m`);
  }
  let total = 0;
  for (const match of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(match[1]) * GO_UNITS[match[2]];
  }
  if (!Number.isFinite(total) || total > MAX_GO_DURATION_MS) {
    throw new CronError(`duration "${text}" after @every is out of range; the maximum is about 2562047h`);
  }
  if (total <= 0) {
    throw new CronError(`duration "${text}" after @every must be greater than zero`);
  }
  return total;
}

class EverySchedule implements Schedule {
  constructor(private readonly intervalMs: number) {}

  nextAfter(epochMs: number): number {
    return epochMs + this.intervalMs;
  }
}

class CronSchedule implements Schedule {
  constructor(private readonly cron: Cron) {}

  nextAfter(epochMs: number): number | null {
    const next = this.cron.nextRun(new Date(epochMs));
    return next === null ? null : next.getTime();
  }
}

const DESCRIPTORS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/** Returns true when the runtime supports an IANA time zone name such as Europe/Paris. */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses a cron expression in robfig/cron v3's standard syntax: five fields (minute, hour,
 * day of month, month, day of week), a descriptor such as `@hourly`, or `@every <duration>`.
 * Times are in `timeZone` (UTC by default), or in the zone of a `CRON_TZ=Area/City ` (or
 * `TZ=`) prefix. At a
 * daylight-saving change a run in the skipped hour runs at the first time after it, and a
 * run in the repeated hour runs once. Intervals under one second run every second, as
 * robfig/cron does.
 */
export function parseSchedule(expression: string, timeZone = 'UTC'): Schedule {
  let trimmed = expression.trim();
  let timezone = timeZone;
  const prefix = /^(?:CRON_TZ|TZ)=(\S+)\s+/.exec(trimmed);
  if (prefix !== null) {
    if (!isTimeZone(prefix[1])) {
      throw new CronError(`unknown time zone "${prefix[1]}" in ${prefix[0].trim()}; use an IANA name such as Europe/Paris or America/New_York`);
    }
    timezone = prefix[1];
    trimmed = trimmed.slice(prefix[0].length);
  }
  if (trimmed.startsWith('@every')) {
    const rest = trimmed.slice('@every'.length).trim();
    return new EverySchedule(Math.max(1000, Math.ceil(parseGoDuration(rest) / 1000) * 1000));
  }
  const pattern = DESCRIPTORS[trimmed.toLowerCase()] ?? trimmed;
  if (pattern.startsWith('@')) {
    throw new CronError(`unknown descriptor "${trimmed}"; use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>`);
  }
  if (pattern === '') {
    throw new CronError('the expression is empty; use 5 fields (minute hour day-of-month month day-of-week), a descriptor such as @hourly, or @every <duration>');
  }
  const fields = pattern.split(/\s+/).length;
  if (fields !== 5) {
    throw new CronError(`expected 5 fields (minute hour day-of-month month day-of-week), got ${fields} in "${trimmed}"`);
  }
  // TODO: croner takes milliseconds per call to find that a pattern such as `0 0 31 2 *`
  // never matches. Rejecting impossible day and month pairs first would keep it cheap.
  try {
    return new CronSchedule(new Cron(pattern, { paused: true, mode: '5-part', timezone, legacyMode: true }));
  } catch (error) {
    throw new CronError((error as Error).message.replace(/^CronPattern: /, ''));
  }
}

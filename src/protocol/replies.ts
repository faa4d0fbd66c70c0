/** Fixed reply lines of the original protocol, without their newline. */
export const Reply = {
  OK: 'OK',
  PONG: 'PONG',
  WELCOME: 'Welcome!',
  /** Reply to QUIT: an empty line, written before the server closes the connection. */
  GOODBYE: '',
} as const;

/** Formats the reply to a successful PUBLISH or RECURRENT_JOB. */
export function okWithId(id: string | number): string {
  return `OK#${id}`;
}

/** Time value the original server sends for a time that was never set (Go's zero time). */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

let lastFormattedMs = 0;
let lastFormatted = '';

/**
 * Formats epoch milliseconds as RFC 3339 in UTC, or Go's zero time for 0. Jobs rendered in
 * one turn mostly share a millisecond, so the last result is reused.
 */
export function formatTime(epochMs: number): string {
  if (epochMs <= 0) return ZERO_TIME;
  if (epochMs !== lastFormattedMs) {
    lastFormattedMs = epochMs;
    lastFormatted = new Date(epochMs).toISOString();
  }
  return lastFormatted;
}

import pino, { Logger } from 'pino';

/**
 * Creates the server logger: JSON lines on stdout. Password fields are redacted wherever
 * they appear, as a second guard: no log call passes them.
 */
// TODO: once the reader of stdout is gone (EPIPE), pino's stream retries its last write for
// ever when it flushes, so such a process ignores SIGTERM. A destination that drops lines
// after EPIPE would let it stop.
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    redact: {
      paths: ['password', 'password_hash', '*.password', '*.password_hash', 'users[*].password', 'users[*].password_hash', 'args'],
      censor: '[redacted]',
    },
  });
}

import pino, { Logger } from 'pino';

/**
 * Creates the server logger: JSON lines on stdout. Password fields are redacted wherever
 * they appear, as a second guard: no log call passes them.
 */
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

import fs from 'node:fs';
import pino, { DestinationStream, Logger } from 'pino';

/** Attempts at a line while standard output is full (EAGAIN), a millisecond apart. */
const FULL_RETRIES = 1000;

/**
 * Standard output as a log destination: one synchronous write per line, as pino's own
 * destination does. Once the reader has gone (EPIPE or another write error), lines are
 * dropped: pino's stream would retry such a write for ever, and the process could then
 * not stop.
 */
class StdoutLines implements DestinationStream {
  private broken = false;
  private readonly pause = new Int32Array(new SharedArrayBuffer(4));

  write(line: string): void {
    let rest = Buffer.from(line, 'utf8');
    for (let attempt = 0; !this.broken && rest.length > 0 && attempt < FULL_RETRIES; attempt++) {
      try {
        rest = rest.subarray(fs.writeSync(1, rest));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') this.broken = true;
        else Atomics.wait(this.pause, 0, 0, 1);
      }
    }
  }
}

/**
 * Creates the server logger: JSON lines on stdout. Password fields are redacted wherever
 * they appear, as a second guard: no log call passes them.
 */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['password', 'password_hash', '*.password', '*.password_hash', 'users[*].password', 'users[*].password_hash', 'args'],
        censor: '[redacted]',
      },
    },
    new StdoutLines(),
  );
}

import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';

const DEFAULT_TIMEOUT_MS = 5000;

/**
 * Pending waits of a socket reader. Each event that may satisfy a wait (data, close) calls
 * `wake`, so waits resume at once instead of polling.
 */
export class Wakeups {
  private waiters: Array<() => void> = [];

  /** Resumes every pending wait, which then checks its condition again. */
  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  /**
   * Resolves once `isDone` returns true, checking it first and after each wake. Throws an
   * error with `timeoutMessage()` once the timeout passes, and lets errors from `isDone` through.
   */
  async waitUntil(isDone: () => boolean, timeoutMs: number, timeoutMessage: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!isDone()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(timeoutMessage());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** A raw line client for tests: writes bytes, reads `\n`-terminated lines with timeouts. */
export class LineClient {
  readonly lines: string[] = [];
  private partial = '';
  /** Keeps a UTF-8 character split across two reads whole. */
  private readonly decoder = new StringDecoder('utf8');
  private readonly wakeups = new Wakeups();
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      const parts = (this.partial + this.decoder.write(chunk)).split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts);
      this.wakeups.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wakeups.wake();
    });
    socket.on('error', () => undefined);
  }

  /**
   * Connects to a server. With `allowHalfOpen`, the client keeps its side open after the
   * server ends its own, as nc does.
   */
  static connect(port: number, host = '127.0.0.1', allowHalfOpen = false): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, allowHalfOpen }, () => resolve(new LineClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Connects and logs in with AUTH and, when given, USE_GROUP. */
  static async login(port: number, user = 'user1', password = 'pass1', group: string | null = 'group1'): Promise<LineClient> {
    const client = await LineClient.connect(port);
    await client.request(`AUTH ${user} ${password}`, 'Welcome!');
    if (group !== null) await client.request(`USE_GROUP ${group}`, 'OK');
    return client;
  }

  /** Writes a line followed by `\n`. */
  send(line: string): void {
    this.socket.write(`${line}\n`);
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Resolves with the next line, or rejects after the timeout. */
  async next(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    const hasLine = (): boolean => {
      if (this.lines.length > 0) return true;
      if (this.closed) throw new Error('connection closed while waiting for a line');
      return false;
    };
    await this.wakeups.waitUntil(hasLine, timeoutMs, () => `no line within ${timeoutMs} ms`);
    return this.lines.shift() as string;
  }

  /** Sends a line and returns the next line read. Checks it when `expected` is given. */
  async request(line: string, expected?: string, timeoutMs?: number): Promise<string> {
    this.send(line);
    const reply = await this.next(timeoutMs);
    if (expected !== undefined && reply !== expected) {
      throw new Error(`"${line.slice(0, 80)}" answered "${reply.slice(0, 200)}", expected "${expected}"`);
    }
    return reply;
  }

  /** Sends a line and parses the JSON reply. */
  async json<T = unknown>(line: string): Promise<T> {
    const reply = await this.request(line);
    try {
      return JSON.parse(reply) as T;
    } catch {
      throw new Error(`"${line}" answered "${reply.slice(0, 200)}", which is not JSON`);
    }
  }

  /** Resolves once the server closed the connection, or rejects after the timeout. */
  async waitClosed(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    await this.wakeups.waitUntil(() => this.closed, timeoutMs, () => `connection still open after ${timeoutMs} ms`);
  }

  close(): void {
    this.socket.end();
  }

  /** Closes with a TCP reset instead of a FIN. */
  reset(): void {
    this.socket.resetAndDestroy();
  }
}

/** Go's zero time, sent for a time that was never set. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** A job in the JSON form of pushes and LIST_JOBS replies. */
export interface Job {
  ID: string;
  State: string;
  Type: string;
  Payload: string;
  Attempts: number;
  StartedProcessingAt: string;
  EndProcessingAt: string;
  Priority?: number;
  MaxAttempts?: number;
  /** Set while the job is scheduled. */
  RunAt?: string;
  /** Set while the job waits for a retry. */
  RetryAt?: string;
}

/** Parses a pushed job line. */
export function parsePush(line: string): Job {
  const parsed = JSON.parse(line) as { Job?: Job };
  if (parsed.Job === undefined) throw new Error(`expected a pushed job, got "${line.slice(0, 200)}"`);
  return parsed.Job;
}

/** Waits until `condition` holds, checking every 10 ms, or throws after the timeout. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Sends PING and returns the lines that arrived before PONG. Every job pushed to the
 * connection before the server read the PING comes first, so an empty result shows that
 * nothing was pushed up to that point.
 */
export async function linesBeforePong(client: LineClient): Promise<string[]> {
  client.send('PING');
  const lines: string[] = [];
  for (;;) {
    const line = await client.next();
    if (line === 'PONG') return lines;
    lines.push(line);
  }
}

/** Returns the `Err: <code>` part of an error reply, without the detail after `;`. */
export function errorCode(reply: string): string {
  return reply.split(';')[0];
}

/** Closes every given client. */
export function closeAll(...clients: LineClient[]): void {
  for (const client of clients) client.close();
}

import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';

const DEFAULT_TIMEOUT_MS = 5000;

/** A raw line client for tests: writes bytes, reads `\n`-terminated lines with timeouts. */
export class LineClient {
  readonly lines: string[] = [];
  private partial = '';
  /** Keeps a UTF-8 character split across two reads whole. */
  private readonly decoder = new StringDecoder('utf8');
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      const parts = (this.partial + this.decoder.write(chunk)).split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host }, () => resolve(new LineClient(socket)));
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

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
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
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.closed) throw new Error('connection closed while waiting for a line');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
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
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection still open after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.end();
  }

  /** Closes with a TCP reset instead of a FIN. */
  reset(): void {
    this.socket.resetAndDestroy();
  }
}

/** Parses a pushed job line. */
export function parsePush(line: string): { ID: string; State: string; Type: string; Payload: string; Attempts: number } {
  const parsed = JSON.parse(line) as { Job?: { ID: string; State: string; Type: string; Payload: string; Attempts: number } };
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

import net from 'node:net';

/** Time a login or setup request may take before the adapter gives up. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * A TCP connection that reads lines and batches writes: every `send` made during one turn of
 * the event loop goes out in a single socket write, so a reply to many pipelined requests
 * does not cost one system call each. Each adapter of a line protocol uses it, which keeps
 * the client's own cost the same for every broker.
 */
export class LineSocket {
  private partial = '';
  private outgoing: string[] = [];
  private flushScheduled = false;
  /** Lines read while no handler is set, for `request`. */
  private readonly unread: string[] = [];
  private waiter: (() => void) | null = null;
  private handler: ((line: string) => void) | null = null;
  private failure: Error | null = null;

  private constructor(
    readonly socket: net.Socket,
    private readonly delimiter: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('connection closed by the broker')));
  }

  /** Connects to host:port with Nagle's algorithm off. */
  static connect(host: string, port: number, delimiter: string): Promise<LineSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true }, () => {
        socket.off('error', reject);
        resolve(new LineSocket(socket, delimiter));
      });
      socket.once('error', reject);
    });
  }

  /** Sets the function that gets every line from now on, after the requests of the setup. */
  onLine(handler: (line: string) => void): void {
    this.handler = handler;
    while (this.unread.length > 0) handler(this.unread.shift() as string);
  }

  /** Called once with the first socket error or the close; later calls are ignored. */
  onFailure: (error: Error) => void = () => undefined;

  /** Queues text for the next batched write; `text` carries its own line ending. */
  send(text: string): void {
    this.outgoing.push(text);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  /** Sends one request line and resolves with the reply line; rejects when it differs from `expected`. */
  async request(line: string, expected?: string): Promise<string> {
    this.send(`${line}${this.delimiter}`);
    const reply = await this.nextLine();
    if (expected !== undefined && reply !== expected) {
      throw new Error(`"${line}" got the reply "${reply.slice(0, 200)}", expected "${expected}"`);
    }
    return reply;
  }

  /** Closes the write side and waits for the socket to close, at most one second. */
  async close(): Promise<void> {
    this.handler = () => undefined;
    this.onFailure = () => undefined;
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 1000);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end();
    });
  }

  /** Drops the connection at once, without waiting for replies in flight. */
  destroy(): void {
    this.handler = () => undefined;
    this.onFailure = () => undefined;
    this.socket.destroy();
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.outgoing.length === 0 || this.socket.destroyed) return;
    const text = this.outgoing.length === 1 ? this.outgoing[0] : this.outgoing.join('');
    this.outgoing = [];
    this.socket.write(text);
  }

  private onData(chunk: string): void {
    const lines = (this.partial + chunk).split(this.delimiter);
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (this.handler !== null) {
        this.handler(line);
      } else {
        this.unread.push(line);
      }
    }
    this.wake();
  }

  private fail(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    this.wake();
    this.onFailure(error);
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  private async nextLine(): Promise<string> {
    const deadline = Date.now() + REQUEST_TIMEOUT_MS;
    while (this.unread.length === 0) {
      if (this.failure !== null) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${REQUEST_TIMEOUT_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.unread.shift() as string;
  }
}

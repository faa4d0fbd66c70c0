import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Dispatcher } from '../protocol/dispatcher';
import { ErrorCode, ProtocolError } from '../protocol/errors';
import { OrderedOutput } from '../protocol/ordered-output';
import { Client, Session } from '../protocol/session';
import Denque from 'denque';
import { Framer } from './framer';

/** Server services a connection uses. */
export interface ConnectionHost {
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  readonly maxLineBytes: number;
  readonly maxOutputBytes: number;
  readonly cliIdleMs: number;
  /** Adds a change of this connection's partial-request bytes; false when over the global budget. */
  reserveInput(delta: number): boolean;
  /** Tells the shards that pushes to this connection must stop (true) or may resume (false). */
  setPushPaused(connection: Connection, paused: boolean): void;
  onClosed(connection: Connection): void;
}

/**
 * Replies a connection may owe at once; later commands wait. Pipelining clients keep tens
 * of requests in flight, and the bound keeps the replies of one client's burst in memory
 * at most this many times the reply size.
 */
const MAX_PENDING_REPLIES = 256;
/** Length of joined unsent output at which it is written at once, in UTF-16 units. */
const FLUSH_AT_CHARS = 4 * 1024 * 1024;
/** Time a socket the server ended may stay half-open before it is destroyed. */
const HALF_OPEN_MS = 5000;
/** Parsed commands waiting to run, above which the connection stops reading. */
const MAX_INBOX_COMMANDS = 1024;
/**
 * Input bytes of one connection framed per turn of the event loop. A larger read waits
 * for the next turn, so that a client sending at full speed takes turns with the others
 * instead of holding the main thread for a whole socket read.
 */
const READ_BUDGET_BYTES = 16 * 1024;

/** A request the framer could not parse, kept in the inbox so its error reply keeps its place. */
class FramingFailure {
  constructor(
    readonly error: ProtocolError,
    readonly fatal: boolean,
  ) {}
}

/**
 * One TCP client: reads and frames its requests, runs them through the dispatcher, and
 * writes replies and pushed jobs in order. Reading stops while too much output is unsent
 * or too many replies are outstanding, so a client that never reads costs bounded memory.
 */
export class Connection implements Client {
  readonly session = new Session();
  readonly output: OrderedOutput;
  readonly isGateway = false;
  readonly address: string;
  private readonly framer: Framer;
  private readonly logger: Logger;
  /** Commands read but not run yet: a hashed login runs first, or the client is behind. */
  private inbox = new Denque<string[] | FramingFailure>();
  private blocked = false;
  private closing = false;
  private closed = false;
  private unsent = '';
  private flushScheduled = false;
  private readPaused = false;
  private pushPaused = false;
  private inputBytes = 0;
  /** Bytes read past this turn's budget. They are framed on a later turn, and reading stays paused until then. */
  private deferred: Buffer | null = null;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly host: ConnectionHost,
  ) {
    this.address = `${socket.remoteAddress}:${socket.remotePort}`;
    this.logger = host.logger.child({ connection: id, address: this.address });
    this.output = new OrderedOutput((line) => this.write(line));
    this.framer = new Framer(
      { maxLineBytes: host.maxLineBytes, cliIdleMs: host.cliIdleMs },
      {
        onCommand: (args) => this.onCommand(args),
        onError: (error, fatal) => this.onFramingError(error, fatal),
      },
    );
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.updateFlow());
    // The listener allows half-open sockets: a client that shuts down its sending side
    // after its requests still gets every reply.
    socket.on('end', () => {
      this.takeDeferred();
      this.framer.finish();
      this.trackInput();
      this.finishAndClose();
    });
    socket.on('error', (error) => this.logger.debug({ err: error }, 'socket error'));
    socket.on('close', () => this.onClose());
    this.logger.debug('connection opened');
  }

  get acceptsPushes(): boolean {
    return !this.closing && !this.closed;
  }

  /** Ends the connection after the replies owed so far; commands read after this one are dropped. */
  closeAfterReplies(): void {
    this.closing = true;
    // Requests read after this point get no reply, not even one that fails to parse.
    this.framer.stop();
    if (this.deferred !== null) {
      // Reading was paused for these bytes. They are dropped, and reading resumes so that
      // the end of the client's side is seen.
      this.deferred = null;
      this.socket.resume();
    }
    this.inbox.clear();
    queueMicrotask(() => this.endIfDone());
  }

  /** Stops reading, runs the commands already read, and ends once their replies are written. */
  finishAndClose(): void {
    this.takeDeferred();
    this.closing = true;
    this.socket.pause();
    this.pump();
    queueMicrotask(() => this.endIfDone());
  }

  /** Closes the socket at once, as on shutdown. */
  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    if (this.deferred !== null) {
      // These bytes were read before the pause took effect, so they join the waiting ones.
      this.deferred = Buffer.concat([this.deferred, chunk]);
      return;
    }
    this.feed(chunk);
  }

  /** Frames at most this turn's budget of `chunk` and defers the rest to the next turn. */
  private feed(chunk: Buffer): void {
    if (chunk.length > READ_BUDGET_BYTES) {
      this.deferred = chunk.subarray(READ_BUDGET_BYTES);
      chunk = chunk.subarray(0, READ_BUDGET_BYTES);
      this.socket.pause();
      setImmediate(() => this.feedDeferred());
    }
    this.framer.push(chunk);
    this.trackInput();
  }

  private feedDeferred(): void {
    const rest = this.deferred;
    this.deferred = null;
    if (rest === null || this.closing || this.closed) return;
    this.feed(rest);
    if (this.deferred === null && !this.readPaused) this.socket.resume();
  }

  /** Frames every deferred byte at once, as when the client ended its side. */
  private takeDeferred(): void {
    const rest = this.deferred;
    this.deferred = null;
    if (rest !== null && !this.closing) {
      this.framer.push(rest);
      this.trackInput();
    }
  }

  private trackInput(): void {
    const bytes = this.framer.bufferedBytes;
    const delta = bytes - this.inputBytes;
    this.inputBytes = bytes;
    if (delta !== 0 && !this.host.reserveInput(delta) && delta > 0) {
      this.onFramingError(
        new ProtocolError(ErrorCode.SERVER_BUSY, 'partial requests of all clients exceed max_input_buffer_bytes; send shorter requests or retry later'),
        true,
      );
    }
  }

  private onCommand(args: string[]): void {
    if (this.closing) return;
    if (this.inbox.length === 0 && this.canDispatch()) {
      this.run(args);
      return;
    }
    this.inbox.push(args);
    this.updateFlow();
  }

  /**
   * Commands run only while the client reads its replies: with too many replies owed or
   * too much output unsent, they wait in the inbox, and a full inbox stops reading.
   */
  private canDispatch(): boolean {
    return (
      !this.blocked &&
      this.output.pendingCount < MAX_PENDING_REPLIES &&
      this.socket.writableLength <= this.host.maxOutputBytes
    );
  }

  private run(item: string[] | FramingFailure): void {
    if (item instanceof FramingFailure) {
      this.replyFramingError(item.error, item.fatal);
      return;
    }
    const barrier = this.host.dispatcher.execute(this, item);
    if (barrier !== undefined) {
      this.blocked = true;
      barrier.finally(() => {
        this.blocked = false;
        this.updateFlow();
      });
    }
  }

  /** Runs the waiting commands that may run now. */
  private pump(): void {
    while (this.inbox.length > 0 && this.canDispatch()) {
      this.run(this.inbox.shift() as string[] | FramingFailure);
    }
  }

  /**
   * Replies to a request that could not be parsed, in its place among the others: behind
   * the commands still waiting in the inbox, if any. A fatal error stops the framer at once.
   */
  private onFramingError(error: ProtocolError, fatal: boolean): void {
    if (this.closing) return;
    if (fatal) this.framer.stop();
    if (this.inbox.length === 0) {
      this.replyFramingError(error, fatal);
      return;
    }
    this.inbox.push(new FramingFailure(error, fatal));
    this.updateFlow();
  }

  private replyFramingError(error: ProtocolError, fatal: boolean): void {
    this.output.send(error.toReply());
    if (!fatal) return;
    this.logger.info({ code: error.code }, 'closing connection after a framing error');
    this.framer.stop();
    this.closeAfterReplies();
  }

  private write(line: string): void {
    if (this.closed) return;
    // Joined output is written early past a size, so that many large replies in one turn
    // never build a string near V8's length limit.
    if (this.unsent.length + line.length > FLUSH_AT_CHARS) this.writeOut();
    this.unsent += line + '\n';
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private writeOut(): void {
    if (this.unsent.length === 0 || this.closed) return;
    this.socket.write(this.unsent);
    this.unsent = '';
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.unsent.length === 0 || this.closed) return;
    this.writeOut();
    this.updateFlow();
    if (this.closing) this.endIfDone();
  }

  /**
   * Runs waiting commands, then pauses or resumes reading and pushes. Every reply that
   * leaves the queue is written and every write ends here, as does the socket's drain
   * event, so a paused client is resumed without polling.
   */
  private updateFlow(): void {
    if (this.closed) return;
    this.pump();
    const outputFull = this.socket.writableLength > this.host.maxOutputBytes;
    const shouldPauseRead = outputFull || this.inbox.length >= MAX_INBOX_COMMANDS;
    if (shouldPauseRead !== this.readPaused && !this.closing) {
      this.readPaused = shouldPauseRead;
      if (shouldPauseRead) this.socket.pause();
      else if (this.deferred === null) this.socket.resume();
    }
    if (outputFull !== this.pushPaused) {
      this.pushPaused = outputFull;
      this.host.setPushPaused(this, outputFull);
    }
  }

  /**
   * Ends the socket once every reply is written, and releases the session at once: its
   * held jobs go back to pending without waiting for the client to close its side.
   */
  private endIfDone(): void {
    if (this.closed || this.inbox.length > 0 || this.output.pendingCount > 0 || this.unsent.length > 0) return;
    this.socket.end();
    // A peer that never closes its side must not keep the descriptor open.
    setTimeout(() => this.socket.destroy(), HALF_OPEN_MS).unref();
    this.onClose();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.framer.stop();
    this.host.reserveInput(-this.inputBytes);
    this.inputBytes = 0;
    this.logger.debug('connection closed');
    this.host.onClosed(this);
  }
}

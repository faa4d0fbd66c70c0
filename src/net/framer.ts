import { isUtf8 } from 'node:buffer';
import { ErrorCode, ProtocolError } from '../protocol/errors';
import { tokenize } from './tokenize';

export interface FramerHandlers {
  /** Called with the arguments of each complete request, command name first. */
  onCommand(args: string[]): void;
  /** Called for a request that cannot be parsed; `fatal` means the stream cannot be resynchronised. */
  onError(error: ProtocolError, fatal: boolean): void;
}

export interface FramerOptions {
  maxLineBytes: number;
  /** Idle milliseconds before a newline-less request ending in a space runs; 0 disables it. */
  cliIdleMs: number;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const SPACE = 0x20;
const ASTERISK = 0x2a;
const DOLLAR = 0x24;
/** Upper bound on the argument count of one multibulk request. */
const MAX_MULTIBULK_ARGS = 1024 * 1024;

const enum Mode {
  Line,
  BulkLength,
  BulkData,
}

/**
 * Cuts a byte stream into requests. Inline requests are lines ending in `\n` or `\r\n`;
 * Redis-style multibulk requests (`*N` then N times `$len` and `len` bytes) are read by
 * length, so their arguments may hold any bytes. Any number of requests may arrive in one
 * chunk and one request may span many chunks.
 *
 * The Go CLI client sends each request with a trailing space and no newline. On a stream
 * that has never carried a newline, a partial line that ends in a space, has balanced
 * quotes and stays idle for `cliIdleMs` runs as one request.
 */
export class Framer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes at the start of `chunks` already searched for a newline. */
  private scanned = 0;
  private mode = Mode.Line;
  private bulkArgs: string[] = [];
  /** Set when an argument of the current multibulk request is not valid UTF-8. */
  private bulkInvalid = false;
  private bulkRemaining = 0;
  private bulkLength = 0;
  private bulkBytes = 0;
  private sawNewline = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly options: FramerOptions,
    private readonly handlers: FramerHandlers,
  ) {}

  /** Bytes held for a request that is not complete yet. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Feeds one chunk read from the socket. */
  push(chunk: Buffer): void {
    if (this.stopped || chunk.length === 0) return;
    this.clearIdleTimer();
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.drain();
  }

  /**
   * Handles the end of the stream: a last inline request without its newline still runs,
   * while a cut multibulk request is dropped.
   */
  finish(): void {
    if (this.stopped) return;
    this.clearIdleTimer();
    if (this.mode === Mode.Line && this.buffered > 0) {
      const bytes = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [];
      this.buffered = 0;
      this.scanned = 0;
      let end = bytes.length;
      if (end > 0 && bytes[end - 1] === CARRIAGE_RETURN) end--;
      if (end > 0 && bytes[0] !== ASTERISK) this.runInline(bytes.subarray(0, end));
    }
    this.stop();
  }

  /** Drops buffered bytes and ignores later input. */
  stop(): void {
    this.stopped = true;
    this.clearIdleTimer();
    this.chunks = [];
    this.buffered = 0;
  }

  private drain(): void {
    while (!this.stopped && this.buffered > 0) {
      if (this.mode === Mode.BulkData) {
        if (!this.readBulkData()) return;
        continue;
      }
      if (this.mode === Mode.Line && this.chunks.length === 1 && this.runLines()) continue;
      const newline = this.findNewline();
      if (newline < 0) {
        this.onPartialLine();
        return;
      }
      // A whole line may arrive in one read, so complete lines are checked against the limit too.
      if (newline > this.lineLimit()) {
        this.failLineTooLong();
        return;
      }
      this.sawNewline = true;
      const line = this.take(newline + 1);
      if (this.mode === Mode.BulkLength) {
        this.readBulkLength(line);
      } else {
        this.readLine(line);
      }
    }
  }

  /**
   * Runs the complete inline requests at the start of a lone buffered chunk with one UTF-8
   * check and one decode for all of them, which is what pipelining clients send. Returns
   * false, having consumed nothing, when the first line needs the line-by-line path: no
   * newline yet, a multibulk header, or a line over the limit.
   */
  private runLines(): boolean {
    const chunk = this.chunks[0];
    const limit = this.options.maxLineBytes;
    let end = 0;
    for (;;) {
      if (chunk[end] === ASTERISK) break;
      const newline = chunk.indexOf(NEWLINE, end === 0 ? this.scanned : end);
      if (newline < 0 || newline - end > limit) break;
      end = newline + 1;
    }
    if (end === 0) return false;

    // The lines leave the buffer before they run, since a request may stop the framer.
    this.sawNewline = true;
    this.scanned = 0;
    this.buffered -= end;
    if (end === chunk.length) this.chunks = [];
    else this.chunks[0] = chunk.subarray(end);

    const region = chunk.subarray(0, end);
    if (!isUtf8(region)) {
      // Checked line by line, so that only the lines with invalid bytes are rejected.
      for (let start = 0; start < end && !this.stopped; ) {
        const newline = region.indexOf(NEWLINE, start);
        this.readLine(region.subarray(start, newline + 1));
        start = newline + 1;
      }
      return true;
    }

    const text = region.toString('utf8');
    for (let start = 0; start < text.length && !this.stopped; ) {
      const newline = text.indexOf('\n', start);
      let lineEnd = newline;
      if (lineEnd > start && text.charCodeAt(lineEnd - 1) === CARRIAGE_RETURN) lineEnd--;
      this.runText(text.slice(start, lineEnd));
      start = newline + 1;
    }
    return true;
  }

  private onPartialLine(): void {
    this.scanned = this.buffered;
    if (this.buffered > this.lineLimit()) {
      this.failLineTooLong();
      return;
    }
    if (this.mode === Mode.Line && !this.sawNewline && this.options.cliIdleMs > 0) {
      this.armIdleTimer();
    }
  }

  /** Bytes the current line may hold: the whole limit, or what a multibulk request has left of it. */
  private lineLimit(): number {
    return this.mode === Mode.Line ? this.options.maxLineBytes : this.options.maxLineBytes - this.bulkBytes;
  }

  private failLineTooLong(): void {
    this.fail(new ProtocolError(ErrorCode.LINE_TOO_LONG, `request exceeds max_line_bytes (${this.options.maxLineBytes} bytes)`));
  }

  private readLine(raw: Buffer): void {
    let end = raw.length - 1;
    if (end > 0 && raw[end - 1] === CARRIAGE_RETURN) end--;
    if (end > 0 && raw[0] === ASTERISK) {
      this.startMultibulk(raw.toString('latin1', 1, end));
      return;
    }
    this.runInline(raw.subarray(0, end));
  }

  private runInline(bytes: Buffer): void {
    if (!isUtf8(bytes)) {
      this.handlers.onError(new ProtocolError(ErrorCode.INVALID_UTF8, 'requests must be valid UTF-8; send the payload as UTF-8 text'), false);
      return;
    }
    this.runText(bytes.toString('utf8'));
  }

  private runText(line: string): void {
    const args = tokenize(line);
    if (args === null) {
      this.handlers.onError(new ProtocolError(ErrorCode.INVALID_SYNTAX, "a quoted argument is not closed; end it with ' followed by a space or the end of the line"), false);
      return;
    }
    if (args.length > 0) {
      this.handlers.onCommand(args);
    } else {
      // The original server replies to a blank line too, and the Go CLI waits for that reply.
      this.handlers.onError(new ProtocolError(ErrorCode.UNKNOWN_COMMAND), false);
    }
  }

  private startMultibulk(countText: string): void {
    const count = parseDecimal(countText);
    if (count === null || count > MAX_MULTIBULK_ARGS) {
      this.fail(new ProtocolError(ErrorCode.INVALID_SYNTAX, `invalid multibulk count ${JSON.stringify(`*${countText.slice(0, 20)}`)}; expected *<argument count> with at most ${MAX_MULTIBULK_ARGS} arguments`));
      return;
    }
    if (count === 0) return;
    this.bulkArgs = [];
    this.bulkInvalid = false;
    this.bulkRemaining = count;
    this.bulkBytes = 0;
    this.mode = Mode.BulkLength;
  }

  private readBulkLength(raw: Buffer): void {
    let end = raw.length - 1;
    if (end > 0 && raw[end - 1] === CARRIAGE_RETURN) end--;
    const text = raw.toString('latin1', 1, end);
    const length = raw[0] === DOLLAR ? parseDecimal(text) : null;
    if (length === null) {
      this.fail(new ProtocolError(ErrorCode.INVALID_SYNTAX, `expected a bulk length "$<bytes>" in a multibulk request, got ${JSON.stringify(raw.toString('latin1', 0, Math.min(end, 20)))}`));
      return;
    }
    this.bulkBytes += raw.length + length + 2;
    if (this.bulkBytes > this.options.maxLineBytes) {
      this.fail(new ProtocolError(ErrorCode.LINE_TOO_LONG, `request exceeds max_line_bytes (${this.options.maxLineBytes} bytes)`));
      return;
    }
    this.bulkLength = length;
    this.mode = Mode.BulkData;
  }

  /** Returns false when more bytes are needed. */
  private readBulkData(): boolean {
    const needed = this.bulkLength + 2;
    if (this.buffered < needed) return false;
    const data = this.take(needed);
    if (data[this.bulkLength] !== CARRIAGE_RETURN || data[this.bulkLength + 1] !== NEWLINE) {
      this.fail(new ProtocolError(ErrorCode.INVALID_SYNTAX, `bulk argument of ${this.bulkLength} bytes is not followed by \\r\\n`));
      return false;
    }
    const value = data.subarray(0, this.bulkLength);
    if (isUtf8(value)) {
      this.bulkArgs.push(value.toString('utf8'));
    } else {
      this.bulkInvalid = true;
    }
    this.bulkRemaining--;
    if (this.bulkRemaining > 0) {
      this.mode = Mode.BulkLength;
      return true;
    }
    const args = this.bulkArgs;
    const invalid = this.bulkInvalid;
    this.bulkArgs = [];
    this.bulkInvalid = false;
    this.mode = Mode.Line;
    if (invalid) {
      this.handlers.onError(new ProtocolError(ErrorCode.INVALID_UTF8, 'requests must be valid UTF-8; send the payload as UTF-8 text'), false);
    } else {
      this.handlers.onCommand(args);
    }
    return true;
  }

  private fail(error: ProtocolError): void {
    this.stop();
    this.handlers.onError(error, true);
  }

  /** Offset of the first `\n` in the buffered bytes, or -1. */
  private findNewline(): number {
    let offset = 0;
    for (const chunk of this.chunks) {
      const end = offset + chunk.length;
      if (end > this.scanned) {
        const from = Math.max(0, this.scanned - offset);
        const index = chunk.indexOf(NEWLINE, from);
        if (index >= 0) return offset + index;
      }
      offset = end;
    }
    return -1;
  }

  /** Removes and returns the first `count` buffered bytes. */
  private take(count: number): Buffer {
    this.scanned = 0;
    this.buffered -= count;
    const first = this.chunks[0];
    if (first.length === count) {
      this.chunks.shift();
      return first;
    }
    if (first.length > count) {
      this.chunks[0] = first.subarray(count);
      return first.subarray(0, count);
    }
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0];
      const part = Math.min(chunk.length, count - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
      if (part === chunk.length) {
        this.chunks.shift();
      } else {
        this.chunks[0] = chunk.subarray(part);
      }
    }
    return out;
  }

  private armIdleTimer(): void {
    const last = this.chunks[this.chunks.length - 1];
    if (last[last.length - 1] !== SPACE) return;
    this.idleTimer = setTimeout(() => this.runIdleLine(), this.options.cliIdleMs);
    this.idleTimer.unref();
  }

  private runIdleLine(): void {
    this.idleTimer = undefined;
    if (this.stopped || this.sawNewline || this.mode !== Mode.Line || this.buffered === 0) return;
    const bytes = Buffer.concat(this.chunks, this.buffered);
    if (isUtf8(bytes) && tokenize(bytes.toString('utf8')) === null) return;
    this.chunks = [];
    this.buffered = 0;
    this.scanned = 0;
    this.runInline(bytes);
  }

  private clearIdleTimer(): void {
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }
}

/** Parses a non-negative decimal integer of at most 10 digits; null otherwise. */
function parseDecimal(text: string): number | null {
  if (!/^\d{1,10}$/.test(text)) return null;
  return Number(text);
}

/** A reply position reserved in request order; `text` is set once the reply is known. */
export interface ReplySlot {
  text: string | undefined;
}

/** Compact the slot array once this many written slots sit at its front. */
const COMPACT_AFTER = 1024;

/**
 * Writes the replies of one connection in request order. The reply to a command handled
 * on the main thread is written at once, unless an earlier command still waits for its
 * shard, in which case it waits too. A pushed job takes the next position, so it follows every reply to commands
 * sent before it arrived.
 */
export class OrderedOutput {
  private slots: ReplySlot[] = [];
  private head = 0;

  constructor(private readonly writeLine: (line: string) => void) {}

  /** Replies still waiting for an earlier one or for their own value. */
  get pendingCount(): number {
    return this.slots.length - this.head;
  }

  reserve(): ReplySlot {
    const slot: ReplySlot = { text: undefined };
    this.slots.push(slot);
    return slot;
  }

  fill(slot: ReplySlot, text: string): void {
    slot.text = text;
    this.flush();
  }

  /** Sends a line that needs no reservation: a reply known now, or a pushed job. */
  send(text: string): void {
    if (this.head === this.slots.length) {
      this.writeLine(text);
      return;
    }
    this.slots.push({ text });
  }

  private flush(): void {
    const slots = this.slots;
    while (this.head < slots.length) {
      const text = slots[this.head].text;
      if (text === undefined) break;
      this.head++;
      this.writeLine(text);
    }
    if (this.head === slots.length) {
      this.slots = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER) {
      this.slots = slots.slice(this.head);
      this.head = 0;
    }
  }
}

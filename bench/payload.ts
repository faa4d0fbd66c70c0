/** Size in bytes of every benchmark payload, a JSON object as clients usually send. */
export const PAYLOAD_BYTES = 100;

const PADDING = 'x'.repeat(PAYLOAD_BYTES);

/**
 * Builds a 100-byte JSON payload that carries the job's index in its run and the time it was
 * published, in microseconds of the monotonic clock. The payload has no spaces
 * and no characters that JSON escapes, so every broker carries it unchanged.
 */
export function makePayload(index: number, sentMicros: number): string {
  const head = `{"n":${index},"t":${sentMicros},"p":"`;
  return `${head}${PADDING.slice(0, Math.max(0, PAYLOAD_BYTES - head.length - 2))}"}`;
}

/**
 * Matches the index and publish time in a payload as sent, and also inside a JSON string where
 * each quote is escaped, as in Jobatator's pushed job line.
 */
const FIELDS = /n\\?":(\d+),\\?"t\\?":(\d+)/;

export interface PayloadFields {
  index: number;
  sentMicros: number;
}

/** Reads the index and publish time from text that contains a payload; throws when it has none. */
export function readPayloadFields(text: string): PayloadFields {
  const match = FIELDS.exec(text);
  if (match === null) throw new Error(`no benchmark payload in "${text.slice(0, 120)}"`);
  return { index: Number(match[1]), sentMicros: Number(match[2]) };
}

/**
 * Returns the monotonic clock in microseconds. Linux reads it from CLOCK_MONOTONIC, which is
 * the same clock in every process of the machine, so a publisher process and a worker
 * process can compare their readings.
 */
export function nowMicros(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e6 + Math.floor(nanoseconds / 1e3);
}

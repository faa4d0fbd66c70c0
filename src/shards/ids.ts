import { randomFillSync } from 'node:crypto';

const ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'latin1');
/** Bytes at or above this value are skipped so that each of the 62 characters is equally likely. */
const UNBIASED_LIMIT = 256 - (256 % ALPHABET.length);
const POOL_BYTES = 4096;
const ID_LENGTH = 16;

let pool = Buffer.alloc(0);
let offset = 0;
/** The characters of the id being drawn. */
const scratch = Buffer.alloc(ID_LENGTH);

function nextByte(): number {
  if (offset >= pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    offset = 0;
  }
  return pool[offset++];
}

/**
 * Returns a random id of 16 letters and digits, like the original server's job ids. The
 * characters are gathered in a buffer and decoded once, so the id is one flat string and
 * not a chain of concatenations, which would cost memory for as long as the job lives.
 */
export function newJobId(): string {
  let length = 0;
  while (length < ID_LENGTH) {
    const byte = nextByte();
    if (byte < UNBIASED_LIMIT) scratch[length++] = ALPHABET[byte % ALPHABET.length];
  }
  return scratch.toString('latin1', 0, ID_LENGTH);
}

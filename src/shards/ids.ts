import { randomFillSync } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** Bytes at or above this value are skipped so that each of the 62 characters is equally likely. */
const UNBIASED_LIMIT = 256 - (256 % ALPHABET.length);
const POOL_BYTES = 4096;

let pool = Buffer.alloc(0);
let offset = 0;

function nextByte(): number {
  if (offset >= pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    offset = 0;
  }
  return pool[offset++];
}

/** Returns a random id of 16 letters and digits, like the original server's job ids. */
export function newJobId(): string {
  let id = '';
  while (id.length < 16) {
    const byte = nextByte();
    if (byte < UNBIASED_LIMIT) id += ALPHABET[byte % ALPHABET.length];
  }
  return id;
}

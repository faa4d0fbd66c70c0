import { createHash, randomBytes, scrypt, ScryptOptions, timingSafeEqual } from 'node:crypto';
import type { UserConfig } from '../config/types';

/** scrypt cost parameters for new hashes: N = 2^15, r = 8, p = 1 (about 32 MiB, tens of ms). */
const NEW_HASH = { N: 32768, r: 8, p: 1, keyLength: 32, saltLength: 16 };

function scryptAsync(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyLength, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Hashes a password into the `scrypt$N$r$p$salt$hash` form that `password_hash` accepts. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(NEW_HASH.saltLength);
  const options = { N: NEW_HASH.N, r: NEW_HASH.r, p: NEW_HASH.p, maxmem: 128 * NEW_HASH.N * NEW_HASH.r * 2 };
  const key = await scryptAsync(password, salt, NEW_HASH.keyLength, options);
  return `scrypt$${NEW_HASH.N}$${NEW_HASH.r}$${NEW_HASH.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/**
 * Checks logins against the configured users. Plain passwords are compared through their
 * SHA-256 digests in constant time. scrypt hashes are computed on libuv's thread pool, so
 * the main thread keeps serving while a login is checked.
 */
export class Authenticator {
  private readonly users: Map<string, UserConfig>;

  /** A hashed user whose hash is computed for unknown names, when any user has a hash. */
  private readonly decoy: UserConfig | undefined;

  constructor(users: UserConfig[]) {
    this.users = new Map(users.map((user) => [user.username, user]));
    this.decoy = users.find((user) => user.password_hash !== undefined);
  }

  /** Returns the user when the credentials match; a Promise when a hash must be computed. */
  verify(username: string, password: string): UserConfig | null | Promise<UserConfig | null> {
    const user = this.users.get(username);
    if (user === undefined) {
      // Do the work of a real check anyway, so that an unknown name takes as long as a
      // wrong password and timing does not reveal which names exist.
      if (this.decoy !== undefined) return this.verifyHash(this.decoy, password).then(() => null);
      timingSafeEqual(digest(password), digest(username));
      return null;
    }
    if (user.password_hash !== undefined) {
      return this.verifyHash(user, password);
    }
    return timingSafeEqual(digest(password), digest(user.password ?? '')) ? user : null;
  }

  private async verifyHash(user: UserConfig, password: string): Promise<UserConfig | null> {
    const [, n, r, p, salt, hash] = (user.password_hash as string).split('$');
    const expected = Buffer.from(hash, 'base64');
    const N = Number(n);
    const options = { N, r: Number(r), p: Number(p), maxmem: 256 * N * Number(r) + 1024 * 1024 };
    try {
      const actual = await scryptAsync(password, Buffer.from(salt, 'base64'), expected.length, options);
      return timingSafeEqual(actual, expected) ? user : null;
    } catch {
      // Parameters the validator let through but scrypt rejects mean no password can match.
      return null;
    }
  }
}

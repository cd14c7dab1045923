import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashing with scrypt (memory-hard, in Node's core, run on the libuv pool so
 * it never blocks the event loop). Stored in PHC form:
 *   $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>
 * The cost is read back from each hash, so raising `rounds` later re-hashes nothing
 * and still verifies old hashes.
 */
const KEYLEN = 32;
/**
 * scrypt's block size r. With the default N = 2^16 this makes one hash cost about 96 MiB
 * and, measured by bench/identity on the 2-core reference machine, ~190 ms: more than
 * Keystone's default bcrypt cost 12 (~170 ms) on the same machine.
 */
const BLOCK_SIZE = 12;

function scryptAsync(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEYLEN, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

function options(ln: number, r: number, p: number): ScryptOptions {
  return { N: 2 ** ln, r, p, maxmem: 256 * 2 ** ln * r + 2 * 1024 * 1024 };
}

export async function hashPassword(password: string, rounds: number): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, options(rounds, BLOCK_SIZE, 1));
  return `$scrypt$ln=${rounds},r=${BLOCK_SIZE},p=1$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** `dummyRounds`: the cost spent when there is no hash, so a missing user costs what a real one does. */
export async function verifyPassword(password: string, stored: string | null, dummyRounds = 16): Promise<boolean> {
  const m = stored ? /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([^$]+)\$([^$]+)$/.exec(stored) : null;
  if (!m) {
    // Spend comparable time so a missing user or password is not distinguishable by timing.
    await scryptAsync(password, randomBytes(16), options(dummyRounds, BLOCK_SIZE, 1));
    return false;
  }
  const expected = Buffer.from(m[5]!, 'base64');
  const key = await scryptAsync(password, Buffer.from(m[4]!, 'base64'), options(Number(m[1]), Number(m[2]), Number(m[3])));
  return key.length === expected.length && timingSafeEqual(key, expected);
}

import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/**
 * A key repository in the manner of Keystone's Fernet keys: files named by integers.
 * 0 is the staged key (known to every node before it becomes primary), the highest
 * number is the primary (signs new tokens), the rest are secondaries (still validate).
 * Each key is 32 random bytes: 16 for HMAC-SHA256 signing, 16 for AES-128 encryption.
 */
export interface TokenKey { index: number; signing: Buffer; encryption: Buffer }

export class KeyRepository {
  private keys: TokenKey[] = [];
  private loadedMtime = 0;
  private checkedAt = 0;
  /** Bumped whenever the keys are (re)loaded, so caches of validated tokens know to re-check. */
  version = 0;

  constructor(readonly dir: string, private readonly maxActiveKeys = 3) {}

  /** Create the repository with a staged and a primary key when it is empty. */
  setup(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (this.indexes().length === 0) {
      this.writeKey(0);
      this.writeKey(1);
    }
    this.load();
  }

  /** Staged key becomes primary, a new staged key is made, the oldest secondaries go. */
  rotate(): { primary: number; removed: number[] } {
    this.setup();
    const idx = this.indexes();
    const next = Math.max(...idx) + 1;
    renameSync(join(this.dir, '0'), join(this.dir, String(next)));
    this.writeKey(0);
    const removed: number[] = [];
    const actives = this.indexes().filter((i) => i !== 0).sort((a, b) => a - b);
    while (actives.length + 1 > this.maxActiveKeys) {
      const old = actives.shift()!;
      unlinkSync(join(this.dir, String(old)));
      removed.push(old);
    }
    this.load();
    return { primary: next, removed };
  }

  /** Primary first, then the others; re-read from disk when the folder changed. */
  all(): TokenKey[] {
    this.refresh();
    return this.keys;
  }

  primary(): TokenKey {
    this.refresh();
    return this.keys[0]!;
  }

  /** Whether `gureum keys rotate` changed the folder: one stat, at most once a second. */
  refresh(): void {
    const now = Date.now();
    if (now - this.checkedAt < 1000) return;
    this.checkedAt = now;
    const m = statSync(this.dir).mtimeMs;
    if (m !== this.loadedMtime) this.load();
  }

  private load(): void {
    const m = statSync(this.dir).mtimeMs;
    const keys = this.indexes().sort((a, b) => b - a).map((index) => {
      const raw = Buffer.from(readFileSync(join(this.dir, String(index)), 'utf8').trim(), 'base64url');
      if (raw.length !== 32) throw new Error(`token key ${index} in ${this.dir} is not 32 bytes`);
      return { index, signing: raw.subarray(0, 16), encryption: raw.subarray(16) };
    });
    // The staged key (0) is last: it validates, but only signs when it is the only one.
    keys.sort((a, b) => (a.index === 0 ? 1 : b.index === 0 ? -1 : b.index - a.index));
    if (keys.length === 0) throw new Error(`no token keys in ${this.dir}; run gureum up or gureum keys rotate`);
    this.keys = keys;
    this.loadedMtime = m;
    this.version++;
  }

  private indexes(): number[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir).filter((f) => /^\d+$/.test(f)).map(Number);
  }

  private writeKey(index: number): void {
    const tmp = join(this.dir, `.${index}.tmp`);
    writeFileSync(tmp, randomBytes(32).toString('base64url'), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, join(this.dir, String(index)));
  }
}

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Writes `content` to `path` (atomically: temp file + rename) unless it already holds
 * exactly that; true when it wrote.
 */
export async function writeIfChanged(path: string, content: string, mode = 0o644): Promise<boolean> {
  try {
    if ((await readFile(path, 'utf8')) === content) return false;
  } catch { /* missing */ }
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, content, { mode });
  await rename(tmp, path);
  return true;
}

/** A one-at-a-time lock: run() calls execute in order. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(op: () => Promise<T>): Promise<T> {
    const next = this.tail.then(op, op);
    this.tail = next.then(() => undefined, () => undefined);
    return next;
  }
}

/** Runs `f` over `items` with at most `limit` at a time (commands are processes: keep the host responsive). */
export async function forEachLimit<T>(items: readonly T[], limit: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await f(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

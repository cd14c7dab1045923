import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/cli/nats.ts';

export interface Postgres { url: string; stop(): void }

/** Debian's PostgreSQL binaries (the newest installed major version). */
function pgBin(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  if (!versions.length) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  return join(base, versions[0]!, 'bin');
}

/** A throw-away PostgreSQL cluster on a loopback port, run as the postgres user. */
export async function startPostgres(): Promise<Postgres> {
  const bin = pgBin();
  const dir = mkdtempSync(join(tmpdir(), 'gureum-pg-'));
  const asRoot = process.getuid?.() === 0;
  const uid = asRoot ? Number(execFileSync('id', ['-u', 'postgres']).toString().trim()) : undefined;
  const gid = asRoot ? Number(execFileSync('id', ['-g', 'postgres']).toString().trim()) : undefined;
  if (asRoot) chownSync(dir, uid!, gid!);
  const opts = { uid, gid, stdio: 'pipe' as const };
  const data = join(dir, 'data');
  execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'gureum', '--auth=trust', '-E', 'UTF8', '--locale=C'], opts);
  const port = await freePort();
  const r = spawnSync(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start'], opts);
  if (r.status !== 0) throw new Error(`pg_ctl start failed: ${r.stderr}`);
  execFileSync(join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'gureum', 'gureum'], opts);
  return {
    url: `postgresql://gureum@127.0.0.1:${port}/gureum`,
    stop() { spawnSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', 'stop'], opts); },
  };
}

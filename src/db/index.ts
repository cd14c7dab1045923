import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Migration, type MigrationProvider } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';
import { migrations } from './migrations/index.ts';

export type { Database } from './schema.ts';
export type Db = Kysely<Database>;
export type Dialect = 'sqlite' | 'postgres';

export interface OpenDatabase { db: Db; dialect: Dialect; close(): Promise<void> }

/** Open `sqlite:<path>` (or a bare path) or `postgres(ql)://...` and run pending migrations. */
export async function openDatabase(url: string): Promise<OpenDatabase> {
  let db: Db;
  let dialect: Dialect;
  if (/^postgres(ql)?:\/\//.test(url)) {
    dialect = 'postgres';
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  } else {
    dialect = 'sqlite';
    const path = url.replace(/^sqlite:(\/\/)?/, '');
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const sqlite = new SQLite(path);
    sqlite.pragma('journal_mode = WAL');
    // NORMAL is durable across a process crash (kill -9); only power loss may drop the last commits.
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  }
  await migrate(db);
  return { db, dialect, close: () => db.destroy() };
}

class StaticProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> { return migrations; }
}

export async function migrate(db: Db): Promise<void> {
  // Migrations land from parallel work (006 after 007 was applied somewhere): apply any missing one, in name order.
  const migrator = new Migrator({
    db, provider: new StaticProvider(), migrationTableName: 'gureum_migrations', migrationLockTableName: 'gureum_migration_lock', allowUnorderedMigrations: true,
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) throw new Error(`database migration failed${failed ? ` at ${failed.migrationName}` : ''}: ${String(error)}`);
}

/** True when a driver error is a unique/primary-key violation, in either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Fixed-width ISO-8601 UTC text, microsecond precision as Keystone prints it. */
export function isoNow(d: Date = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

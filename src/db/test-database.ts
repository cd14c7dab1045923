/**
 * For unit tests only: a fresh, migrated database — in-memory SQLite, or a new PostgreSQL
 * database on GUREUM_TEST_POSTGRES_URL's server, so the same tests run on both.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type OpenDatabase } from './index.ts';

export async function freshDatabase(): Promise<OpenDatabase> {
  const base = process.env.GUREUM_TEST_POSTGRES_URL;
  if (!base) return openDatabase(':memory:');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: base });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return openDatabase(u.toString());
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSection, loadConfig } from './config.ts';

test('defaults: SQLite in the data dir, loopback, Keystone-like token lifetime', () => {
  const c = loadConfig({ env: { HOME: '/home/x' }, flags: {} });
  assert.equal(c.dataDir, '/home/x/.local/share/gureum');
  assert.equal(c.database, 'sqlite:/home/x/.local/share/gureum/gureum.db');
  assert.equal(c.publicUrl, 'http://127.0.0.1:8700');
  assert.equal(c.tokenExpiration, 3600);
});

test('flags beat environment beat the config file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  writeFileSync(join(dir, 'gureum.yaml'), 'listenPort: 9001\nregion: FromFile\nlogLevel: debug\n');
  const c = loadConfig({ env: { GUREUM_LISTEN_PORT: '9002', GUREUM_REGION: 'FromEnv' }, flags: { dataDir: dir, listenPort: '9003' } });
  assert.equal(c.listenPort, 9003);
  assert.equal(c.region, 'FromEnv');
  assert.equal(c.logLevel, 'debug');
});

test('a bad number is a clear error', () => {
  assert.throws(() => loadConfig({ env: { GUREUM_LISTEN_PORT: 'eighty' }, flags: { dataDir: '/tmp/x' } }), /listenPort.*GUREUM_LISTEN_PORT/);
});

test('service sections come from the same file as the settings: --config wins over the data dir', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  writeFileSync(join(dir, 'gureum.yaml'), 'network:\n  source: datadir\n');
  const other = join(dir, 'other.yaml');
  writeFileSync(other, 'region: Elsewhere\nnetwork:\n  source: flag\n');
  const c = loadConfig({ env: {}, flags: { dataDir: dir, config: other } });
  assert.equal(c.region, 'Elsewhere');
  assert.deepEqual(configSection(c, 'network'), { source: 'flag' });
  assert.deepEqual(configSection(loadConfig({ env: {}, flags: { dataDir: dir } }), 'network'), { source: 'datadir' });
});

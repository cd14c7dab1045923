import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient, QmpError } from './qmp.ts';

let dir: string;
let qemu: ChildProcess;
let sock: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'qmp-'));
  sock = join(dir, 'qmp.sock');
  // A machine with nothing in it, vCPUs stopped: starts in milliseconds.
  qemu = spawn('qemu-system-x86_64', ['-M', 'none', '-nodefaults', '-no-user-config', '-display', 'none', '-S',
    '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
});
after(() => { qemu.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });

test('negotiates, runs typed commands, reports errors and events, sees quit', async () => {
  const qmp = await QmpClient.connect(sock, { retryMs: 10_000 });
  assert.equal(qmp.version?.major, 7);
  assert.deepEqual(await qmp.execute('query-status'), { status: 'prelaunch', running: false, singlestep: false });
  const resumed = qmp.waitEvent('RESUME', 5000);
  await qmp.execute('cont');
  await resumed;
  assert.equal((await qmp.execute('query-status')).status, 'running');
  const events: string[] = [];
  qmp.on('event', (e: { event: string }) => events.push(e.event));
  await qmp.execute('stop');
  assert.equal((await qmp.execute('query-status')).status, 'paused');
  assert.ok(events.includes('STOP'));

  // concurrent commands are matched by id
  const [a, b] = await Promise.all([qmp.execute('query-status'), qmp.execute('query-version')]);
  assert.equal(a.status, 'paused');
  assert.equal(b.qemu.major, 7);

  const err = await qmp.execute('migrate', { uri: 'bogus:x' }).catch((e: unknown) => e);
  assert.ok(err instanceof QmpError);
  assert.match(err.message, /^QMP migrate: /);

  // one client at a time: a second connect gets no greeting and times out
  await assert.rejects(QmpClient.connect(sock, { timeoutMs: 300 }), /no QMP greeting/);

  const closed = qmp.closedPromise();
  await qmp.execute('quit');
  await closed;
  assert.equal(qmp.isClosed, true);
  await assert.rejects(qmp.execute('query-status'), /closed/);
  await new Promise((r) => qemu.once('exit', r));
});

test('connect to a missing socket fails with the path in the message', async () => {
  await assert.rejects(QmpClient.connect(join(dir, 'nope.sock')), /QMP connect .*nope\.sock: .*ENOENT/);
});

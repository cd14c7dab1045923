import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { NatsChild } from '../cli/nats.ts';
import { Bus, BusRemoteError, BusTimeout, HealthPing, subject } from './index.ts';

const log = pino({ level: 'silent' });
let nats: NatsChild;
let bus: Bus;

before(async () => {
  nats = new NatsChild(mkdtempSync(join(tmpdir(), 'bus-')), log);
  bus = await Bus.connect(await nats.start(), log);
});
after(async () => {
  await bus.close();
  await nats.stop();
});

test('request/reply over a real nats-server carries the request id', async () => {
  let seen = '';
  const sub = bus.serve(HealthPing, (_b, meta) => { seen = meta.requestId; return { process: 'test', host: 'h', pid: 1, startedAt: 'now' }; });
  const reply = await bus.request(HealthPing, { from: 'me' }, { requestId: 'req-abc' });
  assert.equal(reply.process, 'test');
  assert.equal(seen, 'req-abc');
  sub.unsubscribe();
  assert.ok((await bus.rtt()) >= 0);
});

test('a handler error comes back as BusRemoteError', async () => {
  const Fails = subject<{ n: number }, number>('test.fails');
  const sub = bus.serve(Fails, () => { throw new Error('boom'); });
  await assert.rejects(bus.request(Fails, { n: 1 }), (e: unknown) => e instanceof BusRemoteError && e.message === 'boom');
  sub.unsubscribe();
});

test('no responder or a slow one times out', async () => {
  const Nobody = subject<{ n: number }, number>('test.nobody');
  await assert.rejects(bus.request(Nobody, { n: 1 }, { timeoutMs: 200 }), BusTimeout);
  const Slow = subject<{ n: number }, number>('test.slow');
  const sub = bus.serve(Slow, async () => { await new Promise((r) => setTimeout(r, 500)); return 1; });
  await assert.rejects(bus.request(Slow, { n: 1 }, { timeoutMs: 100 }), BusTimeout);
  sub.unsubscribe();
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPage, parsePage } from './paging.ts';

const items = ['a', 'b', 'c', 'd'].map((id) => ({ id }));

test('limit and marker walk a list page by page', () => {
  const first = applyPage(items, parsePage({ limit: '2' }));
  assert.deepEqual(first.items.map((x) => x.id), ['a', 'b']);
  assert.equal(first.more, true);
  const second = applyPage(items, parsePage({ limit: '2', marker: 'b' }));
  assert.deepEqual(second.items.map((x) => x.id), ['c', 'd']);
  assert.equal(second.more, false);
});

test('a bad limit or an unknown marker is a 400', () => {
  assert.throws(() => parsePage({ limit: '-1' }), { status: 400 });
  assert.throws(() => parsePage({ limit: 'ten' }), { status: 400 });
  assert.throws(() => applyPage(items, { marker: 'zz' }), { status: 400 });
  assert.equal(parsePage({ limit: '5000' }, 1000).limit, 1000, 'capped at the maximum');
});

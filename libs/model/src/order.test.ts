import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareByKey, compareCodePoints, compareInstants, pointerGet } from './index.ts';

test('order - text compares by code point like COLLATE "C", not by UTF-16 unit', () => {
  const sorted = ['b', '\u{1F600}', 'a', '\uFF5E', 'B', 'ab', ''].sort(compareCodePoints);
  assert.deepEqual(sorted, ['', 'B', 'a', 'ab', 'b', '\uFF5E', '\u{1F600}']);
  const bytes = (s: string) => Buffer.from(s, 'utf8');
  for (const a of sorted) for (const b of sorted) assert.equal(Math.sign(compareCodePoints(a, b)), Math.sign(Buffer.compare(bytes(a), bytes(b))));
});

test('order - date-times compare as instants across offsets and sub-millisecond digits', () => {
  assert.equal(compareInstants('2021-01-01T00:00:00-04:00', '2021-01-01T04:00:00Z'), 0);
  assert.ok(compareInstants('2021-01-01T00:00:00-04:00', '2021-01-01T03:59:59Z') > 0);
  assert.ok(compareInstants('2021-01-01T00:00:00.0001Z', '2021-01-01T00:00:00Z') > 0);
  assert.equal(compareInstants('2021-01-01T00:00:00.5Z', '2021-01-01T00:00:00.500Z'), 0);
  assert.throws(() => compareInstants('yesterday', '2021-01-01T00:00:00Z'), /RFC 3339/);
});

test('order - keys compare pointer by pointer, numbers numerically', () => {
  const key = ['/segment/vendor', '/segment/name'];
  assert.ok(compareByKey(key, { segment: { vendor: 9, name: 'b' } }, { segment: { vendor: 10, name: 'a' } }) < 0);
  assert.equal(pointerGet({ 'a/b': { '~': 1 } }, '/a~1b/~0'), 1);
});

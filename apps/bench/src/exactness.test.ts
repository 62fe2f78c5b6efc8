import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffCollection } from './exactness.ts';
import { percentile } from './latency.ts';

const row = (user: string, member: boolean) => ({ segment: { vendor: 1, name: 'seg-1' }, user, last: '2021-03-19T10:00:00Z', member });

test('exactness - rows are matched by key in any order: missing, extra and different each counted', () => {
  const expected = [row('a', true), row('b', true), row('c', false)];
  const actual = [row('d', true), row('c', true), { member: true, user: 'a', last: '2021-03-19T10:00:00Z', segment: { name: 'seg-1', vendor: 1 } }];
  const diff = diffCollection('segment/memberships', expected, actual);
  assert.deepEqual({ missing: diff.missing, extra: diff.extra, different: diff.different }, { missing: 1, extra: 1, different: 1 });
  assert.equal(diff.examples.length, 3);
  assert.match(diff.examples.join('\n'), /extra \[1,"seg-1","d"\]/);
});

test('latency - nearest-rank percentiles', () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BloomFilter } from './bloom-filter.ts';

test('bloom filter - every added key is found; few others are, in fixed memory', () => {
  const filter = new BloomFilter(20, 6);
  const added = Array.from({ length: 50_000 }, (_, i) => `7.seg-${(i % 977).toString(16)}.usr-${i.toString(16).padStart(6, '0')}`);
  for (const key of added) filter.add(key);
  for (const key of added) assert.ok(filter.has(key), key);
  let falsePositives = 0;
  for (let i = 0; i < 50_000; i++) if (filter.has(`8.seg-x.usr-${i}`)) falsePositives++;
  // 50K keys in 2^20 bits with 6 hashes: ~0.2% expected.
  assert.ok(falsePositives < 250, `${falsePositives} false positives`);
});

test('bloom filter - add says whether the key may have been added before', () => {
  const filter = new BloomFilter(20, 6);
  assert.equal(filter.add('7.seg.usr-1'), false);
  assert.equal(filter.add('7.seg.usr-1'), true);
  assert.equal(filter.add('7.seg.usr-2'), false);
  assert.ok(filter.has('7.seg.usr-2'));
});

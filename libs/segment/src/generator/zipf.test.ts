import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from './prng.ts';
import { ZipfDistribution } from './zipf.ts';

test('zipf - P(k) is (1 + k)^-s over the harmonic sum, as Go rand.NewZipf(s, 1, max)', () => {
  const zipf = new ZipfDistribution(1.1, 10_000);
  let harmonic = 0;
  for (let j = 1; j <= 10_001; j++) harmonic += j ** -1.1;
  assert.ok(Math.abs(zipf.probability(0) - 1 / harmonic) < 1e-12);
  assert.ok(Math.abs(zipf.probability(9) - 10 ** -1.1 / harmonic) < 1e-12);
  assert.equal(zipf.probability(10_001), 0);
  let total = 0;
  for (let k = 0; k <= 10_000; k++) total += zipf.probability(k);
  assert.ok(Math.abs(total - 1) < 1e-9);
});

test('zipf - samples land in [0, max] with the expected frequencies', () => {
  const zipf = new ZipfDistribution(1.1, 10_000);
  const prng = new Prng(7);
  const n = 200_000;
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const k = zipf.sample(prng);
    assert.ok(Number.isInteger(k) && k >= 0 && k <= 10_000);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  for (const k of [0, 1, 5]) {
    const expected = zipf.probability(k) * n;
    assert.ok(Math.abs((counts.get(k) ?? 0) - expected) < 5 * Math.sqrt(expected), `k=${k}`);
  }
});

test('zipf - skew 0 is uniform and a single value is always drawn', () => {
  const uniform = new ZipfDistribution(0, 3);
  for (let k = 0; k <= 3; k++) assert.ok(Math.abs(uniform.probability(k) - 0.25) < 1e-12);
  const single = new ZipfDistribution(2, 0);
  assert.equal(single.sample(new Prng(1)), 0);
});

test('zipf - a negative skew or max is refused', () => {
  assert.throws(() => new ZipfDistribution(-1, 10), RangeError);
  assert.throws(() => new ZipfDistribution(1, -1), RangeError);
});

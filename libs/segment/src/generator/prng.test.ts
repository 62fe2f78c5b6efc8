import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from './prng.ts';

const draws = (prng: Prng, n: number) => Array.from({ length: n }, () => prng.nextUint32());

test('prng - the same seed gives the same stream, another seed a different one', () => {
  assert.deepEqual(draws(new Prng(42), 100), draws(new Prng(42), 100));
  assert.notDeepEqual(draws(new Prng(42), 100), draws(new Prng(43), 100));
});

test('prng - the high bits of a seed matter', () => {
  assert.notDeepEqual(draws(new Prng(1), 10), draws(new Prng(1 + 2 ** 32), 10));
});

test('prng - the stream is pinned, so a seed names the same data in every release', () => {
  // Checked against xoshiro128** from state {1, 2, 3, 4} (11520, 0, 5927040, ...) when written.
  assert.deepEqual(draws(new Prng(8675309), 4), [2664610110, 734726763, 3788018166, 3440771796]);
});

test('prng - uniforms stay in [0, 1) with mean 1/2; integers cover [0, n) evenly', () => {
  const prng = new Prng(7);
  let sum = 0;
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < 100_000; i++) {
    const f = prng.nextFloat();
    const d = prng.nextDouble();
    assert.ok(f >= 0 && f < 1 && d >= 0 && d < 1);
    sum += d;
    const k = prng.nextInt(10);
    counts[k] = counts[k]! + 1;
  }
  assert.ok(Math.abs(sum / 100_000 - 0.5) < 0.005);
  for (const c of counts) assert.ok(Math.abs(c - 10_000) < 500, `bucket ${c}`);
});

test('prng - normals have mean 0 and variance 1', () => {
  const prng = new Prng(7);
  const n = 100_000;
  let sum = 0;
  let squares = 0;
  for (let i = 0; i < n; i++) {
    const x = prng.nextNormal();
    sum += x;
    squares += x * x;
  }
  assert.ok(Math.abs(sum / n) < 0.02);
  assert.ok(Math.abs(squares / n - 1) < 0.02);
});

test('prng - a seed that is not a safe integer is refused', () => {
  assert.throws(() => new Prng(1.5), RangeError);
  assert.throws(() => new Prng(2 ** 60), RangeError);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Arrivals } from './arrivals.ts';

test('arrivals - a reader waits for the first item, takes at most what it asks for, and a wake ends its wait empty', async () => {
  const arrivals = new Arrivals<number>();
  const waiting = arrivals.take(2, 60_000);
  arrivals.push(1);
  assert.deepEqual(await waiting, [1]);

  for (const item of [2, 3, 4]) arrivals.push(item);
  assert.deepEqual(await arrivals.take(2, 60_000), [2, 3]);
  assert.deepEqual(await arrivals.take(2, 60_000), [4]);

  const woken = arrivals.take(2, 60_000);
  arrivals.wake();
  assert.deepEqual(await woken, []);
  assert.deepEqual(await arrivals.take(2, 60_000, false), [], 'told not to wait, it does not');
  assert.deepEqual(await arrivals.take(2, 10), [], 'it waits no longer than asked');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { figuresBySecond } from './latency.ts';

test('figuresBySecond - probes grouped by the second they were sent in; a second without probes reads n/a', () => {
  const start = 1_000_000;
  const probe = (sentAfterMs: number, latencyMs: number) => ({ user: `u${sentAfterMs}`, sentAtMs: start + sentAfterMs, seenAtMs: start + sentAfterMs + latencyMs });
  const seconds = figuresBySecond([probe(10, 30), probe(900, 50), probe(500, 40), probe(2_100, 300)], start);
  assert.equal(seconds.length, 3);
  assert.deepEqual(seconds[0], { p50Ms: 40, maxMs: 50 });
  assert.ok(Number.isNaN(seconds[1]!.p50Ms) && Number.isNaN(seconds[1]!.maxMs));
  assert.deepEqual(seconds[2], { p50Ms: 300, maxMs: 300 });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { replay } from '@segment/segment';
import { fnv1a, generateWorkload, lineAt, referenceOf, workloadEvents, type WorkloadOptions } from './workload.ts';

const options: WorkloadOptions = { events: 3_000, seed: 8675309, batchSize: 200, lanes: 3, latencyEvents: 300, probeEvery: 50, fullCheckLimit: 10_000 };

test('workload - the bodies hold every event once, each user in one lane in generation order', () => {
  const workload = generateWorkload(options);
  const generated = [...workloadEvents(options)].filter(({ phase }) => phase === 'throughput').map(({ event }) => JSON.stringify(event));
  const sent = workload.chunks.flatMap((chunk) => Array.from({ length: chunk.count }, (_, i) => lineAt(chunk, i).toString('utf8')));
  assert.deepEqual([...sent].sort(), [...generated].sort());
  const laneOfUser = new Map<string, number>();
  for (const chunk of workload.chunks) {
    for (let i = 0; i < chunk.count; i++) {
      const { user } = JSON.parse(lineAt(chunk, i).toString('utf8')) as { user: string };
      assert.equal(laneOfUser.get(user) ?? chunk.lane, chunk.lane, `user ${user} in one lane`);
      laneOfUser.set(user, chunk.lane);
    }
  }
  const byUser = (lines: readonly string[], user: string) => lines.filter((line) => (JSON.parse(line) as { user: string }).user === user);
  const someUser = laneOfUser.keys().next().value!;
  assert.deepEqual(byUser(sent, someUser), byUser(generated, someUser));
  assert.equal(workload.latency.probes.size, options.latencyEvents / options.probeEvery);
});

test('workload - the reference model read back from the bytes sent equals a replay in generation order', () => {
  const workload = generateWorkload(options);
  assert.deepEqual(referenceOf(workload).snapshot(), replay([...workloadEvents(options)].map(({ event }) => event)));
});

test('workload - above the full-check limit, the reference holds the sampled users (and every probe) only', () => {
  const sampled = { ...options, fullCheckLimit: 1_000 };
  const workload = generateWorkload(sampled);
  assert.equal(workload.sampleEvery, 3);
  const expected = replay([...workloadEvents(sampled)].map(({ event }) => event).filter((event) => event.user.startsWith('probe-') || fnv1a(event.user) % 3 === 0));
  const reference = referenceOf(workload).snapshot();
  assert.deepEqual(reference, expected);
  assert.ok(reference.profiles.some((profile) => profile.user.startsWith('probe-')), 'probes are checked');
});

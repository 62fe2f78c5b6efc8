// Runs on a 3-node JetStream cluster of its own (loopback ports), never on the shared server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { caughtUp, connectNats, createDeriveRuntime, defaultProvisionConfig, deriveProgress, namesFor, provision } from '@segment/nats';
import { replay, togglesDerivation, type Derivation } from '@segment/segment';
import { startNatsCluster } from './support/nats-server.ts';
import { generateEvents, publishEvents, readDerived } from './support/pipeline.ts';
import { randomNamespace, waitFor } from './support/streams.ts';

test('cluster - derivations on a 3-node cluster with 3 replicas: registers moved to the bucket and read back (from the leaders) by a restarted worker give exactly the model', { timeout: 180_000 }, async (t) => {
  const cluster = await startNatsCluster(3);
  t.after(() => cluster.stop());
  const nc = await connectNats({ servers: cluster.servers.map((server) => server.url), name: 'test-cluster' });
  t.after(() => nc.close());
  const names = namesFor(randomNamespace('cluster'));
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  await provision(nc, names, { ...defaultProvisionConfig, replicas: 3 }, logger);

  const events = generateEvents(8_000);
  // Journals this small move to the bucket every few commits, and a second worker, with
  // nothing cached, must read back what the first one moved.
  const run = async (batch: readonly (typeof events)[number][]) => {
    await publishEvents(nc, names, batch);
    const { worker, close } = await createDeriveRuntime(nc, { names, derivations: [togglesDerivation as Derivation], logger, registerMemory: { journalBytes: 20_000, cacheEntries: 100_000 } });
    try {
      await worker.start();
      await waitFor(async () => caughtUp(await deriveProgress(nc, names)), 90_000, async () => JSON.stringify(await deriveProgress(nc, names)));
    } finally {
      // Also when it failed: a worker left running would keep the test's process alive.
      await worker.stop();
      await close();
    }
  };
  await run(events.slice(0, 4_000));
  await run(events.slice(4_000));

  const derived = await readDerived(nc, names);
  const expected = replay(events);
  assert.ok(expected.toggles.length > 100, `the events produce toggles (${expected.toggles.length})`);
  assert.deepEqual(derived.toggles, expected.toggles);
  const stores = logs.filter((line) => line.msg === 'register store');
  assert.equal(stores.length, 2);
  assert.ok(stores.every((line) => (line.moves as number) > 0), 'both workers moved journals to the bucket');
  assert.ok((stores[1]!.bucketFound as number) > 0, 'the second worker read registers back from the bucket');
});

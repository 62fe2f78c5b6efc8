import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { caughtUp, connectNats, createDeriveRuntime, defaultProvisionConfig, deprovision, deriveProgress, headers, namesFor, provision } from '@segment/nats';
import { membershipsDerivation, profilesDerivation, replay, togglesDerivation, type Derivation } from '@segment/segment';
import { generateEvents, publishEvents, readDerived } from './support/pipeline.ts';
import { natsUrl, randomNamespace, readStream, waitFor } from './support/streams.ts';

const logger = pino({ level: 'silent' });
const derivations = [membershipsDerivation, profilesDerivation, togglesDerivation] as Derivation[];

/** A namespace of its own, removed after the test, holding the first half of 6,000 events; the rest are for the test to publish. */
async function halfPublished(t: TestContext, name: string) {
  const nc = await connectNats({ servers: natsUrl, name: `test-${name}` });
  const names = namesFor(randomNamespace(name));
  t.after(async () => {
    await deprovision(nc, names);
    await nc.close();
  });
  await provision(nc, names, defaultProvisionConfig, logger);
  const events = generateEvents(6_000);
  await publishEvents(nc, names, events.slice(0, 3_000));
  return { nc, names, events };
}

test('derive - the derived streams reduce to exactly the reference model, with provenance, bad input dead-lettered', async (t) => {
  const { nc, names, events } = await halfPublished(t, 'derive');

  const { worker, close } = await createDeriveRuntime(nc, { names, derivations, logger });
  await worker.start();
  await publishEvents(nc, names, events.slice(3_000));
  // Bad input on a partition: not JSON, failing the schema, and published under another vendor's subject.
  nc.publish(names.events.subject(3), 'not json');
  nc.publish(names.events.subject(3), JSON.stringify({ ...events[0], event: '99999999-2222-3333-4444-000000000001', segment: { vendor: 0, name: 'x' } }));
  nc.publish(names.events.subject(3), JSON.stringify({ ...events.find((e) => e.segment.vendor === 4), event: '99999999-2222-3333-4444-000000000002' }));
  await nc.flush();

  await waitFor(async () => caughtUp(await deriveProgress(nc, names)), 60_000, async () => JSON.stringify(await deriveProgress(nc, names)));
  await worker.stop();
  await close();

  const expected = replay(events);
  const derived = await readDerived(nc, names);
  assert.equal(derived.memberships.length, expected.memberships.length);
  assert.deepEqual(derived.memberships, expected.memberships);
  assert.deepEqual(derived.profiles, expected.profiles);
  assert.deepEqual(derived.toggles, expected.toggles);
  assert.ok(expected.toggles.length > 50, `the events produce toggles (${expected.toggles.length})`);

  const message = derived.raw.memberships[0]!;
  assert.equal(message.headers[headers.sourceStream], names.events.stream);
  assert.match(message.headers[headers.sourcePartition]!, /^\d+$/);
  assert.match(message.headers[headers.sourceRange]!, /^\d+-\d+$/);
  assert.ok(derived.raw.memberships.length < events.length / 10, 'derived messages carry batches of documents');

  const dead = await readStream(nc, names.deadLetters.stream);
  assert.equal(dead.length, 3);
  assert.match(dead[0]!.headers[headers.deadReason]!, /^not JSON/);
  assert.match(dead[1]!.headers[headers.deadReason]!, /\/segment\/vendor: must be >= 1/);
  assert.match(dead[2]!.headers[headers.deadReason]!, /\/segment\/vendor: is 4, but/);
  assert.equal(dead[0]!.headers[headers.deadSubject], names.events.subject(3));
  assert.match(dead[0]!.headers[headers.deadSequence]!, /^\d+$/);
});

test('derive - two replicas, each reading the whole stream through a consumer of its own, derive their own vendors: together exactly the reference model', async (t) => {
  const { nc, names, events } = await halfPublished(t, 'replicas');

  const replicas = await Promise.all([0, 1].map((index) => createDeriveRuntime(nc, { names, derivations, logger, replica: { index, count: 2 } })));
  await Promise.all(replicas.map(({ worker }) => worker.start()));
  await publishEvents(nc, names, events.slice(3_000));
  await waitFor(async () => caughtUp(await deriveProgress(nc, names)), 60_000, async () => JSON.stringify(await deriveProgress(nc, names)));
  const owned = replicas.map(({ worker }) => worker.stats.map((s) => s.partition));
  for (const { worker, close } of replicas) {
    await worker.stop();
    await close();
  }

  // Each vendor belongs to one replica, and each replica has some
  assert.ok(owned.every((partitions) => partitions.length > 0), JSON.stringify(owned));
  assert.equal(new Set(owned.flat()).size, owned.flat().length, JSON.stringify(owned));
  const expected = replay(events);
  const derived = await readDerived(nc, names);
  assert.deepEqual(derived.memberships, expected.memberships);
  assert.deepEqual(derived.profiles, expected.profiles);
  assert.deepEqual(derived.toggles, expected.toggles);
});

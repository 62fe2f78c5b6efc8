import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { connectNats, deprovision, namesFor } from '@segment/nats';
import { startPipeline, waitUntilCaughtUp } from '@segment/pipeline';
import { readCollection } from '@segment/postgres';
import { replay } from '@segment/segment';
import { generateEvents, publishEvents } from './support/pipeline.ts';
import { testDatabase } from './support/postgres.ts';
import { randomNamespace } from './support/streams.ts';

const logger = pino({ level: 'silent' });
const natsUrl = process.env.SEGMENT_NATS_URL ?? 'nats://127.0.0.1:4222';

test('pipeline - events to Postgres: memberships, profiles and toggles equal the reference model exactly', async (t) => {
  const namespace = randomNamespace('pipe');
  const nc = await connectNats({ servers: natsUrl, name: 'test-pipeline' });
  const names = namesFor(namespace);
  const { database, cleanup } = await testDatabase(namespace);
  t.after(async () => {
    await deprovision(nc, names);
    await nc.close();
    await cleanup();
  });
  const pipeline = await startPipeline({ nc, names, logger, database, discoveryIntervalMs: 100 });
  const events = generateEvents(8_000, 3);
  await publishEvents(nc, names, events.slice(0, 5_000));
  await waitUntilCaughtUp(nc, database, names, { timeoutMs: 60_000 });
  const early = replay(events.slice(0, 5_000));
  assert.deepEqual(await readCollection(database, 'segment/memberships'), early.memberships);

  await publishEvents(nc, names, events.slice(5_000));
  const progress = await waitUntilCaughtUp(nc, database, names, { timeoutMs: 60_000 });
  await pipeline.stop();
  const expected = replay(events);
  assert.deepEqual(await readCollection(database, 'segment/memberships'), expected.memberships);
  assert.deepEqual(await readCollection(database, 'segment/profiles'), expected.profiles);
  assert.deepEqual(await readCollection(database, 'segment/toggles'), expected.toggles);
  t.diagnostic(`${events.length} events → ${expected.memberships.length} memberships, ${expected.profiles.length} profiles, ${expected.toggles.length} toggles; ${progress.projectors.map((p) => `${p.projector}@${p.committed}`).join(' ')}`);
});

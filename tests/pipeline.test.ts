import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startPipeline, waitUntilCaughtUp } from '@segment/pipeline';
import { readCollection } from '@segment/postgres';
import { replay } from '@segment/segment';
import { generateEvents, publishEvents } from './support/pipeline.ts';
import { isolatedNamespace } from './support/postgres.ts';

const logger = pino({ level: 'silent' });

test('pipeline - events to Postgres: memberships, profiles and toggles equal the reference model exactly', async (t) => {
  const { nc, names, database } = await isolatedNamespace(t, 'pipe');
  const pipeline = await startPipeline({ nc, names, logger, database });
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

test('pipeline - a raw `nats pub` (no headers, no Nats-Msg-Id) is processed like any other event', async (t) => {
  const { nc, names, database } = await isolatedNamespace(t, 'raw');
  const pipeline = await startPipeline({ nc, names, logger, database });
  const event = { event: '0c7f6a2e-3e1b-4c1e-9a43-5f0f1d2b3c4d', timestamp: '2021-03-19T13:32:26-04:00', user: 'usr-000001', segment: { vendor: 7, name: 'seg-6' } };
  nc.publish(names.events.subject(7), JSON.stringify(event));
  await nc.flush();
  await waitUntilCaughtUp(nc, database, names, { timeoutMs: 30_000 });
  await pipeline.stop();
  assert.deepEqual(await readCollection(database, 'segment/memberships'), [
    { segment: event.segment, user: event.user, first: event.timestamp, last: event.timestamp, member: true },
  ]);
});

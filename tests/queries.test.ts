import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { startPipeline, waitUntilCaughtUp } from '@segment/pipeline';
import { readCollection } from '@segment/postgres';
import { replay } from '@segment/segment';
import type { Membership, Profile } from '@segment/model';
import { generateEvents, publishEvents } from './support/pipeline.ts';
import { databaseUrl, isolatedNamespace } from './support/postgres.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

test('queries - segment user, segment members (paged) and segment rebuild answer from Postgres', async (t) => {
  const { namespace, natsUrl, nc, names, database } = await isolatedNamespace(t, 'query');
  const events = generateEvents(3_000, 5);
  const expected = replay(events);
  const pipeline = await startPipeline({ nc, names, logger: pino({ level: 'silent' }), database });
  await publishEvents(nc, names, events);
  await waitUntilCaughtUp(nc, database, names, { timeoutMs: 60_000 });
  await pipeline.stop();

  const env = { ...process.env, SEGMENT_DATABASE_URL: databaseUrl, SEGMENT_NATS_URL: natsUrl, SEGMENT_NAMESPACE: namespace };
  const segment = (...args: string[]) => run(process.execPath, ['apps/cli/bin/segment.js', ...args], { cwd: root, env });

  const profile = expected.profiles[3] as Profile;
  const user = await segment('user', profile.user);
  assert.deepEqual(JSON.parse(user.stdout), profile);
  await assert.rejects(segment('user', 'nobody-at-all'), (error: { code: number; stderr: string }) => error.code === 1 && /no user "nobody-at-all"/.test(error.stderr));

  const seg0 = expected.memberships.filter((m) => (m as Membership).segment.name === 'seg-0' && (m as Membership).member) as Membership[];
  const page = await segment('members', '1', 'seg-0', '--limit', '3');
  assert.deepEqual(page.stdout.trim().split('\n').map((line) => line.split('\t')[0]), seg0.slice(0, 3).map((m) => m.user));
  assert.match(page.stderr, /more: segment members 1 "seg-0" --limit 3 --after "/);
  const all = await segment('members', '1', 'seg-0', '--all', '--json', '--limit', '7');
  assert.deepEqual(all.stdout.trim().split('\n').map((line) => JSON.parse(line)), seg0);

  const rebuild = await segment('rebuild');
  assert.match(rebuild.stderr, /rebuilt .*: \d+ rows/);
  assert.deepEqual(await readCollection(database, 'segment/memberships'), expected.memberships);
  assert.deepEqual(await readCollection(database, 'segment/toggles'), expected.toggles);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { FencedError, keyId, type ProjectionPosition } from '@segment/runtime';
import { PostgresProjectionStore, analyzeStaleTables, type SegmentDatabase, membershipsProjection, migrate, readCollection, reportingRole, segmentMembers, stageRowsAtLeast, togglesProjection, userProfile } from '@segment/postgres';
import { reductionOf } from '@segment/reduce';
import { replay } from '@segment/segment';
import type { Event, Membership } from '@segment/model';
import type { Logger } from '@segment/telemetry';
import { generateEvents } from './support/pipeline.ts';
import { testDatabase } from './support/postgres.ts';
import { randomNamespace } from './support/streams.ts';

test('postgres - migrations are idempotent, and the reporting role reads but cannot write', async (t) => {
  const { database, cleanup } = await testDatabase(randomNamespace('pg'));
  t.after(cleanup);
  const again = await migrate(database);
  assert.deepEqual(again.results, []);
  const s = sql.id(database.schema);
  await database.db.transaction().execute(async (trx) => {
    await sql`SET LOCAL ROLE ${sql.id(reportingRole)}`.execute(trx);
    await sql`SELECT count(*) FROM ${s}.segment_memberships`.execute(trx);
    await sql`SELECT count(*) FROM ${s}.segment_profiles`.execute(trx);
    await sql`SELECT count(*) FROM ${s}.segment_sizes`.execute(trx);
  });
  for (const statement of [
    sql`INSERT INTO ${s}.segment_toggles (event, vendor, segment_name, "user", timestamp, timestamp_at, remove, previous_event, previous_remove, document) VALUES ('e', 1, 's', 'u', 't', now(), false, 'p', false, '{}')`,
    sql`DELETE FROM ${s}.segment_membership_rows`,
    sql`ALTER TABLE ${s}.segment_membership_rows ADD COLUMN x int`,
    sql`DROP VIEW ${s}.segment_sizes`,
  ]) {
    await assert.rejects(
      database.db.transaction().execute(async (trx) => {
        await sql`SET LOCAL ROLE ${sql.id(reportingRole)}`.execute(trx);
        await statement.execute(trx);
      }),
      /permission denied|must be owner/,
    );
  }
});

test('postgres - projection commits load, reduce and upsert; views give exactly the reference profiles and sizes', async (t) => {
  const { database, cleanup } = await testDatabase(randomNamespace('pg'));
  t.after(cleanup);
  const events = generateEvents(4_000);
  const expected = replay(events);
  const store = new PostgresProjectionStore(database, membershipsProjection, 'project_memberships');
  const position = await store.acquire();
  assert.equal(position.streamSeq, 0);
  // Each event's own membership detail, in three batches: stored rows must reduce.
  for (const { documents, position } of membershipBatches(events, 1_500)) await store.commit(documents, position);
  assert.deepEqual(await readCollection(database, 'segment/memberships'), expected.memberships);
  assert.deepEqual(await readCollection(database, 'segment/profiles'), expected.profiles);

  const user = expected.profiles[5] as { user: string };
  assert.deepEqual(await userProfile(database, user.user), expected.profiles[5]);
  const reacquired = await store.acquire();
  assert.equal(reacquired.streamSeq, 3_001);
  assert.deepEqual([...reacquired.checkpoints], [[1, 3_001]]);

  const sizes = await database.db.selectFrom('segment_sizes').selectAll().orderBy('members', 'desc').limit(1).executeTakeFirstOrThrow();
  const biggest = expected.memberships.filter((m) => m.member && m.segment.vendor === sizes.vendor && m.segment.name === sizes.segment_name).length;
  assert.equal(Number(sizes.members), biggest);

  // Paged members: stable order, every current member exactly once.
  const all: string[] = [];
  let after: string | undefined;
  do {
    const page = await segmentMembers(database, sizes.vendor, sizes.segment_name, { limit: 7, after });
    all.push(...page.members.map((m) => m.user));
    after = page.next;
  } while (after !== undefined);
  assert.equal(all.length, biggest);
  assert.deepEqual(all, [...all].sort());
});

test('postgres - a projector that takes a table over reads its keys (in pages): held keys reduce into their stored documents, before and after the read', async (t) => {
  const { database, expected, batches, first } = await tableWrittenByAFirstProjector(t, 6_000, 3);
  const second = new PostgresProjectionStore(database, membershipsProjection, 'project_memberships', { storedKeysPageSize: 97 });
  await second.acquire();
  // The first commit races the read of the stored keys; the others follow it.
  await second.commit(batches[3]!.documents, batches[3]!.position);
  await second.storedKeysRead;
  for (const { documents, position } of batches.slice(4)) await second.commit(documents, position);
  assert.deepEqual(await readCollection(database, 'segment/memberships'), expected.memberships);
  await assert.rejects(first.commit([], batches.at(-1)!.position), FencedError);
});

test('postgres - a failed read of the stored keys leaves every key looked up, and the next commit reads them again', async (t) => {
  const { database, expected, batches } = await tableWrittenByAFirstProjector(t, 4_000, 2);
  // The takeover's first page of keys fails, as a dropped connection would make it.
  let keyPagesFailed = 0;
  const failingFirstKeyPage: SegmentDatabase = {
    ...database,
    bulkTransaction: (work, setup) =>
      database.bulkTransaction(
        (session) =>
          work({
            ...session,
            query: (text, parameters) => {
              if (/ORDER BY/.test(text) && keyPagesFailed++ === 0) return Promise.reject(new Error('connection terminated'));
              return session.query(text, parameters);
            },
          }),
        setup,
      ),
  };
  const { logger, warnings } = warningsLogger();
  const second = new PostgresProjectionStore(failingFirstKeyPage, membershipsProjection, 'project_memberships', { logger });
  await second.acquire();
  await second.storedKeysRead;
  assert.equal(keyPagesFailed, 1);
  assert.match(warnings.join('\n'), /reading the stored keys failed/);
  // Every key is looked up meanwhile; this commit starts the read again.
  await second.commit(batches[2]!.documents, batches[2]!.position);
  await second.storedKeysRead;
  assert.equal(keyPagesFailed, 2);
  await second.commit(batches[3]!.documents, batches[3]!.position);
  assert.deepEqual(await readCollection(database, 'segment/memberships'), expected.memberships);
});

test('postgres - a row written behind the projector (its key taken for new) makes it redo the commit with every key looked up', async (t) => {
  const { database, expected, batches } = await tableWrittenByAFirstProjector(t, 4_000, 2);
  const { logger, warnings } = warningsLogger();
  const second = new PostgresProjectionStore(database, membershipsProjection, 'project_memberships', { logger });
  await second.acquire();
  await second.storedKeysRead;
  // A key of the next batch that the table did not hold at the takeover, written by something else.
  const stored = new Set((await readCollection(database, 'segment/memberships')).map((m) => keyId(membershipsProjection.keyOf(m as Membership))));
  const behind = batches[2]!.documents.find((m) => !stored.has(keyId(membershipsProjection.keyOf(m))))!;
  const early: Membership = { segment: behind.segment, user: behind.user, first: '1999-01-01T00:00:00Z', last: '1999-01-01T00:00:00Z', member: true, value: 'from elsewhere' };
  const s = sql.id(database.schema);
  await sql`INSERT INTO ${s}.segment_membership_rows (vendor, segment_name, "user", first, last, member, value, first_at, last_at)
            VALUES (${early.segment.vendor}, ${early.segment.name}, ${early.user}, ${early.first}, ${early.last}, true, ${early.value}, ${early.first}, ${early.last})`.execute(database.db);
  for (const { documents, position } of batches.slice(2)) await second.commit(documents, position);
  assert.match(warnings.join('\n'), /a key taken for new was already stored/);
  const key = keyId(membershipsProjection.keyOf(behind));
  const reduce = reductionOf('membership');
  const want = expected.memberships.map((m) => (keyId(membershipsProjection.keyOf(m)) === key ? reduce(early, m) : m));
  assert.deepEqual(await readCollection(database, 'segment/memberships'), want);
});

test('postgres - a projector that lost its lease cannot commit (fenced)', async (t) => {
  const { database, cleanup } = await testDatabase(randomNamespace('pg'));
  t.after(cleanup);
  const expected = replay(generateEvents(2_000));
  const first = new PostgresProjectionStore(database, togglesProjection, 'project_toggles');
  await first.acquire();
  await first.commit(expected.toggles.slice(0, 5), { streamSeq: 1, checkpoints: new Map([[2, 10]]) });
  const second = new PostgresProjectionStore(database, togglesProjection, 'project_toggles');
  const position = await second.acquire();
  assert.equal(position.checkpoints.get(2), 10);
  await assert.rejects(first.commit(expected.toggles.slice(5), { streamSeq: 2, checkpoints: new Map([[2, 20]]) }), FencedError);
  // Re-reading its position (as after a failed transaction) must not take the projection back.
  await assert.rejects(first.acquire(), FencedError);
  await second.commit(expected.toggles.slice(5), { streamSeq: 2, checkpoints: new Map([[2, 20]]) });
  assert.deepEqual(await readCollection(database, 'segment/toggles'), expected.toggles);
});

test('postgres - any text survives every bulk path (new and held keys; arrays in the statement, COPY into staging): tabs, newlines, backslashes, quotes, \\N, emoji', async (t) => {
  const { database, cleanup } = await testDatabase(randomNamespace('pg'));
  t.after(cleanup);
  const odd = ['tab\there', 'new\nline', 'back\\slash', '\\N', 'quote"\'', 'cr\rlf', '\u{1F600} é', ''];
  const membershipsOf = (vendorBase: number): Membership[] =>
    odd.map((user, i) => ({
      segment: { vendor: vendorBase + i, name: odd[(i + 1) % odd.length] || 'x' },
      user,
      first: '2021-01-01T00:00:00.123456789+05:30',
      last: '2021-01-02T00:00:00Z',
      member: true,
      value: odd[(i + 2) % odd.length]!,
    }));
  const inline = membershipsOf(1);
  const staged = membershipsOf(100);
  const filler = Array.from({ length: stageRowsAtLeast }, (_, i): Membership => ({ segment: { vendor: 1000, name: 'filler' }, user: `u${i}`, last: '2021-01-02T00:00:00Z', member: true }));
  const store = new PostgresProjectionStore(database, membershipsProjection, 'project_memberships');
  await store.acquire();
  await store.commit(inline, { streamSeq: 1, checkpoints: new Map([[1, 1]]) });
  await store.commit([...staged, ...filler], { streamSeq: 2, checkpoints: new Map([[1, 2]]) });
  const stored = () => database.db.selectFrom('segment_memberships').select(['user', 'segment_name', 'value', 'document']).where('vendor', '<', 1000).orderBy('vendor').execute();
  const expected = [...inline, ...staged];
  const written = await stored();
  assert.deepEqual(written.map((r) => r.document), expected);
  assert.deepEqual(written.map((r) => [r.user, r.segment_name, r.value]), expected.map((m) => [m.user, m.segment.name, m.value]));
  assert.equal((await database.db.selectFrom('segment_memberships').select((eb) => eb.fn.countAll<number>().as('n')).where('vendor', '=', 1000).executeTakeFirstOrThrow()).n, stageRowsAtLeast);
  // The same keys again: now held, they are merged into their stored rows (an absent value keeps the stored one).
  const removed = (m: Membership): Membership => ({ segment: m.segment, user: m.user, last: '2021-01-03T00:00:00Z', member: false });
  await store.commit(inline.map(removed), { streamSeq: 3, checkpoints: new Map([[1, 3]]) });
  await store.commit([...staged, ...filler].map(removed), { streamSeq: 4, checkpoints: new Map([[1, 4]]) });
  assert.deepEqual((await stored()).map((r) => r.document), expected.map((m) => ({ ...m, last: '2021-01-03T00:00:00Z', member: false })));
});

test('postgres - tables changed since their last analyze are analyzed (autovacuum may be off) on a small sample, then left alone', async (t) => {
  const { database, cleanup } = await testDatabase(randomNamespace('pg'));
  t.after(cleanup);
  const s = sql.id(database.schema);
  await sql`INSERT INTO ${s}.segment_membership_rows (vendor, segment_name, "user", last, member, last_at)
            SELECT 1, 'seg', 'user-' || i, 't', true, now() FROM generate_series(1, 5000) i`.execute(database.db);
  const reltuples = async () => (await sql<{ n: number }>`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = ${`${database.schema}.segment_membership_rows`}::regclass`.execute(database.db)).rows[0]!.n;
  // Postgres publishes its change counters shortly after a transaction ends: wait until they show.
  let analyzed: string[] = [];
  for (let i = 0; i < 50 && !analyzed.includes('segment_membership_rows'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    analyzed = await analyzeStaleTables(database);
  }
  assert.ok(analyzed.includes('segment_membership_rows'), `analyzed: ${analyzed.join(', ')}`);
  assert.equal(await reltuples(), 5000);
  // A small sample (statistics target 10): a histogram of at most 11 bounds, where the default makes 101.
  const { rows: stats } = await sql<{ bounds: number }>`
    SELECT array_length(histogram_bounds::text::text[], 1) AS bounds FROM pg_stats
    WHERE schemaname = ${database.schema} AND tablename = 'segment_membership_rows' AND attname = 'user'`.execute(database.db);
  assert.ok(stats[0]!.bounds <= 11, `histogram bounds: ${stats[0]!.bounds}`);
  assert.ok(!(await analyzeStaleTables(database)).includes('segment_membership_rows'), 'nothing changed since');
});

/** A logger that keeps the messages of its warnings (and drops the rest). */
function warningsLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  return { logger: { info: () => undefined, warn: (_: unknown, message: string) => warnings.push(message) } as unknown as Logger, warnings };
}

/** Each event's own membership detail, combined by key in batches of `size` events, as a projector commits them. */
function membershipBatches(events: readonly Event[], size: number): { documents: Membership[]; position: ProjectionPosition }[] {
  const reduceMembership = reductionOf('membership');
  const partials: Membership[] = events.map((e) => ({ ...(e.remove ? { last: e.timestamp, member: false } : { first: e.timestamp, last: e.timestamp, member: true, ...(e.value ? { value: e.value } : {}) }), segment: e.segment, user: e.user }));
  const batches = [];
  for (let i = 0; i < partials.length; i += size) {
    const batch = new Map<string, Membership>();
    for (const p of partials.slice(i, i + size)) {
      const id = keyId(membershipsProjection.keyOf(p));
      batch.set(id, reduceMembership(batch.get(id), p));
    }
    batches.push({ documents: [...batch.values()], position: { streamSeq: i + 1, checkpoints: new Map([[1, i + 1]]) } });
  }
  return batches;
}

/** The memberships of `events` events in batches of 1,000, the first `held` of them written by a projector that another is about to take over from. */
async function tableWrittenByAFirstProjector(t: { after(fn: () => Promise<void>): void }, events: number, held: number) {
  const { database, cleanup } = await testDatabase(randomNamespace('pg'));
  t.after(cleanup);
  const generated = generateEvents(events);
  const batches = membershipBatches(generated, 1_000);
  const first = new PostgresProjectionStore(database, membershipsProjection, 'project_memberships');
  await first.acquire();
  for (const { documents, position } of batches.slice(0, held)) await first.commit(documents, position);
  return { database, expected: replay(generated), batches, first };
}

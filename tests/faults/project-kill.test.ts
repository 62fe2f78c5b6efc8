// Fault proof of the projectors: while events keep arriving and a `segment derive` process derives
// them, a `segment project` process is killed with SIGKILL again and again; the derive worker is
// killed too (so it re-publishes transactions the projectors already hold), and a second projector
// is started beside a running one (the first must notice it was taken over and exit). Afterwards the
// Postgres views must equal the reference model exactly: nothing lost, every replay dropped or absorbed.
//
// SEGMENT_FAULT_LONG=1 runs the long version; SEGMENT_FAULT_SEED=N repeats a run's kill timings;
// SEGMENT_FAULT_LOG_LEVEL=debug makes the processes say more in a failure's output tails.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { collections, pointerGet, type Event } from '@segment/model';
import { connectNats, defaultProvisionConfig, deriveProgress, headers, namesFor, parseNdjson, provision, type Names } from '@segment/nats';
import { pipelineProgress, waitUntilCaughtUp } from '@segment/pipeline';
import { readCollection, type SegmentDatabase } from '@segment/postgres';
import { replay } from '@segment/segment';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';
import { SegmentProcess, failWithOutput, faultRun, waitForProcess } from '../support/segment-process.ts';
import { PacedPublisher } from '../support/paced-publisher.ts';
import { generateEvents } from '../support/pipeline.ts';
import { databaseUrl, testDatabase } from '../support/postgres.ts';
import { randomNamespace, readStream, waitFor, type StoredMessage } from '../support/streams.ts';

const long = process.env.SEGMENT_FAULT_LONG === '1';
const EVENTS = long ? 200_000 : 20_000;
const PROJECTOR_KILLS = long ? 30 : 10;
/**
 * kill -9s of the derive worker, each followed by a restart: it re-publishes what it had not
 * committed. One more in the next round while none of the re-published transactions reached the
 * projectors yet.
 */
const DERIVE_KILLS = long ? 3 : 1;
/** How long to wait for the derive worker to be caught with published, uncommitted transactions and events waiting, before its kill. */
const DERIVE_AHEAD_MS = 5_000;
/** Events per publish round; a round that fails in part is retried until every event is acked. */
const PUBLISH_CHUNK = 500;
/**
 * Each projector gets a share of the events, EVENTS / PROJECTOR_KILLS, released when it is spawned
 * and arriving in rounds spread over about this long: a projector takes ~1 s to start, so most
 * kills land while derived messages are arriving.
 */
const SHARE_SPAN_MS = 2_000;
/** A projector lives this long, at random, before its SIGKILL (plus, every other time, until it has committed something). */
const LIFETIME_MS = { min: 300, max: 1_500 };
/** The projector (of the zombie scenario) that was taken over must exit by itself within this. */
const FENCED_EXIT_MS = 15_000;
/** After SIGTERM, a caught-up process must drain and exit 0 within this. */
const DRAIN_MS = 5_000;

const logger = pino({ level: 'silent' });

/** Derived messages committed by the projectors so far: the lease rows' stream positions, summed. */
async function projectedTotal(database: SegmentDatabase): Promise<number> {
  const leases = await database.db.selectFrom('segment_projector_leases').select('stream_seq').execute();
  return leases.reduce((sum, lease) => sum + Number(lease.stream_seq), 0);
}

/**
 * Per partition whose last derived transaction ends beyond the derivations' checkpoint (published
 * but not committed), where that transaction ends, and whether more events wait behind it. A worker
 * killed now is succeeded by one that re-derives from the checkpoint: with events waiting, it takes
 * other batches, so it re-publishes the transactions in other ranges, which reach the projectors.
 * (Re-derived in the same ranges, they are copies JetStream drops by their message id.)
 */
async function publishedUncommitted(nc: NatsConnection, names: Names): Promise<Map<number, { through: number; backlog: boolean }>> {
  const ahead = new Map<number, { through: number; backlog: boolean }>();
  try {
    const jsm = await jetstreamManager(nc);
    for (const { partition, committed, lastSeq } of await deriveProgress(nc, names)) {
      const last = await jsm.streams.getMessage(names.derived.memberships.stream, { last_by_subj: names.derived.memberships.subject(partition) }).catch(() => undefined);
      const through = Number(last?.header?.get(headers.sourceRange)?.split('-')[1] ?? 0);
      if (through > committed) ahead.set(partition, { through, backlog: lastSeq > through });
    }
  } catch {
    // the worker's successor will tell
  }
  return ahead;
}

/** Whether the derivations have committed every partition through the given sequence. */
async function committedThrough(nc: NatsConnection, names: Names, through: ReadonlyMap<number, { through: number }>): Promise<boolean> {
  const progress = await deriveProgress(nc, names);
  return [...through].every(([partition, { through: seq }]) => (progress.find((p) => p.partition === partition)?.committed ?? 0) >= seq);
}

interface Replays {
  messages: number;
  /** Messages whose source range ends at or below what the partition already published: a projector drops them. */
  dropped: number;
  /** Messages whose range overlaps what the partition already published: applied whole, the overlap absorbed by the reductions. */
  overlapping: number;
  /** Per partition, the end of the highest source range: where a caught-up projector's checkpoint must stand. */
  through: Map<number, number>;
}

/** What a projector reading the derived stream in order meets: replayed transactions, dropped or absorbed. */
function replaysIn(messages: readonly StoredMessage[]): Replays {
  const through = new Map<number, number>();
  let dropped = 0;
  let overlapping = 0;
  for (const message of messages) {
    const partition = Number(message.headers[headers.sourcePartition]);
    const [first, last] = message.headers[headers.sourceRange]!.split('-').map(Number) as [number, number];
    const held = through.get(partition) ?? 0;
    if (last <= held) dropped++;
    else if (first <= held) overlapping++;
    through.set(partition, Math.max(last, held));
  }
  return { messages: messages.length, dropped, overlapping, through };
}

/**
 * For each document that is missing, extra or different in a table: the expected and stored
 * document, and every derived message that carried the key (stream sequence, partition, source
 * range, and what it said), to line up with the timeline.
 */
function diagnose(collection: 'segment/memberships' | 'segment/toggles', expected: readonly unknown[], got: readonly unknown[], derived: readonly StoredMessage[]): string {
  const { key } = collections[collection];
  const idOf = (document: unknown) => JSON.stringify(key.map((pointer) => pointerGet(document, pointer)));
  const want = new Map(expected.map((document) => [idOf(document), document]));
  const have = new Map(got.map((document) => [idOf(document), document]));
  const wrong = [...new Set([...want.keys(), ...have.keys()])].filter((id) => !isDeepStrictEqual(want.get(id), have.get(id)));
  const lines = [`${collection}: ${wrong.length} documents differ from the model`];
  for (const id of wrong.slice(0, 10)) {
    lines.push(`- key ${id}`, `  expected ${JSON.stringify(want.get(id))}`, `  stored   ${JSON.stringify(have.get(id))}`);
    for (const message of derived) {
      for (const document of parseNdjson(message.data)) {
        if (idOf(document) !== id) continue;
        lines.push(`  derived message ${message.seq} (partition ${message.headers[headers.sourcePartition]}, range ${message.headers[headers.sourceRange]}): ${JSON.stringify(document)}`);
      }
    }
  }
  return lines.join('\n');
}

test(`project faults - ${PROJECTOR_KILLS} projector kill -9s, ${DERIVE_KILLS} derive worker kill -9 and a projector taken over while ${EVENTS} events arrive: the Postgres views are exactly the reference model`, { timeout: long ? 30 * 60_000 : 180_000 }, async (t) => {
  const began = performance.now();
  const { random, timeline, mark } = faultRun(t);

  const server: NatsServer = await startNatsServer();
  const namespace = randomNamespace('pkill');
  const names = namesFor(namespace);
  const { database, cleanup } = await testDatabase(namespace);
  let nc: NatsConnection | undefined;
  const children = new Set<SegmentProcess>();
  t.after(async () => {
    await Promise.all([...children].map((p) => p.kill('SIGKILL')));
    await nc?.close().catch(() => undefined);
    await server.stop();
    await cleanup();
  });
  nc = await connectNats({ servers: server.url, name: 'test-project-kill' });
  await provision(nc, names, defaultProvisionConfig, logger);

  const spawnDerive = () => {
    const p = new SegmentProcess('derive worker', ['derive', '--nats', server.url, '--namespace', namespace]);
    children.add(p);
    return p;
  };
  const spawnProjector = (label: string) => {
    const p = new SegmentProcess(label, ['project', '--nats', server.url, '--database', databaseUrl, '--namespace', namespace]);
    children.add(p);
    return p;
  };
  const kill = async (p: SegmentProcess) => {
    await p.kill('SIGKILL');
    children.delete(p);
  };

  // Given a derive worker for the whole run, and thousands of events arriving in the background, a
  // share with each projector, so that every projector has derived messages to commit
  let derive = spawnDerive();
  const events = generateEvents(EVENTS, 13);
  let share = 0;
  let released = 0;
  const publishing = new PacedPublisher(nc, names, { chunk: PUBLISH_CHUNK, pauseMs: SHARE_SPAN_MS / Math.ceil(EVENTS / PROJECTOR_KILLS / PUBLISH_CHUNK), ackTimeoutMs: 5_000, maxAttempts: 20 });
  const releaseShare = (burst = false) => {
    const next = Math.round((EVENTS * ++share) / PROJECTOR_KILLS);
    if (burst) publishing.burst(events.slice(released, next));
    else publishing.release(events.slice(released, next));
    released = next;
  };

  // When projector after projector is killed with SIGKILL, the derive worker is killed and restarted
  // under some, and one projector is started beside a running one
  const deriveKillAt = new Set(Array.from({ length: DERIVE_KILLS }, (_, k) => Math.floor(((k + 1) * PROJECTOR_KILLS) / (DERIVE_KILLS + 1))));
  const zombieAt = 1;
  let killsAfterProgress = 0;
  let killsDuringPublishing = 0;
  let fencedExit = '';
  let deriveKillDue = false;
  /** At each derive worker kill, how many partitions had published transactions they had not committed. */
  const deriveKills: string[] = [];
  for (let round = 0; round < PROJECTOR_KILLS; round++) {
    const before = await projectedTotal(database);
    if (deriveKillAt.has(round)) deriveKillDue = true;
    let projector = spawnProjector(`projector ${round}`);
    releaseShare(deriveKillDue);
    mark(`projector ${round} (pid ${projector.child.pid}) spawned, projected ${before}, events released ${released}`);

    if (deriveKillDue) {
      // This round's share came as a burst: the worker is killed once it has published transactions
      // it has not committed while more events wait (or after DERIVE_AHEAD_MS regardless). Its
      // successor re-publishes them, while this projector (or the next) may already hold them.
      let ahead = new Map<number, { through: number; backlog: boolean }>();
      const waitUntil = Date.now() + DERIVE_AHEAD_MS;
      while (derive.alive && Date.now() < waitUntil && ![...(ahead = await publishedUncommitted(nc, names)).values()].some((p) => p.backlog)) await sleep(20);
      if (!derive.alive) failWithOutput(t, `the derive worker exited on its own: ${JSON.stringify(await derive.exit)}`, derive);
      await kill(derive);
      derive = spawnDerive();
      const successor = derive;
      await waitForProcess(t, successor, async () => !successor.alive || (await committedThrough(nc!, names, ahead)), 30_000, () => 'for the restarted derive worker to commit what its predecessor had published');
      if (!successor.alive) failWithOutput(t, `the restarted derive worker exited on its own: ${JSON.stringify(await successor.exit)}`, successor);
      const { dropped, overlapping } = replaysIn(await readStream(nc, names.derived.memberships.stream));
      deriveKills.push(`${ahead.size} partitions ahead (${[...ahead.values()].filter((p) => p.backlog).length} with events waiting)`);
      // Until re-published transactions have reached the projectors, the next round kills the worker again.
      deriveKillDue = dropped + overlapping === 0;
      mark(`derive worker killed with ${deriveKills.at(-1)}; restarted (pid ${derive.child.pid}); replayed memberships transactions so far: ${dropped} dropped, ${overlapping} overlapping`);
    }

    if (round === zombieAt) {
      // A runs and commits; B takes the same projections over while A still runs: A must stop by
      // itself without committing anything more, and B carries on.
      const a = projector;
      await waitForProcess(t, a, async () => !a.alive || (await projectedTotal(database)) > before, 30_000, () => 'for projector A to commit before B starts');
      if (!a.alive) failWithOutput(t, `projector A exited on its own before B started: ${JSON.stringify(await a.exit)}`, a);
      const b = spawnProjector(`projector ${round} B`);
      mark(`projector ${round} B (pid ${b.child.pid}) spawned beside A (pid ${a.child.pid}), projected ${await projectedTotal(database)}`);
      const exit = await Promise.race([a.exit, sleep(FENCED_EXIT_MS).then(() => 'timeout' as const)]);
      if (exit === 'timeout') failWithOutput(t, `projector A did not stop within ${FENCED_EXIT_MS} ms of B taking over`, a, b);
      children.delete(a);
      mark(`projector ${round} A exited ${JSON.stringify(exit)}`);
      if (exit.code === 0 || !/taken over/.test(a.output)) failWithOutput(t, `projector A should exit non-zero saying it was taken over, got ${JSON.stringify(exit)}`, a, b);
      fencedExit = a.output.trim().split('\n').at(-1)!;
      // B carries on: it projects everything derived so far (A may have stopped after the last of it).
      const derivedSoFar = (await pipelineProgress(nc, database, names)).projectors;
      const projectedSoFar = async () => {
        const now = (await pipelineProgress(nc!, database, names)).projectors;
        return derivedSoFar.every((before) => now.find((p) => p.projector === before.projector)!.committed >= before.lastSeq);
      };
      await waitForProcess(t, b, async () => !b.alive || (await projectedSoFar()), 30_000, () => `for projector B to project what was derived when A stopped: ${JSON.stringify(derivedSoFar)}`);
      if (!b.alive) failWithOutput(t, `projector B exited on its own: ${JSON.stringify(await b.exit)}`, b);
      projector = b;
    } else if (round % 2 === 1) {
      // Every other projector is killed only once it has committed something.
      await waitForProcess(t, projector, async () => !projector.alive || (await projectedTotal(database)) > before, 30_000, () => 'for the projector to commit');
    }

    await sleep(LIFETIME_MS.min + random.nextFloat() * (LIFETIME_MS.max - LIFETIME_MS.min));
    if (!projector.alive) failWithOutput(t, `${projector.label} exited on its own: ${JSON.stringify(await projector.exit)}`, projector);
    if ((await projectedTotal(database)) > before) killsAfterProgress++;
    if (publishing.publishing) killsDuringPublishing++;
    await kill(projector);
    mark(`${projector.label} killed, projected ${await projectedTotal(database)}`);
  }
  await publishing.finish();
  assert.equal(released, EVENTS, 'every event was released');
  const killLoopDone = performance.now();

  // Every event is in the stream once; the order it stored them in is the order the model replays.
  const stored = (await readStream(nc, names.events.stream)).map((message) => JSON.parse(new TextDecoder().decode(message.data)) as Event);
  assert.equal(stored.length, EVENTS, 'every event stored exactly once');

  // And one last projector catches up with the worker, then drains on SIGTERM and exits 0
  const leaseEpochs = async () => new Map((await database.db.selectFrom('segment_projector_leases').select(['projector', 'epoch']).execute()).map((l) => [l.projector, Number(l.epoch)]));
  const epochsBefore = await leaseEpochs();
  const last = spawnProjector('last projector');
  try {
    // Running, not only caught up (the others may have projected everything): a SIGTERM that came
    // before it had started would kill it outright. It has taken every lease over by then.
    await waitForProcess(t, last, async () => [...(await leaseEpochs())].every(([projector, epoch]) => epoch > (epochsBefore.get(projector) ?? 0)), 60_000, () => 'for the last projector to take its projections over');
    await waitUntilCaughtUp(nc, database, names, { timeoutMs: long ? 300_000 : 60_000, intervalMs: 100 });
  } catch (error) {
    t.diagnostic(`timeline:\n${timeline.join('\n')}`);
    failWithOutput(t, error instanceof Error ? error.message : String(error), last, derive);
  }
  if (!last.alive) failWithOutput(t, `the last projector exited on its own: ${JSON.stringify(await last.exit)}`, last);
  const caughtUpAt = performance.now();
  for (const p of [last, derive]) {
    p.child.kill('SIGTERM');
    const exit = await Promise.race([p.exit, sleep(DRAIN_MS).then(() => 'timeout' as const)]);
    if (exit === 'timeout') failWithOutput(t, `the ${p.label} did not exit within ${DRAIN_MS} ms of SIGTERM`, p);
    if (exit.code !== 0) failWithOutput(t, `the ${p.label} exited with ${JSON.stringify(exit)} after SIGTERM`, p);
    children.delete(p);
  }
  const progress = await pipelineProgress(nc, database, names);
  assert.ok(progress.caughtUp, `still caught up after the drain: ${JSON.stringify(progress)}`);

  // Then each projector's checkpoints stand at the end of every partition's highest source range
  const derivedMessages = { memberships: await readStream(nc, names.derived.memberships.stream), toggles: await readStream(nc, names.derived.toggles.stream) };
  const replays = { memberships: replaysIn(derivedMessages.memberships), toggles: replaysIn(derivedMessages.toggles) };
  const checkpoints = await database.db.selectFrom('segment_projector_checkpoints').select(['projector', 'partition', 'source_seq']).execute();
  for (const collection of ['memberships', 'toggles'] as const) {
    const held = new Map(checkpoints.filter((c) => c.projector === names.consumers.project(collection)).map((c) => [c.partition, Number(c.source_seq)]));
    assert.deepEqual(held, replays[collection].through, `${collection} checkpoints`);
  }
  // (the derive worker was killed with transactions published beyond its checkpoint: its successor re-published them in other ranges)
  const replayed = replays.memberships.dropped + replays.memberships.overlapping + replays.toggles.dropped + replays.toggles.overlapping;
  assert.ok(replayed > 0, `the projectors met re-published transactions (derive worker kills: ${deriveKills.join('; ')})`);

  // And the views are exactly the reference model
  const expected = replay(stored);
  assert.ok(expected.toggles.length > 100, `the events produce toggles (${expected.toggles.length})`);
  const got = {
    memberships: await readCollection(database, 'segment/memberships'),
    profiles: await readCollection(database, 'segment/profiles'),
    toggles: await readCollection(database, 'segment/toggles'),
  };
  for (const collection of ['memberships', 'toggles'] as const) {
    if (!isDeepStrictEqual(got[collection], expected[collection])) {
      t.diagnostic(diagnose(`segment/${collection}`, expected[collection], got[collection], derivedMessages[collection]));
      t.diagnostic(`timeline:\n${timeline.join('\n')}`);
    }
  }
  assert.equal(got.memberships.length, expected.memberships.length, 'memberships: none missing, none extra');
  assert.deepEqual(got.memberships, expected.memberships);
  assert.equal(got.profiles.length, expected.profiles.length, 'profiles');
  assert.deepEqual(got.profiles, expected.profiles);
  assert.equal(got.toggles.length, expected.toggles.length, 'toggles: none missing, none extra');
  assert.deepEqual(got.toggles, expected.toggles);

  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const describe = (r: Replays) => `${r.dropped} dropped + ${r.overlapping} overlapping of ${r.messages}`;
  t.diagnostic(
    `${EVENTS} events (${expected.memberships.length} memberships, ${expected.profiles.length} profiles, ${expected.toggles.length} toggles); ` +
      `${PROJECTOR_KILLS} projector kill -9s (${killsAfterProgress} after it had committed, ${killsDuringPublishing} while publishing); ` +
      `${deriveKills.length} derive worker kill -9 + restart (${deriveKills.join('; ')}); publish rounds ${publishing.rounds} (${publishing.retriedRounds} retries)`,
  );
  t.diagnostic(`projector taken over: ${fencedExit}`);
  t.diagnostic(`replayed derived transactions the projectors met: memberships ${describe(replays.memberships)} messages, toggles ${describe(replays.toggles)}`);
  t.diagnostic(`kill loop ${seconds(killLoopDone - began)}, caught up ${seconds(caughtUpAt - began)}, total ${seconds(performance.now() - began)}`);
});

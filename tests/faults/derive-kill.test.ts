// Fault proof of the derivations: while events keep arriving, a `segment derive` process is killed
// with SIGKILL again and again, and the nats-server itself is killed with SIGKILL and restarted
// under a running worker. Afterwards the derived streams, reduced per key as any reader reduces
// them, must equal the reference model exactly: nothing lost, and every replay absorbed.
//
// SEGMENT_FAULT_LONG=1 runs the long version; SEGMENT_FAULT_SEED=N repeats a run's kill timings.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Event, Toggle } from '@segment/model';
import {
  caughtUp,
  connectNats,
  defaultProvisionConfig,
  encodeKey,
  deriveProgress,
  headers,
  namesFor,
  parseNdjson,
  provision,
  type Names,
} from '@segment/nats';
import { replay, shuffleKeyValues, togglesDerivation, type Derivation } from '@segment/segment';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';
import { SegmentProcess, failWithOutput, faultRun, waitForProcess } from '../support/segment-process.ts';
import { PacedPublisher } from '../support/paced-publisher.ts';
import { generateEvents, readDerived } from '../support/pipeline.ts';
import { randomNamespace, readStream, waitFor, type StoredMessage } from '../support/streams.ts';

const long = process.env.SEGMENT_FAULT_LONG === '1';
const EVENTS = long ? 200_000 : 20_000;
const WORKER_KILLS = long ? 40 : 10;
const SERVER_RESTARTS = long ? 3 : 1;
/** Events per publish round; a round that fails in part (server down) is retried until every event is acked. */
const PUBLISH_CHUNK = 500;
/**
 * Each worker gets a share of the events, EVENTS / (WORKER_KILLS + SERVER_RESTARTS), released when it
 * starts (and another after each server restart), arriving in rounds spread over about this long:
 * longer than a worker lives, so most kills land while events are arriving.
 */
const SHARE_SPAN_MS = 2_000;
/** A worker lives this long, at random, before its SIGKILL (plus, every other time, until it has committed something). */
const LIFETIME_MS = { min: 300, max: 1_500 };
/** After SIGTERM, a caught-up worker must drain and exit 0 within this. */
const DRAIN_MS = 5_000;

const logger = pino({ level: 'silent' });
// Journals this small (a few commits each) move registers to KV and purge again and again, so the
// kills land before, during and after those moves too (the workers inherit the environment).
process.env.SEGMENT_REGISTER_JOURNAL_BYTES = '65536';

/** One `segment derive` process that counts the breaks in a consumer's deliveries it recovered from (from its log). */
class WorkerProcess extends SegmentProcess {
  deliveryGaps = 0;
  constructor(url: string, namespace: string) {
    let worker: WorkerProcess | undefined;
    super('derive worker', ['derive', '--nats', url, '--namespace', namespace], (line) => {
      if (line.includes('SEGMENT_DELIVERY_GAP')) worker!.deliveryGaps++;
    });
    worker = this;
  }
}

/** Events committed by the derivations so far, summed over partitions; undefined while the server is unreachable. */
async function committedTotal(nc: NatsConnection, names: Names): Promise<number | undefined> {
  try {
    return (await deriveProgress(nc, names)).reduce((sum, p) => sum + p.committed, 0);
  } catch {
    return undefined;
  }
}

/**
 * Whether a worker spawned at `since` has started consuming: it re-creates its consumer then, so
 * the consumer's creation time says so. Until then it may not even have installed its SIGTERM handler.
 */
async function openedItsConsumer(nc: NatsConnection, names: Names, since: Date): Promise<boolean> {
  try {
    const info = await (await jetstreamManager(nc)).consumers.info(names.events.stream, names.consumers.derive(0));
    return new Date(info.created) >= since;
  } catch {
    return false;
  }
}

async function isCaughtUp(nc: NatsConnection, names: Names): Promise<boolean> {
  try {
    return caughtUp(await deriveProgress(nc, names));
  } catch {
    return false;
  }
}

/**
 * Says, for each toggle that is missing, extra or different: which event (stream sequence and
 * partition), what the model expected as its previous event, what was published (in which derived
 * message, when, for which source range), and the key's register as it stands now.
 */
async function diagnoseToggles(nc: NatsConnection, names: Names, events: readonly StoredMessage[], expected: readonly Toggle[], published: readonly StoredMessage[]): Promise<string> {
  const jsm = await jetstreamManager(nc);
  const registers = await new Kvm(nc).open(names.buckets.toggleRegisters);
  const decoder = new TextDecoder();
  const seqOf = new Map<string, number>();
  const eventOf = new Map<string, Event>();
  const inOrder = events.map((message) => ({ seq: message.seq, event: JSON.parse(decoder.decode(message.data)) as Event }));
  for (const { seq, event } of inOrder) {
    seqOf.set(event.event, seq);
    eventOf.set(event.event, event);
  }
  const want = new Map(expected.map((toggle) => [toggle.event, toggle]));
  const got = new Map<string, { toggle: Toggle; message: StoredMessage }[]>();
  for (const message of published) {
    for (const toggle of parseNdjson(message.data) as Toggle[]) {
      const list = got.get(toggle.event) ?? [];
      list.push({ toggle, message });
      got.set(toggle.event, list);
    }
  }
  const wrong = [...new Set([...want.keys(), ...got.keys()])].filter((id) => !got.get(id)?.every(({ toggle }) => isDeepStrictEqual(toggle, want.get(id))));
  const lines = [`${wrong.length} toggles differ from the model:`];
  const describe = (event: Event | undefined) => (event ? `${event.event} seq ${seqOf.get(event.event)} ${event.remove ? 'remove' : 'add'} ${event.timestamp}` : 'none');
  for (const id of wrong.slice(0, 10)) {
    const event = eventOf.get(id)!;
    const key = shuffleKeyValues(togglesDerivation as Derivation, event);
    const history = inOrder.filter(({ event: other }) => isDeepStrictEqual(shuffleKeyValues(togglesDerivation as Derivation, other), key));
    lines.push(`- event ${describe(event)}, partition ${event.segment.vendor}, key ${JSON.stringify(key)}`);
    lines.push(`  expected: ${want.has(id) ? `a toggle with previous ${describe(want.get(id)!.previous)}` : 'no toggle'}`);
    for (const { toggle, message } of got.get(id) ?? []) {
      const stored = await jsm.streams.getMessage(names.derived.toggles.stream, { seq: message.seq });
      lines.push(`  published: previous ${describe(toggle.previous)} in toggles message ${message.seq} at ${stored?.timestamp}, source range ${message.headers[headers.sourceRange]}`);
    }
    if (!got.has(id)) lines.push('  published: nothing');
    lines.push(`  the key's events: ${history.map(({ seq, event: e }) => `${seq}:${e.remove ? 'remove' : 'add'}`).join(' ')}`);
    const register = await registers.get(encodeKey(key));
    lines.push(`  register in the bucket now (a newer one may be in the journal): ${register ? `${register.string()} (revision ${register.revision}, ${register.created.toISOString()})` : 'none'}`);
  }
  return lines.join('\n');
}

/**
 * A transaction's derived messages carry its source range: every event of the partition inside that
 * range must have its membership among the documents (a transaction that skipped an event is a hole
 * that later reductions may hide). Returns one line per transaction that misses events.
 */
function transactionsMissingEvents(events: readonly StoredMessage[], memberships: readonly StoredMessage[]): string[] {
  const decoder = new TextDecoder();
  const byPartition = new Map<number, { seq: number; key: string }[]>();
  for (const message of events) {
    const event = JSON.parse(decoder.decode(message.data)) as Event;
    const list = byPartition.get(event.segment.vendor) ?? [];
    list.push({ seq: message.seq, key: JSON.stringify([event.segment.vendor, event.segment.name, event.user]) });
    byPartition.set(event.segment.vendor, list);
  }
  const transactions = new Map<string, { partition: number; first: number; last: number; keys: Set<string>; messages: number[] }>();
  for (const message of memberships) {
    const partition = Number(message.headers[headers.sourcePartition]);
    const range = message.headers[headers.sourceRange]!;
    const [first, last] = range.split('-').map(Number) as [number, number];
    const id = `${partition}:${range}`;
    const transaction = transactions.get(id) ?? { partition, first, last, keys: new Set<string>(), messages: [] };
    for (const document of parseNdjson(message.data) as { segment: { vendor: number; name: string }; user: string }[]) {
      transaction.keys.add(JSON.stringify([document.segment.vendor, document.segment.name, document.user]));
    }
    transaction.messages.push(message.seq);
    transactions.set(id, transaction);
  }
  const problems: string[] = [];
  for (const { partition, first, last, keys, messages } of transactions.values()) {
    if (first > last) {
      problems.push(`partition ${partition}: derived messages ${messages.join(',')} have the backward source range ${first}-${last}`);
      continue;
    }
    const missing = (byPartition.get(partition) ?? []).filter(({ seq, key }) => seq >= first && seq <= last && !keys.has(key)).map(({ seq }) => seq);
    if (missing.length > 0) {
      problems.push(`partition ${partition}: the transaction of source range ${first}-${last} (memberships messages ${messages.join(',')}) skipped ${missing.length} events: seq ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', ...' : ''}`);
    }
  }
  return problems;
}

/** Each partition's last event and checkpoint, and the consumer's state: what a stuck run is stuck on. */
async function describeConsumers(nc: NatsConnection, names: Names): Promise<string> {
  try {
    const jsm = await jetstreamManager(nc);
    const parts = (await deriveProgress(nc, names)).map((p) => `partition ${p.partition}: last ${p.lastSeq}, committed ${p.committed}`);
    const info = await jsm.consumers.info(names.events.stream, names.consumers.derive(0)).catch((error: Error) => error);
    parts.push(
      info instanceof Error
        ? `consumer: ${info.message}`
        : `consumer delivered ${info.delivered.stream_seq} (#${info.delivered.consumer_seq}), ack floor ${info.ack_floor.stream_seq}, pending ${info.num_pending}, ack pending ${info.num_ack_pending}, waiting pulls ${info.num_waiting}, created ${info.created}`,
    );
    return parts.join('; ');
  } catch (error) {
    return `cannot read the consumers: ${error instanceof Error ? error.message : String(error)}`;
  }
}

test(`derive faults - ${WORKER_KILLS} worker kill -9s and ${SERVER_RESTARTS} nats-server kill -9 + restart while ${EVENTS} events arrive: the derived collections are exactly the reference model`, { timeout: long ? 30 * 60_000 : 180_000 }, async (t) => {
  const began = performance.now();
  const { random, timeline, mark } = faultRun(t);

  const server: NatsServer = await startNatsServer();
  let worker: WorkerProcess | undefined;
  let nc: NatsConnection | undefined;
  t.after(async () => {
    await worker?.kill('SIGKILL');
    await nc?.close().catch(() => undefined);
    await server.stop();
  });
  nc = await connectNats({ servers: server.url, name: 'test-derive-kill' });
  const names = namesFor(randomNamespace('kill'));
  await provision(nc, names, defaultProvisionConfig, logger);

  // Given thousands of events arriving in the background, a share with each worker (and after each
  // server restart), so that every worker has work and publishing overlaps the faults
  const events = generateEvents(EVENTS, 11);
  const shares = WORKER_KILLS + SERVER_RESTARTS;
  let share = 0;
  let released = 0;
  // A short ack timeout: the acks of publishes in flight when the server dies never come.
  const publishing = new PacedPublisher(nc, names, { chunk: PUBLISH_CHUNK, pauseMs: SHARE_SPAN_MS / Math.ceil(EVENTS / shares / PUBLISH_CHUNK), ackTimeoutMs: 2_000, maxAttempts: 60 });
  const releaseShare = () => {
    const next = Math.round((EVENTS * ++share) / shares);
    publishing.release(events.slice(released, next));
    released = next;
  };

  // When worker after worker is killed with SIGKILL, and the server is killed and restarted under some
  const restartAt = new Set(Array.from({ length: SERVER_RESTARTS }, (_, r) => Math.floor(((r + 1) * WORKER_KILLS) / (SERVER_RESTARTS + 1))));
  let killsAfterProgress = 0;
  let deliveryGaps = 0;
  let killsDuringPublishing = 0;
  const recoveries: number[] = [];
  for (let kill = 0; kill < WORKER_KILLS; kill++) {
    const before = (await committedTotal(nc, names)) ?? 0;
    worker = new WorkerProcess(server.url, names.namespace);
    releaseShare();
    mark(`worker ${kill} (pid ${worker.child.pid}) spawned, committed ${before}, events released ${released}`);
    if (restartAt.has(kill)) {
      // The worker must be connected and working when the server dies: wait until it has committed.
      await waitForProcess(t, worker, async () => ((await committedTotal(nc!, names)) ?? 0) > before || !worker!.alive, 30_000, () => 'for the worker to commit before the server restart');
      if (!worker.alive) failWithOutput(t, `worker exited (${JSON.stringify(await worker.exit)}) before the server restart`, worker);
      mark(`nats-server kill -9 (committed ${await committedTotal(nc, names)})`);
      await server.kill('SIGKILL');
      const downAt = performance.now();
      await server.restart();
      releaseShare();
      mark(`nats-server restarted, events released ${released}`);
      // Then the same worker reconnects and carries on: it derives and commits every event published
      // after the restart, without exiting.
      await waitForProcess(
        t,
        worker,
        async () => !worker!.alive || (!publishing.publishing && (await isCaughtUp(nc!, names))),
        60_000,
        async () =>
          `for worker ${worker!.child.pid} to derive the events published after the server restart; ` +
          `publisher: ${publishing.rounds} rounds, ${publishing.retriedRounds} retries, ${publishing.publishing ? 'busy' : 'idle'}; ${await describeConsumers(nc!, names)}`,
      );
      if (!worker.alive) failWithOutput(t, `worker exited (${JSON.stringify(await worker.exit)}) after the server restart instead of reconnecting`, worker);
      recoveries.push(Math.round(performance.now() - downAt));
    } else if (kill % 2 === 1) {
      // Every other worker is killed only once it has committed something.
      await waitForProcess(t, worker, async () => !worker!.alive || ((await committedTotal(nc!, names)) ?? 0) > before, 30_000, () => 'for the worker to commit');
    }
    await sleep(LIFETIME_MS.min + random.nextFloat() * (LIFETIME_MS.max - LIFETIME_MS.min));
    if (!worker.alive) failWithOutput(t, `worker ${kill} exited on its own: ${JSON.stringify(await worker.exit)}`, worker);
    if (((await committedTotal(nc, names)) ?? 0) > before) killsAfterProgress++;
    if (publishing.publishing) killsDuringPublishing++;
    await worker.kill('SIGKILL');
    deliveryGaps += worker.deliveryGaps;
    mark(`worker ${kill} killed${worker.deliveryGaps > 0 ? ` (it reopened ${worker.deliveryGaps} consumers after a break in their deliveries)` : ''}`);
  }
  worker = undefined;
  await publishing.finish();
  assert.equal(released, EVENTS, 'every event was released');
  const killLoopDone = performance.now();

  // Every event is in the stream once; the order it stored them in is the order the model replays.
  const storedMessages = await readStream(nc, names.events.stream);
  const stored = storedMessages.map((message) => JSON.parse(new TextDecoder().decode(message.data)) as Event);
  assert.equal(stored.length, EVENTS, 'every event stored exactly once');
  assert.deepEqual(new Set(stored.map((e) => e.event)), new Set(events.map((e) => e.event)));

  // And one last worker catches up, then drains on SIGTERM and exits 0
  const spawnedAt = new Date();
  worker = new WorkerProcess(server.url, names.namespace);
  await waitForProcess(
    t,
    worker,
    async () => !worker!.alive || ((await openedItsConsumer(nc!, names, spawnedAt)) && (await isCaughtUp(nc!, names))),
    long ? 300_000 : 60_000,
    async () => `for the last worker to catch up: ${JSON.stringify(await deriveProgress(nc!, names))}`,
  );
  if (!worker.alive) failWithOutput(t, `the last worker exited on its own: ${JSON.stringify(await worker.exit)}`, worker);
  const caughtUpAt = performance.now();
  worker.child.kill('SIGTERM');
  const exit = await Promise.race([worker.exit, sleep(DRAIN_MS).then(() => 'timeout' as const)]);
  if (exit === 'timeout') failWithOutput(t, `the last worker did not exit within ${DRAIN_MS} ms of SIGTERM`, worker);
  if (exit.code !== 0) failWithOutput(t, `the last worker exited with ${JSON.stringify(exit)} after SIGTERM`, worker);
  deliveryGaps += worker.deliveryGaps;
  worker = undefined;

  // Then every transaction derived every event of its source range
  const derived = await readDerived(nc, names);
  const holes = transactionsMissingEvents(storedMessages, derived.raw.memberships);
  if (holes.length > 0) t.diagnostic(`timeline:\n${timeline.join('\n')}`);
  assert.deepEqual(holes, [], 'transactions that skipped events of their source range');

  // And the derived collections reduce to exactly the reference model
  const expected = replay(stored);
  assert.ok(expected.toggles.length > 100, `the events produce toggles (${expected.toggles.length})`);
  assert.equal(derived.memberships.length, expected.memberships.length, 'memberships');
  assert.deepEqual(derived.memberships, expected.memberships);
  assert.equal(derived.profiles.length, expected.profiles.length, 'profiles');
  assert.deepEqual(derived.profiles, expected.profiles);
  if (!isDeepStrictEqual(derived.toggles, expected.toggles)) {
    t.diagnostic(await diagnoseToggles(nc, names, storedMessages, expected.toggles, derived.raw.toggles));
    t.diagnostic(`timeline:\n${timeline.join('\n')}`);
  }
  assert.equal(derived.toggles.length, expected.toggles.length, 'toggles: none missing, none extra');
  assert.deepEqual(derived.toggles, expected.toggles);
  // With registers read back from both the journal and the bucket
  const journal = (await (await jetstreamManager(nc)).streams.info(names.registerJournal.stream)).state;
  assert.ok(journal.first_seq > 1 && (await (await new Kvm(nc).open(names.buckets.toggleRegisters)).status()).values > 0, 'journals were moved to the bucket and purged');

  // And a toggle published more than once is the same document every time: a replay, not a second toggle
  const copies = new Map<string, unknown[]>();
  for (const message of derived.raw.toggles) {
    for (const document of parseNdjson(message.data) as { event: string }[]) {
      const list = copies.get(document.event);
      if (list) list.push(document);
      else copies.set(document.event, [document]);
    }
  }
  let toggleReplays = 0;
  for (const [id, list] of copies) {
    for (const copy of list.slice(1)) assert.deepEqual(copy, list[0], `every copy of toggle ${id} is identical`);
    toggleReplays += list.length - 1;
  }

  const replayed = (messages: readonly StoredMessage[]) => {
    // A derived message whose source range starts at or below what its partition already published: a replayed transaction.
    const through = new Map<string, number>();
    let count = 0;
    for (const message of messages) {
      const partition = message.headers[headers.sourcePartition]!;
      const [first, last] = message.headers[headers.sourceRange]!.split('-').map(Number) as [number, number];
      if (first <= (through.get(partition) ?? 0)) count++;
      through.set(partition, Math.max(last, through.get(partition) ?? 0));
    }
    return count;
  };
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  t.diagnostic(
    `${EVENTS} events (${expected.memberships.length} memberships, ${expected.profiles.length} profiles, ${expected.toggles.length} toggles); ` +
      `${WORKER_KILLS} worker kill -9s (${killsAfterProgress} after it had committed, ${killsDuringPublishing} while publishing); ` +
      `${SERVER_RESTARTS} nats-server kill -9 + restart (the worker had derived what was published after it ${recoveries.map((ms) => `${ms} ms`).join(', ')} after the kill); ` +
      `publish rounds ${publishing.rounds} (${publishing.retriedRounds} retries); ` +
      `consumers reopened after a break in their deliveries: ${deliveryGaps}`,
  );
  t.diagnostic(
    `replays: ${toggleReplays} toggle documents published more than once (${copies.size} distinct), all identical copies; ` +
      `replayed transactions: memberships ${replayed(derived.raw.memberships)}/${derived.raw.memberships.length} messages, toggles ${replayed(derived.raw.toggles)}/${derived.raw.toggles.length}`,
  );
  t.diagnostic(`kill loop ${seconds(killLoopDone - began)}, caught up ${seconds(caughtUpAt - began)}, total ${seconds(performance.now() - began)}`);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collections, compareByKey, type CollectionName, type Event, type SchemaName } from '@segment/model';
import { reductionOf } from '@segment/reduce';
import { EventGenerator, membershipsDerivation, profilesDerivation, replay, tickClock, togglesDerivation, type Derivation } from '@segment/segment';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { MemoryCheckpointStore, MemoryDeadLetterSink, MemoryOutputSink, MemoryRegisterStore, PartitionProcessor, type SourceMessage } from './index.ts';

const logger = pino({ level: 'silent' });
const derivations = [membershipsDerivation, profilesDerivation, togglesDerivation] as Derivation[];
const encoder = new TextEncoder();

/** One vendor's events from the seed model, as the messages of its partition. */
function partitionOf(vendor: number, count: number, seed = 7): { events: Event[]; messages: SourceMessage[] } {
  const generator = new EventGenerator({ seed, segments: 200, users: 2_000, clock: tickClock(Date.UTC(2021, 0, 1), 250), utcOffsetMinutes: () => -240 });
  const events: Event[] = [];
  while (events.length < count) {
    const event = generator.nextEvent();
    if (event.segment.vendor === vendor) events.push(event);
  }
  const messages = events.map((event, i) => ({ seq: i + 1, subject: `segment.events.${vendor}`, data: encoder.encode(JSON.stringify(event)) }));
  return { events, messages };
}

function world() {
  return {
    registers: new MemoryRegisterStore(),
    checkpoints: new MemoryCheckpointStore(),
    output: new MemoryOutputSink(),
    deadLetters: new MemoryDeadLetterSink(),
  };
}

function processorIn(w: ReturnType<typeof world>, vendor: number, extra: Partial<ConstructorParameters<typeof PartitionProcessor>[0]> = {}) {
  return new PartitionProcessor({
    partition: vendor,
    derivations,
    registerStores: new Map([['toggles', w.registers]]),
    checkpoints: w.checkpoints,
    output: w.output,
    deadLetters: w.deadLetters,
    logger,
    commit: { maxDelayMs: 0 },
    ...extra,
  });
}

/** What a reader of the derived collection sees: every published document reduced per key, in key order. */
function reduced(output: MemoryOutputSink, collection: CollectionName): unknown[] {
  const { key, schema } = collections[collection];
  const reduce = reductionOf(schema as SchemaName) as (l: unknown, r: unknown) => unknown;
  const byKey = new Map<string, unknown>();
  for (const document of output.documentsOf(collection)) {
    const id = JSON.stringify(key.map((p) => p.split('/').slice(1).reduce<any>((v, t) => v?.[t], document)));
    byKey.set(id, reduce(byKey.get(id), document));
  }
  return [...byKey.values()].sort((a, b) => compareByKey(key, a, b));
}

function assertMatchesReference(output: MemoryOutputSink, events: Event[]) {
  const expected = replay(events);
  assert.deepEqual(reduced(output, 'segment/memberships'), expected.memberships);
  assert.deepEqual(reduced(output, 'segment/profiles'), expected.profiles);
  assert.deepEqual(reduced(output, 'segment/toggles'), expected.toggles);
}

function batches<T>(items: T[], sizes: () => number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; ) {
    const size = Math.max(1, sizes());
    out.push(items.slice(i, i + size));
    i += size;
  }
  return out;
}

test('partition processor - batches of any size derive exactly what the reference model does', async () => {
  const { events, messages } = partitionOf(3, 3_000);
  for (const size of [1, 7, 500, 3_000]) {
    const w = world();
    const processor = processorIn(w, 3);
    await processor.start();
    for (const batch of batches(messages, () => size)) {
      await processor.process(batch);
      await processor.commit();
    }
    assertMatchesReference(w.output, events);
    assert.equal(w.checkpoints.checkpoints.get(3), 3_000);
  }
});

test('partition processor - a transaction publishes one combined document per key', async () => {
  const { messages } = partitionOf(1, 2_000);
  const w = world();
  const processor = processorIn(w, 1);
  await processor.start();
  await processor.process(messages);
  const memberships = w.output.published.filter((p) => p.collection === 'segment/memberships');
  assert.equal(memberships.length, 1);
  assert.ok(memberships[0]!.documents.length < 2_000, 'repeated (segment, user) pairs combine');
  assert.deepEqual(memberships[0]!.provenance, { partition: 1, firstSeq: 1, lastSeq: 2_000 });
});

test('partition processor - crashes at any point, mid-commit included, leave the derived collections exact', async () => {
  const { events, messages } = partitionOf(5, 4_000, 11);
  let random = 12345;
  const next = (n: number) => ((random = (random * 1103515245 + 12345) % 2 ** 31) % n);
  const w = world();
  // A crash inside a commit: a random part of the registers reached the store, the checkpoint did not.
  const crashingStore = {
    crashNext: false,
    load: (keys: Parameters<MemoryRegisterStore['load']>[0]) => w.registers.load(keys),
    async save(entries: Parameters<MemoryRegisterStore['save']>[0]) {
      if (!this.crashNext) return w.registers.save(entries);
      await w.registers.save(entries.filter(() => next(2) === 0));
      throw new Error('crashed mid-commit');
    },
  };
  let midCommitCrashes = 0;
  for (let crash = 0; crash < 40; crash++) {
    // A fresh process: it knows only the checkpoint and the registers that were written back.
    const processor = processorIn(w, 5, {
      registerStores: new Map([['toggles', crashingStore]]),
      commit: { maxDelayMs: 60_000, maxDirtyRegisters: 1 + next(400) },
    });
    await processor.start();
    // Redelivery may start before the checkpoint (acks can be lost), never after it.
    const from = Math.max(0, processor.committed - next(300));
    const work = batches(messages.slice(from), () => 1 + next(250)).slice(0, 1 + next(6));
    crashingStore.crashNext = false;
    try {
      for (const [i, batch] of work.entries()) {
        await processor.process(batch);
        crashingStore.crashNext = i === work.length - 1 && next(2) === 0;
        if (processor.commitDue || crashingStore.crashNext) await processor.commit();
      }
    } catch (error) {
      assert.match(String(error), /crashed mid-commit/);
      midCommitCrashes++;
    }
  }
  assert.ok(midCommitCrashes >= 5, `exercised ${midCommitCrashes} mid-commit crashes`);
  crashingStore.crashNext = false;
  const last = processorIn(w, 5);
  await last.start();
  for (const batch of batches(messages.slice(last.committed), () => 500)) {
    await last.process(batch);
    await last.commit();
  }
  assertMatchesReference(w.output, events);
});

test('partition processor - a message redelivered inside a batch (after an ack timeout) is applied once, in stream order', async () => {
  const { events, messages } = partitionOf(4, 1_200, 3);
  const w = world();
  const processor = processorIn(w, 4);
  await processor.start();
  // The source hands out 1..800 and then, redelivered, 201..600 again; then the rest.
  await processor.process([...messages.slice(0, 800), ...messages.slice(200, 600)]);
  assert.equal(processor.processedThrough, 800);
  await processor.process(messages.slice(800));
  await processor.commit();
  assertMatchesReference(w.output, events);
  assert.equal(w.checkpoints.checkpoints.get(4), 1_200);
});

test('partition processor - bad input goes to dead letters with a reason naming the field, and the rest flows', async () => {
  const { events, messages } = partitionOf(2, 10);
  const bad: SourceMessage[] = [
    { seq: 11, subject: 'segment.events.2', data: encoder.encode('{not json') },
    { seq: 12, subject: 'segment.events.2', data: encoder.encode(JSON.stringify({ ...events[0], segment: { vendor: 2, name: '' } })) },
    { seq: 13, subject: 'segment.events.2', data: encoder.encode(JSON.stringify({ ...events[0], segment: { vendor: 4, name: 'x' } })) },
  ];
  const w = world();
  const processor = processorIn(w, 2);
  await processor.start();
  await processor.process([...messages, ...bad]);
  assert.deepEqual(w.deadLetters.letters.map((l) => l.message.seq), [11, 12, 13]);
  assert.match(w.deadLetters.letters[0]!.reason, /^not JSON/);
  assert.match(w.deadLetters.letters[1]!.reason, /^\/segment\/name: /);
  assert.match(w.deadLetters.letters[2]!.reason, /^\/segment\/vendor: is 4, but .* vendor 2/);
  assertMatchesReference(w.output, events);
  assert.equal(await processor.commit(), 13);
});

test('partition processor - an event its lambda keeps throwing on is retried, then dead-lettered; the partition moves on', async () => {
  const { events, messages } = partitionOf(4, 50);
  const poison = events[20]!.event;
  const flaky: Derivation = {
    ...membershipsDerivation,
    publish(event, register) {
      if (event.event === poison) throw new Error('boom');
      return membershipsDerivation.publish(event, register as never);
    },
  };
  const w = world();
  const processor = processorIn(w, 4, { derivations: [flaky], maxLambdaTries: 3 });
  await processor.start();
  await assert.rejects(processor.process(messages), /boom/);
  await assert.rejects(processor.process(messages), /boom/);
  await processor.process(messages);
  assert.equal(w.deadLetters.letters.length, 1);
  assert.equal(w.deadLetters.letters[0]!.message.seq, 21);
  assert.match(w.deadLetters.letters[0]!.reason, /derivation memberships failed on source sequence 21: boom/);
  const expected = replay(events.filter((e) => e.event !== poison)).memberships;
  assert.deepEqual(reduced(w.output, 'segment/memberships'), expected);
});

test('partition processor - registers are written back combined, at commit only', async () => {
  const { messages } = partitionOf(6, 1_000);
  const w = world();
  const processor = processorIn(w, 6, { commit: { maxDelayMs: 60_000, maxDirtyRegisters: 1e9 } });
  await processor.start();
  for (const batch of batches(messages, () => 100)) await processor.process(batch);
  assert.equal(w.registers.saves, 0);
  assert.equal(processor.commitDue, false);
  await processor.commit();
  assert.equal(w.registers.saves, w.registers.stored.size, 'one write per key, however often it changed');
  assert.ok(w.registers.stored.size < 1_000);
});

test('partition processor - a transaction whose output cannot fit one message is split, never published in pieces', async () => {
  const { events, messages } = partitionOf(7, 1_000);
  const w = world();
  w.output.maxDocuments = 150;
  const processor = processorIn(w, 7);
  await processor.start();
  await processor.process(messages);
  assert.ok(w.output.published.length > 3, 'several transactions');
  for (const { documents } of w.output.published) assert.ok(documents.length <= 150);
  // Provenance ranges of one collection tile the partition without overlap or gap.
  const ranges = w.output.published.filter((p) => p.collection === 'segment/memberships').map((p) => p.provenance);
  ranges.forEach((range, i) => assert.equal(range.firstSeq, i === 0 ? 1 : ranges[i - 1]!.lastSeq + 1));
  assert.equal(ranges.at(-1)!.lastSeq, 1_000);
  assertMatchesReference(w.output, events);
});

test('partition processor - a register that acts like the initial one (toggles: never added) is not written back', async () => {
  const event = (n: number, remove: boolean): SourceMessage => ({
    seq: n,
    subject: 'segment.events.9',
    data: encoder.encode(JSON.stringify({ event: `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`, timestamp: '2021-01-01T00:00:00Z', user: 'u', segment: { vendor: 9, name: 's' }, ...(remove ? { remove: true } : {}) })),
  });
  const w = world();
  const processor = processorIn(w, 9);
  await processor.start();
  await processor.process([event(1, true), event(2, true)]);
  await processor.commit();
  assert.equal(w.registers.saves, 0);
  await processor.process([event(3, false)]);
  await processor.commit();
  assert.equal(w.registers.saves, 1);
  assert.deepEqual([...w.registers.stored.keys()].map((id) => (w.registers.register(id)!.value as { added: boolean }).added), [true]);
});

test('partition processor - a slow transaction and a slow commit are logged with where their time went', async () => {
  const { messages } = partitionOf(7, 50);
  const w = world();
  const slowStore = {
    load: async (keys: readonly (readonly (string | number)[])[]) => (await sleep(80), w.registers.load(keys)),
    save: async (entries: readonly { key: readonly (string | number)[]; json: string }[]) => (await sleep(80), w.registers.save(entries)),
  };
  const warnings: Record<string, unknown>[] = [];
  const capturing = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line)) });
  const processor = processorIn(w, 7, { registerStores: new Map([['toggles', slowStore]]), logger: capturing, slowMs: 30 });
  await processor.start();
  await processor.process(messages);
  await processor.commit();

  const transaction = warnings.find((w) => w.msg === 'slow transaction')!;
  assert.ok(transaction, JSON.stringify(warnings));
  assert.equal(transaction.partition, 7);
  assert.equal(transaction.messages, 50);
  // 50 messages in over 80 ms: slower than the 1 ms a message a large batch may take.
  assert.ok((transaction.readRegistersMs as number) >= 75, JSON.stringify(transaction));
  const commit = warnings.find((w) => w.msg === 'slow commit')!;
  assert.ok(commit, JSON.stringify(warnings));
  assert.ok((commit.writeRegistersMs as number) >= 75, JSON.stringify(commit));
  assert.equal(commit.through, 50);
  assert.equal(commit.messages, 50);
});

test('partition processor - a large batch is not slow for taking 1 ms a message or less', async () => {
  const { messages } = partitionOf(7, 200);
  const w = world();
  const slowStore = { load: async (keys: readonly (readonly (string | number)[])[]) => (await sleep(80), w.registers.load(keys)), save: w.registers.save.bind(w.registers) };
  const warnings: unknown[] = [];
  const processor = processorIn(w, 7, { registerStores: new Map([['toggles', slowStore]]), logger: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) }), slowMs: 30 });
  await processor.start();
  await processor.process(messages);
  assert.deepEqual(warnings, []);
});

test('partition processor - a prompt transaction logs nothing', async () => {
  const { messages } = partitionOf(7, 50);
  const warnings: unknown[] = [];
  const processor = processorIn(world(), 7, { logger: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) }) });
  await processor.start();
  await processor.process(messages);
  await processor.commit();
  assert.deepEqual(warnings, []);
});

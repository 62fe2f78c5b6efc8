import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventGenerator, tickClock, togglesDerivation, membershipsDerivation, type Derivation } from '@segment/segment';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { DeriveWorker, MemoryCheckpointStore, MemoryDeadLetterSink, MemoryOutputSink, MemoryRegisterStore, PartitionFeed, PartitionProcessor, type MessageSource, type PartitionDirectory, type SourceMessage } from './index.ts';

const logger = pino({ level: 'silent' });
const encoder = new TextEncoder();
const subjectOf = (vendor: number) => `segment.events.${vendor}`;
const vendorOf = (subject: string) => Number(subject.split('.')[2]);

/** A stream in memory: each open is a consumer from its start sequence, recording what it was asked and acked. */
class MemoryStream implements PartitionDirectory {
  readonly messages: SourceMessage[] = [];
  readonly opens: number[] = [];
  acked = 0;
  /** The next open's consumer fails after delivering this many messages. */
  failAfter: number | undefined;

  append(vendor: number, seq: number, body: unknown = {}): void {
    this.messages.push({ seq, subject: subjectOf(vendor), data: encoder.encode(JSON.stringify(body)) });
  }

  async listPartitions() {
    return { partitions: [...new Set(this.messages.map((m) => vendorOf(m.subject)))].sort((a, b) => a - b), lastSeq: this.messages.at(-1)?.seq ?? 0 };
  }

  async nextSeq(partition: number, seq: number) {
    return this.messages.find((m) => m.seq >= seq && vendorOf(m.subject) === partition)?.seq;
  }

  partitionOf(subject: string) {
    return vendorOf(subject);
  }

  async open(startSeq: number): Promise<MessageSource> {
    this.opens.push(startSeq);
    const failAfter = this.failAfter;
    this.failAfter = undefined;
    let delivered = 0;
    let next = this.messages.findIndex((m) => m.seq >= startSeq);
    if (next < 0) next = this.messages.length;
    return {
      fetch: async (maxMessages, waitMs) => {
        if (failAfter !== undefined && delivered >= failAfter) throw new Error('deliveries broke off');
        const end = Math.min(next + maxMessages, this.messages.length, failAfter === undefined ? Infinity : next + failAfter - delivered);
        if (end === next) await sleep(Math.min(waitMs, 20));
        const batch = this.messages.slice(next, end);
        delivered += batch.length;
        next = end;
        return batch;
      },
      ack: async (seq) => {
        this.acked = Math.max(this.acked, seq);
      },
      close: async () => {},
    };
  }
}

/** A feed over `stream` whose queues are read by the test itself. */
function feedOver(stream: MemoryStream, maxUnacked = 1_000) {
  const seen: number[] = [];
  const feed = new PartitionFeed({ open: (startSeq) => stream.open(startSeq), partitionOf: (s) => stream.partitionOf(s), onPartition: (p) => seen.push(p), maxUnacked, logger });
  return { feed, seen };
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('partition feed - one consumer split by partition; acks follow the oldest message a partition has not committed', async () => {
  // Given a stream interleaving vendors 1 and 2
  const stream = new MemoryStream();
  for (let seq = 1; seq <= 10; seq++) stream.append(seq % 2 === 0 ? 2 : 1, seq);
  const { feed, seen } = feedOver(stream);
  feed.start(1);
  try {
    // When both queues have their messages and only vendor 2 commits
    await until(() => seen.length === 2, 'both partitions');
    const one = feed.queue(1);
    const two = feed.queue(2);
    assert.deepEqual((await one.fetch(100, 100)).map((m) => m.seq), [1, 3, 5, 7, 9]);
    assert.deepEqual((await two.fetch(100, 100)).map((m) => m.seq), [2, 4, 6, 8, 10]);
    await two.ack(10);

    // Then nothing is acked past vendor 1's first message, until it commits part and then all
    assert.equal(feed.floor, 0);
    await one.ack(5);
    assert.equal(feed.floor, 6);
    await one.ack(9);
    assert.equal(feed.floor, 10);
    await until(() => stream.acked === 10, 'the ack through 10');
  } finally {
    await feed.stop();
  }
});

test('partition feed - messages at or below a partition\'s checkpoint are dropped; a consumer that breaks off is reopened after the last message delivered', async () => {
  const stream = new MemoryStream();
  for (let seq = 1; seq <= 8; seq++) stream.append(seq <= 4 ? 1 : 2, seq);
  stream.failAfter = 6;
  const { feed } = feedOver(stream);
  const one = feed.queue(1, 3);
  feed.start(1);
  try {
    const two = feed.queue(2);
    await until(() => stream.opens.length === 2, 'the reopen');
    assert.deepEqual(stream.opens, [1, 7]);
    assert.deepEqual((await one.fetch(100, 100)).map((m) => m.seq), [4]);
    await until(() => feed.floor === 3, 'the floor below vendor 1\'s pending message');
    const messages = await two.fetch(100, 100);
    assert.deepEqual(messages.map((m) => m.seq), [5, 6, 7, 8]);
  } finally {
    await feed.stop();
  }
});

test('partition feed - once half the window waits for commits, every partition is asked to commit', async () => {
  const stream = new MemoryStream();
  stream.append(1, 1);
  for (let seq = 2; seq <= 6; seq++) stream.append(2, seq);
  const { feed } = feedOver(stream, 8);
  feed.start(1);
  try {
    const one = feed.queue(1);
    const two = feed.queue(2);
    await until(() => one.commitRequested && two.commitRequested, 'the requests to commit');
    // A partition that was asked returns from its fetch at once
    assert.deepEqual((await one.fetch(100, 60_000)).map((m) => m.seq), [1]);
    // A request stands while half the window still waits, and ends with the partition's commit
    await one.ack(1);
    assert.equal(one.commitRequested, true);
    await two.ack(6);
    assert.equal(two.commitRequested, false);
    await one.ack(1);
    assert.equal(one.commitRequested, false);
    assert.equal(feed.floor, 6);
  } finally {
    await feed.stop();
  }
});

/** A worker over `stream` deriving memberships and toggles into memory. */
function workerOver(stream: MemoryStream, checkpoints: MemoryCheckpointStore) {
  const output = new MemoryOutputSink();
  const registers = new MemoryRegisterStore();
  const worker = new DeriveWorker({
    directory: stream,
    replica: { index: 0, count: 1 },
    logger,
    idleFetchMs: 10,
    createProcessor: (partition) =>
      new PartitionProcessor({
        partition,
        derivations: [membershipsDerivation, togglesDerivation] as Derivation[],
        registerStores: new Map([['toggles', registers]]),
        checkpoints,
        output,
        deadLetters: new MemoryDeadLetterSink(),
        logger,
        commit: { maxDelayMs: 20 },
      }),
  });
  return { worker, output };
}

test('derive worker - a restarted worker\'s consumer starts at the first message a vendor has not committed, not at a quiet vendor\'s checkpoint', async () => {
  // Given vendor 1's one event, then 100,000 sequences later vendor 2's events
  const generator = new EventGenerator({ seed: 3, segments: 20, users: 50, clock: tickClock(Date.UTC(2021, 0, 1), 1000), utcOffsetMinutes: () => 0 });
  const eventOf = (vendor: number) => {
    const event = generator.nextEvent();
    return { ...event, segment: { ...event.segment, vendor } };
  };
  const stream = new MemoryStream();
  stream.append(1, 1, eventOf(1));
  for (let seq = 100_001; seq <= 100_200; seq++) stream.append(2, seq, eventOf(2));
  const checkpoints = new MemoryCheckpointStore();

  // When a worker derives them all
  const first = workerOver(stream, checkpoints);
  await first.worker.start();
  try {
    await until(() => checkpoints.checkpoints.get(1) === 1 && checkpoints.checkpoints.get(2) === 100_200, 'both vendors committed');
    assert.equal(new Set(first.output.documentsOf('segment/memberships').map((m: any) => m.segment.vendor)).size, 2);
    await until(() => stream.acked === 100_200, 'the ack through 100,200');
  } finally {
    await first.worker.stop();
  }

  // Then a restarted worker asks for what comes after, and takes vendor 3's first event there
  stream.append(3, 100_201, eventOf(3));
  const second = workerOver(stream, checkpoints);
  await second.worker.start();
  try {
    assert.equal(stream.opens.at(-1), 100_201);
    await until(() => checkpoints.checkpoints.get(3) === 100_201, 'vendor 3 committed');
    assert.deepEqual(second.output.documentsOf('segment/memberships').map((m: any) => m.segment.vendor), [3]);
  } finally {
    await second.worker.stop();
  }
});

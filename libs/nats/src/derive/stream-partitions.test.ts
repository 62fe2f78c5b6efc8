// Runs against the shared nats-server at 127.0.0.1:4222; every test takes its own stream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { pino } from 'pino';
import { DeliveredMessage, openDurableSource } from './stream-partitions.ts';

const url = process.env.SEGMENT_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
let nc: NatsConnection;
let jsm: JetStreamManager;
const streams: string[] = [];

before(async () => {
  nc = await connect({ servers: url });
  jsm = await jetstreamManager(nc);
});

after(async () => {
  for (const stream of streams) await jsm.streams.delete(stream).catch(() => false);
  await nc.close();
});

/** A stream of its own for a test, in memory, deleted after the tests; one subject ending in `suffix`. */
async function memoryStream(suffix: string): Promise<{ stream: string; subject: string }> {
  const stream = `T_${randomBytes(5).toString('hex').toUpperCase()}`;
  const subject = `${stream.toLowerCase()}.${suffix}`;
  streams.push(stream);
  await jsm.streams.add({ name: stream, subjects: [subject], storage: StorageType.Memory });
  return { stream, subject };
}

test('durable source - large messages are pulled a few at a time, no more delivered than the reader may hold unacked, and all read in order', async () => {
  // Given a stream of 40 messages of 512 KB
  const { stream, subject } = await memoryStream('large');
  const js = jetstream(nc);
  const body = new Uint8Array(512 * 1024);
  for (let i = 0; i < 40; i++) await js.publish(subject, body);

  // When a source asks ahead for 6, may hold 6 unacked, and its reader stops for a while
  const source = await openDurableSource(nc, jsm, { stream, name: 'reader', filter: subject, startSeq: 1, prefetchMessages: 6, maxUnacked: 6, logger: pino({ level: 'silent' }) });
  try {
    await sleep(300);
    const held = await jsm.consumers.info(stream, 'reader');
    assert.equal(held.delivered.consumer_seq, 6, 'delivered before the reader acked anything');

    // Then the reader, acking each batch, still gets every message once, in order
    const seqs: number[] = [];
    while (seqs.length < 40) {
      const batch = await source.fetch(4, 2_000);
      assert.ok(batch.length > 0, `nothing arrived after ${seqs.length} messages`);
      seqs.push(...batch.map((m) => m.seq));
      await source.ack(batch.at(-1)!.seq);
    }
    assert.deepEqual(seqs, Array.from({ length: 40 }, (_, i) => i + 1));
  } finally {
    await source.close();
  }
});

test('delivered message - the stream and delivery sequences are read from either layout of the ack subject', () => {
  const delivered = (reply: string) => new DeliveredMessage({ reply, subject: 'segment.events.7', data: new Uint8Array(0), headers: undefined });
  // Without a domain: $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<delivery seq>.<ns>.<pending>
  const plain = delivered('$JS.ACK.SEGMENT_EVENTS.derive_replica_0.1.123456.789.1733497200000000000.42');
  assert.deepEqual([plain.seq, plain.delivery, plain.subject], [123456, 789, 'segment.events.7']);
  // With one: <domain>.<account hash> after ACK, and a token at the end.
  const withDomain = delivered('$JS.ACK.hub.ACCHASH.SEGMENT_EVENTS.derive_replica_0.2.9007199254740991.5.1733497200000000000.0.r4nd0m');
  assert.deepEqual([withDomain.seq, withDomain.delivery], [Number.MAX_SAFE_INTEGER, 5]);
  assert.throws(() => delivered('_INBOX.abc.def'), /not a JetStream delivery/);
});

test('delivered message - keeps the headers only when asked to', () => {
  const reply = '$JS.ACK.SEGMENT_MEMBERSHIPS.project_memberships.1.12.12.1733497200000000000.0';
  const headers = { get: (name: string) => (name === 'Segment-Source-Range' ? '1-9' : '') } as unknown as MsgHdrs;
  const message = { reply, subject: 'segment.memberships.7', data: new Uint8Array(0), headers };
  assert.equal(new DeliveredMessage(message).headers, undefined);
  assert.equal(new DeliveredMessage(message, true).headers?.get('Segment-Source-Range'), '1-9');
});

/** Opens a source on an empty stream, waits `idleMs` for nothing (and no failure), then publishes one message and receives it. */
async function idleThenLate(name: string, pullExpiresMs: number, idleMs: number): Promise<void> {
  const { stream, subject } = await memoryStream(name);
  const source = await openDurableSource(nc, jsm, { stream, name: 'reader', startSeq: 1, pullExpiresMs, logger: pino({ level: 'silent' }) });
  try {
    assert.deepEqual(await source.fetch(10, idleMs), [], 'nothing to deliver, and no failure');
    await jetstream(nc).publish(subject, 'late');
    const [late] = await source.fetch(10, 2_000);
    assert.equal(late?.seq, 1);
    assert.equal(new TextDecoder().decode(late!.data), 'late');
  } finally {
    await source.close();
  }
}

test('durable source - an idle source renews its pull: a message published after the pull expired still arrives', async () => {
  await idleThenLate('idle', 200, 700);
});

test('durable source - a pull waiting longer than the watchdog allows silence is kept alive by the server\'s heartbeats', async () => {
  // An 8 s pull gets a heartbeat every second; silent, it would count as lost after 4 s (at two checks, ~6 s).
  await idleThenLate('heard', 8_000, 7_000);
});

test('durable source - a consumer deleted under it fails the source, after what arrived before', async () => {
  const { stream, subject } = await memoryStream('lost');
  await jetstream(nc).publish(subject, 'first');
  const source = await openDurableSource(nc, jsm, { stream, name: 'reader', startSeq: 1, pullExpiresMs: 200, logger: pino({ level: 'silent' }) });
  try {
    await sleep(100);
    await jsm.consumers.delete(stream, 'reader');
    assert.equal((await source.fetch(10, 100)).length, 1, 'the message delivered before');
    await assert.rejects(source.fetch(10, 5_000), /409 Consumer Deleted/);
  } finally {
    await source.close();
  }
});

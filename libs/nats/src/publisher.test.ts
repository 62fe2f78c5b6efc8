import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect as connectTcp, type AddressInfo, type Socket } from 'node:net';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { nuid, type NatsConnection } from '@nats-io/transport-node';
import { connectNats } from './connect.ts';
import { headers } from './names.ts';
import { PipelinedPublisher, PublishError, type PubAck, type PublishItem } from './publisher.ts';

const server = 'nats://127.0.0.1:4222';
let nc: NatsConnection;
let jsm: JetStreamManager;

before(async () => {
  nc = await connectNats({ servers: server, name: 'publisher-test' });
  jsm = await jetstreamManager(nc);
});
after(async () => {
  await nc.drain();
});

/** A stream of its own for one test, deleted when the test ends. */
async function withStream(t: { after(fn: () => Promise<void>): void }, config: { max_msg_size?: number } = {}) {
  const token = nuid.next().toLowerCase();
  const stream = `TEST_PUBLISHER_${token.toUpperCase()}`;
  const prefix = `test_${token}`;
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`], ...config });
  t.after(async () => {
    await jsm.streams.delete(stream);
  });
  return { stream, subject: (suffix: string) => `${prefix}.${suffix}` };
}

function rejection(promise: Promise<unknown>): Promise<PublishError> {
  return promise.then(
    () => assert.fail('expected the publish to fail'),
    (error: unknown) => {
      assert.ok(error instanceof PublishError, `expected a PublishError, got ${String(error)}`);
      return error;
    },
  );
}

test('publisher - acks carry the stream and sequences in publish order', async (t) => {
  const { stream, subject } = await withStream(t);
  const publisher = new PipelinedPublisher(nc);
  const acks = await Promise.all(Array.from({ length: 500 }, (_, i) => publisher.publish(subject(String(1 + (i % 3))), JSON.stringify({ i }))));
  assert.deepEqual(acks, Array.from({ length: 500 }, (_, i): PubAck => ({ stream, seq: i + 1, duplicate: false })));
  const stored = await jsm.streams.getMessage(stream, { seq: 42 });
  assert.equal(stored?.subject, subject(String(1 + (41 % 3))));
  assert.deepEqual(stored?.json(), { i: 41 });
  await publisher.close();
});

test('publisher - request sends through the same window and resolves with the raw reply: a direct get and its 404', async (t) => {
  const token = nuid.next().toLowerCase();
  const stream = `TEST_PUBLISHER_${token.toUpperCase()}`;
  await jsm.streams.add({ name: stream, subjects: [`test_${token}.>`], allow_direct: true });
  t.after(async () => {
    await jsm.streams.delete(stream);
  });
  const publisher = new PipelinedPublisher(nc, { maxInFlight: 8 });
  await Promise.all(Array.from({ length: 20 }, (_, i) => publisher.publish(`test_${token}.${i}`, `value ${i}`)));
  const replies = await Promise.all(Array.from({ length: 21 }, (_, i) => publisher.request(`$JS.API.DIRECT.GET.${stream}.test_${token}.${i}`)));
  assert.deepEqual(
    replies.slice(0, 20).map((reply) => new TextDecoder().decode(reply.data)),
    Array.from({ length: 20 }, (_, i) => `value ${i}`),
  );
  assert.equal(replies[20]!.headers?.code, 404, 'no message: the status, not an error');
  await publisher.close();
});

test('publisher - a repeated Nats-Msg-Id is acked as a duplicate and stores nothing new', async (t) => {
  const { stream, subject } = await withStream(t);
  const publisher = new PipelinedPublisher(nc);
  const first = await publisher.publish(subject('1'), 'a', { msgId: 'event-1' });
  const again = await publisher.publish(subject('1'), 'a changed', { msgId: 'event-1' });
  const other = await publisher.publish(subject('1'), 'b', { msgId: 'event-2' });
  assert.deepEqual(first, { stream, seq: 1, duplicate: false });
  assert.deepEqual(again, { stream, seq: 1, duplicate: true });
  assert.deepEqual(other, { stream, seq: 2, duplicate: false });
  assert.equal((await jsm.streams.info(stream)).state.messages, 2);
  const stored = await jsm.streams.getMessage(stream, { seq: 1 });
  assert.equal(stored?.string(), 'a');
  assert.equal(stored?.header.get(headers.msgId), 'event-1');
  await publisher.close();
});

test('publisher - messages arrive as sent (UTF-8 payloads and headers, with and without headers); a bad subject or an oversized message fails alone', async (t) => {
  const { stream, subject } = await withStream(t);
  const publisher = new PipelinedPublisher(nc);
  const outMsgs = nc.stats().outMsgs;
  const sent: [string, string | Uint8Array, Record<string, string> | undefined][] = [
    ['a', 'café ☕', undefined],
    ['b', Buffer.from('bytes\r\nwith CRLF'), { 'X-Note': 'héllo wörld' }],
    ['c', '', undefined],
    ['d', 'x'.repeat(70_000), { 'X-Other': '1', 'X-Second': 'two' }],
  ];
  const acks = await Promise.all(sent.map(([suffix, payload, extra]) => publisher.publish(subject(suffix), payload, { headers: extra, msgId: `id-${suffix}` })));
  assert.deepEqual(acks.map((ack) => ack.seq), [1, 2, 3, 4]);
  assert.equal(nc.stats().outMsgs - outMsgs, 4, 'nc.stats() counts the messages');
  for (const [i, [suffix, payload, extra]] of sent.entries()) {
    const stored = (await jsm.streams.getMessage(stream, { seq: i + 1 }))!;
    assert.equal(stored.subject, subject(suffix));
    assert.deepEqual(Buffer.from(stored.data), Buffer.from(payload));
    assert.equal(stored.header.get(headers.msgId), `id-${suffix}`);
    for (const [name, value] of Object.entries(extra ?? {})) assert.equal(stored.header.get(name), value);
  }

  const badSubject = await rejection(publisher.publish(`${subject('e')} spaced`, 'x'));
  assert.equal(badSubject.code, 'SEGMENT_PUBLISH_REJECTED');
  assert.match(badSubject.message, /invalid subject/);
  const maxPayload = nc.info!.max_payload;
  const oversized = await rejection(publisher.publish(subject('f'), new Uint8Array(maxPayload + 1)));
  assert.equal(oversized.code, 'SEGMENT_PUBLISH_REJECTED');
  assert.match(oversized.message, /exceeds max_payload/);
  assert.equal((await publisher.publish(subject('g'), 'after')).seq, 5);
  await publisher.close();
});

test('publisher - never more than maxInFlight outstanding; calls beyond it wait in order', async (t) => {
  const { stream, subject } = await withStream(t);
  const publisher = new PipelinedPublisher(nc, { maxInFlight: 8 });
  let highest = 0;
  const observe = () => {
    highest = Math.max(highest, publisher.inFlight);
    assert.ok(publisher.inFlight <= 8, `inFlight ${publisher.inFlight} > 8`);
  };
  const calls: Promise<PubAck>[] = [];
  for (let i = 0; i < 300; i++) {
    calls.push(publisher.publish(subject('x'), String(i), { msgId: `m-${i}` }).then((ack) => (observe(), ack)));
    observe();
  }
  assert.equal(publisher.inFlight, 8);
  assert.equal(publisher.queued, 292);
  const acks = await Promise.all(calls);
  assert.equal(highest, 8);
  assert.deepEqual(acks.map((ack) => ack.seq), Array.from({ length: 300 }, (_, i) => i + 1));
  assert.equal(publisher.inFlight, 0);
  assert.equal((await jsm.streams.info(stream)).state.messages, 300);
  await publisher.close();
});

test('publisher - publishMany pulls from the source only while a slot is free and reports each result', async (t) => {
  const { stream, subject } = await withStream(t);
  const publisher = new PipelinedPublisher(nc, { maxInFlight: 16 });
  let pulled = 0;
  let maxAhead = 0;
  let settled = 0;
  async function* batches(): AsyncGenerator<PublishItem[]> {
    for (let b = 0; b < 20; b++) {
      yield Array.from({ length: 10 }, (_, i) => ({ subject: subject('y'), payload: new TextEncoder().encode(`${b}-${i}`), msgId: `id-${(b * 10 + i) % 150}` }));
      pulled += 10;
      maxAhead = Math.max(maxAhead, pulled - settled);
    }
  }
  const results: (PubAck | undefined)[] = [];
  const summary = await publisher.publishMany(batches(), (_item, ack, error) => {
    assert.equal(error, undefined);
    results.push(ack);
    settled++;
  });
  assert.deepEqual(summary, { acked: 200, duplicates: 50, failed: 0 });
  assert.ok(maxAhead <= 16 + 10, `source ran ${maxAhead} items ahead of the acks`);
  assert.equal(results.filter((ack) => ack?.duplicate).length, 50);
  assert.equal((await jsm.streams.info(stream)).state.messages, 150);
  await publisher.close();
});

test('publisher - a subject no stream captures fails with no responders, naming the subject', async () => {
  const publisher = new PipelinedPublisher(nc);
  const subject = `test_${nuid.next().toLowerCase()}.nowhere`;
  const error = await rejection(publisher.publish(subject, 'x'));
  assert.equal(error.code, 'SEGMENT_PUBLISH_NO_STREAM');
  assert.equal(error.subject, subject);
  assert.match(error.message, new RegExp(`no stream captures subject ${subject.replace('.', '\\.')}`));
  await publisher.close();
});

test('publisher - a JetStream error ack rejects with the server code and description', async (t) => {
  const { subject } = await withStream(t, { max_msg_size: 16 });
  const publisher = new PipelinedPublisher(nc);
  const mismatch = await rejection(publisher.publish(subject('z'), 'small', { headers: { 'Nats-Expected-Stream': 'SOME_OTHER_STREAM' }, msgId: 'with-headers' }));
  assert.equal(mismatch.code, 'SEGMENT_PUBLISH_REJECTED');
  assert.equal(mismatch.errCode, 10060);
  assert.equal(mismatch.description, 'expected stream does not match');
  assert.match(mismatch.message, /expected stream does not match/);
  const tooBig = await rejection(publisher.publish(subject('z'), 'x'.repeat(100)));
  assert.equal(tooBig.errCode, 10054);
  assert.match(tooBig.message, /message size exceeds maximum allowed/);
  // A header that would break the header block is refused before it is sent.
  const newline = await rejection(publisher.publish(subject('z'), 'ok', { msgId: 'two\r\nlines' }));
  assert.equal(newline.code, 'SEGMENT_PUBLISH_REJECTED');
  assert.match(newline.message, /Nats-Msg-Id: values cannot contain CR or LF/);
  assert.match((await rejection(publisher.publish(subject('z'), 'ok', { headers: { 'Bad Name': 'x' } }))).message, /invalid header name "Bad Name"/);
  // The publisher goes on after errors.
  assert.equal((await publisher.publish(subject('z'), 'ok')).seq, 1);
  await publisher.close();
});

test('publisher - no ack within ackTimeoutMs rejects with a timeout; a late reply is ignored', async () => {
  // A plain subscriber that never answers in time: the server sees a responder, so no 503 either.
  const subject = `test_${nuid.next().toLowerCase()}.silent`;
  const replies: string[] = [];
  const silent = nc.subscribe(subject, { callback: (_error, msg) => void replies.push(msg.reply!) });
  const publisher = new PipelinedPublisher(nc, { ackTimeoutMs: 100 });
  const started = performance.now();
  const errors = await Promise.all([rejection(publisher.publish(subject, '1')), rejection(publisher.publish(subject, '2'))]);
  const elapsed = performance.now() - started;
  assert.deepEqual(errors.map((e) => e.code), ['SEGMENT_PUBLISH_TIMEOUT', 'SEGMENT_PUBLISH_TIMEOUT']);
  assert.match(errors[0]!.message, /within 100 ms/);
  assert.ok(elapsed >= 95 && elapsed < 1000, `timed out after ${elapsed} ms`);
  assert.equal(publisher.inFlight, 0);
  for (const reply of replies) nc.publish(reply, JSON.stringify({ stream: 'LATE', seq: 1 }));
  await nc.flush();
  assert.equal(publisher.inFlight, 0);
  silent.unsubscribe();
  await publisher.close();
});

test('publisher - across a reconnect every pending publish settles, and publishing goes on', async (t) => {
  const { stream, subject } = await withStream(t);
  // A TCP proxy in front of the shared server, so this test can cut its own connection only.
  const sockets = new Set<Socket>();
  const proxy = createServer((client) => {
    const upstream = connectTcp(4222, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const port = (proxy.address() as AddressInfo).port;
  const own = await connectNats({ servers: `nats://127.0.0.1:${port}`, name: 'publisher-test-reconnect' });
  t.after(async () => {
    await own.close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  });
  const publisher = new PipelinedPublisher(own, { ackTimeoutMs: 1500 });

  const publish = (i: number) =>
    publisher.publish(subject('r'), String(i), { msgId: `r-${i}` }).then(
      (ack) => ack.stream,
      (error: PublishError) => error.code,
    );
  // Some acked before the cut, some sent with their acks lost in it, some still in the client's
  // buffer when it happens (sent after the reconnect).
  const outcomes = [publish(0)];
  await outcomes[0];
  for (let i = 1; i < 2000; i++) outcomes.push(publish(i));
  await new Promise((resolve) => setImmediate(resolve));
  for (let i = 2000; i < 3000; i++) outcomes.push(publish(i));
  for (const socket of sockets) socket.destroy();
  const settled = await Promise.all(outcomes);
  assert.ok(settled.every((outcome) => outcome === stream || outcome === 'SEGMENT_PUBLISH_TIMEOUT'), `unexpected outcomes: ${[...new Set(settled)].join(', ')}`);
  assert.equal(publisher.inFlight, 0);
  t.diagnostic(`across the cut: ${settled.filter((o) => o === stream).length} acked, ${settled.filter((o) => o !== stream).length} timed out`);
  // The reply subscription came back with the connection.
  assert.equal((await publisher.publish(subject('r'), 'after', { msgId: 'after' })).stream, stream);
  await publisher.close();
});

test('publisher - flush waits for everything published before it; close refuses later publishes', async (t) => {
  const { subject } = await withStream(t);
  const publisher = new PipelinedPublisher(nc, { maxInFlight: 4 });
  let settled = 0;
  for (let i = 0; i < 50; i++) void publisher.publish(subject('f'), String(i)).then(() => settled++);
  await publisher.flush();
  assert.equal(settled, 50);
  await publisher.flush(); // nothing outstanding: resolves at once
  await publisher.close();
  const error = await rejection(publisher.publish(subject('f'), 'late'));
  assert.equal(error.code, 'SEGMENT_PUBLISHER_CLOSED');
});

test('publisher - a closed connection fails what is pending instead of leaving it hanging', async () => {
  const own = await connectNats({ servers: server, name: 'publisher-test-close' });
  const subject = `test_${nuid.next().toLowerCase()}.silent`;
  const silent = nc.subscribe(subject);
  await nc.flush();
  const publisher = new PipelinedPublisher(own, { ackTimeoutMs: 60_000 });
  const pending = rejection(publisher.publish(subject, 'x'));
  await own.flush();
  await own.close();
  const error = await pending;
  assert.equal(error.code, 'SEGMENT_PUBLISHER_CLOSED');
  assert.equal((await rejection(publisher.publish(subject, 'y'))).code, 'SEGMENT_PUBLISHER_CLOSED');
  silent.unsubscribe();
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { pino } from 'pino';
import type { Event } from '@segment/model';
import { createIngestServer, type IngestServerOptions } from './ingest-server.ts';
import { ingestPath, jsonV1Protocol, type AckFrame, type ErrorFrame } from './frames.ts';
import { connectJsonV1, UpgradeRefusedError } from './json-v1-client.ts';
import { MemoryEventSink } from './sink.ts';
import { sha256Hex } from './tokens.ts';

const logger = pino({ level: 'silent' });

function event(n: number, vendor = 1 + (n % 3)): Event {
  return {
    event: `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
    timestamp: '2021-03-19T13:32:26-04:00',
    user: `usr-${n.toString(16).padStart(6, '0')}`,
    segment: { vendor, name: `seg-${n % 7}` },
  };
}
const events = (count: number, from = 0) => Array.from({ length: count }, (_, i) => event(from + i));
const ndjson = (docs: readonly unknown[]) => docs.map((d) => JSON.stringify(d)).join('\n') + '\n';

async function start(t: TestContext, options: Partial<IngestServerOptions> = {}) {
  const sink = new MemoryEventSink();
  const gateway = createIngestServer({ sink, logger, ...options });
  const { port } = await gateway.listen(0, '127.0.0.1');
  t.after(() => gateway.close());
  const base = `http://127.0.0.1:${port}`;
  const post = async (body: string, headers: Record<string, string> = {}) => {
    const response = await fetch(`${base}${ingestPath}`, { method: 'POST', body, headers });
    return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
  };
  return { sink, gateway, base, port, post, url: `ws://127.0.0.1:${port}${ingestPath}` };
}

/** A WebSocket client that collects the frames it receives. */
async function connect(url: string, options: { protocol?: string; headers?: Record<string, string> } = {}) {
  const ws = await connectJsonV1(url, options);
  const frames: (AckFrame | ErrorFrame)[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data) => {
    frames.push(JSON.parse(String(data)));
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  const until = async (done: () => boolean, timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out; frames: ${JSON.stringify(frames).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  };
  const acks = () => frames.filter((f): f is AckFrame => 'offsets' in f);
  const errors = () => frames.filter((f): f is ErrorFrame => 'error' in f);
  const processed = () => acks().at(-1)?.processed ?? 0;
  return { ws, frames, acks, errors, processed, until, closed };
}

/** An upgrade the server refuses: its HTTP status. */
async function refusedUpgrade(url: string, protocol: string, headers: Record<string, string> = {}): Promise<number> {
  try {
    const ws = await connectJsonV1(url, { protocol, headers });
    ws.terminate();
  } catch (error) {
    if (error instanceof UpgradeRefusedError) return error.status;
    throw error;
  }
  throw new Error('the upgrade was accepted');
}

test('ingest server - health, readiness, unknown paths and wrong methods', async (t) => {
  let ready = false;
  const { base } = await start(t, { ready: () => ready });
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/readyz`)).status, 503);
  ready = true;
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  assert.equal((await fetch(`${base}/nope`)).status, 404);
  assert.equal((await fetch(`${base}/ingest/segment/other`, { method: 'POST', body: '{}' })).status, 404);
  const put = await fetch(`${base}${ingestPath}`, { method: 'PUT', body: '{}' });
  assert.equal(put.status, 405);
  assert.equal(put.headers.get('allow'), 'POST, GET');
  assert.equal((await fetch(`${base}${ingestPath}`)).status, 426);
  assert.equal((await fetch(`${base}/healthz`, { method: 'POST' })).status, 405);
});

test('ingest server - one document, an array and NDJSON are published in order with sequences', async (t) => {
  const { sink, post } = await start(t);
  const one = await post(JSON.stringify(event(1)), { 'Content-Type': 'application/json' });
  assert.deepEqual(one, { status: 200, headers: one.headers, body: { accepted: 1, duplicates: 0, sequences: [1] } });
  const array = await post(JSON.stringify(events(3, 10)), { 'Content-Type': 'application/json' });
  assert.deepEqual(array.body, { accepted: 3, duplicates: 0, sequences: [2, 3, 4] });
  const lines = await post(ndjson(events(4, 20)), { 'Content-Type': 'application/x-ndjson' });
  assert.deepEqual(lines.body, { accepted: 4, duplicates: 0, sequences: [5, 6, 7, 8] });
  // Without a content type the body is sniffed.
  assert.deepEqual((await post(JSON.stringify(events(2, 30)))).body, { accepted: 2, duplicates: 0, sequences: [9, 10] });
  assert.deepEqual((await post(ndjson(events(2, 40)))).body, { accepted: 2, duplicates: 0, sequences: [11, 12] });
  assert.deepEqual(sink.stored.map((s) => s.msgId), [event(1), ...events(3, 10), ...events(4, 20), ...events(2, 30), ...events(2, 40)].map((e) => e.event));
  assert.deepEqual(sink.stored.slice(0, 4).map((s) => s.subject), ['segment.events.2', 'segment.events.2', 'segment.events.3', 'segment.events.1']);
  // A re-post is acknowledged with the original sequences and counted as duplicates.
  assert.deepEqual((await post(ndjson(events(4, 20)), { 'Content-Type': 'application/jsonl' })).body, { accepted: 4, duplicates: 4, sequences: [5, 6, 7, 8] });
  assert.equal(sink.stored.length, 12);
});

test('ingest server - an NDJSON line is stored as its bytes, other documents encoded; a body not in UTF-8 is refused', async (t) => {
  const { sink, post } = await start(t);
  const line = ` { "event": "${event(1).event}", "timestamp":"2021-03-19T13:32:26-04:00", "user":"caf\u00e9", "segment":{"name":"seg-1","vendor":2} }\t`;
  assert.deepEqual((await post(`\ufeff${line}\r\n`, { 'Content-Type': 'application/x-ndjson' })).body, { accepted: 1, duplicates: 0, sequences: [1] });
  assert.deepEqual((await post(JSON.stringify([event(2)]), { 'Content-Type': 'application/json' })).body, { accepted: 1, duplicates: 0, sequences: [2] });
  assert.deepEqual(sink.stored.map((s) => s.payload), [line, JSON.stringify(event(2))]);
  assert.equal(sink.stored[0]!.event.user, 'café');

  const notUtf8 = await fetch(`${(await start(t)).base}${ingestPath}`, { method: 'POST', body: Buffer.from([0x7b, 0xff, 0x7d, 0x0a]) });
  assert.equal(notUtf8.status, 400);
  assert.deepEqual(await notUtf8.json(), { error: 'the body is not valid UTF-8' });
});

test('ingest server - an invalid batch is refused whole, naming each bad document and field', async (t) => {
  const { sink, post } = await start(t);
  const bad = [event(1), { ...event(2), segment: { vendor: 0, name: 'x' } }, event(3), { ...event(4), remove: false, extra: 1 }];
  const response = await post(JSON.stringify(bad), { 'Content-Type': 'application/json' });
  assert.equal(response.status, 400);
  assert.match(String(response.body.error), /^2 of 4 documents are invalid; nothing was published; first at index 1: \/segment\/vendor: must be >= 1/);
  assert.deepEqual(response.body.invalid, [
    { index: 1, errors: ['/segment/vendor: must be >= 1'] },
    { index: 3, errors: ['/extra: is not allowed', '/remove: must be true'] },
  ]);
  const lines = await post(`${JSON.stringify(event(5))}\n\n{"event": nope}\n${JSON.stringify({ ...event(6), user: 5 })}\n`, { 'Content-Type': 'application/x-ndjson' });
  assert.equal(lines.status, 400);
  assert.deepEqual(lines.body.invalid, [
    { index: 1, line: 3, errors: [String((lines.body.invalid as { errors: string[] }[])[0]!.errors[0])] },
    { index: 2, line: 4, errors: ['/user: must be string'] },
  ]);
  assert.match((lines.body.invalid as { errors: string[] }[])[0]!.errors[0]!, /^line 3 is not JSON: /);
  const broken = await post('[{"a":1},\n{"a":}]', { 'Content-Type': 'application/json' });
  assert.equal(broken.status, 400);
  assert.match(String(broken.body.error), /element 1 \(line 2\)/);
  assert.equal((await post('<xml/>', { 'Content-Type': 'application/xml' })).status, 415);
  assert.equal(sink.stored.length, 0, 'nothing of a rejected request is published');
});

test('ingest server - a body over the limit gets 413 without being read to the end', async (t) => {
  const { sink, post, port } = await start(t, { maxBodyBytes: 10_000 });
  const big = ndjson(events(100));
  assert.ok(big.length > 10_000);
  const declared = await post(big, { 'Content-Type': 'application/x-ndjson' });
  assert.equal(declared.status, 413);
  assert.match(String(declared.body.error), /limit of 10000 bytes/);
  // Chunked, no length: the answer comes while the client is still sending (it never finishes).
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: ingestPath, headers: { 'Content-Type': 'application/x-ndjson' } });
    req.on('response', (res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    req.on('error', reject);
    const chunk = ndjson(events(20));
    let sent = 0;
    const timer = setInterval(() => {
      if (sent++ < 200) req.write(chunk);
    }, 5);
    req.on('close', () => clearInterval(timer));
  });
  assert.equal(status, 413);
  assert.equal(sink.stored.length, 0);
  assert.equal((await post(ndjson(events(10)))).status, 200, 'a body under the limit still goes through');
});

test('ingest server - tokens: 401 without a valid one, 403 outside its vendors, 200 inside', async (t) => {
  const { sink, post, url } = await start(t, {
    tokens: [
      { tokenSha256: sha256Hex('admin-token') },
      { tokenSha256: sha256Hex('vendor-2-token'), vendors: [2], name: 'vendor two' },
    ],
  });
  const body = ndjson([event(1, 2), event(2, 2)]);
  assert.equal((await post(body)).status, 401);
  assert.equal((await post(body, { Authorization: 'Bearer wrong' })).status, 401);
  assert.equal((await post(body, { Authorization: `Bearer ${sha256Hex('admin-token')}` })).status, 401, 'the hash is not the token');
  const unauthorized = await post(body, { Authorization: 'Basic abc' });
  assert.equal(unauthorized.headers.get('www-authenticate'), 'Bearer realm="segment ingest"');
  assert.deepEqual((await post(body, { Authorization: 'Bearer vendor-2-token' })).body, { accepted: 2, duplicates: 0, sequences: [1, 2] });
  const mixed = await post(ndjson([event(3, 2), event(4, 3), event(5, 2), event(6, 1)]), { Authorization: 'Bearer vendor-2-token' });
  assert.equal(mixed.status, 403);
  assert.deepEqual(mixed.body.invalid, [
    { index: 1, line: 2, errors: ['/segment/vendor: vendor 3 is not allowed for this token'] },
    { index: 3, line: 4, errors: ['/segment/vendor: vendor 1 is not allowed for this token'] },
  ]);
  assert.equal((await post(ndjson([event(4, 3)]), { Authorization: 'Bearer admin-token' })).status, 200);
  assert.equal(sink.stored.length, 3);

  // WebSocket: the header or ?token=; a scoped token's other vendors get error frames.
  assert.equal(await refusedUpgrade(url, jsonV1Protocol), 401);
  assert.equal(await refusedUpgrade(`${url}?token=wrong`, jsonV1Protocol), 401);
  const client = await connect(`${url}?token=vendor-2-token`);
  client.ws.send(ndjson([event(10, 2), event(11, 5), event(12, 2)]));
  await client.until(() => client.processed() === 2);
  assert.deepEqual(client.errors(), [{ error: 'vendor not allowed', frame: 1, index: 1, errors: ['/segment/vendor: vendor 5 is not allowed for this token'] }]);
  client.ws.close();
  const headerClient = await connect(url, { headers: { Authorization: 'Bearer admin-token' } });
  headerClient.ws.send(JSON.stringify(event(13, 5)));
  await headerClient.until(() => headerClient.processed() === 1);
  headerClient.ws.close();
});

test('ingest server - a failed publish answers 503 and says a retry is safe', async (t) => {
  const { sink, post } = await start(t);
  sink.failWith = (e) => (e.segment.vendor === 3 ? new Error('no stream captures subject segment.events.3') : undefined);
  const response = await post(ndjson(events(3)));
  assert.equal(response.status, 503);
  assert.equal(response.headers.get('retry-after'), '1');
  assert.match(String(response.body.error), /1 of 3 documents could not be published \(first at index 2: no stream captures/);
  sink.failWith = undefined;
  assert.deepEqual((await post(ndjson(events(3)))).body, { accepted: 3, duplicates: 2, sequences: [1, 2, 3] });
});

test('ingest server - websocket: documents per frame, acks with offsets per subject and a running count', async (t) => {
  const { sink, url } = await start(t);
  const client = await connect(url);
  // Several documents per line, one spanning lines, in one frame; then one per frame.
  const first = events(4);
  client.ws.send(`${JSON.stringify(first[0])} ${JSON.stringify(first[1])}\n${JSON.stringify(first[2], null, 2)}\n${JSON.stringify(first[3])}`);
  await client.until(() => client.processed() === 4);
  assert.deepEqual(client.acks(), [{ offsets: { 'segment.events.1': 4, 'segment.events.2': 2, 'segment.events.3': 3 }, processed: 4 }]);
  for (const e of events(300, 100)) client.ws.send(JSON.stringify(e));
  await client.until(() => client.processed() === 304);
  assert.equal(sink.stored.length, 304);
  assert.ok(client.acks().length < 300, `frames of one read share an ack (${client.acks().length} acks)`);
  // Offsets: the highest sequence per subject of the batch.
  const seen = new Map<string, number>();
  for (const s of sink.stored) seen.set(s.subject, Math.max(seen.get(s.subject) ?? 0, s.seq));
  const highest = new Map<string, number>();
  for (const ack of client.acks()) for (const [subject, seq] of Object.entries(ack.offsets)) highest.set(subject, Math.max(highest.get(subject) ?? 0, seq));
  assert.deepEqual(highest, seen);
  assert.deepEqual(client.errors(), []);
  client.ws.close();
});

test('ingest server - websocket: invalid documents get error frames, the rest of the frame is published', async (t) => {
  const { sink, url } = await start(t);
  const client = await connect(url);
  client.ws.send(JSON.stringify(event(1)));
  await client.until(() => client.processed() === 1);
  client.ws.send(`${JSON.stringify(event(2))} ${JSON.stringify({ ...event(3), segment: { vendor: 0, name: 'x' } })} {oops} ${JSON.stringify(event(4))}`);
  await client.until(() => client.processed() === 3);
  const errors = client.errors();
  assert.equal(errors.length, 2);
  assert.deepEqual(errors[0], { error: 'invalid document', frame: 2, index: 1, errors: ['/segment/vendor: must be >= 1'] });
  assert.equal(errors[1]!.frame, 2);
  assert.equal(errors[1]!.index, 2);
  assert.match(errors[1]!.errors![0]!, /^document 2 is not JSON/);
  // The errors of a batch come before its ack.
  assert.deepEqual(client.frames.map((f) => ('offsets' in f ? 'ack' : 'error')), ['ack', 'error', 'error', 'ack']);
  client.ws.send(Buffer.from(JSON.stringify(event(5))));
  await client.until(() => client.errors().length === 3);
  assert.deepEqual(client.errors()[2], { error: 'binary frames are not accepted: send JSON documents in text frames (subprotocol json/v1)', frame: 3 });
  client.ws.send(JSON.stringify(event(6)));
  await client.until(() => client.processed() === 4);
  assert.deepEqual(sink.stored.map((s) => s.msgId), [1, 2, 4, 6].map((n) => event(n).event));
  client.ws.close();
});

test('ingest server - websocket: a frame over the limit closes with 1009; only json/v1 is spoken', async (t) => {
  const { url } = await start(t, { maxFrameBytes: 4096 });
  const client = await connect(url);
  client.ws.send(ndjson(events(100)));
  const { code } = await client.closed;
  assert.equal(code, 1009);
  assert.equal(await refusedUpgrade(url, 'json/v2'), 400);
  assert.equal(await refusedUpgrade(url, ''), 400);
  assert.equal(await refusedUpgrade(url.replace(ingestPath, '/ingest/other'), jsonV1Protocol), 404);
  const multi = await connect(url, { protocol: `other, ${jsonV1Protocol}` });
  assert.equal(multi.ws.protocol, jsonV1Protocol);
  multi.ws.close();
});

test('ingest server - websocket: reading pauses while too many documents are unacknowledged', async (t) => {
  const { sink, url } = await start(t, { maxInFlightPerConnection: 50 });
  sink.delayMs = 20;
  let pending = 0;
  let most = 0;
  const publish = sink.publish.bind(sink);
  sink.publish = (e, source, settled) => {
    most = Math.max(most, ++pending);
    publish(e, source, (error, ack) => {
      pending--;
      settled(error, ack);
    });
  };
  const client = await connect(url);
  // 3,000 frames of one document: without pausing all 3,000 would be in flight at once.
  for (const e of events(3000)) client.ws.send(JSON.stringify(e));
  await client.until(() => client.processed() === 3000, 20_000);
  // The bound: the limit, plus the frames `ws` had already decoded from the socket read (64 KiB)
  // that crossed it, which it emits before the pause takes effect.
  const smallest = Math.min(...events(3000).map((e) => JSON.stringify(e).length + 6));
  assert.ok(most <= 50 + Math.ceil(65536 / smallest), `at most ${most} documents were in flight`);
  client.ws.close();
});

test('ingest server - close() finishes requests and websocket batches in flight, then closes 1001', async (t) => {
  const { sink, gateway, post, url } = await start(t);
  sink.delayMs = 200;
  const client = await connect(url);
  client.ws.send(ndjson(events(5, 100)));
  const pending = post(ndjson(events(5)));
  await new Promise((resolve) => setTimeout(resolve, 50));
  await gateway.close();
  const response = await pending;
  assert.equal(response.status, 200);
  assert.equal(response.body.accepted, 5);
  assert.equal(client.processed(), 5);
  assert.equal((await client.closed).code, 1001);
});

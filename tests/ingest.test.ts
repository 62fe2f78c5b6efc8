// The ingest gateway against real NATS: what a client posts or streams lands on the events stream,
// on its vendor's subject, with the event id as Nats-Msg-Id, and nothing of a rejected request does.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startIngestServer, type IngestServerSettings } from '@segment/app-ingest';
import { connectJsonV1, ingestPath, jsonV1Protocol, sha256Hex, UpgradeRefusedError, type AckFrame, type ErrorFrame } from '@segment/ingest';
import type { Event } from '@segment/model';
import { connectNats, defaultProvisionConfig, deprovision, headers, namesFor, provision } from '@segment/nats';
import { generateEvents } from './support/pipeline.ts';
import { natsUrl, randomNamespace, readStream } from './support/streams.ts';

const logger = pino({ level: 'silent' });
const ndjson = (docs: readonly unknown[]) => docs.map((d) => JSON.stringify(d)).join('\n') + '\n';

/** A provisioned namespace and a gateway on port 0 publishing into it. */
async function gateway(t: TestContext, settings: Partial<IngestServerSettings> = {}) {
  const nc = await connectNats({ servers: natsUrl, name: 'test-ingest' });
  const names = namesFor(randomNamespace('ingest'));
  await provision(nc, names, defaultProvisionConfig, logger);
  const handle = await startIngestServer({ nc, names, logger, port: 0, ...settings });
  t.after(async () => {
    await handle.close();
    await deprovision(nc, names);
    await nc.close();
  });
  const base = `http://127.0.0.1:${handle.port}`;
  const post = async (body: string, extra: Record<string, string> = {}) => {
    const response = await fetch(`${base}${ingestPath}`, { method: 'POST', body, headers: extra });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const stored = () => readStream(nc, names.events.stream);
  return { nc, names, handle, base, post, stored, url: `ws://127.0.0.1:${handle.port}${ingestPath}` };
}

async function wsClient(url: string, headers: Record<string, string> = {}) {
  const ws = await connectJsonV1(url, { headers });
  const frames: (AckFrame | ErrorFrame)[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(String(data))));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  const acks = () => frames.filter((f): f is AckFrame => 'offsets' in f);
  const errors = () => frames.filter((f): f is ErrorFrame => 'error' in f);
  const processed = () => acks().at(-1)?.processed ?? 0;
  const until = async (done: () => boolean, what: string) => {
    const deadline = Date.now() + 15_000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(frames).slice(0, 400)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  return { ws, frames, acks, errors, processed, until, closed };
}

test('ingest - HTTP: one document, an array and NDJSON land on their vendor subjects with Nats-Msg-Id = event id', async (t) => {
  const { names, post, stored, base } = await gateway(t);
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  const events = generateEvents(60, 11);
  const one = await post(JSON.stringify(events[0]), { 'Content-Type': 'application/json' });
  assert.deepEqual(one, { status: 200, body: { accepted: 1, duplicates: 0, sequences: [1] } });
  const array = await post(JSON.stringify(events.slice(1, 10)), { 'Content-Type': 'application/json' });
  assert.deepEqual(array.body, { accepted: 9, duplicates: 0, sequences: [2, 3, 4, 5, 6, 7, 8, 9, 10] });
  // NDJSON lines are stored as the client sent them (here with spaces around), other documents encoded.
  const sentLines = events.slice(10).map((event) => ` ${JSON.stringify(event, null, 1).replaceAll('\n', '')} `);
  const lines = await post(sentLines.join('\r\n'), { 'Content-Type': 'application/x-ndjson' });
  assert.deepEqual(lines.body, { accepted: 50, duplicates: 0, sequences: Array.from({ length: 50 }, (_, i) => 11 + i) });

  const messages = await stored();
  assert.equal(messages.length, 60);
  messages.forEach((message, i) => {
    const event = events[i]!;
    assert.equal(message.seq, i + 1);
    assert.equal(message.subject, names.events.subject(event.segment.vendor));
    assert.equal(message.headers[headers.msgId], event.event);
    assert.equal(new TextDecoder().decode(message.data), i < 10 ? JSON.stringify(event) : sentLines[i - 10]);
  });

  // Re-posting is safe: JetStream recognises the ids, the original sequences come back.
  const again = await post(ndjson(events.slice(5, 15)));
  assert.deepEqual(again.body, { accepted: 10, duplicates: 10, sequences: Array.from({ length: 10 }, (_, i) => 6 + i) });
  assert.equal((await stored()).length, 60);
});

test('ingest - HTTP: an invalid batch answers 400 with every bad index and field, and publishes nothing', async (t) => {
  const { post, stored } = await gateway(t);
  const events = generateEvents(5, 12);
  const batch: unknown[] = [...events];
  batch[1] = { ...events[1]!, segment: { vendor: 0, name: 'seg-1' } };
  batch[3] = { ...events[3]!, remove: true, value: 'x' };
  const response = await post(JSON.stringify(batch), { 'Content-Type': 'application/json' });
  assert.equal(response.status, 400);
  assert.deepEqual(response.body.invalid, [
    { index: 1, errors: ['/segment/vendor: must be >= 1'] },
    { index: 3, errors: ['/value: is not allowed when /remove is given'] },
  ]);
  const unparseable = await post(`${JSON.stringify(events[0])}\n{"event":\n`, { 'Content-Type': 'application/x-ndjson' });
  assert.equal(unparseable.status, 400);
  assert.match(String(unparseable.body.error), /line 2: line 2 is not JSON/);
  assert.equal((await stored()).length, 0);
});

test('ingest - HTTP: a body over the limit answers 413', async (t) => {
  const { post, stored } = await gateway(t, { maxBodyBytes: 4096 });
  const response = await post(ndjson(generateEvents(100, 13)));
  assert.equal(response.status, 413);
  assert.equal((await stored()).length, 0);
});

test('ingest - tokens: 401 without a valid token, 403 outside its vendors, 200 with a scoped token', async (t) => {
  const events = generateEvents(200, 14);
  const vendor = events[0]!.segment.vendor;
  const { post, stored, url } = await gateway(t, { tokens: [{ tokenSha256: sha256Hex('s3cret-scoped'), vendors: [vendor] }] });
  const mine = events.filter((e) => e.segment.vendor === vendor).slice(0, 5);
  const other = events.find((e) => e.segment.vendor !== vendor)!;
  assert.equal((await post(ndjson(mine))).status, 401);
  assert.equal((await post(ndjson(mine), { Authorization: 'Bearer nope' })).status, 401);
  const forbidden = await post(ndjson([mine[0], other]), { Authorization: 'Bearer s3cret-scoped' });
  assert.equal(forbidden.status, 403);
  assert.deepEqual(forbidden.body.invalid, [{ index: 1, line: 2, errors: [`/segment/vendor: vendor ${other.segment.vendor} is not allowed for this token`] }]);
  assert.equal((await stored()).length, 0);
  const ok = await post(ndjson(mine), { Authorization: 'Bearer s3cret-scoped' });
  assert.deepEqual(ok.body, { accepted: 5, duplicates: 0, sequences: [1, 2, 3, 4, 5] });
  await assert.rejects(connectJsonV1(url), (error) => error instanceof UpgradeRefusedError && error.status === 401);
  const client = await wsClient(`${url}?token=s3cret-scoped`);
  client.ws.send(`${JSON.stringify(other)}\n${JSON.stringify(mine[0])}`);
  await client.until(() => client.errors().length === 1 && client.processed() === 1, 'an error and an ack');
  assert.equal(client.errors()[0]!.index, 0);
  client.ws.close();
});

test('ingest - WebSocket: acks carry the stream offsets per subject and a running count; bad input gets error frames', async (t) => {
  const { names, stored, url } = await gateway(t, { maxFrameBytes: 64 * 1024 });
  const events = generateEvents(800, 15);
  const client = await wsClient(url);
  // As `segment generate | websocat` sends them: a frame per line; then a frame holding many.
  for (const event of events.slice(0, 500)) client.ws.send(JSON.stringify(event));
  client.ws.send(events.slice(500).map((e) => JSON.stringify(e)).join(' '));
  await client.until(() => client.processed() === 800, '800 processed');
  const messages = await stored();
  assert.equal(messages.length, 800);
  const highest: Record<string, number> = {};
  for (const m of messages) highest[m.subject] = Math.max(highest[m.subject] ?? 0, m.seq);
  const reported: Record<string, number> = {};
  for (const ack of client.acks()) for (const [subject, seq] of Object.entries(ack.offsets)) reported[subject] = Math.max(reported[subject] ?? 0, seq);
  assert.deepEqual(reported, highest);
  assert.ok(Object.keys(reported).every((subject) => names.events.vendorOf(subject) !== undefined));
  assert.deepEqual(messages.map((m) => m.headers[headers.msgId]), events.map((e) => e.event));

  // An invalid document: an error frame naming the frame and the field; the rest of its frame is published.
  const [a, b] = generateEvents(2, 16);
  const bad = { ...a!, segment: { ...a!.segment, vendor: 0 } };
  client.ws.send(`${JSON.stringify(bad)} ${JSON.stringify(b)}`);
  await client.until(() => client.processed() === 801, 'the valid document of the mixed frame');
  assert.deepEqual(client.errors(), [{ error: 'invalid document', frame: 502, index: 0, errors: ['/segment/vendor: must be >= 1'] }]);
  client.ws.send(Buffer.from(JSON.stringify(b)));
  await client.until(() => client.errors().length === 2, 'the binary frame error');
  assert.equal(client.errors()[1]!.frame, 503);
  assert.match(client.errors()[1]!.error, /binary frames are not accepted/);
  assert.equal((await stored()).length, 801);

  // A frame over the limit closes the connection with 1009.
  client.ws.send('x'.repeat(64 * 1024 + 1));
  assert.equal(await client.closed, 1009);

  await assert.rejects(connectJsonV1(url, { protocol: 'json/v2' }), (error) => error instanceof UpgradeRefusedError && error.status === 400);
  const offered = await connectJsonV1(url, { protocol: `chat, ${jsonV1Protocol}` });
  assert.equal(offered.protocol, jsonV1Protocol);
  offered.close();
});

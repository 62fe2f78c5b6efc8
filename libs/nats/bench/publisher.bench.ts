// Publish throughput into a temporary JetStream stream: `js.publish` one at a time against the
// PipelinedPublisher, both with Nats-Msg-Id on ~200-byte event-like JSON documents.
//   npx node libs/nats/bench/publisher.bench.ts [--count N] [--baseline N] [--max-in-flight N] [--server URL]
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { nuid } from '@nats-io/transport-node';
import { connectNats } from '../src/connect.ts';
import { PipelinedPublisher, type PublishItem } from '../src/publisher.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '200000' },
    baseline: { type: 'string', default: '20000' },
    'max-in-flight': { type: 'string', default: '4096' },
    server: { type: 'string', default: 'nats://127.0.0.1:4222' },
  },
});
const count = Number(values.count);
const baselineCount = Math.min(count, Number(values.baseline));
const maxInFlight = Number(values['max-in-flight']);

const token = nuid.next().toLowerCase();
const stream = `BENCH_PUBLISHER_${token.toUpperCase()}`;
const prefix = `bench_${token}.events`;
const vendors = 8;

/** ~200 bytes, shaped like a Segment event. */
function eventLike(i: number): PublishItem {
  const event = randomUUID();
  const vendor = 1 + (i % vendors);
  const doc = {
    event,
    timestamp: new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString(),
    user: `usr-${(i * 7919 % 1_000_000).toString(16).padStart(6, '0')}`,
    segment: { vendor, name: `seg-${(i % 997).toString(36).toUpperCase()}` },
    value: `value-${i % 100}-${'x'.repeat(34)}`,
  };
  return { subject: `${prefix}.${vendor}`, payload: JSON.stringify(doc), msgId: event };
}

function rate(n: number, ms: number): string {
  return `${Math.round((n / ms) * 1000).toLocaleString('en-US')} msgs/s`;
}

const nc = await connectNats({ servers: values.server, name: 'publisher-bench' });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: stream, subjects: [`${prefix}.*`] });
try {
  const items = Array.from({ length: count + baselineCount }, (_, i) => eventLike(i));
  const bytes = items.reduce((sum, item) => sum + Buffer.byteLength(item.payload), 0) / items.length;
  console.log(`stream ${stream}, ${count.toLocaleString('en-US')} messages of ~${Math.round(bytes)} bytes with Nats-Msg-Id`);

  // (a) one at a time: each publish waits for its ack.
  const js = jetstream(nc);
  let start = performance.now();
  for (const item of items.slice(count)) await js.publish(item.subject, item.payload, { msgID: item.msgId! });
  const baselineMs = performance.now() - start;
  console.log(`js.publish one at a time      ${baselineCount.toLocaleString('en-US').padStart(8)}  ${rate(baselineCount, baselineMs)}`);

  // (b) pipelined.
  const publisher = new PipelinedPublisher(nc, { maxInFlight });
  start = performance.now();
  const cpuBefore = process.cpuUsage();
  const summary = await publisher.publishMany(items.slice(0, count));
  const pipelinedMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  await publisher.close();
  const cpuPerMessage = ((cpu.user + cpu.system) / count).toFixed(2);
  console.log(`PipelinedPublisher (${maxInFlight} in flight) ${count.toLocaleString('en-US').padStart(8)}  ${rate(count, pipelinedMs)}, ${cpuPerMessage} µs of this process's CPU per message  (acked ${summary.acked}, duplicates ${summary.duplicates}, failed ${summary.failed})`);

  const info = await jsm.streams.info(stream);
  if (info.state.messages !== count + baselineCount) console.log(`warning: stream holds ${info.state.messages} messages, expected ${count + baselineCount}`);
} finally {
  await jsm.streams.delete(stream);
  await nc.drain();
}

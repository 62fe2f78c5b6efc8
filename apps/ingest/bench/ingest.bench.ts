// Ingest throughput, end to end: a `segment ingest` process on a temporary namespace, fed from this
// process over HTTP (NDJSON bodies) and one WebSocket (a frame per event, as `websocat` sends
// `segment generate` lines; then frames of many events). Rates count events acknowledged by
// JetStream, as the client sees them.
//   npx node apps/ingest/bench/ingest.bench.ts [--count 100000] [--requests 10] [--nats URL]
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { connectJsonV1, ingestPath, type AckFrame } from '@segment/ingest';
import { connectNats, defaultProvisionConfig, deprovision, namesFor, provision } from '@segment/nats';
import { EventGenerator, tickClock } from '@segment/segment';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    requests: { type: 'string', default: '10' },
    'per-frame': { type: 'string', default: '100' },
    nats: { type: 'string', default: process.env.SEGMENT_NATS_URL ?? 'nats://127.0.0.1:4222' },
  },
});
const count = Number(values.count);
const requests = Number(values.requests);
const perFrame = Number(values['per-frame']);
const namespace = `bench_ingest_${Math.random().toString(36).slice(2, 8)}`;
const port = 20_000 + Math.floor(Math.random() * 20_000);
const base = `http://127.0.0.1:${port}`;

const rate = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString('en-US').padStart(7)} events/s`;
const lines = (from: number, to: number, generator: EventGenerator) => Array.from({ length: to - from }, () => JSON.stringify(generator.nextEvent()));

const nc = await connectNats({ servers: values.nats, name: 'ingest-bench' });
const names = namesFor(namespace);
await provision(nc, names, defaultProvisionConfig, pino({ level: 'silent' }));
const cli = fileURLToPath(new URL('../../cli/bin/segment.js', import.meta.url));
const server = spawn(process.execPath, [cli, 'ingest', '--port', String(port), '--namespace', namespace, '--nats', values.nats, '--log-level', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'] });
try {
  for (let i = 0; ; i++) {
    const up = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
    if (up) break;
    if (i > 100) throw new Error('the gateway did not become ready');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const generator = new EventGenerator({ seed: 42, clock: tickClock(Date.UTC(2021, 2, 19), 37) });
  console.log(`namespace ${namespace}, ${count.toLocaleString('en-US')} events per run, gateway pid ${server.pid}`);

  // HTTP: `requests` NDJSON bodies, one after another.
  const perRequest = Math.ceil(count / requests);
  const bodies = Array.from({ length: requests }, () => lines(0, perRequest, generator).join('\n'));
  let start = performance.now();
  for (const body of bodies) {
    const response = await fetch(`${base}${ingestPath}`, { method: 'POST', body, headers: { 'Content-Type': 'application/x-ndjson' } });
    if (response.status !== 200) throw new Error(`POST answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
  }
  console.log(`HTTP NDJSON, ${requests} sequential requests of ${perRequest.toLocaleString('en-US')}   ${rate(perRequest * requests, performance.now() - start)}`);

  // HTTP: the same volume as 4 concurrent clients.
  const concurrent = Array.from({ length: requests }, () => lines(0, perRequest, generator).join('\n'));
  start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < concurrent.length) {
        const body = concurrent[next++]!;
        const response = await fetch(`${base}${ingestPath}`, { method: 'POST', body, headers: { 'Content-Type': 'application/x-ndjson' } });
        if (response.status !== 200) throw new Error(`POST answered ${response.status}`);
        await response.arrayBuffer();
      }
    }),
  );
  console.log(`HTTP NDJSON, ${requests} requests over 4 connections        ${rate(perRequest * requests, performance.now() - start)}`);

  // WebSocket: one frame per event, then `perFrame` events per frame.
  for (const size of [1, perFrame]) {
    const events = lines(0, count, generator);
    const ws = await connectJsonV1(`ws://127.0.0.1:${port}${ingestPath}`);
    let processed = 0;
    let acks = 0;
    const done = new Promise<void>((resolve, reject) => {
      ws.on('message', (data) => {
        const frame = JSON.parse(String(data)) as AckFrame | { error: string };
        if ('error' in frame) reject(new Error(frame.error));
        else {
          acks++;
          processed = frame.processed;
          if (processed === count) resolve();
        }
      });
      ws.on('close', (code) => reject(new Error(`closed ${code} at ${processed}`)));
    });
    start = performance.now();
    // Respect the socket's back-pressure as websocat does: wait for the kernel buffer to drain.
    for (let i = 0; i < events.length; i += size) {
      ws.send(size === 1 ? events[i]! : events.slice(i, i + size).join('\n'));
      while (ws.bufferedAmount > 1024 * 1024) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await done;
    const ms = performance.now() - start;
    ws.removeAllListeners('close');
    ws.close();
    console.log(`WebSocket, 1 connection, ${String(size).padStart(3)} event(s) per frame              ${rate(count, ms)}  (${acks} acks)`);
  }
} finally {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  await deprovision(nc, names);
  await nc.close();
}

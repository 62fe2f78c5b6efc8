import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { sql } from 'kysely';
import { connectNats } from '@segment/nats';
import { openDatabase } from '@segment/postgres';
import { databaseUrl } from './support/postgres.ts';
import { natsUrl } from './support/streams.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

const fields = ['events', 'eventsPerSecond', 'rawPublishPerSecond', 'ratioToRawPublish', 'naivePerSecond', 'p50LatencyMs', 'p99LatencyMs', 'peakRssMb', 'mismatches'];

test('bench - a smoke run through the gateway: every row equals the reference model, the JSON has every field, the namespace is removed', { timeout: 180_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'segment-bench-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const json = join(dir, 'bench.json');
  const child = spawn(
    process.execPath,
    ['apps/cli/bin/segment.js', 'bench', '--events', '20000', '--rate', '2000', '--latency-seconds', '3', '--naive-seconds', '2', '--json', json],
    { cwd: root, env: { ...process.env, SEGMENT_NATS_URL: natsUrl, SEGMENT_DATABASE_URL: databaseUrl }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  assert.equal(code, 0, stderr);

  const result = JSON.parse(await readFile(json, 'utf8'));
  for (const field of fields) assert.equal(typeof result[field], 'number', `${field} in ${JSON.stringify(result)}`);
  assert.equal(result.events, 20_000);
  assert.equal(result.mismatches, 0);
  assert.equal(result.exactness.mode, 'full');
  assert.ok(result.eventsPerSecond > 0 && result.rawPublishPerSecond > 0 && result.naivePerSecond > 0);
  assert.ok(result.latency.probes > 0 && result.latency.lost === 0, JSON.stringify(result.latency));
  // Every probe's latency is split at its event's and its membership's stored times, in that order.
  const { byStage } = result.latency;
  assert.equal(byStage.probes, result.latency.probes, JSON.stringify(byStage));
  for (const hop of ['gateway', 'derive', 'project']) {
    assert.ok(byStage[hop].p50Ms >= 0 && byStage[hop].p99Ms >= byStage[hop].p50Ms, `${hop}: ${JSON.stringify(byStage[hop])}`);
  }
  assert.ok(byStage.gateway.p50Ms + byStage.derive.p50Ms + byStage.project.p50Ms <= result.latency.maxMs, JSON.stringify(byStage));
  // A 3-second phase: the probes grouped by the second they were sent in, the slowest being the phase's.
  const { bySecond } = result.latency;
  assert.ok(bySecond.length >= 3 && bySecond.length <= 4, JSON.stringify(bySecond));
  assert.equal(Math.max(...bySecond.map((second: { maxMs: number }) => second.maxMs)), result.latency.maxMs);
  assert.match(stdout, /^\| latency p50 \/ max by second of the phase \| (\d+\/\d+, )+\d+\/\d+ ms \|/m);
  for (const stage of ['ingest', 'derive', 'project']) {
    assert.ok(result.cpuSeconds[stage] > 0, `cpu of ${stage}`);
    assert.ok(result.latency.cpuCores[stage] > 0 && result.latency.cpuCores[stage] < 2, `cores busy of ${stage} at the latency rate`);
    assert.ok(result.rssMb[stage] > 0, `rss of ${stage}`);
    // Sampled each second through the phase: a quarter without a sample reads 0, none above the peak.
    assert.ok(result.rssMbByQuarter[stage].length === 4 && result.rssMbByQuarter[stage].some((mb: number) => mb > 0), `rss by quarter of ${stage}`);
    assert.ok(result.rssMbByQuarter[stage].every((mb: number) => mb <= result.rssMb[stage]), `rss by quarter of ${stage} within its peak`);
  }
  // The server it ran on: the version the connection reported, also in the table's heading.
  assert.match(result.natsServerVersion, /^\d+\.\d+\.\d+/);
  assert.ok(stdout.includes(`nats-server ${result.natsServerVersion}, Postgres `), stdout.slice(0, 400));
  assert.match(stdout, /^\| end-to-end throughput \| [\d,]+ events\/s/m);
  assert.match(stdout, /^\| mismatches vs reference model \| 0 /m);
  for (const phase of ['throughput', 'latency']) {
    const activity = result.postgresCheckpoints[phase];
    assert.ok(activity.checkpoints >= 0 && activity.syncSeconds >= 0 && activity.writeSeconds >= 0, `${phase}: ${JSON.stringify(activity)}`);
  }
  // Every transaction with memberships published one message, of a batch of the smoke run's events.
  assert.ok(result.derivedMessages.memberships > 0 && result.derivedMessages.memberships < result.events, JSON.stringify(result.derivedMessages));
  assert.match(stdout, /^\| derived messages, throughput phase \| memberships [\d,]+, profiles [\d,]+, toggles [\d,]+ \|/m);
  assert.ok(result.latency.derivedMessages.memberships > 0 && result.latency.derivedMessages.memberships <= result.latency.sent, JSON.stringify(result.latency.derivedMessages));
  assert.match(stdout, /^\| RSS by quarter of the throughput phase \| ingest [\d,]+ \/ [\d,]+ \/ [\d,]+ \/ [\d,]+; derive /m);
  assert.match(stdout, /^\| Postgres checkpoints, latency phase \| \d+ checkpoints? started \(writing [\d.]+ s, syncing [\d.]+ s\)/m);
  assert.match(stdout, /^\| latency by stage, p50 \/ p99 \(slowest 1%\) \| gateway to events stream \d+ \/ \d+ ms \(\d+\), derive \d+ \/ \d+ ms \(\d+\), project to visible \d+ \/ \d+ ms \(\d+\) \|/m);
  assert.match(stdout, /^\| CPU derive \| [\d.]+ s = [\d,]+ µs\/event; [\d.]+ cores at [\d,]+\/s /m);
  t.diagnostic(`${Math.round(result.eventsPerSecond)} events/s end to end, raw publish ${Math.round(result.rawPublishPerSecond)}/s, p99 ${Math.round(result.p99LatencyMs)} ms`);

  // The namespace's streams and schema are gone.
  const nc = await connectNats({ servers: natsUrl, name: 'test-bench' });
  const database = openDatabase({ connectionString: databaseUrl, schema: result.namespace });
  try {
    const jsm = await jetstreamManager(nc);
    const streams: string[] = [];
    for await (const name of jsm.streams.names()) if (name.includes(result.namespace.toUpperCase())) streams.push(name);
    assert.deepEqual(streams, []);
    const { rows } = await sql`SELECT 1 FROM information_schema.schemata WHERE schema_name = ${result.namespace}`.execute(database.db);
    assert.equal(rows.length, 0);
  } finally {
    await nc.close();
    await database.destroy();
  }
});

// `segment bench`: the real pipeline on the real services in a namespace of its own. Setup →
// generate → baselines (raw publish, naive upserts) → stages as processes → throughput phase
// (everything through the gateway, until caught up) → latency phase (fixed rate, probes) →
// exactness (every Postgres row against the reference model) → cleanup.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, defaultProvisionConfig, deprovision, derivedCollections, namesFor, provision, type DerivedCollection, type Names } from '@segment/nats';
import { pipelineProgress, waitUntilCaughtUp, type PipelineProgress } from '@segment/pipeline';
import { dropSchema, migrate, openDatabase, type SegmentDatabase } from '@segment/postgres';
import { exampleModel } from '@segment/segment';
import type { Logger } from '@segment/telemetry';
import { deleteRawStream, naiveUpserts, rawPublish } from './baselines.ts';
import { checkExactness } from './exactness.ts';
import { createIngestClient, type IngestClient } from './ingest-client.ts';
import { measureLatency } from './latency.ts';
import { latencyByStage, markStreams } from './latency-stages.ts';
import { groupCpuSeconds, natsServerPid, peakRssMb, rssMb, snapshotCpu, startStage, type Stage, type StageName } from './processes.ts';
import { checkpointActivityBetween, describeCheckpointActivity, describePostgresSettings, readCheckpointActivity, readPostgresSettings } from './postgres-settings.ts';
import { coresBusy, describeBySecond, describeLatencyByStage, evaluateTargets, type BenchResult, type CpuSeconds } from './report.ts';
import { generateWorkload, referenceOf, type Chunk } from './workload.ts';

export { renderMarkdown, toJson, type BenchResult } from './report.ts';

export interface BenchOptions {
  natsUrl: string;
  databaseUrl: string;
  /** Default `bench_<random>`. */
  namespace?: string;
  events: number;
  seed?: number;
  /** Events per second in the latency phase. */
  rate: number;
  latencySeconds: number;
  /** Derivation worker processes splitting the vendor partitions (scale-out on one machine). */
  deriveReplicas?: number;
  /** Events per POST and POSTs in flight in the throughput phase. */
  batchSize?: number;
  concurrency?: number;
  naiveEvents?: number;
  naiveSeconds?: number;
  /** Above this many events the exactness check samples users (the reference model's memory). */
  fullCheckLimit?: number;
  /** How long the events stream remembers an event id (default: `segment setup`'s, 10 minutes). */
  duplicateWindowMs?: number;
  /** Keep the streams and the schema afterwards. */
  keep?: boolean;
  logger: Logger;
  /** Progress lines (stderr). */
  say: (line: string) => void;
  signal?: AbortSignal;
}

// A progress read asks the server for every partition's state; on a 10M-event stream ten a second
// slowed the server the bench measures (and timed out). The end time is known to within 250 ms.
const progressIntervalMs = 2_000;
const rssSampleMs = 1_000;
const stageNames: readonly StageName[] = ['ingest', 'derive', 'project'];
const caughtUpPollMs = 250;
const cli = fileURLToPath(new URL('../../cli/bin/segment.js', import.meta.url));
const stageReadyTimeoutMs = 60_000;
/** Every 50th latency event is a probe: at 5,000 events/s, 100 probes a second. */
const probeEvery = 50;
const readyMessages: Record<StageName, string> = { ingest: 'ingesting', derive: 'deriving', project: 'projecting' };
/** What a stage reports as it stops, shown in the bench's output. */
const summaryMessages: ReadonlySet<string> = new Set(['register store', 'projector stopped']);

const count = (n: number) => Math.round(n).toLocaleString('en-US');

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Error('interrupted');
}

/** `work`, or a rejection as soon as `signal` aborts (the work itself carries on, unobserved). */
function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      if (signal.aborted) reject(new Error('interrupted'));
      signal.addEventListener('abort', () => reject(new Error('interrupted')), { once: true });
    }),
  ]);
}

/** Messages in each derived stream: one per derivation transaction with output for the collection. */
async function derivedMessageCounts(nc: NatsConnection, names: Names): Promise<Record<DerivedCollection, number>> {
  const jsm = await jetstreamManager(nc);
  const counts = await Promise.all(derivedCollections.map(async (collection) => [collection, (await jsm.streams.info(names.derived[collection].stream)).state.messages] as const));
  return Object.fromEntries(counts) as Record<DerivedCollection, number>;
}

/** A memory figure of each stage from /proc, summed over its processes (derive replicas). */
function stageRss(stagePids: Record<StageName, number[]>, read: (pid: number) => number | undefined): Record<StageName, number> {
  return Object.fromEntries(stageNames.map((name) => [name, stagePids[name].reduce((sum, pid) => sum + (read(pid) ?? Number.NaN), 0)])) as Record<StageName, number>;
}

/** Per stage, the largest RSS sampled in each quarter of a phase of `phaseMs`. */
function peakByQuarter(samples: readonly { atMs: number; mb: Record<StageName, number> }[], phaseMs: number): Record<StageName, number[]> {
  return Object.fromEntries(
    stageNames.map((name) => {
      const quarters = [0, 0, 0, 0];
      for (const { atMs, mb } of samples) {
        const quarter = Math.min(3, Math.floor((atMs / phaseMs) * 4));
        quarters[quarter] = Math.max(quarters[quarter]!, mb[name]);
      }
      return [name, quarters];
    }),
  ) as Record<StageName, number[]>;
}

function countsBetween(before: Record<DerivedCollection, number>, after: Record<DerivedCollection, number>): Record<DerivedCollection, number> {
  return Object.fromEntries(derivedCollections.map((collection) => [collection, after[collection] - before[collection]])) as Record<DerivedCollection, number>;
}

function describeProgress(progress: PipelineProgress): string {
  const uncommitted = progress.derive.filter((p) => p.committed < p.lastSeq).length;
  return `derive lag ${count(progress.deriveLag)} events (${uncommitted} partitions uncommitted) | project lag ${count(progress.projectLag)} msgs${progress.caughtUp ? ' | caught up' : ''}`;
}

/** Each lane posts its chunks one request at a time, in order; the lanes run side by side. */
async function postAll(client: IngestClient, chunks: readonly Chunk[], lanes: number, onPosted: (events: number) => void, signal?: AbortSignal): Promise<void> {
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (const chunk of chunks) {
        if (chunk.lane !== lane) continue;
        checkAborted(signal);
        await client.post(chunk.body);
        onPosted(chunk.count);
      }
    }),
  );
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const { say, signal, logger } = options;
  const namespace = options.namespace ?? `bench_${randomBytes(4).toString('hex')}`;
  const seed = options.seed ?? exampleModel.seed;
  const batchSize = options.batchSize ?? 5_000;
  const concurrency = options.concurrency ?? 4;
  const names: Names = namesFor(namespace);
  const stages: Stage[] = [];
  let nc: NatsConnection | undefined;
  let database: SegmentDatabase | undefined;
  let client: IngestClient | undefined;
  try {
    nc = await connectNats({ servers: options.natsUrl, name: 'segment-bench' });
    database = openDatabase({ connectionString: options.databaseUrl, schema: namespace, applicationName: 'segment-bench', maxConnections: 4 });
    await provision(nc, names, { ...defaultProvisionConfig, duplicateWindowMs: options.duplicateWindowMs ?? defaultProvisionConfig.duplicateWindowMs }, logger);
    await migrate(database);
    const postgresSettings = await readPostgresSettings(database);
    const natsServerVersion = nc.info?.version ?? 'unknown';
    say(`bench: namespace ${namespace} (streams ${names.events.stream}…, Postgres schema ${namespace}); nats-server ${natsServerVersion}; ${describePostgresSettings(postgresSettings)}`);

    let started = performance.now();
    const latencyEvents = Math.ceil(options.rate * options.latencySeconds);
    const workload = generateWorkload({ events: options.events, seed, batchSize, lanes: concurrency, latencyEvents, probeEvery, fullCheckLimit: options.fullCheckLimit ?? 2_000_000 });
    say(
      `bench: generated ${count(options.events)} + ${count(latencyEvents)} events (seed ${seed}) in ${((performance.now() - started) / 1000).toFixed(1)} s` +
        (workload.sampleEvery > 1 ? `; exactness sampled: users 1 in ${workload.sampleEvery}` : ''),
    );
    checkAborted(signal);

    // Baselines first, while no stage runs: each measures one thing on otherwise quiet services.
    const raw = await rawPublish(nc, names, workload.chunks);
    say(`bench: raw JetStream publish ${count(raw.perSecond)} events/s (${count(raw.events)} in ${raw.seconds.toFixed(1)} s)`);
    checkAborted(signal);
    const naive = await naiveUpserts(options.databaseUrl, namespace, workload.chunks, { maxEvents: options.naiveEvents ?? 20_000, maxSeconds: options.naiveSeconds ?? 10 });
    say(`bench: naive one-by-one upserts ${count(naive.perSecond)} events/s (${count(naive.events)} in ${naive.seconds.toFixed(1)} s)`);
    checkAborted(signal);

    const env = { ...process.env, SEGMENT_NATS_URL: options.natsUrl, SEGMENT_DATABASE_URL: options.databaseUrl, SEGMENT_NAMESPACE: namespace };
    const replicas = options.deriveReplicas ?? 1;
    const stageSpecs: { name: StageName; args: string[] }[] = [
      { name: 'ingest', args: ['--port', '0', '--namespace', namespace] },
      ...Array.from({ length: replicas }, (_, k) => ({ name: 'derive' as const, args: ['--namespace', namespace, '--replica-index', String(k), '--replica-count', String(replicas)] })),
      { name: 'project', args: ['--namespace', namespace] },
    ];
    const onWarning = (line: string) => say(`bench: ${line}`);
    const startedStages = await Promise.allSettled(
      stageSpecs.map(({ name, args }) => startStage(name, { cli, args, env, readyMessage: readyMessages[name], timeoutMs: stageReadyTimeoutMs, onWarning, summaryMessages, onSummary: onWarning })),
    );
    for (const outcome of startedStages) if (outcome.status === 'fulfilled') stages.push(outcome.value);
    const failedStage = startedStages.find((outcome) => outcome.status === 'rejected');
    if (failedStage) throw failedStage.reason;
    // A stage may run as several processes (derive replicas): its figures are their sums.
    const stagePids = Object.fromEntries(stageNames.map((name) => [name, stages.filter((s) => s.name === name).map((s) => s.pid)])) as Record<StageName, number[]>;
    const port = Number(stages.find((s) => s.name === 'ingest')!.ready.port);
    client = createIngestClient(port, concurrency);
    if (!(await client.ready())) throw new Error(`the gateway on port ${port} is not ready (GET /readyz)`);
    say(`bench: stages running: ${stages.map((s) => `${s.name} pid ${s.pid}`).join(', ')}; gateway on port ${port}`);

    // Throughput: everything through the gateway as fast as it takes it, until caught up.
    const natsPid = natsServerPid(options.natsUrl);
    /** CPU seconds per component from now until the returned function is called. */
    const meterCpu = (): (() => CpuSeconds) => {
      const pids = [...stages.map((s) => s.pid), ...(natsPid === undefined ? [] : [natsPid])];
      const postgresBefore = groupCpuSeconds('postgres');
      const before = snapshotCpu(pids);
      const benchBefore = process.cpuUsage();
      return () => {
        const after = snapshotCpu(pids);
        const postgres = groupCpuSeconds('postgres') - postgresBefore;
        const bench = process.cpuUsage(benchBefore);
        const cpuOf = (pid: number) => (after.get(pid) ?? Number.NaN) - (before.get(pid) ?? Number.NaN);
        const cpuOfStage = (name: StageName) => stagePids[name].reduce((sum, pid) => sum + cpuOf(pid), 0);
        return {
          ingest: cpuOfStage('ingest'),
          derive: cpuOfStage('derive'),
          project: cpuOfStage('project'),
          natsServer: natsPid === undefined ? null : cpuOf(natsPid),
          postgres,
          bench: (bench.user + bench.system) / 1e6,
        };
      };
    };
    const checkpointsAtStart = await readCheckpointActivity(database, postgresSettings);
    const throughputCpu = meterCpu();
    let posted = 0;
    const phaseStart = performance.now();
    let reporting = false;
    const progressTimer = setInterval(() => {
      // One at a time: under load a progress read can take longer than the interval.
      if (reporting) return;
      reporting = true;
      void pipelineProgress(nc!, database!, names)
        .then(
          (progress) => say(`bench: ${((performance.now() - phaseStart) / 1000).toFixed(0)} s | posted ${count(posted)}/${count(options.events)} | ${describeProgress(progress)}`),
          () => undefined,
        )
        .finally(() => (reporting = false));
    }, progressIntervalMs);
    // Each stage's RSS through the phase: what it holds should stop growing once its bounds fill.
    const rssSamples: { atMs: number; mb: Record<StageName, number> }[] = [];
    const sampleRss = () => rssSamples.push({ atMs: performance.now() - phaseStart, mb: stageRss(stagePids, rssMb) });
    const rssTimer = setInterval(sampleRss, rssSampleMs);
    let postedAt: number;
    let caughtUpAt: number;
    try {
      await postAll(client, workload.chunks, concurrency, (n) => (posted += n), signal);
      postedAt = performance.now();
      // Assume at least 2,000 events/s, plus a minute, before calling the pipeline stuck.
      await abortable(waitUntilCaughtUp(nc, database, names, { timeoutMs: 60_000 + (options.events / 2_000) * 1_000, intervalMs: caughtUpPollMs }), signal);
      caughtUpAt = performance.now();
      sampleRss();
    } finally {
      clearInterval(progressTimer);
      clearInterval(rssTimer);
    }
    const cpuSeconds = throughputCpu();
    const checkpointsAfterThroughput = await readCheckpointActivity(database, postgresSettings);
    const derivedMessages = await derivedMessageCounts(nc, names);
    const endToEndSeconds = (caughtUpAt - phaseStart) / 1000;
    const eventsPerSecond = options.events / endToEndSeconds;
    say(`bench: ${count(options.events)} events end to end in ${endToEndSeconds.toFixed(1)} s = ${count(eventsPerSecond)} events/s (posted in ${((postedAt - phaseStart) / 1000).toFixed(1)} s)`);
    checkAborted(signal);

    // Latency: a fixed rate, probes polled in Postgres.
    say(`bench: latency phase: ${count(options.rate)} events/s for ${options.latencySeconds} s, a probe every ${probeEvery} events`);
    const marks = await markStreams(nc, names);
    const latencyCpu = meterCpu();
    const latencyStart = performance.now();
    const latency = await measureLatency({ client, database, events: workload.latency, rate: options.rate, settleTimeoutMs: 30_000, signal });
    const latencyCores = coresBusy(latencyCpu(), (performance.now() - latencyStart) / 1000);
    const postgresCheckpoints = {
      throughput: checkpointActivityBetween(checkpointsAtStart, checkpointsAfterThroughput),
      latency: checkpointActivityBetween(checkpointsAfterThroughput, await readCheckpointActivity(database, postgresSettings)),
    };
    say(`bench: Postgres during the latency phase: ${describeCheckpointActivity(postgresCheckpoints.latency)}`);
    say(`bench: latency p50 ${latency.p50Ms.toFixed(0)} ms, p99 ${latency.p99Ms.toFixed(0)} ms over ${latency.latenciesMs.length} probes (${latency.lost} lost), sent ${count(latency.sentPerSecond)} events/s`);
    say(`bench: latency p50 / max by second of the phase: ${describeBySecond(latency.bySecond)}`);
    await abortable(waitUntilCaughtUp(nc, database, names, { timeoutMs: 120_000, intervalMs: caughtUpPollMs }), signal);
    const latencyDerivedMessages = countsBetween(derivedMessages, await derivedMessageCounts(nc, names));
    const byStage = await latencyByStage(nc, names, marks, latency.seen);
    say(`bench: latency by stage, p50 / p99 (mean of the slowest 1%): ${describeLatencyByStage(byStage)}, over ${count(byStage.probes)} probes`);

    const rssByQuarter = peakByQuarter(rssSamples, endToEndSeconds * 1000);
    // The kernel raises VmHWM only when the process unmaps memory: pages reclaimed from it (this VM
    // pages out cold file pages) lower its RSS without that, and a sample taken before read more.
    const highWater = stageRss(stagePids, peakRssMb);
    const peakRss = Object.fromEntries(stageNames.map((name) => [name, Math.max(highWater[name], ...rssByQuarter[name]!)])) as Record<StageName, number>;
    client.close();
    client = undefined;
    const exits = await Promise.all(stages.splice(0).map(async (s) => [s.name, await s.stop()] as const));
    for (const [name, code] of exits) if (code !== 0) say(`bench: segment ${name} exited with ${code} on SIGTERM`);

    started = performance.now();
    const reference = referenceOf(workload);
    say(`bench: reference model built from the ${count(options.events + latencyEvents)} events sent in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    started = performance.now();
    const exactness = await checkExactness(database, reference, workload.sampleEvery);
    say(`bench: exactness (${exactness.mode}) checked in ${((performance.now() - started) / 1000).toFixed(1)} s: ${exactness.mismatches} mismatches`);
    for (const diff of exactness.collections) for (const example of diff.examples) say(`bench:   ${example}`);

    const result: Omit<BenchResult, 'targets'> = {
      namespace,
      seed,
      natsServerVersion,
      postgresSettings,
      postgresCheckpoints,
      derivedMessages,
      events: options.events,
      eventsPerSecond,
      endToEndSeconds,
      ingestPerSecond: options.events / ((postedAt - phaseStart) / 1000),
      rawPublishPerSecond: raw.perSecond,
      ratioToRawPublish: eventsPerSecond / raw.perSecond,
      naivePerSecond: naive.perSecond,
      naiveEvents: naive.events,
      latency: {
        rate: options.rate,
        seconds: options.latencySeconds,
        sent: latency.sent,
        sentPerSecond: latency.sentPerSecond,
        probes: latency.probes,
        lost: latency.lost,
        p50Ms: latency.p50Ms,
        p99Ms: latency.p99Ms,
        maxMs: latency.maxMs,
        bySecond: latency.bySecond,
        byStage,
        cpuCores: latencyCores,
        derivedMessages: latencyDerivedMessages,
      },
      p50LatencyMs: latency.p50Ms,
      p99LatencyMs: latency.p99Ms,
      cpuSeconds,
      rssMb: peakRss,
      rssMbByQuarter: rssByQuarter,
      peakRssMb: Math.max(...Object.values(peakRss)),
      mismatches: exactness.mismatches,
      exactness,
    };
    return { ...result, targets: evaluateTargets(result) };
  } finally {
    client?.close();
    await Promise.all(stages.map((s) => s.stop(5_000)));
    if (nc) await deleteRawStream(nc, names).catch(() => undefined);
    if (options.keep) say(`bench: kept namespace ${namespace} (streams and Postgres schema)`);
    else {
      if (nc) await deprovision(nc, names).catch((error: unknown) => say(`bench: deleting the streams of ${namespace} failed: ${String(error)}`));
      if (database) await dropSchema(database).catch((error: unknown) => say(`bench: dropping schema ${namespace} failed: ${String(error)}`));
    }
    await database?.destroy();
    await nc?.close();
  }
}

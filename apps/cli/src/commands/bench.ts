import { writeFile } from 'node:fs/promises';
import { loadConfig } from '@segment/config';
import { defaultProvisionConfig } from '@segment/nats';
import { exampleModel } from '@segment/segment';
import { createLogger } from '@segment/telemetry';
import { renderMarkdown, runBench, toJson } from '@segment/app-bench';
import { integerFlag, numberFlag, parseCommandArgs, shutdownSignal, type Command } from '../command.ts';

const usage = `usage: segment bench --events N [options]     (npm run bench -- --events N)

Runs the real pipeline on the real services in a namespace of its own (bench_<random>, and a
Postgres schema of the same name): the ingest gateway, the derivation worker and the projectors
as separate processes. Generates N events with the example's model (deterministic: --seed and a
fixed clock), and on the same events measures:

  raw publish    the events into a temporary stream with the pipelined publisher (the ceiling)
  naive          one INSERT ... ON CONFLICT per event on one connection (min(N, --naive-events)
                 events or --naive-seconds)
  throughput     all N events POSTed to the gateway as NDJSON (--batch per request, --concurrency
                 requests in flight) until every stage has caught up: sustained events/s, CPU
                 seconds per component (from /proc) over that time, peak RSS per stage and
                 its largest in each quarter of the phase
  latency        --rate events/s for --latency-seconds; every 50th a probe (a new user) whose
                 membership row is polled in Postgres every 10 ms: p50/p99 publish to visible
  exactness      every row of segment_memberships, segment_profiles and segment_toggles against
                 the reference model (above --full-check-limit events: a sample of users)

Prints a markdown table on stdout (progress on stderr). Exits 0 whether or not the targets are
met, 1 when a row differs from the reference model. Streams and schema are removed at the end.

options:
  --events N              events of the throughput phase (default 100000)
  --rate R                events per second in the latency phase (default 5000)
  --latency-seconds S     length of the latency phase (default 10)
  --json FILE             also write the results as JSON
  --seed S                generator seed (default ${exampleModel.seed})
  --batch N               events per POST (default 5000)
  --concurrency N         POSTs in flight (default 4)
  --derive-replicas N     derivation worker processes splitting the vendors (default 1)
  --naive-events N        at most this many events for the naive baseline (default 20000)
  --naive-seconds S       at most this long for the naive baseline (default 10)
  --full-check-limit N    above N events, check a sample of users only (default 2000000)
  --duplicate-window S    seconds the events stream remembers an event id (default ${defaultProvisionConfig.duplicateWindowMs / 1000}, as segment setup)
  --namespace NAME        instead of bench_<random>
  --keep                  keep the streams and the Postgres schema
  --nats URL              NATS servers (env SEGMENT_NATS_URL, default nats://127.0.0.1:4222)
  --database URL          Postgres (env SEGMENT_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres)`;


export const command: Command = {
  async run(args) {
    const { values } = parseCommandArgs(
      args,
      {
        events: { type: 'string' },
        rate: { type: 'string' },
        'latency-seconds': { type: 'string' },
        json: { type: 'string' },
        seed: { type: 'string' },
        batch: { type: 'string' },
        concurrency: { type: 'string' },
        'derive-replicas': { type: 'string' },
        'naive-events': { type: 'string' },
        'naive-seconds': { type: 'string' },
        'full-check-limit': { type: 'string' },
        'duplicate-window': { type: 'string' },
        namespace: { type: 'string' },
        keep: { type: 'boolean' },
        nats: { type: 'string' },
        database: { type: 'string' },
      },
      usage,
    );
    const config = loadConfig(process.env, { natsUrl: values.nats, databaseUrl: values.database, logLevel: 'warn' });
    const logger = createLogger({ name: 'bench', level: config.logLevel });
    const signal = shutdownSignal(() => process.stderr.write('bench: interrupted, cleaning up…\n'));
    const result = await runBench({
      natsUrl: config.natsUrl,
      databaseUrl: config.databaseUrl,
      namespace: values.namespace,
      events: integerFlag('events', values.events, 100_000, 1),
      seed: integerFlag('seed', values.seed, exampleModel.seed, Number.MIN_SAFE_INTEGER),
      rate: numberFlag('rate', values.rate, 5_000, 1),
      latencySeconds: numberFlag('latency-seconds', values['latency-seconds'], 10, 0),
      batchSize: integerFlag('batch', values.batch, 5_000, 1),
      concurrency: integerFlag('concurrency', values.concurrency, 4, 1),
      deriveReplicas: integerFlag('derive-replicas', values['derive-replicas'], 1, 1),
      naiveEvents: integerFlag('naive-events', values['naive-events'], 20_000, 0),
      naiveSeconds: numberFlag('naive-seconds', values['naive-seconds'], 10, 0),
      fullCheckLimit: integerFlag('full-check-limit', values['full-check-limit'], 2_000_000, 1),
      duplicateWindowMs: Math.round(numberFlag('duplicate-window', values['duplicate-window'], defaultProvisionConfig.duplicateWindowMs / 1000, 0.001) * 1000),
      keep: values.keep ?? false,
      logger,
      say: (line) => process.stderr.write(`${line}\n`),
      signal,
    });
    process.stdout.write(`${renderMarkdown(result)}\n`);
    if (values.json !== undefined) await writeFile(values.json, toJson(result));
    logger.flush();
    return result.mismatches > 0 ? 1 : 0;
  },
};

// `segment develop` (npm start): the whole pipeline in one process — setup, ingest gateway,
// derivations, projectors and a generator — with a live status line. Ctrl-C drains and exits.
import { jetstreamManager } from '@nats-io/jetstream';
import { loadConfig } from '@segment/config';
import { resolveNats, resolvePostgres } from '@segment/devenv';
import { connectNats, namesFor, PipelinedPublisher, type Names } from '@segment/nats';
import { startPipeline, pipelineProgress } from '@segment/pipeline';
import { openDatabase } from '@segment/postgres';
import { EventGenerator } from '@segment/segment';
import { createLogger } from '@segment/telemetry';
import { startIngestServer } from '@segment/app-ingest';
import { numberFlag, parseCommandArgs, shutdownSignal, type Command } from '../command.ts';

const usage = `usage: segment develop [options]     (npm start)

Runs the whole pipeline in one process: setup, the ingest gateway (HTTP and WebSocket json/v1),
the derivations, the Postgres projectors and a built-in generator, with a live status line.
With no NATS server reachable it starts nats-server (if installed) with its store in .segment/;
with no Postgres reachable it uses an embedded PGlite database in .segment/. Ctrl-C drains and exits.

options:
  --generate RATE    generated events per second (default 1000; 0 = off)
  --port N           ingest gateway port (default 8080; 0 = any free port)
  --host HOST        ingest gateway address (default 127.0.0.1)
  --nats URL         NATS servers (env SEGMENT_NATS_URL, default nats://127.0.0.1:4222)
  --database URL     Postgres (env SEGMENT_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres)
  --namespace NAME   streams, buckets and Postgres schema (env SEGMENT_NAMESPACE, default segment)
  --state-dir DIR    where started services keep their data (default .segment)
  --seed S           generator seed (default: a new one per run, so event ids never repeat)
  --log-level LEVEL  pino level on stderr (default warn, so the status line stays readable)`;

/** Paces generated events into the events stream, in slices of 50 ms. */
function startGenerator(publisher: PipelinedPublisher, names: Names, rate: number, seed: number, onError: (error: unknown) => void) {
  const generator = new EventGenerator({ seed, clock: Date.now });
  let generated = 0;
  const startedAt = Date.now();
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - startedAt) / 1000) * rate) - generated;
    // Never queue more than a second's worth: a slow pipeline slows the generator down.
    for (let i = 0; i < Math.min(due, rate) && publisher.queued < rate; i++) {
      const event = generator.nextEvent();
      generated++;
      publisher.publish(names.events.subject(event.segment.vendor), JSON.stringify(event), { msgId: event.event }).catch(onError);
    }
    if (due > rate) generated += due - rate;
  }, 50);
  return { stop: () => clearInterval(timer), get generated() { return generated; } };
}

export const command: Command = {
  async run(args) {
    const { values } = parseCommandArgs(
      args,
      {
        generate: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        nats: { type: 'string' },
        database: { type: 'string' },
        namespace: { type: 'string' },
        'state-dir': { type: 'string' },
        seed: { type: 'string' },
        'log-level': { type: 'string' },
      },
      usage,
    );
    const rate = numberFlag('generate', values.generate, 1000, 0);
    const port = numberFlag('port', values.port, 8080, 0, 65535);
    // A fresh seed per run by default: the same seed repeats event ids, which JetStream de-duplicates.
    const seed = numberFlag('seed', values.seed, Date.now() % 2 ** 31);
    const stateDir = values['state-dir'] ?? '.segment';
    const config = loadConfig(process.env, { natsUrl: values.nats, databaseUrl: values.database, namespace: values.namespace, logLevel: values['log-level'] ?? 'warn' });
    const logger = createLogger({ name: 'develop', level: config.logLevel });
    const signal = shutdownSignal();
    const say = (line: string) => process.stderr.write(`${line}\n`);

    const nats = await resolveNats(config.natsUrl, { stateDir, logger, path: process.env.PATH ?? '' });
    say(`segment develop: ${nats.description}`);
    const postgres = await resolvePostgres(config.databaseUrl, { stateDir });
    say(`segment develop: ${postgres.description}`);
    const names = namesFor(config.namespace);
    const nc = await connectNats({ servers: nats.url, name: 'segment-develop' });
    const database = openDatabase({ connectionString: postgres.url, schema: config.namespace, applicationName: 'segment-develop' });
    let failures = 0;
    try {
      const pipeline = await startPipeline({ nc, names, logger, database, provision: { replicas: config.replicas } });
      const ingest = await startIngestServer({ nc, names, logger, port, host: values.host ?? '127.0.0.1' });
      say(`segment develop: ingest at http://${values.host ?? '127.0.0.1'}:${ingest.port}/ingest/segment/events (POST JSON/NDJSON, or WebSocket json/v1)`);
      say(`segment develop: views in Postgres schema "${config.namespace}" (segment_memberships, segment_profiles, segment_toggles, segment_sizes); Ctrl-C to stop`);
      const publisher = new PipelinedPublisher(nc);
      const generator = rate > 0 ? startGenerator(publisher, names, rate, seed, (error) => (failures++ === 0 ? logger.error({ err: error }, 'generator publish failed') : undefined)) : undefined;

      const jsm = await jetstreamManager(nc);
      let last = { at: Date.now(), events: 0 };
      const tty = process.stderr.isTTY;
      let ticks = 0;
      const status = setInterval(async () => {
        try {
          const [progress, info] = await Promise.all([pipelineProgress(nc, database, names), jsm.streams.info(names.events.stream)]);
          const events = info.state.messages;
          const now = Date.now();
          const perSecond = Math.round(((events - last.events) * 1000) / Math.max(1, now - last.at));
          last = { at: now, events };
          const rows = pipeline.projectors.reduce((sum, p) => sum + p.stats.rows, 0);
          const toggles = pipeline.projectors.find((p) => p.name === names.consumers.project('toggles'))?.stats.documents ?? 0;
          const line =
            `events ${events.toLocaleString('en')} (${perSecond.toLocaleString('en')}/s) | ` +
            `derive lag ${progress.deriveLag.toLocaleString('en')} events | ` +
            `project lag ${progress.projectLag} msgs | toggles ${toggles.toLocaleString('en')} | rows written ${rows.toLocaleString('en')} | http in ${ingest.stats.accepted.toLocaleString('en')}`;
          if (tty) process.stderr.write(`\r\x1b[2K${line}`);
          else if (ticks++ % 5 === 0) say(line);
        } catch (error) {
          logger.warn({ err: error }, 'status failed');
        }
      }, 1000);

      const aborted = new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
      await Promise.race([aborted, pipeline.stoppedByItself]);
      clearInterval(status);
      if (tty) process.stderr.write('\n');
      say('segment develop: draining…');
      generator?.stop();
      await publisher.close();
      await ingest.close();
      await pipeline.stop();
      say(`segment develop: stopped cleanly${generator ? ` after generating ${generator.generated.toLocaleString('en')} events` : ''}`);
      return 0;
    } finally {
      await nc.drain().catch(() => nc.close());
      await database.destroy();
      await nats.stop();
    }
  },
};

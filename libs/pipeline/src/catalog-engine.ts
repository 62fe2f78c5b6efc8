import { randomBytes } from 'node:crypto';
import { collections, compareByKey, type CollectionName, type Event } from '@segment/model';
import { connectNats, deprovision, namesFor, PipelinedPublisher, readStream } from '@segment/nats';
import { dropSchema, openDatabase, readCollection } from '@segment/postgres';
import type { Engine, EngineFactory } from '@segment/catalog';
import type { Logger } from '@segment/telemetry';
import { startPipeline } from './pipeline.ts';
import { waitUntilCaughtUp } from './progress.ts';

export interface PipelineEngineOptions {
  natsUrl: string;
  databaseUrl: string;
  logger: Logger;
  /** How long a verify waits for the pipeline to catch up. */
  timeoutMs?: number;
}

/**
 * Catalog tests on the real pipeline: each test gets its own namespace (streams, buckets, consumers
 * and Postgres schema), runs every stage in this process, and removes it all on close.
 */
export function pipelineEngineFactory(options: PipelineEngineOptions): EngineFactory {
  return async (testName) => {
    const namespace = `t_${randomBytes(5).toString('hex')}`;
    const logger = options.logger.child({ test: testName, namespace });
    const names = namesFor(namespace);
    const nc = await connectNats({ servers: options.natsUrl, name: `segment-test-${namespace}` });
    const database = openDatabase({ connectionString: options.databaseUrl, schema: namespace, applicationName: 'segment-test', maxConnections: 3 });
    /** Removes the test's streams, buckets and schema; the connections are let go of whatever happens, or they keep the process alive. */
    const removeNamespace = async () => {
      try {
        await deprovision(nc, names);
        await dropSchema(database);
      } finally {
        await database.destroy();
        await nc.close();
      }
    };
    let pipeline: Awaited<ReturnType<typeof startPipeline>>;
    try {
      pipeline = await startPipeline({ nc, names, logger, database });
    } catch (error) {
      await removeNamespace().catch(() => undefined);
      throw error;
    }
    const publisher = new PipelinedPublisher(nc);
    const engine: Engine = {
      async ingest(collection, documents) {
        if (collection !== 'segment/events') throw new Error(`only segment/events accepts documents; ${collection} is derived`);
        const events = documents as Event[];
        await Promise.all(events.map((event) => publisher.publish(names.events.subject(event.segment.vendor), JSON.stringify(event), { msgId: event.event })));
      },
      async read(collection: CollectionName) {
        await waitUntilCaughtUp(nc, database, names, { timeoutMs: options.timeoutMs ?? 30_000 });
        if (collection !== 'segment/events') return readCollection(database, collection);
        const events = (await readStream(nc, names.events.stream)).map((m) => JSON.parse(new TextDecoder().decode(m.data)) as Event);
        return events.sort((a, b) => compareByKey(collections['segment/events'].key, a, b));
      },
      async close() {
        await pipeline.stop();
        await publisher.close();
        await removeNamespace();
      },
    };
    return engine;
  };
}

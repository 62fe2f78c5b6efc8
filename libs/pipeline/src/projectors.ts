import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { collections } from '@segment/model';
import { decodeDerivedMessage, openDurableSource, type Names } from '@segment/nats';
import { PostgresProjectionStore, projections, type ProjectedCollection, type Projection, type SegmentDatabase } from '@segment/postgres';
import { Projector } from '@segment/runtime';
import type { Logger } from '@segment/telemetry';

/**
 * What a projector pulls ahead, and may hold uncommitted: two transactions of 32 derived messages
 * (up to 1 MB each), so the next transaction's messages arrive during a commit.
 * The server lets 64 MiB wait for a connection before it drops messages as a slow consumer's, and
 * the projectors of a process share one: with 8,000 it did so in a 10M-event bench (the projector
 * noticed the gap and reopened), and a projector buffered what it could not yet apply.
 */
const projectorPrefetch = { prefetchMessages: 64, maxUnacked: 64 };

/** The projectors of every projected collection, each consuming its derived stream into its table (built, not started). */
export async function createProjectors(nc: NatsConnection, database: SegmentDatabase, names: Names, logger: Logger): Promise<Projector[]> {
  const jsm = await jetstreamManager(nc);
  return (Object.keys(projections) as ProjectedCollection[]).map((collection) => {
    const projection = projections[collection] as Projection<unknown>;
    const name = names.consumers.project(collection);
    const stream = names.derived[collection];
    return new Projector({
      name,
      schema: projection.schema,
      key: collections[projection.collection as keyof typeof collections].key,
      store: new PostgresProjectionStore(database, projection, name, { logger: logger.child({ projector: name }) }),
      decode: decodeDerivedMessage,
      open: (startSeq) => openDurableSource(nc, jsm, { stream: stream.stream, name, filter: stream.subjects, startSeq, ...projectorPrefetch, headers: true, logger }),
      logger: logger.child({ projector: name }),
    });
  });
}

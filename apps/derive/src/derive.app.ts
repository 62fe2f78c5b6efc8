// The derivation worker: setup → connect → run the derivations of the partitions this replica owns
// → on shutdown finish each transaction in flight, commit, drain and close.
import type { SegmentConfig } from '@segment/config';
import { connectNats, namesFor } from '@segment/nats';
import { derivations, startPipeline } from '@segment/pipeline';
import type { PartitionStats } from '@segment/runtime';
import type { Logger } from '@segment/telemetry';

export interface DeriveAppOptions {
  config: SegmentConfig;
  logger: Logger;
  /** Aborted on SIGTERM/SIGINT. */
  signal: AbortSignal;
  /** Called every few seconds with per-partition progress. */
  onStats?: (stats: PartitionStats[]) => void;
}

export async function runDerive({ config, logger, signal, onStats }: DeriveAppOptions): Promise<void> {
  const names = namesFor(config.namespace);
  // Journal moves and register reads each go over a connection of their own: see RegisterConnections.
  const settled = await Promise.allSettled(['', '-moves', '-reads'].map((purpose) => connectNats({ servers: config.natsUrl, name: `segment-derive-${config.replicaIndex}${purpose}` })));
  const connections = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed) {
    await Promise.all(connections.map((connection) => connection.close()));
    throw failed.reason;
  }
  type Connection = (typeof connections)[number];
  const [nc, moves, reads] = connections as [Connection, Connection, Connection];
  try {
    const pipeline = await startPipeline({
      nc,
      names,
      logger,
      provision: { replicas: config.replicas },
      replica: { index: config.replicaIndex, count: config.replicaCount },
      commit: { maxDelayMs: config.commitIntervalMs },
      registerMemory: { journalBytes: config.registerJournalBytes, cacheEntries: config.registerCacheEntries },
      registerConnections: { moves, reads },
    });
    logger.info({ namespace: config.namespace, replica: config.replicaIndex, of: config.replicaCount, derivations: derivations.map((d) => d.name) }, 'deriving');
    const statsTimer = onStats ? setInterval(() => onStats(pipeline.worker!.stats), 2000) : undefined;
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    clearInterval(statsTimer);
    logger.info('draining');
    await pipeline.stop();
  } finally {
    await Promise.all(connections.map((connection) => connection.drain().catch(() => connection.close())));
  }
}

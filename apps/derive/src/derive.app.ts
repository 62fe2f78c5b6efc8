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
  const nc = await connectNats({ servers: config.natsUrl, name: `segment-derive-${config.replicaIndex}` });
  // Register journals are moved to their buckets over a connection of their own: see KvRegisterStoreOptions.moves.
  const registerConnection = await connectNats({ servers: config.natsUrl, name: `segment-derive-${config.replicaIndex}-registers` }).catch(async (error: unknown) => {
    await nc.close();
    throw error;
  });
  try {
    const pipeline = await startPipeline({
      nc,
      names,
      logger,
      provision: { replicas: config.replicas },
      replica: { index: config.replicaIndex, count: config.replicaCount },
      commit: { maxDelayMs: config.commitIntervalMs },
      registerMemory: { journalBytes: config.registerJournalBytes, cacheEntries: config.registerCacheEntries },
      registerConnection,
    });
    logger.info({ namespace: config.namespace, replica: config.replicaIndex, of: config.replicaCount, derivations: derivations.map((d) => d.name) }, 'deriving');
    const statsTimer = onStats ? setInterval(() => onStats(pipeline.worker!.stats), 2000) : undefined;
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    clearInterval(statsTimer);
    logger.info('draining');
    await pipeline.stop();
  } finally {
    await Promise.all([nc, registerConnection].map((connection) => connection.drain().catch(() => connection.close())));
  }
}

// The projectors: setup → connect NATS and Postgres → one projector per projected collection →
// on shutdown finish the transaction in flight and close. A fenced projector ends the process.
import type { SegmentConfig } from '@segment/config';
import { connectNats, namesFor } from '@segment/nats';
import { startPipeline } from '@segment/pipeline';
import { openDatabase } from '@segment/postgres';
import type { Logger } from '@segment/telemetry';

export interface ProjectAppOptions {
  config: SegmentConfig;
  logger: Logger;
  signal: AbortSignal;
}

export async function runProject({ config, logger, signal }: ProjectAppOptions): Promise<void> {
  const names = namesFor(config.namespace);
  const database = openDatabase({ connectionString: config.databaseUrl, schema: config.namespace, applicationName: 'segment-project' });
  const nc = await connectNats({ servers: config.natsUrl, name: 'segment-project' });
  try {
    const pipeline = await startPipeline({ nc, names, logger, database, derive: false, provision: { replicas: config.replicas } });
    logger.info({ namespace: config.namespace, projectors: pipeline.projectors.length }, 'projecting');
    const aborted = new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    await Promise.race([aborted, pipeline.stoppedByItself]);
    await pipeline.stop();
    const fenced = pipeline.projectors.find((p) => p.fenced)?.fenced;
    if (fenced) throw fenced;
  } finally {
    await nc.drain().catch(() => nc.close());
    await database.destroy();
  }
}

import { loadConfig } from '@segment/config';
import { connectNats, namesFor } from '@segment/nats';
import { startPipeline, waitUntilCaughtUp } from '@segment/pipeline';
import { openDatabase, resetProjections } from '@segment/postgres';
import { createLogger } from '@segment/telemetry';
import { parseCommandArgs, type Command } from '../command.ts';

const usage = `usage: segment rebuild [--nats URL] [--database URL] [--namespace NAME]

Rebuilds the Postgres views from the derived streams' history: empties the projected tables,
forgets the projectors' positions, then projects every derived stream from its start until caught
up. Running projectors are fenced by the reset and exit; restart them afterwards.`;

export const command: Command = {
  async run(args) {
    const { values } = parseCommandArgs(args, { nats: { type: 'string' }, database: { type: 'string' }, namespace: { type: 'string' } }, usage);
    const config = loadConfig(process.env, { natsUrl: values.nats, databaseUrl: values.database, namespace: values.namespace });
    const logger = createLogger({ name: 'rebuild', level: 'warn' });
    const names = namesFor(config.namespace);
    const database = openDatabase({ connectionString: config.databaseUrl, schema: config.namespace });
    const nc = await connectNats({ servers: config.natsUrl, name: 'segment rebuild' });
    try {
      const started = Date.now();
      await resetProjections(database);
      const pipeline = await startPipeline({ nc, names, logger, database, derive: false, provision: { replicas: config.replicas } });
      const progress = setInterval(() => {
        const rows = pipeline.projectors.reduce((sum, p) => sum + p.stats.rows, 0);
        process.stderr.write(`\rrebuilding ${config.namespace}: ${rows} rows`);
      }, 500);
      try {
        await waitUntilCaughtUp(nc, database, names, { timeoutMs: 24 * 3600_000, intervalMs: 250 });
      } finally {
        clearInterval(progress);
        await pipeline.stop();
      }
      const rows = pipeline.projectors.reduce((sum, p) => sum + p.stats.rows, 0);
      process.stderr.write(`\rrebuilt ${config.namespace}: ${rows} rows in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      return 0;
    } finally {
      await nc.drain().catch(() => nc.close());
      await database.destroy();
    }
  },
};

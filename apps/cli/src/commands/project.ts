import { loadConfig } from '@segment/config';
import { createLogger } from '@segment/telemetry';
import { runProject } from '@segment/app-project';
import { parseCommandArgs, shutdownSignal, type Command } from '../command.ts';

const usage = `usage: segment project [options]

Materializes the derived collections into Postgres: memberships and toggles tables (profiles and
segment sizes are views over memberships). Each transaction loads the stored rows of its keys,
reduces, upserts and records its checkpoint atomically. Runs setup (streams and migrations) first.

options:
  --nats URL         NATS servers (env SEGMENT_NATS_URL, default nats://127.0.0.1:4222)
  --database URL     Postgres (env SEGMENT_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres)
  --namespace NAME   streams and Postgres schema (env SEGMENT_NAMESPACE, default segment)
  --log-level LEVEL  pino level (env SEGMENT_LOG_LEVEL, default info)`;

export const command: Command = {
  async run(args) {
    const { values } = parseCommandArgs(
      args,
      { nats: { type: 'string' }, database: { type: 'string' }, namespace: { type: 'string' }, 'log-level': { type: 'string' } },
      usage,
    );
    const config = loadConfig(process.env, { natsUrl: values.nats, databaseUrl: values.database, namespace: values.namespace, logLevel: values['log-level'] });
    const logger = createLogger({ name: 'project', level: config.logLevel });
    const signal = shutdownSignal((name) => logger.info({ signal: name }, 'shutting down'));
    await runProject({ config, logger, signal });
    logger.flush();
    return 0;
  },
};

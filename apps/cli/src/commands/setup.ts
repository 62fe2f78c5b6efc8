import {
  connectNats,
  defaultProvisionConfig,
  formatProvisionItem,
  namesFor,
  provision,
  type Names,
  type ProvisionConfig,
} from '@segment/nats';
import { loadConfig } from '@segment/config';
import { migrate, openDatabase } from '@segment/postgres';
import { createLogger, type Logger } from '@segment/telemetry';
import { numberFlag, parseCommandArgs, type Command } from '../command.ts';

const usage = `usage: segment setup [--nats URL] [--database URL] [--namespace NAME] [--replicas N] [--duplicate-window SECONDS]

Creates the NATS JetStream streams and KV buckets of a namespace, or reconciles existing ones
with the settings below, then migrates the namespace's Postgres schema (tables, views, the
read-only segment_reporting role). Safe to run again: a second run reports every item "unchanged".
Prints one line per item, e.g. "stream SEGMENT_EVENTS: created".

options:
  --nats URL                   NATS server(s), comma-separated (default $SEGMENT_NATS_URL or nats://127.0.0.1:4222)
  --database URL               Postgres (default $SEGMENT_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  --namespace NAME             isolates one pipeline from another on a server (default $SEGMENT_NAMESPACE or segment)
  --replicas N                 copies of each stream and bucket, 1 to 5; above 1 needs a cluster (default ${defaultProvisionConfig.replicas})
  --duplicate-window SECONDS   how long an event id is remembered for de-duplication (default ${defaultProvisionConfig.duplicateWindowMs / 1000})

exit codes: 0 done, 1 a step failed (the message says why and how to fix it), 2 usage error`;

interface SetupSettings {
  readonly natsUrl: string;
  readonly databaseUrl: string;
  readonly names: Names;
  readonly provision: ProvisionConfig;
}

/** One step of `setup`: does its work and prints a line per item; throws to stop the setup. */
type SetupStep = (settings: SetupSettings, logger: Logger) => Promise<void>;

const natsStep: SetupStep = async (settings, logger) => {
  const nc = await connectNats({ servers: settings.natsUrl, name: 'segment setup' });
  try {
    const report = await provision(nc, settings.names, settings.provision, logger);
    for (const item of report) console.log(formatProvisionItem(item));
  } finally {
    await nc.close();
  }
};

const postgresStep: SetupStep = async (settings) => {
  const database = openDatabase({ connectionString: settings.databaseUrl, schema: settings.names.namespace, applicationName: 'segment setup' });
  try {
    const { results = [] } = await migrate(database);
    const applied = results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
    console.log(`postgres schema ${database.schema}: ${applied.length > 0 ? `migrated (${applied.join(', ')})` : 'unchanged'}`);
  } finally {
    await database.destroy();
  }
};

// In order: streams first, then the views that read from them.
const steps: readonly SetupStep[] = [natsStep, postgresStep];

export const command: Command = {
  async run(args) {
    const { values } = parseCommandArgs(
      args,
      {
        nats: { type: 'string' },
        database: { type: 'string' },
        namespace: { type: 'string' },
        replicas: { type: 'string' },
        'duplicate-window': { type: 'string' },
      },
      usage,
    );

    let settings: SetupSettings;
    try {
      const config = loadConfig(process.env, { natsUrl: values.nats, databaseUrl: values.database, namespace: values.namespace });
      settings = {
        natsUrl: config.natsUrl,
        databaseUrl: config.databaseUrl,
        names: namesFor(config.namespace),
        provision: {
          ...defaultProvisionConfig,
          replicas: numberFlag('replicas', values.replicas, defaultProvisionConfig.replicas, 1, 5),
          duplicateWindowMs: Math.round(
            numberFlag('duplicate-window', values['duplicate-window'], defaultProvisionConfig.duplicateWindowMs / 1000, 0.001) * 1000,
          ),
        },
      };
      if (!Number.isInteger(settings.provision.replicas)) throw new Error(`--replicas must be a whole number, got "${values.replicas}"`);
    } catch (error) {
      console.error(`segment setup: ${error instanceof Error ? error.message : String(error)}\n\n${usage}`);
      return 2;
    }

    // The lines on stdout are the report; the logger only speaks up for warnings.
    const logger = createLogger({ name: 'segment-setup', level: 'warn' });
    try {
      for (const step of steps) await step(settings, logger);
      return 0;
    } catch (error) {
      console.error(`segment setup: ${error instanceof Error ? error.message : String(error)}`);
      return 1;
    }
  },
};

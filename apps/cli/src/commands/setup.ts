import {
  connectNats,
  defaultProvisionConfig,
  formatProvisionItem,
  namesFor,
  provision,
  type Names,
  type ProvisionConfig,
} from '@segment/nats';
import { createLogger, type Logger } from '@segment/telemetry';
import { numberFlag, parseCommandArgs, type Command } from '../command.ts';

const usage = `usage: segment setup [--nats URL] [--namespace NAME] [--replicas N] [--duplicate-window SECONDS]

Creates the NATS JetStream streams and KV buckets of a namespace, or reconciles existing ones
with the settings below. Safe to run again: a second run reports every item "unchanged".
Prints one line per item, e.g. "stream SEGMENT_EVENTS: created".

options:
  --nats URL                   NATS server(s), comma-separated (default $SEGMENT_NATS_URL or nats://127.0.0.1:4222)
  --namespace NAME             isolates one pipeline from another on a server (default $SEGMENT_NAMESPACE or segment)
  --replicas N                 copies of each stream and bucket, 1 to 5; above 1 needs a cluster (default ${defaultProvisionConfig.replicas})
  --duplicate-window SECONDS   how long an event id is remembered for de-duplication (default ${defaultProvisionConfig.duplicateWindowMs / 1000})

exit codes: 0 done, 1 a step failed (the message says why and how to fix it), 2 usage error`;

interface SetupSettings {
  readonly natsUrl: string;
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

// In order; Postgres migrations go after NATS.
const steps: readonly SetupStep[] = [natsStep];

export const command: Command = {
  summary: 'create or reconcile the NATS streams and KV buckets of a namespace (idempotent)',
  async run(args) {
    const { values } = parseCommandArgs(
      args,
      {
        nats: { type: 'string' },
        namespace: { type: 'string' },
        replicas: { type: 'string' },
        'duplicate-window': { type: 'string' },
      },
      usage,
    );

    let settings: SetupSettings;
    try {
      settings = {
        natsUrl: values.nats ?? process.env.SEGMENT_NATS_URL ?? 'nats://127.0.0.1:4222',
        names: namesFor(values.namespace ?? process.env.SEGMENT_NAMESPACE ?? 'segment'),
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

import { loadConfig } from '@segment/config';
import { createLogger } from '@segment/telemetry';
import { runDerive } from '@segment/app-derive';
import { numberFlag, parseCommandArgs, shutdownSignal, type Command } from '../command.ts';

const usage = `usage: segment derive [options]

Runs the derivations (memberships, profiles, toggles) over the events stream: one durable consumer
per vendor partition, registers in NATS KV, derived collections as streams. Runs setup first.
SIGTERM or Ctrl-C finishes the transactions in flight, commits and exits 0.

options:
  --nats URL             NATS servers (env SEGMENT_NATS_URL, default nats://127.0.0.1:4222)
  --namespace NAME       streams/buckets namespace (env SEGMENT_NAMESPACE, default segment)
  --replica-index K      this replica's ordinal (env SEGMENT_REPLICA_INDEX, default 0)
  --replica-count N      replicas splitting the vendor partitions (env SEGMENT_REPLICA_COUNT, default 1)
  --log-level LEVEL      pino level (env SEGMENT_LOG_LEVEL, default info)`;

export const command: Command = {
  async run(args) {
    const { values } = parseCommandArgs(
      args,
      {
        nats: { type: 'string' },
        namespace: { type: 'string' },
        'replica-index': { type: 'string' },
        'replica-count': { type: 'string' },
        'log-level': { type: 'string' },
      },
      usage,
    );
    const config = loadConfig(process.env, {
      natsUrl: values.nats,
      namespace: values.namespace,
      replicaIndex: values['replica-index'] === undefined ? undefined : numberFlag('replica-index', values['replica-index'], 0, 0),
      replicaCount: values['replica-count'] === undefined ? undefined : numberFlag('replica-count', values['replica-count'], 1, 1),
      logLevel: values['log-level'],
    });
    const logger = createLogger({ name: 'derive', level: config.logLevel });
    const signal = shutdownSignal((name) => logger.info({ signal: name }, 'shutting down'));
    await runDerive({ config, logger, signal });
    logger.flush();
    return 0;
  },
};

import type { NatsConnection } from '@nats-io/transport-node';
import { createDeriveRuntime, defaultProvisionConfig, provision, type Names, type ProvisionConfig, type RegisterConnections, type RegisterMemory } from '@segment/nats';
import { analyzeStaleTables, migrate, type SegmentDatabase } from '@segment/postgres';
import type { CommitPolicy, DeriveWorker, Projector } from '@segment/runtime';
import { membershipsDerivation, profilesDerivation, togglesDerivation, type Derivation } from '@segment/segment';
import type { Logger } from '@segment/telemetry';
import { createProjectors } from './projectors.ts';

export interface PipelineOptions {
  nc: NatsConnection;
  names: Names;
  logger: Logger;
  /** Omit to run derivations only. */
  database?: SegmentDatabase;
  provision?: Partial<ProvisionConfig>;
  replica?: { index: number; count: number };
  /** Run the derivations here (default true); false runs the projectors only. */
  derive?: boolean;
  /** How often derivations commit (write registers back, checkpoint, ack). */
  commit?: Partial<CommitPolicy>;
  /** What the derivation worker keeps of registers, for all its partitions together (defaults: `defaultRegisterMemory`). */
  registerMemory?: RegisterMemory;
  /** Connections of their own for the derivation worker's register moves and reads (default: its own). */
  registerConnections?: RegisterConnections;
}

export interface RunningPipeline {
  readonly worker: DeriveWorker | undefined;
  readonly projectors: readonly Projector[];
  /** Resolves when a projector stops by itself (fenced by a newer instance). */
  readonly stoppedByItself: Promise<void>;
  /** Finishes the transactions in flight, commits, and stops every stage. */
  stop(): Promise<void>;
}

/**
 * The derivations a worker runs over the vendor partitions. Push profiles (pushProfilesDerivation)
 * are not among them yet: their register is keyed by user alone, which every vendor partition would
 * write, so they need the events re-partitioned by user first.
 */
export const derivations = [membershipsDerivation, profilesDerivation, togglesDerivation] as Derivation[];

/** Sets up (streams, buckets, migrations) and starts the stages of the pipeline in this process. */
export async function startPipeline(options: PipelineOptions): Promise<RunningPipeline> {
  const { nc, names, logger, database } = options;
  await provision(nc, names, { ...defaultProvisionConfig, ...options.provision }, logger, { existing: 'keep' });
  if (database) await migrate(database);
  let worker: DeriveWorker | undefined;
  let closeDerive: (() => Promise<void>) | undefined;
  if (options.derive !== false) {
    ({ worker, close: closeDerive } = await createDeriveRuntime(nc, {
      names,
      derivations,
      logger: logger.child({ stage: 'derive' }),
      replica: options.replica,
      commit: options.commit,
      registerMemory: options.registerMemory,
      registerConnections: options.registerConnections,
    }));
    await worker.start();
  }
  const projectors = database ? await createProjectors(nc, database, names, logger.child({ stage: 'project' })) : [];
  await Promise.all(projectors.map((p) => p.start()));
  const statistics = database && projectors.length > 0 ? keepStatisticsFresh(database, logger.child({ stage: 'project' })) : undefined;
  return {
    worker,
    projectors,
    stoppedByItself: projectors.length > 0 ? Promise.race(projectors.map((p) => p.done)) : new Promise(() => undefined),
    async stop() {
      await worker?.stop();
      await closeDerive?.();
      await Promise.all(projectors.map((p) => p.stop()));
      await statistics?.stop();
    },
  };
}

/** How often the projectors look for tables whose planner statistics are stale. */
const statisticsIntervalMs = 30_000;

/** Analyzes the projected tables while they grow (see analyzeStaleTables), one check at a time. */
function keepStatisticsFresh(database: SegmentDatabase, logger: Logger): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= analyzeStaleTables(database)
      .then(
        (tables) => (tables.length > 0 ? logger.debug({ tables }, 'analyzed') : undefined),
        (error: unknown) => logger.warn({ err: error }, 'analyzing the projected tables failed; trying again later'),
      )
      .finally(() => (running = undefined));
  }, statisticsIntervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

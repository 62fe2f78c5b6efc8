import type { NatsConnection } from '@nats-io/transport-node';
import { caughtUp, deriveProgress, derivePendingEvents, managerForReads, type Names, type PartitionProgress } from '@segment/nats';
import { projections, type ProjectedCollection, type SegmentDatabase } from '@segment/postgres';

export interface ProjectorProgress {
  projector: string;
  /** The derived stream's last message, and the last one the projector committed. */
  lastSeq: number;
  committed: number;
}

export interface PipelineProgress {
  derive: PartitionProgress[];
  /** Events the derivations have yet to commit (the slowest replica's). */
  deriveLag: number;
  projectors: ProjectorProgress[];
  /** Derived messages the projectors have yet to commit, all together. */
  projectLag: number;
  /** Every stage has processed everything ingested so far. */
  caughtUp: boolean;
}

/** Where every stage stands: derivations per vendor partition, projectors per derived stream. */
export async function pipelineProgress(nc: NatsConnection, database: SegmentDatabase, names: Names): Promise<PipelineProgress> {
  const jsm = await managerForReads(nc);
  const derive = await deriveProgress(nc, names);
  const deriveLag = await derivePendingEvents(nc, names, derive);
  const leases = await database.db.selectFrom('segment_projector_leases').select(['projector', 'stream_seq']).execute();
  const projectors = await Promise.all(
    (Object.keys(projections) as ProjectedCollection[]).map(async (collection) => {
      const projector = names.consumers.project(collection);
      const { state } = await jsm.streams.info(names.derived[collection].stream);
      const committed = Number(leases.find((l) => l.projector === projector)?.stream_seq ?? 0);
      return { projector, lastSeq: state.last_seq, committed };
    }),
  );
  const projectLag = projectors.reduce((sum, p) => sum + Math.max(0, p.lastSeq - p.committed), 0);
  return { derive, deriveLag, projectors, projectLag, caughtUp: caughtUp(derive) && projectLag === 0 };
}

/**
 * Resolves once every stage has caught up with what was ingested before the call (polling). A read
 * that fails (a busy server answering a stream's state late) is tried again until the deadline.
 */
export async function waitUntilCaughtUp(nc: NatsConnection, database: SegmentDatabase, names: Names, options: { timeoutMs: number; intervalMs?: number }): Promise<PipelineProgress> {
  const deadline = Date.now() + options.timeoutMs;
  let last: PipelineProgress | { error: unknown } | undefined;
  for (;;) {
    try {
      last = await pipelineProgress(nc, database, names);
      if (last.caughtUp) return last;
    } catch (error) {
      last = { error };
    }
    if (Date.now() > deadline) {
      const state = 'error' in last ? `the last read failed: ${String(last.error)}` : JSON.stringify(last);
      throw new Error(`the pipeline did not catch up within ${options.timeoutMs} ms: ${state}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}

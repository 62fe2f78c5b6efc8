import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { managerForReads } from '../connect.ts';
import type { Names } from '../names.ts';
import { KvCheckpointStore } from './kv-checkpoint-store.ts';

export interface PartitionProgress {
  partition: number;
  /** The partition's last event in the stream. */
  lastSeq: number;
  /** The derivations' committed checkpoint: everything at or below it is derived and durable. */
  committed: number;
}

/** Where each vendor partition's derivations stand against the events stream. */
export async function deriveProgress(nc: NatsConnection, names: Names): Promise<PartitionProgress[]> {
  const jsm = await managerForReads(nc);
  const checkpoints = new KvCheckpointStore(await new Kvm(nc).open(names.buckets.checkpoints), 'derive');
  const info = await jsm.streams.info(names.events.stream, { subjects_filter: '>' });
  const progress: PartitionProgress[] = [];
  for (const subject of Object.keys(info.state.subjects ?? {})) {
    const partition = names.events.vendorOf(subject);
    if (partition === undefined) continue;
    const last = await jsm.streams.getMessage(names.events.stream, { last_by_subj: subject });
    progress.push({
      partition,
      lastSeq: last?.seq ?? 0,
      committed: await checkpoints.load(partition),
    });
  }
  return progress.sort((a, b) => a.partition - b.partition);
}

/** True when every partition's derivations have committed through the partition's last event. */
export function caughtUp(progress: readonly PartitionProgress[]): boolean {
  return progress.every((p) => p.committed >= p.lastSeq);
}

/**
 * Events the slowest derive replica has yet to commit, about: its consumer's undelivered messages,
 * plus the stream's messages from the oldest uncommitted checkpoint through the last delivered
 * (delivered messages are not acked to the server: the checkpoints say what is done).
 */
export async function derivePendingEvents(nc: NatsConnection, names: Names, progress: readonly PartitionProgress[]): Promise<number> {
  const jsm = await managerForReads(nc);
  const behind = progress.filter((p) => p.committed < p.lastSeq).map((p) => p.committed);
  const floor = behind.length > 0 ? Math.min(...behind) : Number.POSITIVE_INFINITY;
  let pending = 0;
  for await (const consumer of jsm.consumers.list(names.events.stream)) {
    if (!consumer.name.startsWith(names.consumers.derivePrefix)) continue;
    pending = Math.max(pending, consumer.num_pending + Math.max(0, consumer.delivered.stream_seq - floor));
  }
  return pending;
}

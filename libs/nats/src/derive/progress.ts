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
 * Events the slowest derive replica has yet to commit: its consumer's undelivered plus unacked
 * messages (each replica reads the whole stream and keeps its own vendors' events).
 */
export async function derivePendingEvents(nc: NatsConnection, names: Names): Promise<number> {
  const jsm = await managerForReads(nc);
  let pending = 0;
  for await (const consumer of jsm.consumers.list(names.events.stream)) {
    if (consumer.name.startsWith(names.consumers.derivePrefix)) pending = Math.max(pending, consumer.num_pending + consumer.num_ack_pending);
  }
  return pending;
}

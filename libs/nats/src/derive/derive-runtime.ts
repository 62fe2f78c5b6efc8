import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DeriveWorker, PartitionProcessor, WrittenRegisters, defaultRegisterMemory, type CommitPolicy } from '@segment/runtime';
import type { Derivation } from '@segment/segment';
import type { Logger } from '@segment/telemetry';
import type { Names } from '../names.ts';
import { PipelinedPublisher } from '../publisher.ts';
import { KvCheckpointStore } from './kv-checkpoint-store.ts';
import { KvRegisterStore } from './kv-register-store.ts';
import { StreamDeadLetterSink, StreamOutputSink } from './stream-output-sink.ts';
import { StreamPartitions } from './stream-partitions.ts';

export interface DeriveRuntimeOptions {
  names: Names;
  derivations: readonly Derivation[];
  logger: Logger;
  replica?: { index: number; count: number };
  commit?: Partial<CommitPolicy>;
  batch?: { min: number; max: number };
  registerMemory?: RegisterMemory;
  /** Connections of their own for register moves and reads (default: the worker's own). */
  registerConnections?: RegisterConnections;
}

/**
 * nats-server handles a connection's messages one after another, and both a slice of a journal's
 * move (rewrites in a bucket of millions of keys) and direct gets of registers in old blocks (each
 * loads its block, 4 MiB in a bucket) have held a connection's reading for seconds: on
 * connections of their own, the worker's derived documents, journal appends and acks do not wait
 * behind them.
 */
export interface RegisterConnections {
  moves: NatsConnection;
  reads: NatsConnection;
}

/** Per stateful derivation, for all the worker's partitions together: journal bytes before the largest journal moves to KV, and written-back registers kept in memory (defaults: `defaultRegisterMemory`). */
export interface RegisterMemory {
  journalBytes?: number;
  cacheEntries?: number;
}

/** The register bucket of each stateful derivation. */
function bucketOf(names: Names, derivation: Derivation): string {
  switch (derivation.register?.schema) {
    case 'toggleRegister':
      return names.buckets.toggleRegisters;
    case 'pushProfileRegister':
      return names.buckets.pushProfileRegisters;
    default:
      throw new Error(`derivation ${derivation.name} has no register bucket`);
  }
}

/**
 * Wires the derivations to NATS: the events stream's vendor partitions as sources, registers (a
 * journal in front of KV) and KV checkpoints, derived streams and the dead-letter stream as sinks. One consumer per replica
 * feeds every derivation of every partition the replica owns, so each event is read once. The buckets and streams must exist (`segment setup`).
 */
export async function createDeriveRuntime(nc: NatsConnection, options: DeriveRuntimeOptions): Promise<{ worker: DeriveWorker; close(): Promise<void> }> {
  const { names, derivations, logger } = options;
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(nc);
  const publisher = new PipelinedPublisher(nc);
  const connections = options.registerConnections;
  const moves = connections && { nc: connections.moves, publisher: new PipelinedPublisher(connections.moves) };
  const reads = connections && new PipelinedPublisher(connections.reads);
  const checkpoints = new KvCheckpointStore(await kvm.open(names.buckets.checkpoints), 'derive');
  const registerStores = new Map<string, KvRegisterStore>();
  const writtenRegisters = new Map<string, WrittenRegisters>();
  for (const derivation of derivations.filter((d) => d.register)) {
    const bucket = bucketOf(names, derivation);
    const journal = { stream: names.registerJournal.stream, subject: (partition: string) => names.registerJournal.subject(bucket, partition) };
    registerStores.set(derivation.name, new KvRegisterStore({ nc, bucket, publisher, moves, reads, logger, journal, journalBytes: options.registerMemory?.journalBytes }));
    writtenRegisters.set(derivation.name, new WrittenRegisters(options.registerMemory?.cacheEntries ?? defaultRegisterMemory.cacheEntries));
  }
  const output = new StreamOutputSink(names, publisher);
  const deadLetters = new StreamDeadLetterSink(names, publisher);
  const replica = options.replica ?? { index: 0, count: 1 };
  const directory = new StreamPartitions(nc, jsm, {
    stream: names.events.stream,
    subjectOf: names.events.subject,
    partitionOf: names.events.vendorOf,
    consumer: names.consumers.derive(replica.index),
    logger,
  });
  const worker = new DeriveWorker({
    directory,
    replica,
    logger,
    batch: options.batch,
    createProcessor: (partition) =>
      new PartitionProcessor({
        partition,
        derivations,
        registerStores,
        checkpoints,
        output,
        deadLetters,
        logger: logger.child({ partition }),
        commit: options.commit,
        writtenRegisters,
      }),
  });
  return {
    worker,
    /** After the worker stopped: lets register journals being moved finish, then flushes and closes the publisher. */
    async close() {
      await Promise.all([...registerStores.values()].map((store) => store.settle()));
      for (const [derivation, store] of registerStores) logger.info({ derivation, ...store.stats }, 'register store');
      await Promise.all([publisher.close(), moves?.publisher.close(), reads?.close()]);
    },
  };
}

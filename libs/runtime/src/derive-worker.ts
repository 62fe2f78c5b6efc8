import type { Logger } from '@segment/telemetry';
import { setTimeout as sleep } from 'node:timers/promises';
import { backOff } from './backoff.ts';
import type { PartitionProcessor } from './partition-processor.ts';
import type { SourceMessage } from './ports.ts';
import { PartitionFeed, type MessageSource } from './partition-feed.ts';

/** The source stream's partitions (vendors) and one consumer over all of them. */
export interface PartitionDirectory {
  /** The partitions with messages, and the stream's last sequence when they were listed. */
  listPartitions(): Promise<{ partitions: number[]; lastSeq: number }>;
  /** The sequence of a partition's first message at or after `seq`, if any. */
  nextSeq(partition: number, seq: number): Promise<number | undefined>;
  partitionOf(subject: string): number | undefined;
  /**
   * Opens the consumer to deliver from `startSeq` on. Our checkpoints, not the consumer's ack floor,
   * say where to resume, so messages delivered but never committed come back at once instead of
   * after an ack timeout.
   */
  open(startSeq: number, maxUnacked: number): Promise<MessageSource>;
}

export interface DeriveWorkerOptions {
  directory: PartitionDirectory;
  /** This replica's ordinal and the replica count: replica k owns the partitions whose hash mod N is k. */
  replica: { index: number; count: number };
  createProcessor(partition: number): PartitionProcessor;
  logger: Logger;
  /** Batch size bounds: a transaction grows toward `max` while batches come back full. */
  batch?: { min: number; max: number };
  /** How long a fetch waits for messages when the partition is idle. */
  idleFetchMs?: number;
  /**
   * Messages delivered and not yet committed, all partitions together: the window the source's
   * pulls keep to, and so what the worker holds of the source in memory. Partitions commit when
   * half of it waits for them (or when due by the commit policy). Default 64,000: about what ten
   * vendors' consumers of 8,000 held before, bounded now however many vendors a worker owns.
   */
  maxUnackedMessages?: number;
}

export interface PartitionStats {
  partition: number;
  events: number;
  transactions: number;
  batchSize: number;
  committed: number;
  processedThrough: number;
}

/** FNV-1a: a stable, well-spread hash, so every replica computes the same owner for a vendor. */
export function partitionHash(partition: number): number {
  let hash = 0x811c9dc5;
  for (const char of String(partition)) {
    hash ^= char.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

export function ownsPartition(replica: { index: number; count: number }, partition: number): boolean {
  return partitionHash(partition) % replica.count === replica.index;
}

/**
 * Runs the transactions of every partition this replica owns, one loop per partition: take a
 * batch of its messages, process it, commit when due (or when idle), ack the committed sequence.
 * One consumer feeds them all (`PartitionFeed`), starting at the first message some partition has
 * not committed; a new partition's loop starts at its first message. `stop()` finishes each loop's
 * transaction, commits and acks.
 */
export class DeriveWorker {
  readonly #options: DeriveWorkerOptions;
  readonly #loops = new Map<number, { promise: Promise<void>; stats: PartitionStats }>();
  #feed: PartitionFeed | undefined;
  #running = false;

  constructor(options: DeriveWorkerOptions) {
    const { index, count } = options.replica;
    if (!(Number.isInteger(count) && count >= 1 && Number.isInteger(index) && index >= 0 && index < count)) {
      throw new RangeError(`replica ${index} of ${count}: the index must be in [0, count)`);
    }
    this.#options = options;
  }

  /**
   * Loads the checkpoint of every partition this replica owns, then starts the consumer at the
   * first message some partition has not committed (a quiet vendor's checkpoint is far behind the
   * others', so the start asks where each partition's next message is).
   */
  async start(): Promise<void> {
    const { directory, replica, logger } = this.#options;
    const owns = (partition: number) => ownsPartition(replica, partition);
    const feed = new PartitionFeed({
      open: (startSeq, maxUnacked) => directory.open(startSeq, maxUnacked),
      partitionOf: (subject) => {
        const partition = directory.partitionOf(subject);
        return partition !== undefined && owns(partition) ? partition : undefined;
      },
      onPartition: (partition) => this.#startLoop(this.#options.createProcessor(partition), false),
      maxUnacked: this.#options.maxUnackedMessages ?? 64_000,
      logger,
    });
    const { partitions, lastSeq } = await directory.listPartitions();
    // Two round trips a partition (its checkpoint, then where its next message is), all partitions at once.
    const started = await Promise.all(
      partitions.filter(owns).map(async (partition) => {
        const processor = this.#options.createProcessor(partition);
        await processor.start();
        return { processor, next: await directory.nextSeq(partition, processor.committed + 1) };
      }),
    );
    const processors = started.map(({ processor }) => processor);
    const startSeq = started.reduce((min, { next }) => (next === undefined ? min : Math.min(min, next)), lastSeq + 1);
    this.#feed = feed;
    this.#running = true;
    for (const processor of processors) {
      feed.queue(processor.partition, processor.committed);
      this.#startLoop(processor, true);
    }
    logger.info({ partitions: processors.length, startSeq }, 'derivation consumer starting');
    feed.start(startSeq);
  }

  get stats(): PartitionStats[] {
    return [...this.#loops.values()].map(({ stats }) => ({ ...stats })).sort((a, b) => a.partition - b.partition);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#feed?.stop();
    await Promise.all([...this.#loops.values()].map(({ promise }) => promise));
  }

  /** Runs a partition's loop; `started` when its checkpoint is loaded already. */
  #startLoop(processor: PartitionProcessor, started: boolean): void {
    const { partition, committed } = processor;
    const stats: PartitionStats = { partition, events: 0, transactions: 0, batchSize: this.#options.batch?.min ?? 100, committed, processedThrough: committed };
    this.#loops.set(partition, { stats, promise: this.#run(processor, started, this.#feed!, stats) });
  }

  async #run(processor: PartitionProcessor, started: boolean, feed: PartitionFeed, stats: PartitionStats): Promise<void> {
    const { logger } = this.#options;
    const { partition } = processor;
    const { min, max } = this.#options.batch ?? { min: 100, max: 4000 };
    const idleFetchMs = this.#options.idleFetchMs ?? 250;
    const queue = feed.queue(partition);
    let failures = 0;
    const commitAndAck = async () => {
      await queue.ack(await processor.commit());
      stats.committed = processor.committed;
      stats.processedThrough = processor.processedThrough;
    };
    while (this.#running) {
      try {
        if (!started) {
          await processor.start();
          await queue.ack(processor.committed);
          started = true;
          logger.info({ partition, checkpoint: processor.committed }, 'partition started');
        }
        const messages = await queue.fetch(stats.batchSize, processor.commitDue ? 10 : idleFetchMs);
        if (messages.length > 0) {
          await this.#processWithRetries(processor, messages, partition);
          stats.events += messages.length;
          stats.transactions += 1;
          // Larger transactions under load: fewer, more combined documents downstream.
          if (messages.length >= stats.batchSize) stats.batchSize = Math.min(max, stats.batchSize * 2);
          else if (messages.length < stats.batchSize / 4) stats.batchSize = Math.max(min, Math.floor(stats.batchSize / 2));
        }
        const idle = messages.length === 0 && processor.processedThrough > processor.committed;
        if (processor.commitDue || idle || queue.commitRequested) await commitAndAck();
        stats.processedThrough = processor.processedThrough;
        failures = 0;
      } catch (error) {
        failures += 1;
        logger.warn({ err: error, partition, failures }, 'partition loop failed; retrying');
        if (this.#running) await backOff(failures);
      }
    }
    try {
      if (started) await commitAndAck();
      logger.info({ partition, committed: processor.committed }, 'partition drained');
    } catch (error) {
      logger.error({ err: error, partition }, 'final commit failed; the next owner replays from the last checkpoint');
    }
  }

  /** A failing transaction is retried with backoff; a lambda that keeps failing is dead-lettered by the processor. */
  async #processWithRetries(processor: PartitionProcessor, messages: SourceMessage[], partition: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await processor.process(messages);
        return;
      } catch (error) {
        if (!this.#running) throw error;
        this.#options.logger.warn({ err: error, partition, attempt }, 'transaction failed; retrying');
        await sleep(Math.min(5000, 50 * 2 ** Math.min(attempt, 7)));
      }
    }
  }
}

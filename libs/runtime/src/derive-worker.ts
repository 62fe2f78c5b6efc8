import type { Logger } from '@segment/telemetry';
import { setTimeout as sleep } from 'node:timers/promises';
import { backOff } from './backoff.ts';
import type { PartitionProcessor } from './partition-processor.ts';
import type { SourceMessage } from './ports.ts';

/** One partition's messages as a durable consumer delivers them; acking a sequence acks all below it. */
export interface PartitionSource {
  fetch(maxMessages: number, expiresMs: number): Promise<SourceMessage[]>;
  ack(seq: number): Promise<void>;
  close(): Promise<void>;
}

/** Finds the source's partitions (vendors seen so far) and opens one for consuming. */
export interface PartitionDirectory {
  listPartitions(): Promise<number[]>;
  /**
   * Opens a partition to deliver from `startSeq` on. Our checkpoint, not the consumer's ack floor,
   * says where to resume, so messages delivered but never committed come back at once instead of
   * after an ack timeout.
   */
  open(partition: number, startSeq: number): Promise<PartitionSource>;
}

export interface DeriveWorkerOptions {
  directory: PartitionDirectory;
  /** This replica's ordinal and the replica count: replica k owns the partitions whose hash mod N is k. */
  replica: { index: number; count: number };
  createProcessor(partition: number): PartitionProcessor;
  logger: Logger;
  /** How often to look for new partitions. */
  discoveryIntervalMs?: number;
  /** Batch size bounds: a transaction grows toward `max` while batches come back full. */
  batch?: { min: number; max: number };
  /** How long a fetch waits for messages when the partition is idle. */
  idleFetchMs?: number;
  /**
   * Commit once this many messages were processed since the last commit, whatever the commit
   * interval: unacked messages are capped by the consumer (half its max_ack_pending), and the
   * source buffers them in memory.
   */
  maxUncommittedMessages?: number;
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
 * Runs the transactions of every partition this replica owns, one loop per partition: fetch a
 * batch, process it, commit when due (or when idle), ack the committed sequence. New partitions
 * are discovered as vendors appear. `stop()` finishes each loop's transaction, commits and acks.
 */
export class DeriveWorker {
  readonly #options: DeriveWorkerOptions;
  readonly #loops = new Map<number, { promise: Promise<void>; stats: PartitionStats }>();
  #running = false;
  #discovery: Promise<void> | undefined;
  #wakeDiscovery: (() => void) | undefined;

  constructor(options: DeriveWorkerOptions) {
    const { index, count } = options.replica;
    if (!(Number.isInteger(count) && count >= 1 && Number.isInteger(index) && index >= 0 && index < count)) {
      throw new RangeError(`replica ${index} of ${count}: the index must be in [0, count)`);
    }
    this.#options = options;
  }

  async start(): Promise<void> {
    this.#running = true;
    await this.#discover();
    this.#discovery = this.#discoverLoop();
  }

  get stats(): PartitionStats[] {
    return [...this.#loops.values()].map(({ stats }) => ({ ...stats })).sort((a, b) => a.partition - b.partition);
  }

  /** Looks for new partitions now (as on the timer). */
  async discover(): Promise<void> {
    await this.#discover();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wakeDiscovery?.();
    await this.#discovery;
    await Promise.all([...this.#loops.values()].map(({ promise }) => promise));
  }

  async #discoverLoop(): Promise<void> {
    const interval = this.#options.discoveryIntervalMs ?? 1000;
    while (this.#running) {
      await new Promise<void>((resolve) => {
        this.#wakeDiscovery = resolve;
        setTimeout(resolve, interval);
      });
      if (!this.#running) break;
      try {
        await this.#discover();
      } catch (error) {
        this.#options.logger.warn({ err: error }, 'partition discovery failed; retrying');
      }
    }
  }

  async #discover(): Promise<void> {
    for (const partition of await this.#options.directory.listPartitions()) {
      if (this.#loops.has(partition) || !ownsPartition(this.#options.replica, partition)) continue;
      const stats: PartitionStats = { partition, events: 0, transactions: 0, batchSize: this.#options.batch?.min ?? 100, committed: 0, processedThrough: 0 };
      this.#loops.set(partition, { stats, promise: this.#run(partition, stats) });
    }
  }

  async #run(partition: number, stats: PartitionStats): Promise<void> {
    const { logger } = this.#options;
    const { min, max } = this.#options.batch ?? { min: 100, max: 4000 };
    const idleFetchMs = this.#options.idleFetchMs ?? 250;
    const processor = this.#options.createProcessor(partition);
    let started = false;
    let source: PartitionSource | undefined;
    let failures = 0;
    const maxUncommitted = this.#options.maxUncommittedMessages ?? 4_000;
    let uncommitted = 0;
    const commitAndAck = async () => {
      const seq = await processor.commit();
      if (seq > 0) await source?.ack(seq);
      uncommitted = 0;
      stats.committed = processor.committed;
      stats.processedThrough = processor.processedThrough;
    };
    while (this.#running) {
      try {
        if (!started) {
          await processor.start();
          started = true;
          logger.info({ partition, checkpoint: processor.committed }, 'partition started');
        }
        source ??= await this.#options.directory.open(partition, processor.processedThrough + 1);
        const messages = await source.fetch(stats.batchSize, processor.commitDue ? 10 : idleFetchMs);
        if (messages.length > 0) {
          await this.#processWithRetries(processor, messages, partition);
          stats.events += messages.length;
          stats.transactions += 1;
          uncommitted += messages.length;
          // Larger transactions under load: fewer, more combined documents downstream.
          if (messages.length >= stats.batchSize) stats.batchSize = Math.min(max, stats.batchSize * 2);
          else if (messages.length < stats.batchSize / 4) stats.batchSize = Math.max(min, Math.floor(stats.batchSize / 2));
        }
        const idle = messages.length === 0 && processor.processedThrough > processor.committed;
        if (processor.commitDue || idle || uncommitted >= maxUncommitted) await commitAndAck();
        stats.processedThrough = processor.processedThrough;
        failures = 0;
      } catch (error) {
        failures += 1;
        logger.warn({ err: error, partition, failures }, 'partition loop failed; reopening');
        await source?.close().catch(() => undefined);
        source = undefined;
        if (this.#running) await backOff(failures);
      }
    }
    try {
      if (started) await commitAndAck();
      logger.info({ partition, committed: processor.committed }, 'partition drained');
    } catch (error) {
      logger.error({ err: error, partition }, 'final commit failed; the next owner replays from the last checkpoint');
    } finally {
      await source?.close().catch(() => undefined);
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

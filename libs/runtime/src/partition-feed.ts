import type { Logger } from '@segment/telemetry';
import { backOff } from './backoff.ts';
import { Arrivals } from './arrivals.ts';
import type { SourceMessage } from './ports.ts';

/** Messages of a consumer in stream order; acking a sequence acks every message delivered at or below it. */
export interface MessageSource {
  fetch(maxMessages: number, expiresMs: number): Promise<SourceMessage[]>;
  ack(seq: number): Promise<void>;
  close(): Promise<void>;
}

export interface PartitionFeedOptions {
  /** Opens one consumer over every partition, delivering from `startSeq`, holding at most `maxUnacked` messages unacked. */
  open(startSeq: number, maxUnacked: number): Promise<MessageSource>;
  /** The partition a subject belongs to, if this feed's: undefined for foreign subjects and partitions another replica owns. */
  partitionOf(subject: string): number | undefined;
  /** A partition's first message arrived: its queue exists, and its loop should start. */
  onPartition(partition: number): void;
  /** Messages delivered and not yet committed, for all partitions together (the source's window). */
  maxUnacked: number;
  logger: Logger;
}

/**
 * One consumer's messages split into a queue per partition. One consumer for the whole worker
 * instead of one per vendor: nats-server 2.9 scans every message of the stream for each filtered
 * consumer, so delivery cost it 3.0 µs a message with one consumer, 4.5–5.7 with ten filtered ones
 * and 12 with fifty (2M messages). Its window bounds the messages the worker holds,
 * however many vendors it owns.
 *
 * A message may be acked once its partition committed it, and so may everything below it: the ack
 * floor is the message before the oldest one some partition has not committed.
 */
export class PartitionFeed {
  readonly #options: PartitionFeedOptions;
  readonly #queues = new Map<number, PartitionQueue>();
  /** The last stream sequence delivered to the feed. */
  #deliveredThrough = 0;
  #acked = 0;
  #source: MessageSource | undefined;
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(options: PartitionFeedOptions) {
    this.#options = options;
  }

  /** Every message at or below it was committed by its partition (or belongs to none of this feed's). */
  get floor(): number {
    let floor = this.#deliveredThrough;
    for (const queue of this.#queues.values()) {
      const oldest = queue.oldestUncommitted;
      if (oldest !== undefined && oldest <= floor) floor = oldest - 1;
    }
    return floor;
  }

  /** The queue of a partition, created (committed through `committed`) if new. */
  queue(partition: number, committed = 0): PartitionQueue {
    let queue = this.#queues.get(partition);
    if (!queue) this.#queues.set(partition, (queue = new PartitionQueue(this, committed)));
    return queue;
  }

  start(startSeq: number): void {
    this.#running = true;
    this.#deliveredThrough = this.#acked = startSeq - 1;
    this.#loop = this.#run();
  }

  /** Stops delivering; queued messages stay for the partitions to finish or drop. */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#running) {
      try {
        this.#source ??= await this.#options.open(this.#deliveredThrough + 1, this.#options.maxUnacked);
        this.#route(await this.#source.fetch(this.#options.maxUnacked, 250));
        this.#advance();
        failures = 0;
      } catch (error) {
        // A break in the deliveries (or a lost consumer): what arrived before it was routed, so the
        // consumer is recreated from the message after the last one delivered.
        failures += 1;
        this.#options.logger.warn({ err: error, deliveredThrough: this.#deliveredThrough, failures }, 'source consumer failed; reopening');
        await this.#closeSource();
        // At most a second apart: a consumer whose server restarts is reopened soon after it is back.
        if (this.#running) await backOff(failures, 1_000);
      }
    }
    await this.#closeSource();
  }

  async #closeSource(): Promise<void> {
    await this.#source?.close().catch(() => undefined);
    this.#source = undefined;
  }

  #route(messages: readonly SourceMessage[]): void {
    for (const message of messages) {
      // A redelivery (its ack timed out): routed already.
      if (message.seq <= this.#deliveredThrough) continue;
      this.#deliveredThrough = message.seq;
      const partition = this.#options.partitionOf(message.subject);
      if (partition === undefined) continue;
      let queue = this.#queues.get(partition);
      if (!queue) {
        queue = this.queue(partition);
        this.#options.onPartition(partition);
      }
      // Below the partition's checkpoint: a replay from a start that served another partition.
      if (message.seq <= queue.committed) continue;
      queue.push(message);
    }
  }

  /**
   * Moves the floor past what the partitions committed and acks through it. Once half the window
   * waits, every partition is asked to commit: the floor then moves past all of it at once, where
   * commits one partition at a time would each move it a little (and transactions would shrink to
   * what arrived between them).
   */
  #advance(): void {
    let waiting = 0;
    for (const queue of this.#queues.values()) waiting += queue.uncommittedCount;
    if (waiting >= this.#options.maxUnacked / 2) for (const queue of this.#queues.values()) queue.requestCommit();
    const floor = this.floor;
    if (floor > this.#acked && this.#source) {
      this.#acked = floor;
      void this.#source.ack(floor);
    }
  }

  /** Called by a queue whose partition committed. */
  committed(): void {
    this.#advance();
  }
}

/** One partition's share of the feed, read by its loop like a consumer of its own. */
export class PartitionQueue {
  readonly #feed: PartitionFeed;
  readonly #messages = new Arrivals<SourceMessage>();
  /**
   * The sequences delivered to the partition and not yet committed, in order, from `#head` on:
   * numbers in one array rather than an object per message, which lived for seconds under load and
   * so survived the worker's young-generation collections.
   */
  #uncommitted: number[] = [];
  #head = 0;
  /** The partition committed everything at or below it. */
  committed: number;
  /** The feed's window is half full of messages waiting for commits. */
  commitRequested = false;

  constructor(feed: PartitionFeed, committed: number) {
    this.#feed = feed;
    this.committed = committed;
  }

  push(message: SourceMessage): void {
    this.#messages.push(message);
    this.#uncommitted.push(message.seq);
  }

  get oldestUncommitted(): number | undefined {
    return this.#uncommitted[this.#head];
  }

  get uncommittedCount(): number {
    return this.#uncommitted.length - this.#head;
  }

  requestCommit(): void {
    this.commitRequested = true;
    this.#messages.wake();
  }

  /** Up to `maxMessages` of the partition's; waits up to `waitMs` for one unless a commit is requested. */
  fetch(maxMessages: number, waitMs: number): Promise<SourceMessage[]> {
    return this.#messages.take(maxMessages, waitMs, !this.commitRequested);
  }

  /** The partition committed through `seq`. */
  async ack(seq: number): Promise<void> {
    this.commitRequested = false;
    if (seq <= this.committed) return;
    this.committed = seq;
    while (this.#head < this.#uncommitted.length && this.#uncommitted[this.#head]! <= seq) this.#head++;
    if (this.#head > 4096 && this.#head * 2 > this.#uncommitted.length) {
      this.#uncommitted = this.#uncommitted.slice(this.#head);
      this.#head = 0;
    }
    this.#feed.committed();
  }
}

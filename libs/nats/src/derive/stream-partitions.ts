import { AckPolicy, DeliverPolicy, jetstream, type MsgRequest, type NextMsgRequest, type Consumer, type ConsumerMessages, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@segment/telemetry';
import { Arrivals, type MessageSource, type PartitionDirectory, type SourceMessage } from '@segment/runtime';

export interface StreamPartitionsOptions {
  stream: string;
  /** The subject of a partition, and the partition of a subject (undefined for foreign subjects). */
  subjectOf(partition: number): string;
  partitionOf(subject: string): number | undefined;
  /** The durable consumer's name (one per replica). */
  consumer: string;
  /** Longer than a commit interval plus a transaction, or the server redelivers needlessly. */
  ackWaitMs?: number;
  logger: Logger;
}

/**
 * A stream whose subjects are partitions (one per vendor), consumed by one durable pull consumer
 * over all of them with ack policy "all": acking a message acks everything delivered before it.
 */
export class StreamPartitions implements PartitionDirectory {
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #options: StreamPartitionsOptions;

  constructor(nc: NatsConnection, jsm: JetStreamManager, options: StreamPartitionsOptions) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#options = options;
  }

  async listPartitions(): Promise<{ partitions: number[]; lastSeq: number }> {
    const info = await this.#jsm.streams.info(this.#options.stream, { subjects_filter: '>' });
    const partitions: number[] = [];
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const partition = this.#options.partitionOf(subject);
      if (partition !== undefined) partitions.push(partition);
    }
    return { partitions: partitions.sort((a, b) => a - b), lastSeq: info.state.last_seq };
  }

  async nextSeq(partition: number, seq: number): Promise<number | undefined> {
    // nats-server 2.9 answers `next_by_subj` in a message get; nats.js types it for direct gets only.
    const query: MsgRequest & NextMsgRequest = { seq, next_by_subj: this.#options.subjectOf(partition) };
    return (await this.#jsm.streams.getMessage(this.#options.stream, query))?.seq;
  }

  partitionOf(subject: string): number | undefined {
    return this.#options.partitionOf(subject);
  }

  async open(startSeq: number, maxUnacked: number): Promise<MessageSource> {
    return openDurableSource(this.#nc, this.#jsm, {
      stream: this.#options.stream,
      name: this.#options.consumer,
      startSeq,
      maxAckPending: maxUnacked,
      ackWaitMs: this.#options.ackWaitMs,
      logger: this.#options.logger,
    });
  }
}

export interface DurableSourceOptions {
  stream: string;
  name: string;
  /** Only the stream's messages on these subjects; by default all. */
  filter?: string;
  startSeq: number;
  /** Messages delivered and not yet acked, at most; default 8,000. */
  maxAckPending?: number;
  ackWaitMs?: number;
  /**
   * Messages asked for ahead of the transaction in progress; default 8,000. Fewer for streams of
   * large messages: the server drops a connection's messages once 64 MiB wait for it to read them
   * ("slow consumer"). (Asking by bytes instead stalls in nats.js 3 when the next message does not
   * fit what is left of a request: it waits for two missed heartbeats.)
   */
  prefetchMessages?: number;
  /** Keep each message's headers (derived messages carry their provenance there); events' are never read. */
  headers?: boolean;
  logger: Logger;
}

/**
 * (Re)creates a durable pull consumer (ack policy "all") delivering from `startSeq`, and consumes it.
 * The caller's checkpoint, not the consumer's ack floor, says where to resume: messages delivered
 * but never committed come back at once instead of after the ack timeout.
 */
export async function openDurableSource(nc: NatsConnection, jsm: JetStreamManager, options: DurableSourceOptions): Promise<MessageSource> {
  const { stream, name, filter, startSeq, logger } = options;
  await jsm.consumers.delete(stream, name).catch(() => false);
  const info = await jsm.consumers.add(stream, {
    durable_name: name,
    ...(filter ? { filter_subject: filter } : {}),
    ack_policy: AckPolicy.All,
    ack_wait: nanos(options.ackWaitMs ?? 30_000),
    max_ack_pending: options.maxAckPending ?? 8_000,
    max_deliver: -1,
    ...(startSeq > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq } : { deliver_policy: DeliverPolicy.All }),
  });
  // nats-server 2.9 silently drops settings it does not know: check that the filter really took.
  if ((info.config.filter_subject || undefined) !== filter) {
    throw new Error(`consumer ${name} on ${stream} was created with filter ${JSON.stringify(info.config.filter_subject)} instead of ${filter}`);
  }
  logger.debug({ stream, consumer: name, startSeq }, 'consumer opened');
  const consumer = await jetstream(nc).consumers.get(stream, name);
  return ConsumerSource.open(nc, consumer, { name, delivered: info.delivered.consumer_seq, prefetchMessages: options.prefetchMessages ?? defaultPrefetchMessages, headers: options.headers ?? false });
}

/**
 * The consumer's deliveries stopped being consecutive: messages were lost on the way (a reconnect
 * drops what was in flight, while the server counts it delivered), or the server forgot deliveries
 * (a restart rolled its consumer state back). The source must be reopened from the last processed
 * sequence; carrying on would skip the lost messages for good, since acking a later one acks them.
 */
export class DeliveryGapError extends Error {
  readonly code = 'SEGMENT_DELIVERY_GAP';
  constructor(consumer: string, expected: number, got: DeliveredMessage) {
    super(
      got.delivery > expected
        ? `consumer ${consumer} skipped deliveries ${expected}..${got.delivery - 1} (lost in transit); next came stream sequence ${got.seq}`
        : `consumer ${consumer} delivered ${got.delivery} (stream sequence ${got.seq}) where ${expected} was due (the server's consumer state went back)`,
    );
    this.name = 'DeliveryGapError';
  }
}

/** Messages asked for ahead of the transaction in progress: the next batch is what arrived meanwhile. */
const defaultPrefetchMessages = 8_000;
/** What an ack carries (a JsMsg's `ack()`). */
const ackPayload = new TextEncoder().encode('+ACK');

/**
 * A message source over a standing pull (`consume`): messages stream in while the reader works on
 * the previous batch, so a batch is whatever has arrived — large under load, small and prompt when
 * traffic is light (a fixed-size fetch would wait out its expiry on a partial batch).
 */
class ConsumerSource implements MessageSource {
  /** The connection acks go over (to a delivery's reply subject). */
  readonly #nc: NatsConnection;
  readonly #messages: ConsumerMessages;
  readonly #consumer: string;
  readonly #headers: boolean;
  readonly #arrivals = new Arrivals<DeliveredMessage>();
  /** Each returned batch's last message, to ack through: ack policy "all" acks everything below it. */
  #ackable: DeliveredMessage[] = [];
  /**
   * The consumer sequence due next. Every delivery, a redelivery too, takes the next one, so a
   * message lost in transit shows as a jump (nats.js checks this for ordered consumers only).
   */
  #nextDelivery: number;
  /** Set at the first break in the deliveries; what arrived before it is still handed out. */
  #gap: DeliveryGapError | undefined;

  private constructor(nc: NatsConnection, messages: ConsumerMessages, consumer: string, delivered: number, headers: boolean) {
    this.#nc = nc;
    this.#messages = messages;
    this.#consumer = consumer;
    this.#nextDelivery = delivered + 1;
    this.#headers = headers;
  }

  static async open(nc: NatsConnection, consumer: Consumer, options: { name: string; delivered: number; prefetchMessages: number; headers: boolean }): Promise<ConsumerSource> {
    let source: ConsumerSource | undefined;
    const messages = await consumer.consume({
      max_messages: options.prefetchMessages,
      callback: (message) => source!.#receive(message),
    });
    source = new ConsumerSource(nc, messages, options.name, options.delivered, options.headers);
    return source;
  }

  #receive(jsMsg: JsMsg): void {
    if (this.#gap) return;
    const message = new DeliveredMessage(jsMsg, this.#headers);
    if (message.delivery !== this.#nextDelivery) {
      this.#gap = new DeliveryGapError(this.#consumer, this.#nextDelivery, message);
      this.#arrivals.wake();
    } else {
      this.#nextDelivery++;
      this.#arrivals.push(message);
    }
  }

  async fetch(maxMessages: number, waitMs: number): Promise<SourceMessage[]> {
    const taken = await this.#arrivals.take(maxMessages, waitMs, !this.#gap);
    // Everything before the gap has been handed out: the caller reopens from what it processed.
    if (taken.length === 0 && this.#gap) throw this.#gap;
    if (taken.length > 0) this.#ackable.push(taken.at(-1)!);
    return taken;
  }

  async ack(seq: number): Promise<void> {
    let through: DeliveredMessage | undefined;
    while (this.#ackable.length > 0 && this.#ackable[0]!.seq <= seq) through = this.#ackable.shift();
    if (through) this.#nc.publish(through.reply, ackPayload);
  }

  async close(): Promise<void> {
    this.#arrivals.clear();
    this.#ackable = [];
    await this.#messages.close();
  }
}

/**
 * A delivered message as the runtime sees it: its sequences, subject, data and ack subject, not the
 * JsMsg. Under load an event waits in its partition's queue for seconds, and the dozen objects of a
 * JsMsg (its parsed protocol line, views of the socket's buffer, decoded strings) then survived the
 * worker's young-generation collections, which copy what survives (1M-event bench, back to back:
 * the worker's CPU 28 -> 24 µs per event, its peak RSS 726 -> 665 MB). The sequences are read
 * from the ack subject in place: `JsMsg.info` splits the subject into a dozen strings (~17% of
 * what the worker allocated).
 */
export class DeliveredMessage implements SourceMessage {
  readonly seq: number;
  /** The consumer's delivery sequence: one more for every delivery, a redelivery too. */
  readonly delivery: number;
  readonly subject: string;
  readonly data: Uint8Array;
  /** Where an ack of this message goes; with ack policy "all" it acks every message delivered before it. */
  readonly reply: string;
  /** Only when the source keeps headers. */
  readonly headers: SourceMessage['headers'];

  constructor(jsMsg: JsMsg, keepHeaders = false) {
    // nats.js types no `reply` on a JsMsg, but has it (`info` parses it).
    const reply = (jsMsg as JsMsg & { readonly reply?: string }).reply ?? '';
    // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<delivery seq>.<ns>.<pending>, or (servers
    // with domains) <domain>.<account hash> after ACK and a token at the end: tokens 5 and 6 (from 0)
    // of 9, else 7 and 8.
    let dots = 0;
    for (let i = reply.indexOf('.'); i >= 0; i = reply.indexOf('.', i + 1)) dots++;
    const token = dots === 8 ? 5 : dots >= 10 ? 7 : -1;
    if (token < 0 || !reply.startsWith('$JS.ACK.')) throw new Error(`not a JetStream delivery: reply subject ${JSON.stringify(reply)}`);
    let start = 0;
    for (let k = 0; k < token; k++) start = reply.indexOf('.', start) + 1;
    const middle = reply.indexOf('.', start);
    this.seq = decimalAt(reply, start, middle);
    this.delivery = decimalAt(reply, middle + 1, reply.indexOf('.', middle + 1));
    this.subject = jsMsg.subject;
    this.data = jsMsg.data;
    this.reply = reply;
    this.headers = keepHeaders ? jsMsg.headers : undefined;
  }
}

/** The decimal number in `text` from `start` up to `end`. */
function decimalAt(text: string, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) value = value * 10 + (text.charCodeAt(i) - 0x30);
  return value;
}

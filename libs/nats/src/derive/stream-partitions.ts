import { AckPolicy, DeliverPolicy, type MsgRequest, type NextMsgRequest, type JetStreamManager } from '@nats-io/jetstream';
import { createInbox, type Msg, type NatsConnection, type Status, type Subscription } from '@nats-io/transport-node';
import type { Logger } from '@segment/telemetry';
import { Arrivals, type MessageSource, type PartitionDirectory, type SourceMessage } from '@segment/runtime';

export interface StreamPartitionsOptions {
  stream: string;
  /** The subject of a partition, and the partition of a subject (undefined for foreign subjects). */
  subjectOf(partition: number): string;
  partitionOf(subject: string): number | undefined;
  /** The durable consumer's name (one per replica). */
  consumer: string;
  logger: Logger;
}

/**
 * A stream whose subjects are partitions (one per vendor), consumed by one durable pull consumer
 * over all of them, pulled at the worker's pace (`openDurableSource`).
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
      maxUnacked,
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
  /** Messages delivered and not yet acked by the reader, at most; default 8,000. */
  maxUnacked?: number;
  /**
   * Messages asked for in one pull; default 8,000. Fewer for streams of large messages: the server
   * drops a connection's messages once 64 MiB wait for it to read them ("slow consumer").
   */
  prefetchMessages?: number;
  /** Keep each message's headers (derived messages carry their provenance there); events' are never read. */
  headers?: boolean;
  /** How long a pull waits at the server for messages (an idle source renews it this often); default 5 s. */
  pullExpiresMs?: number;
  logger: Logger;
}

/**
 * (Re)creates a durable pull consumer delivering from `startSeq`, and pulls from it at the reader's
 * pace. The caller's checkpoint, not the consumer, says where to resume, so the consumer has ack
 * policy "none": acks would only pace deliveries, and the server kept every delivered, unacked
 * message in the consumer's state and encoded them all whenever it saved it (10% of nats-server's
 * CPU in a 1M-event bench, with ack policy "all" and 64,000 unacked). The reader's acks pace the
 * pulls instead, here: nats-server's CPU per event fell 12-18% against the other stages' in the
 * same runs (two 1M-event pairs).
 */
export async function openDurableSource(nc: NatsConnection, jsm: JetStreamManager, options: DurableSourceOptions): Promise<MessageSource> {
  const { stream, name, filter, startSeq, logger } = options;
  await jsm.consumers.delete(stream, name).catch(() => false);
  const info = await jsm.consumers.add(stream, {
    durable_name: name,
    ...(filter ? { filter_subject: filter } : {}),
    ack_policy: AckPolicy.None,
    ...(startSeq > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq } : { deliver_policy: DeliverPolicy.All }),
  });
  // nats-server 2.9 silently drops settings it does not know: check that the filter really took.
  if ((info.config.filter_subject || undefined) !== filter) {
    throw new Error(`consumer ${name} on ${stream} was created with filter ${JSON.stringify(info.config.filter_subject)} instead of ${filter}`);
  }
  logger.debug({ stream, consumer: name, startSeq }, 'consumer opened');
  return new PulledSource(nc, {
    stream,
    consumer: name,
    delivered: info.delivered.consumer_seq,
    window: options.maxUnacked ?? defaultWindow,
    pullSize: options.prefetchMessages ?? defaultPullSize,
    headers: options.headers ?? false,
    pullExpiresMs: options.pullExpiresMs ?? 5_000,
  });
}

/**
 * The consumer's deliveries stopped being consecutive: messages were lost on the way (a reconnect
 * drops what was in flight, while the server counts it delivered), or the server forgot deliveries
 * (a restart rolled its consumer state back). The source must be reopened from the last processed
 * sequence: the server will not deliver the lost messages again.
 */
export class DeliveryGapError extends Error {
  readonly code = 'SEGMENT_DELIVERY_GAP';
  constructor(consumer: string, detail: string) {
    super(`consumer ${consumer} ${detail}`);
    this.name = 'DeliveryGapError';
  }
}

const defaultWindow = 8_000;
const defaultPullSize = 8_000;

/**
 * A message source pulling one request at a time, for what the reader's window has room for:
 * messages stream in while the reader works on the previous batch, so a batch is whatever has
 * arrived — large under load, small and prompt when traffic is light (a pull waits at the server,
 * and a message that arrives meanwhile is delivered at once).
 */
class PulledSource implements MessageSource {
  readonly #nc: NatsConnection;
  readonly #consumer: string;
  /** Where pulls go: JetStream's "next messages" API of the consumer. */
  readonly #pullSubject: string;
  readonly #inbox = createInbox();
  readonly #subscription: Subscription;
  readonly #window: number;
  readonly #pullSize: number;
  readonly #headers: boolean;
  readonly #arrivals = new Arrivals<DeliveredMessage>();
  /** Each returned batch's last message: an ack through a sequence frees the window through its delivery. */
  #ackable: DeliveredMessage[] = [];
  /**
   * The consumer sequence due next. Every delivery takes the next one, so a message lost in transit
   * shows as a jump.
   */
  #nextDelivery: number;
  /** The reader acked every delivery through this one. */
  #ackedDelivery: number;
  /** The pull in flight: what it asked for, what came, when the server last answered it, and when it last heard from the server (answers and heartbeats). */
  #pull: { asked: number; received: number; answeredAt: number; heardAt: number } | undefined;
  /** Set at the first failure; what arrived before it is still handed out. */
  #failure: Error | undefined;
  #closed = false;
  readonly #pullExpiresMs: number;
  /** How often the server sends a waiting pull an idle heartbeat: a pull whose heartbeats stop was lost. */
  readonly #heartbeatMs: number;
  /**
   * Checks that the pull in flight hears from the server (messages, heartbeats, its expiry) within
   * four heartbeats: else the server lost it (a restart, a new consumer leader; nats-server 2.9.10
   * also drops a pull now and then under load: 1–9 times in a 10M-event run). Heartbeats tell a
   * lost pull from an idle one before it expires: waiting for twice the expiry stalled a projector
   * 10 s each time, and shorter expiries made lost pulls more frequent (with 2 s, 10–12 in each of
   * three 10M-event runs).
   */
  readonly #watchdog: NodeJS.Timeout;
  /** The pull was overdue at the watchdog's last check. */
  #overdue = false;
  /** The connection's status events (nats.js's iterator, stopped at close). */
  readonly #statuses: AsyncIterable<Status> & { stop?: () => void };

  constructor(nc: NatsConnection, options: { stream: string; consumer: string; delivered: number; window: number; pullSize: number; headers: boolean; pullExpiresMs: number }) {
    this.#nc = nc;
    this.#consumer = options.consumer;
    this.#pullSubject = `$JS.API.CONSUMER.MSG.NEXT.${options.stream}.${options.consumer}`;
    this.#nextDelivery = options.delivered + 1;
    this.#ackedDelivery = options.delivered;
    this.#window = options.window;
    this.#pullSize = Math.min(options.pullSize, options.window);
    this.#headers = options.headers;
    this.#pullExpiresMs = options.pullExpiresMs;
    this.#subscription = nc.subscribe(this.#inbox, {
      callback: (error, message) => {
        try {
          if (error) throw error;
          this.#receive(message);
        } catch (failure) {
          this.#fail(failure instanceof Error ? failure : new Error(String(failure)));
        }
      },
    });
    // The server refuses heartbeats over half the expiry.
    this.#heartbeatMs = Math.min(1_000, Math.floor(this.#pullExpiresMs / 4));
    const silentAfterMs = 4 * this.#heartbeatMs;
    // A pull the server keeps but neither serves nor expires would go on getting heartbeats.
    const unansweredAfterMs = 2 * this.#pullExpiresMs;
    this.#watchdog = setInterval(() => {
      const pull = this.#pull;
      const now = Date.now();
      const overdue =
        pull === undefined ? undefined
        : now - pull.heardAt > silentAfterMs ? `no answer or heartbeat for ${silentAfterMs} ms`
        : now - pull.answeredAt > unansweredAfterMs ? `no answer for ${unansweredAfterMs} ms`
        : undefined;
      // Overdue at two checks in a row: the connection's input is read between them, so an event
      // loop that was busy (not the server) cannot pass for a lost pull.
      if (overdue && this.#overdue) this.#fail(new Error(`consumer ${this.#consumer}: a pull had ${overdue}`));
      this.#overdue = overdue !== undefined;
    }, this.#heartbeatMs);
    this.#watchdog.unref();
    this.#statuses = nc.status();
    void this.#watchConnection();
    this.#pullMore();
  }

  async #watchConnection(): Promise<void> {
    for await (const status of this.#statuses) {
      // What was in flight was lost with the connection, and the server may have lost the pull too:
      // once connected again (not at the disconnect, so that the reopening finds a connection).
      if (status.type === 'reconnect') this.#fail(new DeliveryGapError(this.#consumer, 'reconnected: deliveries in flight may have been lost'));
    }
  }

  /** Pulls what the window has room for, when no pull is in flight and the room is worth a pull. */
  #pullMore(): void {
    if (this.#pull || this.#failure || this.#closed) return;
    const room = this.#window - (this.#nextDelivery - 1 - this.#ackedDelivery);
    if (room < Math.ceil(this.#pullSize / 4)) return;
    const asked = Math.min(room, this.#pullSize);
    const now = Date.now();
    this.#pull = { asked, received: 0, answeredAt: now, heardAt: now };
    this.#nc.publish(this.#pullSubject, JSON.stringify({ batch: asked, expires: this.#pullExpiresMs * 1_000_000, idle_heartbeat: this.#heartbeatMs * 1_000_000 }), { reply: this.#inbox });
  }

  #receive(message: Msg): void {
    if (this.#failure || this.#closed) return;
    const pull = this.#pull;
    const status = message.data.length === 0 ? (message.headers?.code ?? 0) : 0;
    if (status === 100) {
      if (pull) pull.heardAt = Date.now();
      return;
    }
    if (status !== 0) {
      // 408: the pull expired (or 404: nothing to deliver), saying how many of its messages are left.
      if ((status === 408 || status === 404) && pull) {
        const left = Number(message.headers!.get('Nats-Pending-Messages') || 0);
        if (pull.received + left < pull.asked) {
          return this.#fail(new DeliveryGapError(this.#consumer, `delivered ${pull.asked - left} messages of a pull, ${pull.received} arrived: the rest were lost in transit`));
        }
        this.#pull = undefined;
        return this.#pullMore();
      }
      return this.#fail(new Error(`consumer ${this.#consumer}: a pull was answered ${status} ${message.headers!.description}`));
    }
    const delivered = new DeliveredMessage(message, this.#headers);
    if (!pull) return this.#fail(new DeliveryGapError(this.#consumer, `delivered stream sequence ${delivered.seq} to no pull`));
    if (delivered.delivery !== this.#nextDelivery) {
      return this.#fail(
        new DeliveryGapError(
          this.#consumer,
          delivered.delivery > this.#nextDelivery
            ? `skipped deliveries ${this.#nextDelivery}..${delivered.delivery - 1} (lost in transit); next came stream sequence ${delivered.seq}`
            : `delivered ${delivered.delivery} (stream sequence ${delivered.seq}) where ${this.#nextDelivery} was due (the server's consumer state went back)`,
        ),
      );
    }
    this.#nextDelivery++;
    this.#arrivals.push(delivered);
    pull.received++;
    pull.answeredAt = pull.heardAt = Date.now();
    if (pull.received === pull.asked) {
      this.#pull = undefined;
      this.#pullMore();
    }
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#arrivals.wake();
  }

  async fetch(maxMessages: number, waitMs: number): Promise<SourceMessage[]> {
    const taken = await this.#arrivals.take(maxMessages, waitMs, !this.#failure);
    // Everything before the failure has been handed out: the caller reopens from what it processed.
    if (taken.length === 0 && this.#failure) throw this.#failure;
    if (taken.length > 0) this.#ackable.push(taken.at(-1)!);
    return taken;
  }

  async ack(seq: number): Promise<void> {
    let through: DeliveredMessage | undefined;
    while (this.#ackable.length > 0 && this.#ackable[0]!.seq <= seq) through = this.#ackable.shift();
    if (!through) return;
    this.#ackedDelivery = through.delivery;
    this.#pullMore();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#watchdog);
    this.#statuses.stop?.();
    this.#arrivals.clear();
    this.#ackable = [];
    this.#subscription.unsubscribe();
  }
}

/**
 * A delivered message as the runtime sees it: its sequences, subject, data and (when kept) headers.
 * Under load an event waits in its partition's queue for seconds, and what it holds then survives
 * the worker's young-generation collections, which copy what survives: nats.js's JsMsg (a dozen
 * objects) cost the worker 28 against 24 µs per event (1M-event bench). The sequences are read from
 * the ack subject in place (`JsMsg.info` split it into a dozen strings).
 */
export class DeliveredMessage implements SourceMessage {
  readonly seq: number;
  /** The consumer's delivery sequence: one more for every delivery. */
  readonly delivery: number;
  readonly subject: string;
  readonly data: Uint8Array;
  /** Only when the source keeps headers. */
  readonly headers: SourceMessage['headers'];

  constructor(message: Pick<Msg, 'reply' | 'subject' | 'data' | 'headers'>, keepHeaders = false) {
    const reply = message.reply ?? '';
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
    this.subject = message.subject;
    this.data = message.data;
    this.headers = keepHeaders ? message.headers : undefined;
  }
}

/** The decimal number in `text` from `start` up to `end`. */
function decimalAt(text: string, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) value = value * 10 + (text.charCodeAt(i) - 0x30);
  return value;
}

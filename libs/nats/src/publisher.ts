// A JetStream publisher that keeps many publishes in flight on one connection. `js.publish()` waits
// for each PubAck before the next message (~15K msg/s measured here); this one sends core NATS
// messages with a per-message reply subject under a private inbox, matches the acks as they come
// back on one subscription, and so is limited by the server's write path instead of round trips.
// Each message is written as one protocol frame (`HPUB subject reply hlen len`, headers, payload)
// into nats.js's outbound buffer, where `nc.publish` re-checks the subjects, encodes the protocol
// line into a new ArrayBuffer and queues four pieces: 2.9 against 1.2 µs of the client's CPU per
// message, measured.
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { headers as segmentHeaders } from './names.ts';

/** What JetStream answers for a stored (or de-duplicated) message. */
export interface PubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
  domain?: string;
}

export interface PublishOptions {
  /** `Nats-Msg-Id`: JetStream drops a second message with the same id inside the stream's duplicate window. */
  msgId?: string;
  /** Any other headers, e.g. `Nats-Expected-Stream`. Costs a header block per message. */
  headers?: Record<string, string>;
}

export interface PublishItem extends PublishOptions {
  subject: string;
  payload: Uint8Array | string;
}

export interface PipelinedPublisherOptions {
  /** Publishes sent but not yet acknowledged, at most. Default 4,096 (see the benchmark). */
  maxInFlight?: number;
  /** A publish not acknowledged within this many milliseconds fails with a timeout. Default 10,000. */
  ackTimeoutMs?: number;
}

export type PublishErrorCode =
  /** JetStream refused the message; `status`, `errCode` and `description` are the server's. */
  | 'SEGMENT_PUBLISH_REJECTED'
  /** No stream captures the subject (the server answered 503 no responders). */
  | 'SEGMENT_PUBLISH_NO_STREAM'
  /** No acknowledgement within `ackTimeoutMs`; the message may or may not be stored. */
  | 'SEGMENT_PUBLISH_TIMEOUT'
  /** The publisher or its connection closed before the acknowledgement arrived. */
  | 'SEGMENT_PUBLISHER_CLOSED';

export class PublishError extends Error {
  readonly code: PublishErrorCode;
  readonly subject: string;
  /** The server's status (e.g. 400, 503) and JetStream error code (e.g. 10060), when it gave them. */
  readonly status: number | undefined;
  readonly errCode: number | undefined;
  readonly description: string | undefined;
  constructor(code: PublishErrorCode, subject: string, message: string, details: { status?: number; errCode?: number; description?: string; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'PublishError';
    this.code = code;
    this.subject = subject;
    this.status = details.status;
    this.errCode = details.errCode;
    this.description = details.description;
  }
}

export interface PublishManySummary {
  /** Messages JetStream stored or recognised as duplicates. */
  acked: number;
  /** Of those, how many were duplicates (nothing new stored). */
  duplicates: number;
  failed: number;
}

/**
 * What `nc.publish` ends in: nats.js's protocol handler (`NatsConnectionImpl.protocol`), which is
 * not in its types. A publisher checks for it when it is made.
 */
interface ProtocolHandler {
  sendCommand(frame: Uint8Array): void;
  /** Set while the connection drains: no publish may start. */
  noMorePublishing: boolean;
  /** What `nc.stats()` reports. */
  outMsgs: number;
  outBytes: number;
}

/** How one publish ended: its PubAck, or the error that stands for it. */
export type PublishCallback = (error: PublishError | undefined, ack: PubAck | undefined) => void;

/** Settles with the server's reply, or with the error that stands for it (timeout, closure, send failure). */
type Settle = (reply: Msg | undefined, error: PublishError | undefined) => void;

/** One publish from the call until its settlement: queued for a slot, then in flight. */
interface Pending {
  id: number;
  subject: string;
  payload: Uint8Array | string | undefined;
  options: PublishOptions | undefined;
  settle: Settle;
  deadline: number;
}

// Measured with bench/publisher.bench.ts (200,000 ~200-byte messages with Nats-Msg-Id, shared 2-core
// machine): 256 in flight ~65K msg/s; 1,024 to 4,096 ~60-110K msg/s, within the run-to-run noise;
// 16,384 no faster (more garbage per ack burst). `js.publish` one at a time: 3-5K msg/s.
const defaultMaxInFlight = 4096;
const defaultAckTimeoutMs = 10_000;

/**
 * Publishes to JetStream with up to `maxInFlight` messages awaiting their PubAck. Messages leave
 * in call order; a call made while the window is full waits (FIFO) for a slot before sending.
 */
export class PipelinedPublisher {
  readonly maxInFlight: number;
  readonly ackTimeoutMs: number;
  readonly #nc: NatsConnection;
  readonly #protocol: ProtocolHandler;
  readonly #prefix: string;
  readonly #sub: Subscription;
  /** Sent and not yet settled, by id; insertion order is send order, so deadlines ascend. */
  readonly #sent = new Map<number, Pending>();
  /** Waiting for a slot, FIFO: an array with a moving head, compacted as it drains. */
  #queue: Pending[] = [];
  #queueHead = 0;
  #nextId = 1;
  /** `publishMany` loops waiting for a slot (they pull items only when one is free). */
  #slotWaiters: (() => void)[] = [];
  #flushes: { upTo: number; resolve: () => void }[] = [];
  #closed: PublishError | undefined;
  #closing: Promise<void> | undefined;
  readonly #sweeper: ReturnType<typeof setInterval>;

  constructor(nc: NatsConnection, options: PipelinedPublisherOptions = {}) {
    this.maxInFlight = options.maxInFlight ?? defaultMaxInFlight;
    this.ackTimeoutMs = options.ackTimeoutMs ?? defaultAckTimeoutMs;
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1) throw new RangeError(`maxInFlight must be an integer >= 1, got ${this.maxInFlight}`);
    if (!(this.ackTimeoutMs > 0)) throw new RangeError(`ackTimeoutMs must be > 0, got ${this.ackTimeoutMs}`);
    this.#nc = nc;
    const protocol = (nc as unknown as { protocol?: ProtocolHandler }).protocol;
    if (typeof protocol?.sendCommand !== 'function') throw new TypeError('PipelinedPublisher needs a nats.js 3 connection (its protocol handler writes the frames)');
    this.#protocol = protocol;
    this.#prefix = `${createInbox()}.`;
    // A callback, not an async iterator: acks are handled as the socket delivers them, with no
    // promise per message. nats.js re-subscribes after a reconnect; acks lost in the gap time out.
    this.#sub = nc.subscribe(`${this.#prefix}*`, { callback: (error, msg) => this.#onAck(error, msg) });
    void this.#sub.closed.then((reason) => {
      this.#fail(new PublishError('SEGMENT_PUBLISHER_CLOSED', '', `publisher closed before its acknowledgement arrived${reason instanceof Error ? `: ${reason.message}` : ''}`, { cause: reason }));
    });
    // One timer sweeps every deadline: a timer per message would cost more than the publish.
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(5, Math.min(1000, this.ackTimeoutMs / 4)));
    this.#sweeper.unref();
  }

  /** Publishes sent and not yet settled; never more than `maxInFlight`. */
  get inFlight(): number {
    return this.#sent.size;
  }

  /** Publishes waiting for a free slot. */
  get queued(): number {
    return this.#queue.length - this.#queueHead;
  }

  /** Publishes one message; resolves with its PubAck, rejects with a `PublishError`. */
  publish(subject: string, payload: Uint8Array | string, options?: PublishOptions): Promise<PubAck> {
    const { promise, resolve, reject } = Promise.withResolvers<PubAck>();
    this.send(subject, payload, options, (error, ack) => (error ? reject(error) : resolve(ack!)));
    return promise;
  }

  /**
   * Publishes one message and tells `onAck` how it ended, once: no promise per message, for callers
   * that settle many together (a gateway answers a request of thousands of events once). `onAck`
   * may run before `send` returns (a closed publisher, a subject refused); what it throws is ignored.
   */
  send(subject: string, payload: Uint8Array | string, options: PublishOptions | undefined, onAck: PublishCallback): void {
    this.#submit(subject, payload, options, (reply, error) => {
      const result = error ?? ackOf(subject, reply!);
      if (result instanceof PublishError) onAck(result, undefined);
      else onAck(undefined, result);
    });
  }

  /**
   * Sends any request through the same window and inbox, e.g. a JetStream direct get: resolves with
   * the reply as the server sent it (status headers included), rejects only when there is none
   * (timeout, closed connection). Unlike `nc.request`, it makes no timer and no error per call.
   */
  request(subject: string, payload: Uint8Array | string = empty): Promise<Msg> {
    const { promise, resolve, reject } = Promise.withResolvers<Msg>();
    this.#submit(subject, payload, undefined, (reply, error) => (error ? reject(error) : resolve(reply!)));
    return promise;
  }

  /**
   * Publishes every item of a source in order, pulling the next one only while a slot is free, so
   * memory stays bounded by `maxInFlight` however long the source. An async source may yield
   * batches (arrays): nats.js writes to the socket whenever the event loop turns, so one item per
   * `await` costs a socket write per message, while a batch (say the events of one stdin chunk)
   * goes out in one write. `onResult` sees each item with its PubAck or its error. Resolves (or
   * rejects, when the source or `onResult` throws) only once every publish it made has settled.
   */
  async publishMany<T extends PublishItem>(
    items: Iterable<T> | AsyncIterable<T | readonly T[]>,
    onResult?: (item: T, ack: PubAck | undefined, error: PublishError | undefined) => void,
  ): Promise<PublishManySummary> {
    const summary: PublishManySummary = { acked: 0, duplicates: 0, failed: 0 };
    let outstanding = 0;
    let allSettled: (() => void) | undefined;
    let callbackError: { error: unknown } | undefined;
    const submit = (item: T) => {
      outstanding++;
      this.send(item.subject, item.payload, item, (error, ack) => {
        if (error) summary.failed++;
        else {
          summary.acked++;
          if (ack!.duplicate) summary.duplicates++;
        }
        try {
          onResult?.(item, ack, error);
        } catch (thrown) {
          callbackError ??= { error: thrown };
        } finally {
          if (--outstanding === 0) allSettled?.();
        }
      });
    };
    try {
      if (Symbol.iterator in items) {
        for (const item of items) {
          if (this.#full()) await this.#slotFree();
          submit(item);
        }
      } else {
        for await (const batch of items) {
          for (const item of (Array.isArray(batch) ? batch : [batch]) as readonly T[]) {
            if (this.#full()) await this.#slotFree();
            submit(item);
          }
        }
      }
    } finally {
      if (outstanding > 0) await new Promise<void>((resolve) => (allSettled = resolve));
    }
    if (callbackError) throw callbackError.error;
    return summary;
  }

  /** Resolves once every publish made before the call has settled (each reports its own failure). */
  flush(): Promise<void> {
    const upTo = this.#nextId - 1;
    if (this.#oldestUnsettled() > upTo) return Promise.resolve();
    return new Promise((resolve) => this.#flushes.push({ upTo, resolve }));
  }

  /** Flushes, then stops the ack subscription; later publishes fail with SEGMENT_PUBLISHER_CLOSED. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new PublishError('SEGMENT_PUBLISHER_CLOSED', '', 'publisher is closed');
      this.#closed ??= closed;
      await this.flush();
      clearInterval(this.#sweeper);
      if (!this.#sub.isClosed()) this.#sub.unsubscribe();
    })();
    return this.#closing;
  }

  #submit(subject: string, payload: Uint8Array | string, options: PublishOptions | undefined, settle: Settle): void {
    const pending: Pending = { id: this.#nextId++, subject, payload, options, settle, deadline: 0 };
    if (this.#closed) {
      this.#settle(pending, undefined, this.#closedErrorFor(subject));
    } else if (this.#sent.size < this.maxInFlight && this.queued === 0) {
      if (!this.#transmit(pending)) this.#released();
    } else {
      this.#queue.push(pending);
    }
  }

  /** Sends one publish into a free slot; false when `nc.publish` threw and the publish failed at once. */
  #transmit(pending: Pending): boolean {
    const { id, subject, payload, options } = pending;
    pending.payload = undefined;
    pending.options = undefined;
    pending.deadline = performance.now() + this.ackTimeoutMs;
    this.#sent.set(id, pending);
    try {
      this.#write(subject, this.#prefix + id, headerBlock(options), payload!);
      return true;
    } catch (error) {
      // Closed connection, bad subject, payload over max_payload: this publish fails, the slot stays free.
      this.#sent.delete(id);
      const message = error instanceof Error ? error.message : String(error);
      const code = this.#nc.isClosed() ? 'SEGMENT_PUBLISHER_CLOSED' : 'SEGMENT_PUBLISH_REJECTED';
      this.#settle(pending, undefined, new PublishError(code, subject, `cannot publish to ${subject}: ${message}`, { cause: error }));
      return false;
    }
  }

  /** One message as one protocol frame, with the checks `nc.publish` makes; throws where it would. */
  #write(subject: string, reply: string, headers: string | undefined, payload: Uint8Array | string): void {
    if (this.#nc.isClosed()) throw new Error('the connection is closed');
    if (this.#protocol.noMorePublishing) throw new Error('the connection is draining');
    if (subject.length === 0 || /[ \t\r\n]/.test(subject)) throw new Error(`invalid subject ${JSON.stringify(subject)}`);
    const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const headerBytes = headers === undefined ? 0 : Buffer.byteLength(headers);
    const size = headerBytes + data.length;
    const maxPayload = this.#nc.info?.max_payload;
    if (maxPayload !== undefined && size > maxPayload) throw new Error(`message of ${size} bytes exceeds max_payload (${maxPayload})`);
    const head = headers === undefined ? `PUB ${subject} ${reply} ${size}\r\n` : `HPUB ${subject} ${reply} ${headerBytes} ${size}\r\n${headers}`;
    const headBytes = Buffer.byteLength(head);
    // Small frames come from Node's shared pool: no ArrayBuffer of their own.
    const frame = Buffer.allocUnsafe(headBytes + data.length + 2);
    frame.write(head, 0, headBytes);
    frame.set(data, headBytes);
    frame[headBytes + data.length] = 0x0d;
    frame[headBytes + data.length + 1] = 0x0a;
    this.#protocol.outMsgs++;
    this.#protocol.outBytes += size;
    this.#protocol.sendCommand(frame);
  }

  #onAck(error: Error | null, msg: Msg): void {
    if (error) {
      // A permissions violation on the inbox, say: nothing pending can be acked any more.
      this.#fail(new PublishError('SEGMENT_PUBLISHER_CLOSED', '', `ack subscription failed: ${error.message}`, { cause: error }));
      return;
    }
    const id = Number(msg.subject.slice(this.#prefix.length));
    const pending = this.#sent.get(id);
    if (pending === undefined) return; // already timed out: a late reply has nobody to tell
    this.#sent.delete(id);
    this.#settle(pending, msg, undefined);
    this.#released();
  }

  /** A slot freed: hand it to the next queued publish, wake a `publishMany`, check flushes. */
  #released(): void {
    while (this.#sent.size < this.maxInFlight && this.queued > 0) {
      const next = this.#queue[this.#queueHead]!;
      this.#queue[this.#queueHead++] = undefined as never;
      if (this.#queueHead === this.#queue.length) {
        this.#queue = [];
        this.#queueHead = 0;
      } else if (this.#queueHead >= 1024 && this.#queueHead * 2 >= this.#queue.length) {
        this.#queue = this.#queue.slice(this.#queueHead);
        this.#queueHead = 0;
      }
      this.#transmit(next);
    }
    if (this.#slotWaiters.length > 0 && this.#sent.size < this.maxInFlight && this.queued === 0) {
      const wake = this.#slotWaiters;
      this.#slotWaiters = [];
      for (const resolve of wake) resolve();
    }
    if (this.#flushes.length > 0) this.#checkFlushes();
  }

  #full(): boolean {
    return !this.#closed && (this.#sent.size >= this.maxInFlight || this.queued > 0);
  }

  #slotFree(): Promise<void> {
    return new Promise((resolve) => this.#slotWaiters.push(resolve));
  }

  #settle(pending: Pending, reply: Msg | undefined, error: PublishError | undefined): void {
    try {
      pending.settle(reply, error);
    } catch {
      // A caller's onResult threw; it must not break ack matching for everyone else.
    }
  }

  #oldestUnsettled(): number {
    for (const id of this.#sent.keys()) return id;
    return this.queued > 0 ? this.#queue[this.#queueHead]!.id : this.#nextId;
  }

  #checkFlushes(): void {
    const oldest = this.#oldestUnsettled();
    const waiting = this.#flushes.filter((flush) => flush.upTo >= oldest);
    if (waiting.length === this.#flushes.length) return;
    for (const flush of this.#flushes) if (flush.upTo < oldest) flush.resolve();
    this.#flushes = waiting;
  }

  #sweep(): void {
    const now = performance.now();
    let expired = false;
    for (const [id, pending] of this.#sent) {
      if (pending.deadline > now) break;
      this.#sent.delete(id);
      this.#settle(pending, undefined, new PublishError('SEGMENT_PUBLISH_TIMEOUT', pending.subject, `no ack for the publish to ${pending.subject} within ${this.ackTimeoutMs} ms`));
      expired = true;
    }
    if (expired) this.#released();
  }

  #closedErrorFor(subject: string): PublishError {
    const closed = this.#closed!;
    return new PublishError(closed.code, subject, closed.message, { cause: closed.cause });
  }

  /** The connection or subscription is gone: everything pending and queued fails now. */
  #fail(reason: PublishError): void {
    this.#closed ??= reason;
    clearInterval(this.#sweeper);
    const pending = [...this.#sent.values()];
    this.#sent.clear();
    const queued = this.#queue.slice(this.#queueHead);
    this.#queue = [];
    this.#queueHead = 0;
    for (const p of [...pending, ...queued]) this.#settle(p, undefined, new PublishError(reason.code, p.subject, `${reason.message} (publish to ${p.subject})`, { cause: reason.cause }));
    const wake = this.#slotWaiters;
    this.#slotWaiters = [];
    for (const resolve of wake) resolve();
    for (const flush of this.#flushes) flush.resolve();
    this.#flushes = [];
  }
}

/** The header block of a message (`NATS/1.0`, the headers, the msg id, the blank line), or undefined without headers. */
function headerBlock(options: PublishOptions | undefined): string | undefined {
  if (options === undefined || (options.msgId === undefined && options.headers === undefined)) return undefined;
  let block = 'NATS/1.0';
  const { msgId, headers } = options;
  if (headers !== undefined) for (const key of Object.keys(headers)) block += `\r\n${headerName(key)}: ${headerValue(key, headers[key]!)}`;
  if (msgId !== undefined) block += `\r\n${segmentHeaders.msgId}: ${headerValue(segmentHeaders.msgId, msgId)}`;
  return `${block}\r\n\r\n`;
}

/** A header name as NATS (and HTTP) takes it: printable ASCII without spaces or colons. */
function headerName(name: string): string {
  if (!/^[!-9;-~]+$/.test(name)) throw new RangeError(`invalid header name ${JSON.stringify(name)}`);
  return name;
}

function headerValue(name: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new RangeError(`header ${name}: values cannot contain CR or LF`);
  return value;
}

const empty = new Uint8Array(0);
const utf8 = new TextDecoder();

/** The PubAck a JetStream publish was answered with, or the error it stands for. */
function ackOf(subject: string, reply: Msg): PubAck | PublishError {
  const status = reply.headers?.code ?? 0;
  if (status === 503 && reply.data.length === 0) {
    return new PublishError('SEGMENT_PUBLISH_NO_STREAM', subject, `no stream captures subject ${subject} (no responders)`, { status });
  }
  if (status >= 300) {
    const description = reply.headers!.description;
    return new PublishError('SEGMENT_PUBLISH_REJECTED', subject, `publish to ${subject} failed: ${status} ${description}`, { status, description });
  }
  let body: { stream?: unknown; seq?: unknown; duplicate?: unknown; domain?: unknown; error?: { code?: number; err_code?: number; description?: string } };
  try {
    body = JSON.parse(utf8.decode(reply.data));
  } catch {
    return new PublishError('SEGMENT_PUBLISH_REJECTED', subject, `publish to ${subject}: the reply is not a JetStream ack`);
  }
  if (body.error) {
    const { code: errorStatus, err_code: errCode, description = 'unknown error' } = body.error;
    return new PublishError('SEGMENT_PUBLISH_REJECTED', subject, `publish to ${subject} rejected by JetStream: ${description} (${errorStatus ?? '?'}/${errCode ?? '?'})`, { status: errorStatus, errCode, description });
  }
  if (typeof body.stream !== 'string' || typeof body.seq !== 'number') {
    return new PublishError('SEGMENT_PUBLISH_REJECTED', subject, `publish to ${subject}: the reply is not a JetStream ack`);
  }
  const ack: PubAck = { stream: body.stream, seq: body.seq, duplicate: body.duplicate === true };
  if (typeof body.domain === 'string') ack.domain = body.domain;
  return ack;
}

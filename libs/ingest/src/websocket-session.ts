// One WebSocket connection of the `json/v1` protocol: text frames of whitespace-separated JSON
// documents in, ack and error frames out.
//
// Batching: every frame is parsed, checked and its valid documents published as soon as it
// arrives; the frames that arrive in the same turn of the event loop (everything `ws` decoded from
// the socket reads of one poll phase) form one batch, closed by a `setImmediate`, and the batch
// gets one ack frame once all of its publishes are acknowledged. With `websocat` sending a frame
// per line that is hundreds to thousands of documents per ack instead of one (100,000 one-event
// frames got 27 acks in the benchmark), and the pipelined publisher sees them all at once.
//
// Order: a batch's error frames and then its ack frame are sent after every earlier batch's, so a
// client reads the outcome of its frames in the order it sent them. An invalid document does not
// stop its frame: the other documents of the frame are published, each bad one gets an error frame.
//
// Back-pressure: at most `maxInFlight` documents are published and unacknowledged per connection,
// plus the frames `ws` already decoded from the read that crossed the limit; then the socket is
// paused (TCP pushes back on the client) until half of them are acknowledged.
import type { WebSocket } from 'ws';
import type { Event } from '@segment/model';
import type { Logger } from '@segment/telemetry';
import { parseJsonValues } from './body.ts';
import { checkDocument } from './documents.ts';
import { ackFrame, errorFrame } from './frames.ts';
import type { EventSink } from './sink.ts';
import type { TokenGrant } from './tokens.ts';

export interface SessionOptions {
  readonly sink: EventSink;
  readonly grant: TokenGrant;
  readonly logger: Logger;
  /** Documents published and not yet acknowledged before the socket is paused. */
  readonly maxInFlight: number;
  /** Counts accepted and rejected documents across sessions. */
  readonly onDocuments?: (accepted: number, rejected: number) => void;
}

/** The frames of one event-loop turn: their publishes, error frames and, once acked, offsets. */
interface Batch {
  published: number;
  settled: number;
  sealed: boolean;
  readonly offsets: Map<string, number>;
  readonly errors: string[];
  failure: string | undefined;
  readonly done: PromiseWithResolvers<void>;
}

const utf8 = new TextDecoder();

export class WebSocketSession {
  readonly #ws: WebSocket;
  readonly #options: SessionOptions;
  #frames = 0;
  #processed = 0;
  #inFlight = 0;
  #paused = false;
  #stopping = false;
  #current: Batch | undefined;
  /** The output of the batches so far, in order: each waits for the one before. */
  #tail: Promise<void> = Promise.resolve();
  readonly closed: Promise<void>;

  constructor(ws: WebSocket, options: SessionOptions) {
    this.#ws = ws;
    this.#options = options;
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('message', (data, isBinary) => this.#onFrame(data as Buffer, isBinary));
    ws.on('error', (error) => {
      // A frame over maxPayload (ws then closes with 1009), invalid UTF-8 (1007), a reset socket.
      options.logger.debug({ err: error }, 'websocket error');
    });
  }

  /** Documents accepted on this connection so far. */
  get processed(): number {
    return this.#processed;
  }

  /** Stops reading frames, finishes the batches in flight (acks sent), then closes with 1001. */
  async shutdown(timeoutMs = 5000): Promise<void> {
    this.#stopping = true;
    this.#seal();
    await this.#tail;
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(1001, 'server shutting down');
    const timer = setTimeout(() => this.#ws.terminate(), timeoutMs);
    await this.closed;
    clearTimeout(timer);
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    if (this.#stopping) return; // not acked: the client sends it again to the next server
    const frame = ++this.#frames;
    const batch = this.#batch();
    if (isBinary) {
      batch.errors.push(errorFrame({ error: 'binary frames are not accepted: send JSON documents in text frames (subprotocol json/v1)', frame }));
      return;
    }
    const items = parseJsonValues(utf8.decode(data));
    let rejected = 0;
    for (const item of items) {
      const check = checkDocument(item, this.#options.grant);
      if (!check.ok) {
        rejected++;
        const error = check.reason === 'json' ? 'not JSON' : check.reason === 'schema' ? 'invalid document' : 'vendor not allowed';
        batch.errors.push(errorFrame({ error, frame, index: item.index, errors: check.errors }));
        continue;
      }
      this.#publish(batch, check.event, frame, item.index);
    }
    if (rejected > 0) this.#options.onDocuments?.(0, rejected);
  }

  #publish(batch: Batch, event: Event, frame: number, index: number): void {
    const { sink } = this.#options;
    const subject = sink.subjectOf(event);
    batch.published++;
    if (++this.#inFlight >= this.#options.maxInFlight && !this.#paused) {
      this.#paused = true;
      this.#ws.pause();
    }
    sink.publish(event, undefined, (error, ack) => {
      if (error) batch.failure ??= errorFrame({ error: `publish failed: ${error.message}`, frame, index });
      else {
        const highest = batch.offsets.get(subject);
        if (highest === undefined || ack!.seq > highest) batch.offsets.set(subject, ack!.seq);
      }
      this.#settled(batch);
    });
  }

  #settled(batch: Batch): void {
    batch.settled++;
    if (--this.#inFlight <= this.#options.maxInFlight / 2 && this.#paused) {
      this.#paused = false;
      this.#ws.resume();
    }
    if (batch.sealed && batch.settled === batch.published) batch.done.resolve();
  }

  #batch(): Batch {
    if (this.#current) return this.#current;
    const batch: Batch = { published: 0, settled: 0, sealed: false, offsets: new Map(), errors: [], failure: undefined, done: Promise.withResolvers() };
    this.#current = batch;
    setImmediate(() => this.#seal());
    return batch;
  }

  /** Closes the open batch: no more frames join it; its output goes out after the batches before. */
  #seal(): void {
    const batch = this.#current;
    if (batch === undefined) return;
    this.#current = undefined;
    batch.sealed = true;
    if (batch.settled === batch.published) batch.done.resolve();
    this.#tail = this.#tail
      .then(() => batch.done.promise)
      .then(() => this.#emit(batch))
      .catch((error: unknown) => this.#options.logger.warn({ err: error }, 'cannot send to the websocket'));
  }

  #emit(batch: Batch): void {
    const ws = this.#ws;
    if (ws.readyState !== ws.OPEN) return;
    for (const frame of batch.errors) ws.send(frame);
    if (batch.failure !== undefined) {
      // Some documents may be stored and some not: the client re-sends from its last ack, and the
      // stream drops the ones it already has (de-duplication by event id).
      this.#options.logger.warn({ failure: batch.failure }, 'publish failed; closing the websocket');
      ws.send(batch.failure);
      ws.close(1011, 'publish failed');
      this.#stopping = true;
      return;
    }
    if (batch.published === 0) return;
    this.#processed += batch.published;
    this.#options.onDocuments?.(batch.published, 0);
    ws.send(ackFrame(batch.offsets, this.#processed));
  }
}

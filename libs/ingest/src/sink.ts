// The port the gateway publishes through: JetStream in the app (the pipelined publisher), an
// in-memory twin in unit tests and anywhere a process wants the gateway without NATS.
import type { Event } from '@segment/model';

/** What a stream answers for a stored event; a JetStream PubAck has this shape. */
export interface IngestAck {
  readonly seq: number;
  /** The event id was seen before (inside the stream's duplicate window): nothing new stored. */
  readonly duplicate: boolean;
}

/** How one publish ended, told once: `error` when the event may not be stored, else the stream's ack. */
export type IngestCallback = (error: Error | undefined, ack: IngestAck | undefined) => void;

export interface EventSink {
  /** The subject the event is stored under; ack frames report offsets per subject. */
  subjectOf(event: Event): string;
  /**
   * Stores one event with its id as the de-duplication id and calls `settled` once the stream
   * acknowledged it (or the publish failed), possibly before returning. Called for a whole batch
   * before any is settled: implementations pipeline. A callback, not a promise: a request of 5,000
   * events made 5,000 promises and their settled results, ~8% of the gateway's CPU (1M benches).
   * `source`, when given, is the event's JSON text as the client sent it (one NDJSON line, valid
   * UTF-8, validated as `event`): stored as it is, where the event would otherwise be encoded again.
   */
  publish(event: Event, source: Uint8Array | undefined, settled: IngestCallback): void;
}

/** What publishing a request's documents came to. */
export interface PublishedBatch {
  /** Each document's stream sequence, in request order (where it was stored). */
  sequences: number[];
  duplicates: number;
  failed: number;
  /** The failure of the document with the lowest index, when any failed. */
  failure: { index: number; error: Error } | undefined;
}

/** Publishes every document, all before any ack is awaited, and resolves once every one settled. */
export function publishAll(sink: EventSink, documents: readonly { index: number; event: Event; source?: Uint8Array }[]): Promise<PublishedBatch> {
  const batch: PublishedBatch = { sequences: new Array<number>(documents.length), duplicates: 0, failed: 0, failure: undefined };
  if (documents.length === 0) return Promise.resolve(batch);
  const { promise, resolve } = Promise.withResolvers<PublishedBatch>();
  let unsettled = documents.length;
  documents.forEach(({ index, event, source }, i) => {
    sink.publish(event, source, (error, ack) => {
      if (error) {
        batch.failed++;
        if (batch.failure === undefined || index < batch.failure.index) batch.failure = { index, error };
      } else {
        batch.sequences[i] = ack!.seq;
        if (ack!.duplicate) batch.duplicates++;
      }
      if (--unsettled === 0) resolve(batch);
    });
  });
  return promise;
}

export interface StoredEvent {
  readonly subject: string;
  readonly seq: number;
  readonly msgId: string;
  readonly event: Event;
  /** What the stream holds: the client's bytes when the sink was given them, else the event encoded. */
  readonly payload: string;
}

/** An in-memory stream with JetStream's de-duplication by id: the twin of the NATS sink. */
export class MemoryEventSink implements EventSink {
  readonly stored: StoredEvent[] = [];
  readonly #seqById = new Map<string, number>();
  readonly #subjectPrefix: string;
  /** Set to make publishes fail (a stream outage): return the error for an event, or undefined. */
  failWith: ((event: Event) => Error | undefined) | undefined;
  /** Milliseconds before each acknowledgement, to model a slow stream. */
  delayMs = 0;

  constructor(subjectPrefix = 'segment.events.') {
    this.#subjectPrefix = subjectPrefix;
  }

  subjectOf(event: Event): string {
    return `${this.#subjectPrefix}${event.segment.vendor}`;
  }

  publish(event: Event, source: Uint8Array | undefined, settled: IngestCallback): void {
    // Settled later, as a stream's ack arrives later; stored in call order, as a pipelined stream stores.
    const store = () => {
      const failure = this.failWith?.(event);
      if (failure) return settled(failure, undefined);
      const seen = this.#seqById.get(event.event);
      if (seen !== undefined) return settled(undefined, { seq: seen, duplicate: true });
      const seq = this.stored.length + 1;
      const payload = source === undefined ? JSON.stringify(event) : Buffer.from(source).toString('utf8');
      this.stored.push({ subject: this.subjectOf(event), seq, msgId: event.event, event, payload });
      this.#seqById.set(event.event, seq);
      settled(undefined, { seq, duplicate: false });
    };
    if (this.delayMs > 0) setTimeout(store, this.delayMs);
    else queueMicrotask(store);
  }
}

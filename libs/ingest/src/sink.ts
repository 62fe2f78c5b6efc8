// The port the gateway publishes through: JetStream in the app (the pipelined publisher), an
// in-memory twin in unit tests and anywhere a process wants the gateway without NATS.
import type { Event } from '@segment/model';

/** What a stream answers for a stored event; a JetStream PubAck has this shape. */
export interface IngestAck {
  readonly seq: number;
  /** The event id was seen before (inside the stream's duplicate window): nothing new stored. */
  readonly duplicate: boolean;
}

export interface EventSink {
  /** The subject the event is stored under; ack frames report offsets per subject. */
  subjectOf(event: Event): string;
  /**
   * Stores one event with its id as the de-duplication id and resolves once the stream
   * acknowledged it. Called for a whole batch before any is awaited: implementations pipeline.
   * `source`, when given, is the event's JSON text as the client sent it (one NDJSON line, valid
   * UTF-8, validated as `event`): stored as it is, where the event would otherwise be encoded again.
   */
  publish(event: Event, source?: Uint8Array): Promise<IngestAck>;
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

  async publish(event: Event, source?: Uint8Array): Promise<IngestAck> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    const failure = this.failWith?.(event);
    if (failure) throw failure;
    const seen = this.#seqById.get(event.event);
    if (seen !== undefined) return { seq: seen, duplicate: true };
    const seq = this.stored.length + 1;
    const payload = source === undefined ? JSON.stringify(event) : Buffer.from(source).toString('utf8');
    this.stored.push({ subject: this.subjectOf(event), seq, msgId: event.event, event, payload });
    this.#seqById.set(event.event, seq);
    return { seq, duplicate: false };
  }
}

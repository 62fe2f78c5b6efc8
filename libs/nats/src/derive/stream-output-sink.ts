import { OutputTooLargeError, type DeadLetter, type DeadLetterSink, type DerivedMessage, type Output, type OutputSink, type Provenance, type SourceMessage } from '@segment/runtime';
import { headers, type DerivedCollection, type Names } from '../names.ts';
import type { PipelinedPublisher } from '../publisher.ts';

/**
 * A transaction's documents of a collection travel as one NDJSON message, so the message is the
 * unit a projector applies or skips. The body stays below the 1 MiB message limit with room for headers.
 */
export const maxOutputBytes = 1_000_000;

export function toNdjson(documents: readonly unknown[]): string {
  return documents.map((document) => JSON.stringify(document)).join('\n');
}

/** Reads the documents of a derived message. */
export function parseNdjson(data: Uint8Array): unknown[] {
  const text = new TextDecoder().decode(data);
  return text.length === 0 ? [] : text.split('\n').map((line) => JSON.parse(line));
}

/** A collection's documents of a transaction, as the message that carries them. */
interface EncodedOutput {
  derived: DerivedCollection;
  subject: string;
  body: Buffer;
  count: number;
}

/** Publishes a transaction's combined documents to the derived collection's stream, with provenance headers. */
export class StreamOutputSink implements OutputSink {
  readonly #names: Names;
  readonly #publisher: PipelinedPublisher;
  readonly #sourceStream: string;

  constructor(names: Names, publisher: PipelinedPublisher) {
    this.#names = names;
    this.#publisher = publisher;
    this.#sourceStream = names.events.stream;
  }

  publish(outputs: readonly Output[], provenance: Provenance): Promise<void> {
    // Not async: everything is encoded before the wait for acks, so no suspended frame keeps the
    // documents meanwhile; and a transaction that cannot fit publishes nothing and is split.
    try {
      return this.#send(this.#encode(outputs, provenance), provenance);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #encode(outputs: readonly Output[], provenance: Provenance): EncodedOutput[] {
    return outputs.map(({ collection, documents }) => {
      const derived = collection.replace(/^segment\//, '') as DerivedCollection;
      const target = this.#names.derived[derived];
      if (!target) throw new Error(`no stream for collection ${collection}`);
      const body = Buffer.from(toNdjson(documents));
      if (body.length > maxOutputBytes) throw new OutputTooLargeError(`${collection}: ${body.length} bytes for ${documents.length} documents`);
      return { derived, subject: target.subject(provenance.partition), body, count: documents.length };
    });
  }

  async #send(messages: readonly EncodedOutput[], provenance: Provenance): Promise<void> {
    const range = `${provenance.firstSeq}-${provenance.lastSeq}`;
    await Promise.all(
      messages.map(({ derived, subject, body, count }) =>
        this.#publisher.publish(subject, body, {
          // The same transaction replayed after a failed publish gets the same id: JetStream drops the copy.
          msgId: `${derived}:${provenance.partition}:${range}`,
          headers: {
            [headers.sourceStream]: this.#sourceStream,
            [headers.sourcePartition]: String(provenance.partition),
            [headers.sourceRange]: range,
            [headers.documentCount]: String(count),
          },
        }),
      ),
    );
  }
}

/** Dead letters keep the original bytes; headers say why and where from. */
export class StreamDeadLetterSink implements DeadLetterSink {
  readonly #names: Names;
  readonly #publisher: PipelinedPublisher;

  constructor(names: Names, publisher: PipelinedPublisher) {
    this.#names = names;
    this.#publisher = publisher;
  }

  async deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    const stream = this.#names.events.stream;
    await Promise.all(
      letters.map(({ message, reason }) =>
        this.#publisher.publish(this.#names.deadLetters.subject('events'), message.data, {
          msgId: `${stream}:${message.seq}`,
          headers: {
            [headers.deadReason]: reason.replace(/[\r\n]+/g, ' '),
            [headers.deadStream]: stream,
            [headers.deadSubject]: message.subject,
            [headers.deadSequence]: String(message.seq),
          },
        }),
      ),
    );
  }
}

/** Reads a derived message back: its provenance headers and its documents. */
export function decodeDerivedMessage(message: SourceMessage): DerivedMessage {
  const partition = Number(message.headers?.get(headers.sourcePartition));
  const [firstSeq, lastSeq] = (message.headers?.get(headers.sourceRange) ?? '').split('-').map(Number);
  if (!Number.isInteger(partition) || !Number.isInteger(firstSeq) || !Number.isInteger(lastSeq)) {
    throw new Error(`derived message ${message.seq} on ${message.subject} has no provenance headers`);
  }
  return { provenance: { partition, firstSeq: firstSeq!, lastSeq: lastSeq! }, documents: parseNdjson(message.data) };
}

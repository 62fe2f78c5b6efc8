import type { DeadLetter, DeadLetterSink, DerivedMessage, OutputSink, Provenance, SourceMessage } from '@segment/runtime';
import { headers, type DerivedCollection, type Names } from '../names.ts';
import type { PipelinedPublisher } from '../publisher.ts';

/** A derived message carries many documents as NDJSON, up to about this many bytes (max message is 1 MiB). */
const maxChunkBytes = 256 * 1024;

/** Splits documents into NDJSON chunks of at most `maxChunkBytes` (a single larger document stands alone). */
export function toNdjsonChunks(documents: readonly unknown[], limit = maxChunkBytes): { text: string; count: number }[] {
  const chunks: { text: string; count: number }[] = [];
  let lines: string[] = [];
  let bytes = 0;
  for (const document of documents) {
    const line = JSON.stringify(document);
    if (lines.length > 0 && bytes + line.length + 1 > limit) {
      chunks.push({ text: lines.join('\n'), count: lines.length });
      lines = [];
      bytes = 0;
    }
    lines.push(line);
    bytes += line.length + 1;
  }
  if (lines.length > 0) chunks.push({ text: lines.join('\n'), count: lines.length });
  return chunks;
}

/** Reads the documents of a derived message. */
export function parseNdjson(data: Uint8Array): unknown[] {
  const text = new TextDecoder().decode(data);
  return text.length === 0 ? [] : text.split('\n').map((line) => JSON.parse(line));
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

  async publish(collection: string, provenance: Provenance, documents: readonly unknown[]): Promise<void> {
    const derived = collection.replace(/^segment\//, '') as DerivedCollection;
    const target = this.#names.derived[derived];
    if (!target) throw new Error(`no stream for collection ${collection}`);
    const subject = target.subject(provenance.partition);
    const range = `${provenance.firstSeq}-${provenance.lastSeq}`;
    const chunks = toNdjsonChunks(documents);
    await Promise.all(
      chunks.map((chunk, index) =>
        this.#publisher.publish(subject, chunk.text, {
          // The same transaction replayed after a failed publish gets the same ids: JetStream drops the copies.
          msgId: `${derived}:${provenance.partition}:${range}:${index}`,
          headers: {
            [headers.sourceStream]: this.#sourceStream,
            [headers.sourcePartition]: String(provenance.partition),
            [headers.sourceRange]: range,
            [headers.documentCount]: String(chunk.count),
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

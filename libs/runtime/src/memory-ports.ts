// In-memory twins of the runtime's ports, for unit tests: same contracts, no server.
import { keyId } from './register-cache.ts';
import { OutputTooLargeError, type CheckpointStore, type DeadLetter, type DeadLetterSink, type Output, type OutputSink, type Provenance, type RegisterStore, type StoredRegister } from './ports.ts';

export class MemoryRegisterStore<R = unknown> implements RegisterStore {
  /** The registers as stored: their JSON text by key id. */
  readonly stored = new Map<string, string>();
  loads = 0;
  saves = 0;

  /** A stored register, parsed (for assertions). */
  register(id: string): StoredRegister<R> | undefined {
    const json = this.stored.get(id);
    return json === undefined ? undefined : (JSON.parse(json) as StoredRegister<R>);
  }

  async load(keys: readonly (readonly (string | number)[])[]) {
    this.loads += keys.length;
    const out = new Map<string, string>();
    for (const key of keys) {
      const json = this.stored.get(keyId(key));
      if (json !== undefined) out.set(keyId(key), json);
    }
    return out;
  }

  async save(entries: readonly { key: readonly (string | number)[]; json: string }[]) {
    this.saves += entries.length;
    for (const { key, json } of entries) this.stored.set(keyId(key), json);
  }
}

export class MemoryCheckpointStore implements CheckpointStore {
  readonly checkpoints = new Map<number, number>();
  async load(partition: number) {
    return this.checkpoints.get(partition) ?? 0;
  }
  async save(partition: number, seq: number) {
    this.checkpoints.set(partition, seq);
  }
}

export class MemoryOutputSink implements OutputSink {
  readonly published: { collection: string; provenance: Provenance; documents: unknown[] }[] = [];
  /** Refuses (like a message size limit) any output of more documents than this. */
  maxDocuments = Infinity;
  async publish(outputs: readonly Output[], provenance: Provenance) {
    const tooLarge = outputs.find((o) => o.documents.length > this.maxDocuments);
    if (tooLarge) throw new OutputTooLargeError(`${tooLarge.documents.length} documents of ${tooLarge.collection}`);
    for (const { collection, documents } of outputs) this.published.push({ collection, provenance, documents: structuredClone([...documents]) });
  }
  documentsOf(collection: string): unknown[] {
    return this.published.filter((p) => p.collection === collection).flatMap((p) => p.documents);
  }
}

export class MemoryDeadLetterSink implements DeadLetterSink {
  readonly letters: DeadLetter[] = [];
  async deadLetter(letters: readonly DeadLetter[]) {
    this.letters.push(...letters);
  }
}

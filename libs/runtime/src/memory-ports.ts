// In-memory twins of the runtime's ports, for unit tests: same contracts, no server.
import { keyId } from './register-cache.ts';
import { OutputTooLargeError, type CheckpointStore, type DeadLetter, type DeadLetterSink, type Output, type OutputSink, type Provenance, type RegisterStore, type StoredRegister } from './ports.ts';

export class MemoryRegisterStore<R = unknown> implements RegisterStore<R> {
  readonly registers = new Map<string, StoredRegister<R>>();
  loads = 0;
  saves = 0;

  async load(keys: readonly (readonly (string | number)[])[]) {
    this.loads += keys.length;
    const out = new Map<string, StoredRegister<R>>();
    for (const key of keys) {
      const register = this.registers.get(keyId(key));
      if (register) out.set(keyId(key), structuredClone(register));
    }
    return out;
  }

  async save(entries: readonly { key: readonly (string | number)[]; register: StoredRegister<R> }[]) {
    this.saves += entries.length;
    for (const { key, register } of entries) this.registers.set(keyId(key), structuredClone(register));
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

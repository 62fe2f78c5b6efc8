import { pointerGet, type SchemaName } from '@segment/model';
import { reductionOf, type Reduction } from '@segment/reduce';

/**
 * Combines a transaction's output documents by key with the collection schema's reduction, so a
 * transaction publishes one document per key however many events touched it.
 */
export class Combiner<T = unknown> {
  readonly #reduce: Reduction<T>;
  readonly #key: readonly string[];
  readonly #documents = new Map<string, T>();

  constructor(schema: SchemaName, key: readonly string[]) {
    this.#reduce = reductionOf(schema) as unknown as Reduction<T>;
    this.#key = key;
  }

  add(document: T): void {
    const key = this.#key.length === 1 ? String(pointerGet(document, this.#key[0]!)) : JSON.stringify(this.#key.map((p) => pointerGet(document, p)));
    this.#documents.set(key, this.#reduce(this.#documents.get(key), document));
  }

  get size(): number {
    return this.#documents.size;
  }

  /** The combined documents, in the order their keys first appeared; the combiner is left empty. */
  drain(): T[] {
    const documents = [...this.#documents.values()];
    this.#documents.clear();
    return documents;
  }
}

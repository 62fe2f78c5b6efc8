import type { RegisterStore, StoredRegister } from './ports.ts';

type KeyValues = readonly (string | number)[];

/**
 * A shard is the single writer of its registers, so it keeps them in memory: reads hit the store
 * once per key, writes are combined and written back at commit. Bounded: once over capacity, the
 * least recently used written-back registers are dropped (changed ones wait for the next commit).
 *
 * A written-back register is kept as its JSON text alone, parsed again when read: a string in a map
 * slot instead of ~10 objects of register, which spares the garbage collector from tracing them
 * (with 1M registers cached, GC took a quarter of the worker's time), and with no entry object per
 * key (objects were 62 MB of a 436 MB heap in a snapshot at 1.7M events).
 */
export class RegisterCache<R> {
  readonly #store: RegisterStore;
  readonly #capacity: number;
  readonly #persist: (value: R) => boolean;
  /** Written back (or read from the store): JSON text by key id, least recently used first. */
  readonly #stored = new Map<string, string>();
  /** Changed since the last commit, with the key to write them under. */
  readonly #changed = new Map<string, { key: KeyValues; register: StoredRegister<R> }>();

  /** `persist` says which registers are worth writing back; the others are forgotten once committed. */
  constructor(store: RegisterStore, capacity: number, persist: (value: R) => boolean = () => true) {
    this.#store = store;
    this.#capacity = capacity;
    this.#persist = persist;
  }

  /** Loads, in one round of pipelined reads, the registers of the given keys that are not cached. */
  async prefetch(keys: Map<string, KeyValues>): Promise<void> {
    const missing: KeyValues[] = [];
    for (const [id, key] of keys) {
      const json = this.#stored.get(id);
      if (json !== undefined) {
        // Refresh recency: Map iteration order is our LRU order.
        this.#stored.delete(id);
        this.#stored.set(id, json);
      } else if (!this.#changed.has(id)) missing.push(key);
    }
    if (missing.length === 0) return;
    for (const [id, json] of await this.#store.load(missing)) {
      if (!this.#stored.has(id) && !this.#changed.has(id)) this.#stored.set(id, json);
    }
  }

  /** A prefetched register; undefined when the key has none yet. */
  get(id: string): StoredRegister<R> | undefined {
    const changed = this.#changed.get(id);
    if (changed) return changed.register;
    const json = this.#stored.get(id);
    return json === undefined ? undefined : (JSON.parse(json) as StoredRegister<R>);
  }

  set(id: string, key: KeyValues, register: StoredRegister<R>): void {
    this.#changed.set(id, { key, register });
  }

  get dirtyCount(): number {
    return this.#changed.size;
  }

  get size(): number {
    let size = this.#stored.size;
    for (const id of this.#changed.keys()) if (!this.#stored.has(id)) size++;
    return size;
  }

  /** Writes every changed register back (one pipelined round), then trims the cache to capacity. */
  async flush(): Promise<void> {
    if (this.#changed.size > 0) {
      const kept: { id: string; key: KeyValues; json: string }[] = [];
      for (const [id, { key, register }] of this.#changed) {
        // Not worth storing means it acts like no register at all: forgetting it changes nothing and
        // leaves the room to registers that a miss would have to read back (29% of toggle keys).
        if (this.#persist(register.value)) kept.push({ id, key, json: JSON.stringify(register) });
        else this.#stored.delete(id);
      }
      if (kept.length > 0) await this.#store.save(kept);
      for (const { id, json } of kept) {
        this.#stored.delete(id);
        this.#stored.set(id, json);
      }
      this.#changed.clear();
    }
    for (const id of this.#stored.keys()) {
      if (this.#stored.size <= this.#capacity) break;
      this.#stored.delete(id);
    }
  }
}

/** The string identity of a key's values; equal values give equal ids, and only they. */
export function keyId(values: KeyValues): string {
  return JSON.stringify(values);
}

import type { RegisterStore, StoredRegister } from './ports.ts';

type KeyValues = readonly (string | number)[];

/**
 * A cached key. Once written back, an entry keeps its register as JSON text instead of objects:
 * one string instead of ~10 objects, which halves the memory and spares the garbage collector from
 * tracing them (with 1M registers cached, GC took a quarter of the worker's time). Read, it is
 * parsed again; `key` is only needed until then.
 */
interface Entry<R> {
  key: KeyValues | undefined;
  register: StoredRegister<R> | undefined;
  json: string | undefined;
  dirty: boolean;
}

/**
 * A shard is the single writer of its registers, so it keeps them in memory: reads hit the store
 * once per key, writes are combined and written back at commit. Bounded: once over capacity, the
 * least recently used clean entries are dropped (dirty ones wait for the next commit).
 */
export class RegisterCache<R> {
  readonly #store: RegisterStore;
  readonly #capacity: number;
  readonly #persist: (value: R) => boolean;
  readonly #entries = new Map<string, Entry<R>>();
  readonly #dirty = new Set<string>();

  /** `persist` says which registers are worth writing back; the others are forgotten once committed. */
  constructor(store: RegisterStore, capacity: number, persist: (value: R) => boolean = () => true) {
    this.#store = store;
    this.#capacity = capacity;
    this.#persist = persist;
  }

  /** Loads, in one round of pipelined reads, the registers of the given keys that are not cached. */
  async prefetch(keys: Map<string, KeyValues>): Promise<void> {
    const missing: [string, KeyValues][] = [];
    for (const [id, key] of keys) {
      const entry = this.#entries.get(id);
      if (entry) {
        // Refresh recency: Map iteration order is our LRU order.
        this.#entries.delete(id);
        this.#entries.set(id, entry);
      } else missing.push([id, key]);
    }
    if (missing.length === 0) return;
    const loaded = await this.#store.load(missing.map(([, key]) => key));
    for (const [id, key] of missing) {
      if (!this.#entries.has(id)) this.#entries.set(id, { key, register: undefined, json: loaded.get(id), dirty: false });
    }
  }

  /** A prefetched register; undefined when the key has none yet. */
  get(id: string): StoredRegister<R> | undefined {
    const entry = this.#entries.get(id);
    if (entry?.json !== undefined) {
      entry.register = JSON.parse(entry.json) as StoredRegister<R>;
      entry.json = undefined;
    }
    return entry?.register;
  }

  set(id: string, key: KeyValues, register: StoredRegister<R>): void {
    const entry = this.#entries.get(id);
    if (entry) {
      entry.key = key;
      entry.register = register;
      entry.json = undefined;
      entry.dirty = true;
    } else this.#entries.set(id, { key, register, json: undefined, dirty: true });
    this.#dirty.add(id);
  }

  get dirtyCount(): number {
    return this.#dirty.size;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Writes every changed register back (one pipelined round), then trims the cache to capacity. */
  async flush(): Promise<void> {
    if (this.#dirty.size > 0) {
      const kept: { entry: Entry<R>; key: KeyValues; json: string }[] = [];
      const forgotten: string[] = [];
      for (const id of this.#dirty) {
        const entry = this.#entries.get(id)!;
        // Not worth storing means it acts like no register at all: forgetting it changes nothing and
        // leaves the room to registers that a miss would have to read back (29% of toggle keys).
        if (this.#persist(entry.register!.value)) kept.push({ entry, key: entry.key!, json: JSON.stringify(entry.register) });
        else forgotten.push(id);
      }
      if (kept.length > 0) await this.#store.save(kept);
      for (const { entry, json } of kept) {
        entry.json = json;
        entry.register = undefined;
        entry.key = undefined;
        entry.dirty = false;
      }
      for (const id of forgotten) this.#entries.delete(id);
      this.#dirty.clear();
    }
    this.#evict();
  }

  #evict(): void {
    if (this.#entries.size <= this.#capacity) return;
    for (const [id, entry] of this.#entries) {
      if (this.#entries.size <= this.#capacity) break;
      if (!entry.dirty) this.#entries.delete(id);
    }
  }
}

/** The string identity of a key's values; equal values give equal ids, and only they. */
export function keyId(values: KeyValues): string {
  return JSON.stringify(values);
}

import type { RegisterStore, StoredRegister } from './ports.ts';

type KeyValues = readonly (string | number)[];

/**
 * What a derivation worker keeps of each derivation's registers, for all its partitions together:
 * journal bytes before the largest journal moves to the bucket, and written-back registers in
 * memory. 60% of what the 10-vendor bench held with the earlier bounds per partition (16 MiB and
 * 100,000 each): at 10M events fewer registers were moved and read back than with those, and the
 * worker's heap had 290–370 MB in use.
 */
export const defaultRegisterMemory = Object.freeze({ journalBytes: 96 * 1024 * 1024, cacheEntries: 600_000 });

/**
 * The written-back registers of one derivation, as JSON text by key id, shared by the caches of
 * every partition a worker runs: one bound for the worker whatever number of partitions it owns (a
 * bound per partition held ten times as much for a worker of 100 vendors as for one of 10), and
 * the registers not used for longest go first, whichever partition they belong to. The registers
 * of a derivation a worker runs over vendor partitions are keyed by vendor first, so two
 * partitions' key ids never collide.
 *
 * Text alone, parsed again when read: a string in a slot instead of ~10 objects of register, which
 * spares the garbage collector from tracing them (with 1M registers cached, GC took a quarter of
 * the worker's time), and no entry object per key (objects were 62 MB of a 436 MB heap in a
 * snapshot at 1.7M events).
 *
 * Evicted by CLOCK (second chance), an approximation of least-recently-used: a use sets the slot's
 * bit, and a full cache evicts at the first slot its hand finds without one, clearing the bits it
 * passes. A use is a map read and a byte store. An exact LRU (a Map re-inserted on every use) cost
 * 1.4–2.0 µs per use and write at 600,000 registers over 700,000 keys (skewed random uses), CLOCK
 * ~0.7; over 3M keys 2.2–2.3 against 1.5–1.6. CLOCK missed 0.4–1.1% more often.
 */
export class WrittenRegisters {
  readonly capacity: number;
  /** By key id, the slot of its register. */
  readonly #slots = new Map<string, number>();
  readonly #ids: (string | undefined)[] = [];
  readonly #json: (string | undefined)[] = [];
  readonly #used: Uint8Array;
  /** Slots emptied by `delete`, taken before the hand evicts anything. */
  readonly #free: number[] = [];
  #hand = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be an integer >= 1, got ${capacity}`);
    this.capacity = capacity;
    this.#used = new Uint8Array(capacity);
  }

  get size(): number {
    return this.#slots.size;
  }

  /** A register, marked as just used. */
  touch(id: string): string | undefined {
    const slot = this.#slots.get(id);
    if (slot === undefined) return undefined;
    this.#used[slot] = 1;
    return this.#json[slot];
  }

  /** Stores a register, marked as just used; a full cache first evicts one. */
  set(id: string, json: string): void {
    let slot = this.#slots.get(id);
    if (slot === undefined) {
      slot = this.#free.pop() ?? (this.#ids.length < this.capacity ? this.#ids.length : this.#evict());
      this.#slots.set(id, slot);
      this.#ids[slot] = id;
    }
    this.#json[slot] = json;
    this.#used[slot] = 1;
  }

  delete(id: string): void {
    const slot = this.#slots.get(id);
    if (slot === undefined) return;
    this.#slots.delete(id);
    this.#ids[slot] = this.#json[slot] = undefined;
    this.#used[slot] = 0;
    this.#free.push(slot);
  }

  /** Empties the first slot at or after the hand not used since the hand last passed it. */
  #evict(): number {
    while (this.#used[this.#hand] === 1) {
      this.#used[this.#hand] = 0;
      this.#hand = (this.#hand + 1) % this.capacity;
    }
    const slot = this.#hand;
    this.#hand = (slot + 1) % this.capacity;
    this.#slots.delete(this.#ids[slot]!);
    return slot;
  }
}

/**
 * A shard is the single writer of its registers, so it keeps them in memory: reads hit the store
 * once per key, writes are combined and written back at commit. The registers it changed wait here
 * until the commit; once written back they join the worker's bounded `WrittenRegisters`.
 */
export class RegisterCache<R> {
  readonly #store: RegisterStore;
  readonly #persist: (value: R) => boolean;
  /** Written back (or read from the store), shared with the worker's other partitions. */
  readonly #stored: WrittenRegisters;
  /** Changed since the last commit, with the key to write them under. */
  readonly #changed = new Map<string, { key: KeyValues; register: StoredRegister<R> }>();
  /** The registers of the last prefetch's keys that were not changed since the last commit. */
  #held = new Map<string, string>();

  /** `persist` says which registers are worth writing back; the others are forgotten once committed. */
  constructor(store: RegisterStore, written: WrittenRegisters, persist: (value: R) => boolean = () => true) {
    this.#store = store;
    this.#stored = written;
    this.#persist = persist;
  }

  /**
   * Loads, in one round of pipelined reads, the registers of the given keys that are not cached,
   * and holds those of this transaction until the next prefetch: while it waits, another
   * partition's commit may evict them from the shared registers. Undefined when the store had
   * every register in memory: nothing to wait for.
   */
  prefetch(keys: Map<string, KeyValues>): Promise<void> | undefined {
    const held = new Map<string, string>();
    this.#held = held;
    const missing: KeyValues[] = [];
    for (const [id, key] of keys) {
      if (this.#changed.has(id)) continue;
      const json = this.#stored.touch(id);
      if (json !== undefined) held.set(id, json);
      else missing.push(key);
    }
    if (missing.length === 0) return undefined;
    const hold = (loaded: Map<string, string>) => {
      for (const [id, json] of loaded) {
        held.set(id, json);
        this.#stored.set(id, json);
      }
    };
    const loaded = this.#store.load(missing);
    if (!(loaded instanceof Map)) return loaded.then(hold);
    hold(loaded);
    return undefined;
  }

  /** A register of the last prefetch, or one changed since the last commit; undefined when the key has none yet. */
  get(id: string): StoredRegister<R> | undefined {
    const changed = this.#changed.get(id);
    if (changed) return changed.register;
    const json = this.#held.get(id);
    return json === undefined ? undefined : (JSON.parse(json) as StoredRegister<R>);
  }

  set(id: string, key: KeyValues, register: StoredRegister<R>): void {
    this.#changed.set(id, { key, register });
  }

  get dirtyCount(): number {
    return this.#changed.size;
  }

  /** Writes every changed register back (one pipelined round); they join the written registers. */
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
      for (const { id, json } of kept) this.#stored.set(id, json);
      this.#changed.clear();
    }
  }
}

/** The string identity of a key's values; equal values give equal ids, and only they. */
export function keyId(values: KeyValues): string {
  return JSON.stringify(values);
}

/**
 * A set of strings in fixed memory that may answer "maybe" for a string never added (never "no"
 * for one added). The register store keeps one per partition to skip reads of keys that were never
 * stored, whatever the keyspace grows to: 1 MiB holds 500K keys at ~0.1% false "maybe"s, each of
 * which only costs one read that finds nothing.
 */
export class BloomFilter {
  readonly #bits: Uint32Array;
  readonly #mask: number;
  readonly #hashes: number;
  #h1 = 0;
  #h2 = 0;

  /** `log2Bits` sizes it (23 → 2^23 bits = 1 MiB); `hashes` per key. */
  constructor(log2Bits = 23, hashes = 6) {
    if (!(Number.isInteger(log2Bits) && log2Bits >= 5 && log2Bits <= 32)) throw new RangeError(`log2Bits must be in [5, 32], got ${log2Bits}`);
    this.#bits = new Uint32Array(2 ** (log2Bits - 5));
    this.#mask = 2 ** log2Bits - 1;
    this.#hashes = hashes;
  }

  /** Adds a key; returns whether it may have been added before (every one of its bits was set already). */
  add(key: string): boolean {
    this.#hash(key);
    let present = true;
    for (let i = 0; i < this.#hashes; i++) {
      const bit = this.#bit(i);
      const flag = 1 << (bit & 31);
      if ((this.#bits[bit >>> 5]! & flag) === 0) {
        present = false;
        this.#bits[bit >>> 5]! |= flag;
      }
    }
    return present;
  }

  has(key: string): boolean {
    this.#hash(key);
    for (let i = 0; i < this.#hashes; i++) {
      const bit = this.#bit(i);
      if ((this.#bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }

  /** Two FNV-1a variants of the key, for double hashing (kept in fields: no pair allocated per key). */
  #hash(key: string): void {
    let h1 = 0x811c9dc5;
    let h2 = 0x01000193;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
    }
    this.#h1 = h1;
    this.#h2 = h2 | 1;
  }

  /** The key's `i`th bit position, of the last key hashed. */
  #bit(i: number): number {
    return ((this.#h1 + Math.imul(i, this.#h2)) >>> 0) & this.#mask;
  }
}

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

  /** `log2Bits` sizes it (23 → 2^23 bits = 1 MiB); `hashes` per key. */
  constructor(log2Bits = 23, hashes = 6) {
    if (!(Number.isInteger(log2Bits) && log2Bits >= 5 && log2Bits <= 32)) throw new RangeError(`log2Bits must be in [5, 32], got ${log2Bits}`);
    this.#bits = new Uint32Array(2 ** (log2Bits - 5));
    this.#mask = 2 ** log2Bits - 1;
    this.#hashes = hashes;
  }

  add(key: string): void {
    this.#positions(key, (bit) => {
      this.#bits[bit >>> 5]! |= 1 << (bit & 31);
      return true;
    });
  }

  has(key: string): boolean {
    return this.#positions(key, (bit) => (this.#bits[bit >>> 5]! & (1 << (bit & 31))) !== 0);
  }

  /** Visits the key's bit positions (double hashing of two FNV-1a variants) while `visit` says go on. */
  #positions(key: string, visit: (bit: number) => boolean): boolean {
    let h1 = 0x811c9dc5;
    let h2 = 0x01000193;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
    }
    h2 |= 1;
    for (let i = 0; i < this.#hashes; i++) {
      if (!visit(((h1 + Math.imul(i, h2)) >>> 0) & this.#mask)) return false;
    }
    return true;
  }
}

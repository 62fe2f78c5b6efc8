// A seeded generator of uniform and normal variates, identical on every run and platform.

const twoPow32 = 0x1_0000_0000;
const twoPow53 = 2 ** 53;

/** splitmix32: spreads a small seed over 32 bits so neighbouring seeds give unrelated streams. */
function splitmix32(state: number): [next: number, output: number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [next, (z ^ (z >>> 16)) >>> 0];
}

/**
 * xoshiro128** (Blackman and Vigna): 128 bits of state, period 2^128 - 1, and only shifts, xors
 * and Math.imul per draw, so V8 keeps it in 32-bit integer registers (a few ns a draw).
 */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  // Box-Muller yields normals in pairs; the second is kept for the next call.
  private spareNormal = 0;
  private hasSpareNormal = false;

  /** Any safe integer seeds the generator; both its low and high 32 bits matter. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    let state = (seed | 0) ^ Math.imul(Math.floor(seed / twoPow32) | 0, 0x6c8e9cf5);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, output] = splitmix32(state);
      state = next;
      words.push(output);
    }
    [this.a, this.b, this.c, this.d] = words as [number, number, number, number];
    // The all-zero state is xoshiro's one fixed point.
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** A uniform integer in [0, 2^32). */
  nextUint32(): number {
    const b = this.b;
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    this.c ^= this.a;
    this.d ^= b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** A uniform number in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextUint32() / twoPow32;
  }

  /** A uniform number in [0, 1) with 53 random bits, for inverting distributions with long tails. */
  nextDouble(): number {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * 0x400_0000 + low) / twoPow53;
  }

  /** A uniform integer in [0, n) for n <= 2^32; multiply-shift, biased by at most n / 2^32. */
  nextInt(n: number): number {
    return Math.floor((this.nextUint32() * n) / twoPow32);
  }

  /** A standard normal variate (Marsaglia's polar form of Box-Muller). */
  nextNormal(): number {
    if (this.hasSpareNormal) {
      this.hasSpareNormal = false;
      return this.spareNormal;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = this.nextDouble() * 2 - 1;
      v = this.nextDouble() * 2 - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const scale = Math.sqrt((-2 * Math.log(s)) / s);
    this.spareNormal = v * scale;
    this.hasSpareNormal = true;
    return u * scale;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * A seeded, reproducible PRNG (xoshiro128**, Blackman & Vigna, "Scrambled linear pseudorandom
 * number generators", 2018) for GENERATING SYNTHETIC DATA, shuffling example order, and the
 * parametric bootstraps that put intervals on already released sums (shared/analytics: post-
 * processing of public output, reproducible on purpose). It is deliberately not cryptographic and
 * must never be used for privacy randomness (DP noise, SecAgg masks, keys, client sampling): those
 * come from `crypto.getRandomValues` / WebCrypto, injected.
 */

/** murmur3's 32-bit finaliser: a bijection on uint32 with full avalanche. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const TWO_POW_32 = 4_294_967_296;

export class SeededRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /**
   * Seeds from two uint32 keys (e.g. population seed and user index). Distinct key pairs give
   * distinct states (the first two state words are bijections of `a` and `b`), so a million users
   * never share a stream the way 32-bit derived seeds would by the birthday bound.
   */
  constructor(a: number, b = 0) {
    if (!Number.isInteger(a) || a < 0 || a >= TWO_POW_32) {
      throw new RangeError(`"a" expected an integer in 0..2^32-1, got ${a}`);
    }
    if (!Number.isInteger(b) || b < 0 || b >= TWO_POW_32) {
      throw new RangeError(`"b" expected an integer in 0..2^32-1, got ${b}`);
    }
    this.s0 = mix32(a ^ 0x243f6a88);
    this.s1 = mix32(b ^ 0x85a308d3);
    this.s2 = mix32((this.s0 + this.s1 + 0x13198a2e) >>> 0);
    this.s3 = mix32((this.s0 ^ Math.imul(this.s1, 0x9e3779b9) ^ 0x03707344) >>> 0) | 1;
    // Nearby keys start in nearby states; a few rounds spread the difference over all words.
    for (let i = 0; i < 8; i++) this.nextUint32();
  }

  /** Starts from a raw xoshiro128** state (for checking against the reference C code). */
  static fromState(state: readonly [number, number, number, number]): SeededRandom {
    if (state.every((w) => w >>> 0 === 0)) throw new RangeError('"state" must not be all zero');
    const rng = new SeededRandom(0);
    [rng.s0, rng.s1, rng.s2, rng.s3] = state.map((w) => w >>> 0) as [number, number, number, number];
    return rng;
  }

  nextUint32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    let s2 = this.s2 ^ s0;
    let s3 = this.s3 ^ s1;
    this.s1 = s1 ^ s2;
    this.s0 = s0 ^ s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    this.s2 = s2;
    this.s3 = s3;
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Exponential with mean 1. */
  exponential(): number {
    return -Math.log(1 - this.next());
  }

  /** Poisson by Knuth's product method; fine for the small means used here. */
  poisson(mean: number): number {
    const limit = Math.exp(-mean);
    let k = 0;
    let p = this.next();
    while (p > limit) {
      k++;
      p *= this.next();
    }
    return k;
  }

  /** Index drawn from a cumulative (non-normalised, ascending) weight table. */
  pickCumulative(cumulative: Float64Array): number {
    const target = this.next() * cumulative[cumulative.length - 1];
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Index drawn from a small table of probabilities summing to 1 (the last absorbs rounding). */
  pickWeighted(weights: readonly number[]): number {
    let u = this.next();
    for (let i = 0; i < weights.length - 1; i++) {
      u -= weights[i];
      if (u < 0) return i;
    }
    return weights.length - 1;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * Randomness for the privacy mechanisms: an injected byte source (WebCrypto's
 * `crypto.getRandomValues` in production, a seeded generator in tests) and the exact
 * integer draws built on it (uniform integers by rejection, rational Bernoulli trials by lazy
 * comparison of a uniform real with the exact threshold),
 * as required by the exact samplers of Canonne, Kamath, Steinke 2020, Sec. 5.
 */

/** Fills `bytes` with random bytes and returns it; `crypto.getRandomValues.bind(crypto)` in production. */
export type RandomSource = (bytes: Uint8Array<ArrayBuffer>) => Uint8Array;

/** The production source: WebCrypto, available in browsers, workers and Node 20. */
export function cryptoRandomSource(): RandomSource {
  const c = globalThis.crypto;
  if (!c || typeof c.getRandomValues !== 'function') throw new TypeError('"globalThis.crypto.getRandomValues" is not available');
  // WebCrypto refuses more than 65,536 bytes per call, so larger requests are filled in chunks.
  return (bytes: Uint8Array<ArrayBuffer>) => {
    for (let offset = 0; offset < bytes.length; offset += 65_536) c.getRandomValues(bytes.subarray(offset, Math.min(bytes.length, offset + 65_536)));
    return bytes;
  };
}

const TWO_32 = 4294967296;
const TWO_53 = 9007199254740992;
const TWO_32_BIG = 4294967296n;
// One WebCrypto call fills 64 KiB (its per-call maximum): a 16,384-coordinate update draws
// ~60k words, so larger refills keep getRandomValues off the sampler's profile.
const BUFFER_BYTES = 65_536;

/**
 * Buffered reader over a `RandomSource`. All draws are exact: uniform integers use
 * rejection sampling (no modulo bias), Bernoulli(num/den) compares a uniform real, drawn
 * 32 bits at a time, with num/den.
 */
export class RandomStream {
  private readonly buffer = new Uint8Array(BUFFER_BYTES);
  private readonly words = new Uint32Array(this.buffer.buffer);
  private position = BUFFER_BYTES / 4;

  constructor(private readonly source: RandomSource) {
    if (typeof source !== 'function') throw new TypeError('"random" expected a RandomSource function');
  }

  /** A uniform 32-bit unsigned integer. */
  uint32(): number {
    if (this.position >= this.words.length) {
      const filled = this.source(this.buffer);
      if (filled !== this.buffer && filled.length !== this.buffer.length) throw new RangeError('"random" returned a buffer of the wrong size');
      if (filled !== this.buffer) this.buffer.set(filled);
      this.position = 0;
    }
    const word = this.words[this.position];
    this.position += 1;
    return word as number;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  unitFloat(): number {
    const hi = this.uint32() >>> 5; // 27 bits
    const lo = this.uint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / TWO_53;
  }

  /** A uniform integer in [0, n) for an integer 1 <= n <= 2^53. */
  below(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_53) throw new RangeError(`"n" expected an integer in [1, 2^53], got ${n}`);
    if (n <= TWO_32) {
      const limit = TWO_32 - (TWO_32 % n);
      for (;;) {
        const r = this.uint32();
        if (r < limit) return r % n;
      }
    }
    const hiBits = Math.ceil(Math.log2(n / TWO_32 + 1));
    const hiMask = hiBits >= 21 ? 0x1fffff : (1 << hiBits) - 1;
    for (;;) {
      const r = (this.uint32() & hiMask) * TWO_32 + this.uint32();
      if (r < n) return r;
    }
  }

  /** A uniform bigint in [0, n) for n >= 1. */
  belowBig(n: bigint): bigint {
    if (n < 1n) throw new RangeError(`"n" expected a bigint >= 1, got ${n}`);
    if (n <= BigInt(TWO_53)) return BigInt(this.below(Number(n)));
    const bits = n.toString(2).length;
    const wordCount = Math.ceil(bits / 32);
    const topMask = BigInt.asUintN(bits - 32 * (wordCount - 1), -1n);
    for (;;) {
      let r = BigInt(this.uint32()) & topMask;
      for (let i = 1; i < wordCount; i++) r = (r << 32n) | BigInt(this.uint32());
      if (r < n) return r;
    }
  }

  /**
   * Bernoulli(num/den) exactly, for integers 0 <= num <= den <= 2^53. A lazy comparison of a
   * uniform real V = (U + W)/2^32 with num/den: one 32-bit word U decides unless it is the cell
   * holding the threshold (probability about 2^-31: the double threshold is within 2^-20 of the
   * true one), and only then are W's bits drawn, as Bernoulli of the remainder.
   */
  bernoulli(num: number, den: number): boolean {
    if (!(Number.isInteger(num) && Number.isInteger(den) && num >= 0 && num <= den && den >= 1 && den <= TWO_53)) {
      throw new RangeError(`"num/den" expected integers 0 <= num <= den <= 2^53, got ${num}/${den}`);
    }
    const u = this.uint32();
    const threshold = (num / den) * TWO_32;
    if (u + 1 <= threshold - 2 ** -16) return true;
    if (u >= threshold + 2 ** -16) return false;
    // Exact: V < num/den iff W < num·2^32/den - U, a remainder below den.
    const scaled = BigInt(num) * TWO_32_BIG;
    const low = BigInt(u) * BigInt(den);
    if (low + BigInt(den) <= scaled) return true;
    if (low >= scaled) return false;
    return this.bernoulli(Number(scaled - low), den);
  }

  /** Bernoulli(num/den) exactly, for bigints 0 <= num <= den. */
  bernoulliBig(num: bigint, den: bigint): boolean {
    return this.belowBig(den) < num;
  }
}

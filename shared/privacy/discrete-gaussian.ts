/**
 * Exact samplers for the discrete Laplace and discrete Gaussian distributions on the
 * integers (Canonne, Kamath, Steinke 2020, "The Discrete Gaussian for Differential
 * Privacy", Sec. 5: Prop. 32 / Alg. 1 for Bernoulli(exp(-gamma)), Alg. 2 for the discrete
 * Laplace, Alg. 3 for the discrete Gaussian). Every random decision is an exact rational
 * Bernoulli trial over uniform integers: no decision ever rests on a rounded probability.
 * Precision: the variance parameter is taken as an exact rational; a `number` is rounded
 * *up* to the next multiple of 2^-32 (so the noise is never smaller than asked for), then
 * the sampler is exact for that rational. Integer arithmetic runs on doubles while every
 * operand stays below 2^53. Beyond that (large or non-integer sigma²), the acceptance trial
 * computes gamma in floating point with a proven error bound and lets a uniform draw decide
 * only where the bound proves the exact comparison's outcome; in the rare band where it cannot
 * (about 3·2^-32 per trial), the exact bigint rational decides. Every decision is therefore the
 * exact rational one (a lazy comparison of a uniform real with the exact threshold), while the
 * common case does no bigint arithmetic.
 */
import { RandomStream, type RandomSource } from './random.ts';

/** A non-negative rational num/den in lowest terms. */
export interface Rational {
  readonly num: bigint;
  readonly den: bigint;
}

const SAFE = 2 ** 53;
const SAFE_BIG = BigInt(SAFE);

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

export function rational(num: bigint, den: bigint): Rational {
  if (den <= 0n || num < 0n) throw new RangeError(`"rational" expected num >= 0 and den > 0, got ${num}/${den}`);
  const g = gcd(num, den) || 1n;
  return { num: num / g, den: den / g };
}

/** The smallest multiple of 2^-32 that is >= x, as a rational in lowest terms. */
export function rationalAtLeast(x: number): Rational {
  if (!Number.isFinite(x) || x < 0) throw new RangeError(`"x" expected a finite number >= 0, got ${x}`);
  // x * 2^32 is exact in binary64, and so is its ceiling.
  return rational(BigInt(Math.ceil(x * 2 ** 32)), 1n << 32n);
}

/** Bernoulli(exp(-num/den)) for 0 <= num/den <= 1 (Canonne et al. 2020, Prop. 32 / Alg. 1). */
function bernoulliExpNegUnit(stream: RandomStream, num: number, den: number): boolean {
  let k = 1;
  for (;;) {
    const denK = den * k;
    if (denK >= SAFE) return bernoulliExpNegUnitBig(stream, BigInt(num), BigInt(den), k);
    if (!stream.bernoulli(num, denK)) break;
    k += 1;
  }
  return k % 2 === 1;
}

function bernoulliExpNegUnitBig(stream: RandomStream, num: bigint, den: bigint, startK = 1): boolean {
  let k = BigInt(startK);
  while (stream.bernoulliBig(num, den * k)) k += 1n;
  return k % 2n === 1n;
}

/** Bernoulli(exp(-num/den)) for any num/den >= 0: one Bernoulli(e^-1) per whole unit, then the remainder. */
export function bernoulliExpNeg(stream: RandomStream, num: number, den: number): boolean {
  if (!Number.isInteger(num) || !Number.isInteger(den) || num < 0 || den < 1 || den >= SAFE || num >= SAFE) {
    throw new RangeError(`"gamma" expected a safe-integer ratio num >= 0, den >= 1, got ${num}/${den}`);
  }
  let rest = num;
  while (rest > den) {
    if (!bernoulliExpNegUnit(stream, 1, 1)) return false;
    rest -= den;
  }
  return bernoulliExpNegUnit(stream, rest, den);
}

const TWO_32 = 4294967296;
const TWO_32_BIG = 1n << 32n;

/**
 * The exact outcome of one Bernoulli(rem/k) trial of Alg. 1 given the leading 32 bits U of a
 * uniform real V = (U + W)/2^32: [V < rem/k], drawing W only when U is the very cell that holds
 * the threshold.
 */
function exactFractionTrial(stream: RandomStream, u: number, rem: bigint, den: bigint, k: number): boolean {
  const scaled = rem * TWO_32_BIG;
  const kDen = den * BigInt(k);
  const ub = BigInt(u);
  if ((ub + 1n) * kDen <= scaled) return true;
  if (ub * kDen >= scaled) return false;
  return stream.bernoulliBig(scaled - ub * kDen, kDen);
}

/**
 * Bernoulli(exp(-gamma)) for an exact rational gamma = num/den (Canonne et al. 2020, Prop. 32 /
 * Alg. 1, whole part then fraction) given `approx`, a double with |approx - gamma| <= error.
 * Returns exactly the distribution of the all-bigint algorithm: each Bernoulli(rem/k) trial
 * draws the leading 32 bits U of a uniform real and the double decides it only when
 * U + 1 <= rem/k·2^32 or U >= rem/k·2^32 is certain under the bound; otherwise `exact()`
 * supplies the rational (in bigint), which happens with probability about 3·2^-32 per trial.
 */
export function bernoulliExpNegApprox(stream: RandomStream, approx: number, error: number, exact: () => Rational): boolean {
  if (!(Number.isFinite(approx) && approx >= 0 && approx < SAFE / 2)) throw new RangeError(`"approx" expected a finite number in [0, 2^52), got ${approx}`);
  if (!(Number.isFinite(error) && error >= 0 && error < 0.25)) throw new RangeError(`"error" expected a finite number in [0, 0.25), got ${error}`);
  // Widened by more than the rounding of the two sums below, so [low, high] surely holds gamma.
  const margin = error * (1 + 2 ** -40) + approx * 2 ** -50;
  const whole = Math.floor(Math.max(0, approx - margin));
  // The whole part must be certain; if gamma may straddle an integer, the exact rational decides.
  if (Math.floor(approx + margin) !== whole) {
    const g = exact();
    return bernoulliExpNegBig(stream, g.num, g.den);
  }
  for (let i = 0; i < whole; i++) if (!bernoulliExpNegUnit(stream, 1, 1)) return false;
  // approx - whole is exact in binary64 (whole = floor(approx) here, and the difference keeps
  // only approx's fractional bits), so the fraction's error is still `error`; the + 1 in the
  // slack absorbs the rounding of the threshold (below 2^32·3u).
  const fraction = approx - whole;
  const slack = error * TWO_32 + 1;
  let rem = -1n;
  let den = 1n;
  let k = 1;
  for (;;) {
    const u = stream.uint32();
    const threshold = (fraction / k) * TWO_32;
    let success: boolean;
    if (u + 1 <= threshold - slack) success = true;
    else if (u >= threshold + slack) success = false;
    else {
      if (rem < 0n) {
        const g = exact();
        rem = g.num - BigInt(whole) * g.den;
        den = g.den;
      }
      success = exactFractionTrial(stream, u, rem, den, k);
    }
    if (!success) break;
    k += 1;
  }
  return k % 2 === 1;
}

function bernoulliExpNegBig(stream: RandomStream, num: bigint, den: bigint): boolean {
  if (num < SAFE_BIG && den < SAFE_BIG) return bernoulliExpNeg(stream, Number(num), Number(den));
  const whole = num / den;
  for (let i = 0n; i < whole; i++) if (!bernoulliExpNegUnit(stream, 1, 1)) return false;
  return bernoulliExpNegUnitBig(stream, num - whole * den, den);
}

/**
 * One draw from the discrete Laplace with P[x] ∝ exp(-|x|/scale), integer scale >= 1
 * (Canonne et al. 2020, Alg. 2 with s = 1, t = scale).
 */
export function sampleDiscreteLaplace(stream: RandomStream, scale: number): number {
  if (!Number.isInteger(scale) || scale < 1 || scale >= 2 ** 31) throw new RangeError(`"scale" expected an integer in [1, 2^31), got ${scale}`);
  for (;;) {
    const u = stream.below(scale);
    if (!bernoulliExpNeg(stream, u, scale)) continue;
    let v = 0;
    while (bernoulliExpNegUnit(stream, 1, 1)) v += 1;
    const x = u + scale * v;
    const negative = stream.uint32() & 1;
    if (negative && x === 0) continue;
    return negative ? -x : x;
  }
}

/**
 * Alg. 3's acceptance exponent gamma = (|Y| - sigma²/t)² / (2 sigma²) in binary64, with a
 * bound `error` on its distance from the exact value, given `sigma2` = Number(p) / Number(q)
 * (the rounded rational). With u = 2^-53: sigma2, sigma²/t and d = |Y| - sigma²/t carry
 * relative errors of at most 3u, 4u and an absolute error e_d <= 5u (sigma²/t + |d|), so
 * gamma's double is off by at most 6u relative plus e_d (2|d| + e_d) / (2 sigma²) from d;
 * `error` bounds the sum with a factor of more than 4 to spare.
 */
export function acceptanceGamma(absY: number, sigma2: number, t: number): { gamma: number; error: number } {
  const centre = sigma2 / t;
  const d = absY - centre;
  const absD = Math.abs(d);
  const gamma = (d * d) / (2 * sigma2);
  const error = gamma * 2 ** -48 + ((centre + absD + 1) * (2 * absD + 1) * 2 ** -49) / sigma2;
  return { gamma, error };
}

/**
 * A reusable exact sampler for the discrete Gaussian N_Z(0, sigma²): P[x] ∝ exp(-x²/(2 sigma²))
 * (Canonne et al. 2020, Alg. 3). Draw Y from the discrete Laplace with scale t = floor(sigma) + 1
 * and accept with probability exp(-(|Y| - sigma²/t)² / (2 sigma²)).
 */
export class DiscreteGaussianSampler {
  readonly sigma2: Rational;
  private readonly stream: RandomStream;
  private readonly t: number;
  /** With sigma² = p/q: gamma = (|Y| t q - p)² / (2 p q t²); these are p, t q and 2 p q t². */
  private readonly p: bigint;
  private readonly tq: bigint;
  private readonly gammaDen: bigint;
  private readonly fast: boolean;
  /** sigma² = p/q rounded to a double (Number(p) / Number(q)), for the certified acceptance. */
  private readonly sigma2Approx: number;
  /** |Y| of the acceptance trial in progress, read by `exactGamma` (one closure per sampler, not per draw). */
  private pendingAbsY = 0;
  private readonly exactGamma = (): Rational => {
    const root = BigInt(this.pendingAbsY) * this.tq - this.p;
    return { num: root * root, den: this.gammaDen };
  };

  constructor(sigma2: number | Rational, random: RandomSource | RandomStream) {
    const r = typeof sigma2 === 'number' ? rationalAtLeast(sigma2) : rational(sigma2.num, sigma2.den);
    if (r.num === 0n) throw new RangeError(`"sigma2" expected a variance > 0, got ${typeof sigma2 === 'number' ? sigma2 : `${sigma2.num}/${sigma2.den}`}`);
    const sigma = Math.sqrt(Number(r.num) / Number(r.den));
    if (!(sigma < 2 ** 30)) throw new RangeError(`"sigma2" expected a variance below 2^60, got ${sigma * sigma}`);
    this.sigma2 = r;
    this.stream = random instanceof RandomStream ? random : new RandomStream(random);
    this.t = Math.floor(sigma) + 1;
    const t = BigInt(this.t);
    this.p = r.num;
    this.tq = t * r.den;
    this.gammaDen = 2n * r.num * r.den * t * t;
    // Fast path when |Y| t q - p stays safe for |Y| < 40 (t + 1) and both gamma terms fit.
    const maxNumRoot = 40 * (this.t + 1) * Number(this.tq) + Number(this.p);
    this.fast = Number(this.gammaDen) < SAFE && maxNumRoot * maxNumRoot < SAFE;
    this.sigma2Approx = Number(r.num) / Number(r.den);
  }

  /** Bernoulli(exp(-gamma)) for gamma = (|Y| - sigma²/t)² / (2 sigma²) when the exact integers exceed 2^53. */
  private acceptLarge(absY: number): boolean {
    const { gamma, error } = acceptanceGamma(absY, this.sigma2Approx, this.t);
    this.pendingAbsY = absY;
    if (!(gamma < 2 ** 50 && error < 0.25)) {
      const g = this.exactGamma();
      return bernoulliExpNegBig(this.stream, g.num, g.den);
    }
    return bernoulliExpNegApprox(this.stream, gamma, error, this.exactGamma);
  }

  sample(): number {
    for (;;) {
      const y = sampleDiscreteLaplace(this.stream, this.t);
      const absY = Math.abs(y);
      let accept: boolean;
      if (this.fast && absY < 40 * (this.t + 1)) {
        const root = absY * Number(this.tq) - Number(this.p);
        accept = bernoulliExpNeg(this.stream, root * root, Number(this.gammaDen));
      } else {
        accept = this.acceptLarge(absY);
      }
      if (accept) return y;
    }
  }

  /** `length` independent draws. */
  sampleVector(length: number): Int32Array {
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`"length" expected an integer >= 0, got ${length}`);
    const out = new Int32Array(length);
    for (let i = 0; i < length; i++) out[i] = this.sample();
    return out;
  }
}

/** `length` independent draws from N_Z(0, sigma2); see `DiscreteGaussianSampler`. */
export function sampleDiscreteGaussian(sigma2: number | Rational, length: number, random: RandomSource | RandomStream): Int32Array {
  return new DiscreteGaussianSampler(sigma2, random).sampleVector(length);
}

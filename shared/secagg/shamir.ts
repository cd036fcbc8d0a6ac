/**
 * Shamir t-of-m secret sharing (Shamir 1979) of 32-byte secrets over GF(p), p = 2^256 + 297, the
 * smallest prime above 2^256 (so every 32-byte string is a field element). Bonawitz et al. 2017,
 * Sec. 3 and 4 (Rounds 1 and 4), share the self-mask seed b_u and the mask secret key s_u^SK this
 * way; evaluation points are client indices >= 1. Shares are 33-byte big-endian field elements.
 */
import { expectBytes, expectInteger } from './bytes.ts';
import { randomBytes, type RandomSource } from './random.ts';

export const SHAMIR_PRIME = (1n << 256n) + 297n;
export const SECRET_BYTES = 32;
export const SHARE_BYTES = 33;
/** Evaluation points are client indices; a cohort is capped well below p anyway. */
export const MAX_SHARE_INDEX = 1_000_000;

export interface Share {
  readonly x: number;
  readonly y: Uint8Array;
}

export function mod(a: bigint): bigint {
  const r = a % SHAMIR_PRIME;
  return r < 0n ? r + SHAMIR_PRIME : r;
}

/** Big-endian bytes as a BigInt, 64 bits per step (a 33-byte share in 5 steps, not 33: ~4x faster here). */
export function bytesToBigint(bytes: Uint8Array): bigint {
  const head = bytes.length % 8;
  let v = 0n;
  for (let i = 0; i < head; i++) v = (v << 8n) | BigInt(bytes[i]!);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = head; i < bytes.length; i += 8) v = (v << 64n) | view.getBigUint64(i);
  return v;
}

/** A non-negative BigInt as `length` big-endian bytes, 64 bits per step from the end (the inverse of `bytesToBigint`). */
export function bigintToBytes(value: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  let v = value;
  let i = length;
  for (; i >= 8; i -= 8) {
    view.setBigUint64(i - 8, BigInt.asUintN(64, v));
    v >>= 64n;
  }
  for (; i > 0; i--) {
    out[i - 1] = Number(v & 0xffn);
    v >>= 8n;
  }
  if (v !== 0n) throw new RangeError(`"value" does not fit in ${length} bytes`);
  return out;
}

/** Modular inverse by the extended Euclidean algorithm. */
export function invert(a: bigint): bigint {
  let [r0, r1] = [mod(a), SHAMIR_PRIME];
  if (r0 === 0n) throw new RangeError('"a" has no inverse modulo p (it is 0)');
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0);
}

/** Uniform element of GF(p) by rejection sampling 257-bit strings (acceptance about 1/2). */
export function randomFieldElement(random: RandomSource): bigint {
  for (;;) {
    const bytes = randomBytes(random, SHARE_BYTES);
    bytes[0] = bytes[0]! & 1;
    const v = bytesToBigint(bytes);
    bytes.fill(0);
    if (v < SHAMIR_PRIME) return v;
  }
}

function checkPoints(xs: readonly number[]): void {
  const seen = new Set<number>();
  for (const x of xs) {
    expectInteger('x', x, 1, MAX_SHARE_INDEX);
    if (seen.has(x)) throw new RangeError(`"xs" contains ${x} twice`);
    seen.add(x);
  }
}

/** Shares of the polynomial with the given coefficients (a_0 = secret first), by Horner's rule. */
export function sharePolynomial(coefficients: readonly bigint[], xs: readonly number[]): Share[] {
  checkPoints(xs);
  for (const c of coefficients) if (c < 0n || c >= SHAMIR_PRIME) throw new RangeError('"coefficients" must lie in [0, p)');
  return xs.map((x) => {
    let y = 0n;
    const bx = BigInt(x);
    for (let i = coefficients.length - 1; i >= 0; i--) y = mod(y * bx + coefficients[i]!);
    return { x, y: bigintToBytes(y, SHARE_BYTES) };
  });
}

/** Splits a 32-byte secret into shares at `xs`, any `threshold` of which reconstruct it. */
export function splitSecret(secret: Uint8Array, threshold: number, xs: readonly number[], random: RandomSource): Share[] {
  expectBytes('secret', secret, SECRET_BYTES);
  expectInteger('threshold', threshold, 1, xs.length);
  const coefficients = [bytesToBigint(secret)];
  for (let i = 1; i < threshold; i++) coefficients.push(randomFieldElement(random));
  const shares = sharePolynomial(coefficients, xs);
  coefficients.fill(0n);
  return shares;
}

/**
 * f(0) from points (x_j, y_j) by Lagrange interpolation: sum_j y_j * prod_{m != j} x_m / (x_m - x_j).
 * Denominators are inverted together (Montgomery's trick), one modular inversion in all. The plain
 * O(t^2) reference, kept to cross-check `lagrangeAtZero` (which reconstruction uses).
 */
export function interpolateAtZero(points: readonly { x: bigint; y: bigint }[]): bigint {
  const count = points.length;
  const numerators: bigint[] = [];
  const denominators: bigint[] = [];
  for (let j = 0; j < count; j++) {
    let num = 1n;
    let den = 1n;
    for (let m = 0; m < count; m++) {
      if (m === j) continue;
      num = mod(num * points[m]!.x);
      den = mod(den * (points[m]!.x - points[j]!.x));
    }
    numerators.push(num);
    denominators.push(den);
  }
  const prefix: bigint[] = [];
  let acc = 1n;
  for (const d of denominators) {
    prefix.push(acc);
    acc = mod(acc * d);
  }
  let inv = invert(acc);
  let secret = 0n;
  for (let j = count - 1; j >= 0; j--) {
    const invDen = mod(inv * prefix[j]!);
    inv = mod(inv * denominators[j]!);
    secret = mod(secret + points[j]!.y * numerators[j]! * invDen);
  }
  return secret;
}

/** Largest integer below which products of doubles stay exact. */
const EXACT_DOUBLE = 2 ** 53;

/**
 * The Lagrange coefficients at 0 of the points `xs`, lambda_j = prod_{m != j} x_m / (x_m - x_j) mod p,
 * so that f(0) = sum_j lambda_j y_j for every polynomial of degree < xs.length. Computed once per
 * holder set and reused for every secret shared among it (Bonawitz et al. 2017, Sec. 4, Round 4:
 * the server reconstructs one b_u per survivor from the same survivors' shares). The points are
 * small integers, so lambda_j = N / (x_j D_j) with N = prod x_m and D_j = prod_{m != j} (x_m - x_j):
 * each D_j is multiplied up in doubles (exact below 2^53), moved into a BigInt only when the double
 * would overflow and reduced mod p once at the end (a product of ~t small factors is a few hundred
 * bits: cheaper than reducing at every step), and all x_j D_j are inverted with one inversion
 * (Montgomery's trick).
 */
export function lagrangeAtZero(xs: readonly number[]): bigint[] {
  checkPoints(xs);
  const count = xs.length;
  const flush = (big: bigint, small: number): bigint => (small === 1 ? big : big * BigInt(small));
  let numerator = 1n;
  let acc = 1;
  for (const x of xs) {
    if (acc * x >= EXACT_DOUBLE) {
      numerator = flush(numerator, acc);
      acc = 1;
    }
    acc *= x;
  }
  numerator = flush(numerator, acc) % SHAMIR_PRIME;
  const denominators: bigint[] = [];
  for (let j = 0; j < count; j++) {
    const xj = xs[j]!;
    let den = 1n;
    let small = xj;
    let negative = false;
    for (let m = 0; m < count; m++) {
      if (m === j) continue;
      let d = xs[m]! - xj;
      if (d < 0) {
        d = -d;
        negative = !negative;
      }
      if (small * d >= EXACT_DOUBLE) {
        den = flush(den, small);
        small = 1;
      }
      small *= d;
    }
    den = flush(den, small) % SHAMIR_PRIME;
    denominators.push(negative && den !== 0n ? SHAMIR_PRIME - den : den);
  }
  const prefix: bigint[] = [];
  let product = 1n;
  for (const d of denominators) {
    prefix.push(product);
    product = (product * d) % SHAMIR_PRIME;
  }
  let inverse = invert(product);
  const coefficients = new Array<bigint>(count);
  for (let j = count - 1; j >= 0; j--) {
    coefficients[j] = (((inverse * prefix[j]!) % SHAMIR_PRIME) * numerator) % SHAMIR_PRIME;
    inverse = (inverse * denominators[j]!) % SHAMIR_PRIME;
  }
  return coefficients;
}

/** A share's 33 big-endian bytes as a field element (refused when not below p). */
export function shareValue(y: Uint8Array): bigint {
  const value = bytesToBigint(expectBytes('share.y', y, SHARE_BYTES));
  if (value >= SHAMIR_PRIME) throw new RangeError('"share.y" is not a field element');
  return value;
}

/**
 * The 32-byte secret sum_j lambda_j y_j from shares at exactly the points the coefficients were
 * computed for (`lagrangeAtZero(shares.map(s => s.x))`): one reduction for the whole sum.
 */
export function reconstructWithCoefficients(shares: readonly Share[], coefficients: readonly bigint[]): Uint8Array {
  return reconstructFromValues(shares.map((s) => shareValue(s.y)), coefficients);
}

/** As `reconstructWithCoefficients`, from share values already decoded (`shareValue`, each below p). */
export function reconstructFromValues(values: readonly bigint[], coefficients: readonly bigint[]): Uint8Array {
  if (values.length !== coefficients.length) {
    throw new RangeError(`"coefficients" expected ${values.length} values (one per share), got ${coefficients.length}`);
  }
  let sum = 0n;
  for (let j = 0; j < values.length; j++) sum += values[j]! * coefficients[j]!;
  return secretFromSum(sum);
}

/** The 32-byte secret from an unreduced sum_j lambda_j y_j, refused when it exceeds 32 bytes (inconsistent shares). */
export function secretFromSum(sum: bigint): Uint8Array {
  const secret = sum % SHAMIR_PRIME;
  if (secret >= 1n << 256n) throw new RangeError('reconstructed value exceeds 32 bytes: the shares are inconsistent');
  return bigintToBytes(secret, SECRET_BYTES);
}

/** Reconstructs a 32-byte secret from at least `threshold` shares (the first `threshold` are used). */
export function reconstructSecret(shares: readonly Share[], threshold: number): Uint8Array {
  expectInteger('threshold', threshold, 1, MAX_SHARE_INDEX);
  if (shares.length < threshold) {
    throw new RangeError(`"shares" expected at least threshold=${threshold} shares, got ${shares.length}`);
  }
  const used = shares.slice(0, threshold);
  return reconstructWithCoefficients(used, lagrangeAtZero(used.map((s) => s.x)));
}

/** Shamir over GF(2^256 + 297): published/independent vectors, exhaustive threshold subsets, perfect hiding below t. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  bigintToBytes,
  bytesToBigint,
  interpolateAtZero,
  invert,
  lagrangeAtZero,
  MAX_SHARE_INDEX,
  mod,
  reconstructSecret,
  reconstructWithCoefficients,
  SHAMIR_PRIME,
  sharePolynomial,
  splitSecret,
  type Share,
} from '../../../shared/secagg/shamir.ts';
import { seededRandom } from './helpers.ts';

interface ShamirVectors {
  prime: string;
  cases: { threshold: number; secret: string; coefficients: string[]; shares: { x: number; y: string }[] }[];
}
const vectors = JSON.parse(readFileSync(new URL('../../vectors/secagg/shamir.json', import.meta.url), 'utf8')) as ShamirVectors;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

/** Slow reference: solve the Vandermonde system V a = y for the coefficients by Gauss-Jordan elimination mod p. */
function gaussianSecret(points: { x: bigint; y: bigint }[]): bigint {
  const rows = points.map(({ x, y }) => [...points.map((_, j) => mod(x ** BigInt(j))), y]);
  const size = points.length;
  for (let col = 0; col < size; col++) {
    const pivot = rows.findIndex((r, i) => i >= col && r[col] !== 0n);
    [rows[col], rows[pivot]] = [rows[pivot]!, rows[col]!];
    const inv = invert(rows[col]![col]!);
    rows[col] = rows[col]!.map((v) => mod(v * inv));
    for (let r = 0; r < size; r++) {
      if (r === col) continue;
      const f = rows[r]![col]!;
      rows[r] = rows[r]!.map((v, j) => mod(v - f * rows[col]![j]!));
    }
  }
  return rows[0]![size]!;
}

function subsets<T>(items: readonly T[], size: number): T[][] {
  if (size === 0) return [[]];
  if (items.length < size) return [];
  const [head, ...rest] = items;
  return [...subsets(rest, size - 1).map((s) => [head!, ...s]), ...subsets(rest, size)];
}

describe('Shamir field', () => {
  it('uses the prime recorded with the vectors', () => {
    expect(SHAMIR_PRIME).toBe(BigInt(vectors.prime));
    expect(SHAMIR_PRIME > 1n << 256n).toBe(true);
  });

  it('hand-computed case: f(x) = (2^256 - 1) - x + 2x^2 at x = 1, 2, 3', () => {
    // f(1) = 2^256, f(2) = 2^256 + 5, f(3) = 2^256 + 14, all below p = 2^256 + 297 so no reduction.
    const coefficients = [(1n << 256n) - 1n, SHAMIR_PRIME - 1n, 2n];
    const shares = sharePolynomial(coefficients, [1, 2, 3]);
    expect(shares.map((s) => bytesToBigint(s.y))).toEqual([1n << 256n, (1n << 256n) + 5n, (1n << 256n) + 14n]);
    expect(hex(reconstructSecret(shares, 3))).toBe('ff'.repeat(32));
  });

  it('matches the independently generated vectors (gen_vectors.py)', () => {
    for (const c of vectors.cases) {
      const shares = sharePolynomial(c.coefficients.map((h) => BigInt(`0x${h}`)), c.shares.map((s) => s.x));
      expect(shares.map((s) => hex(s.y))).toEqual(c.shares.map((s) => s.y));
      const given: Share[] = c.shares.map((s) => ({ x: s.x, y: fromHex(s.y) }));
      expect(hex(reconstructSecret(given, c.threshold))).toBe(c.secret);
    }
  });
});

describe('Shamir threshold property, exhaustively for small n', () => {
  it.each([[5, 3], [6, 4], [6, 2], [5, 5]])('n=%i, t=%i: every t-subset reconstructs; Lagrange equals Gaussian elimination', (n, t) => {
    const random = seededRandom(`shamir-${n}-${t}`);
    const secret = random(new Uint8Array(32));
    const shares = splitSecret(secret, t, Array.from({ length: n }, (_, i) => i + 1), random);
    for (const subset of subsets(shares, t)) {
      expect(hex(reconstructSecret(subset, t))).toBe(hex(secret));
      const points = subset.map((s) => ({ x: BigInt(s.x), y: bytesToBigint(s.y) }));
      expect(gaussianSecret(points)).toBe(bytesToBigint(secret));
    }
  });

  it.each([[5, 3], [6, 4], [6, 3]])('n=%i, t=%i: no smaller subset determines the secret', (n, t) => {
    const random = seededRandom(`shamir-hiding-${n}-${t}`);
    const secret = random(new Uint8Array(32));
    const shares = splitSecret(secret, t, Array.from({ length: n }, (_, i) => i + 1), random);
    for (let size = 1; size < t; size++) {
      for (const subset of subsets(shares, size)) {
        expect(() => reconstructSecret(subset, t)).toThrow(RangeError);
        const points = subset.map((s) => ({ x: BigInt(s.x), y: bytesToBigint(s.y) }));
        // Interpolating too few points gives some other value...
        expect(interpolateAtZero(points)).not.toBe(bytesToBigint(secret));
        // ...and every candidate secret is consistent with these shares (perfect hiding): the polynomial
        // through (0, candidate) and the subset has degree < t, so it is a valid sharing of the candidate.
        for (const candidate of [0n, 1n, bytesToBigint(secret), (1n << 256n) - 1n]) {
          const extended = [{ x: 0n, y: candidate }, ...points];
          expect(gaussianSecret(extended)).toBe(candidate);
          expect(extended.length).toBeLessThanOrEqual(t);
        }
      }
    }
  });

  it('refuses malformed input, naming the argument', () => {
    const random = seededRandom('shamir-args');
    expect(() => splitSecret(new Uint8Array(31), 2, [1, 2], random)).toThrow('"secret" expected 32 bytes, got 31');
    expect(() => splitSecret(new Uint8Array(32), 3, [1, 2], random)).toThrow(/"threshold"/);
    expect(() => splitSecret(new Uint8Array(32), 2, [0, 2], random)).toThrow(/"x"/);
    expect(() => splitSecret(new Uint8Array(32), 2, [2, 2], random)).toThrow(/twice/);
    expect(() => reconstructSecret([{ x: 1, y: bigintToBytes(SHAMIR_PRIME, 33) }], 1)).toThrow(/field element/);
  });
});

describe('Lagrange coefficients shared by a holder set (the server fast path)', () => {
  it.each([[3, 10], [56, 100], [80, 1000], [40, MAX_SHARE_INDEX]])('t=%i points up to %i: equal the plain O(t^2) interpolation', (t, maxX) => {
    const random = seededRandom(`lagrange-${t}-${maxX}`);
    const picked = new Set<number>();
    const word = new Uint8Array(4);
    while (picked.size < t) picked.add(1 + (new DataView(random(word).buffer).getUint32(0) % maxX));
    const xs = [...picked];
    if (maxX === MAX_SHARE_INDEX) xs[0] = MAX_SHARE_INDEX;
    const coefficients = lagrangeAtZero(xs);
    for (const label of ['a', 'b']) {
      const secret = seededRandom(`lagrange-secret-${label}`)(new Uint8Array(32));
      const shares = splitSecret(secret, t, xs, random);
      const points = shares.map((s) => ({ x: BigInt(s.x), y: bytesToBigint(s.y) }));
      expect(hex(reconstructWithCoefficients(shares, coefficients))).toBe(hex(secret));
      expect(interpolateAtZero(points)).toBe(bytesToBigint(secret));
    }
    // The coefficients are the reference's: f(0) of the indicator polynomial of each point.
    for (const j of [0, t - 1]) {
      const indicator = xs.map((x, m) => ({ x: BigInt(x), y: m === j ? 1n : 0n }));
      expect(coefficients[j]).toBe(interpolateAtZero(indicator));
    }
  });

  it('refuses a coefficient list for another number of shares', () => {
    const random = seededRandom('lagrange-args');
    const shares = splitSecret(random(new Uint8Array(32)), 2, [1, 2, 3], random);
    expect(() => reconstructWithCoefficients(shares, lagrangeAtZero([1, 2]))).toThrow('"coefficients" expected 3 values (one per share), got 2');
    expect(() => lagrangeAtZero([1, 1])).toThrow(/twice/);
  });
});

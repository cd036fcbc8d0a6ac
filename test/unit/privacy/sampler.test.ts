import { describe, expect, it } from 'vitest';
import { DiscreteGaussianSampler, acceptanceGamma, bernoulliExpNeg, bernoulliExpNegApprox, rationalAtLeast, sampleDiscreteGaussian, sampleDiscreteLaplace } from '../../../shared/privacy/discrete-gaussian.ts';
import { RandomStream } from '../../../shared/privacy/random.ts';
import { seededRandom } from './seeded-random.ts';

/** Exact discrete Gaussian pmf on [-K, K] (mass beyond is < 1e-30 for K = 12 sigma + 2). */
function discreteGaussianPmf(sigma2: number): { K: number; pmf: Float64Array } {
  const K = Math.ceil(12 * Math.sqrt(sigma2)) + 2;
  const w = Float64Array.from({ length: 2 * K + 1 }, (_, i) => Math.exp(-((i - K) ** 2) / (2 * sigma2)));
  const total = w.reduce((a, b) => a + b, 0);
  return { K, pmf: w.map((x) => x / total) };
}

/** Upper 0.999 quantile of chi-square with df degrees of freedom (Wilson–Hilferty). */
function chiSquareCritical(df: number): number {
  const z = 3.09;
  const c = 2 / (9 * df);
  return df * (1 - c + z * Math.sqrt(c)) ** 3;
}

/** Chi-square statistic of samples against the pmf, over contiguous bins of ~equal probability (each expected >= 20). */
function chiSquare(samples: Int32Array, sigma2: number, targetBins: number): { stat: number; df: number } {
  const { K, pmf } = discreteGaussianPmf(sigma2);
  const n = samples.length;
  const binOf = new Int32Array(2 * K + 1);
  const probs: number[] = [];
  let acc = 0;
  let cumulative = 0;
  for (let i = 0; i < pmf.length; i++) {
    binOf[i] = probs.length;
    acc += pmf[i] as number;
    cumulative += pmf[i] as number;
    const remaining = 1 - cumulative;
    if (acc >= 1 / targetBins && acc * n >= 20 && remaining * n >= 20) {
      probs.push(acc);
      acc = 0;
    }
  }
  if (acc > 0) probs.push(acc);
  // Fold a tiny trailing bin into its neighbour.
  if ((probs[probs.length - 1] as number) * n < 20 && probs.length > 1) {
    const last = probs.pop() as number;
    probs[probs.length - 1] = (probs[probs.length - 1] as number) + last;
    for (let i = 0; i < binOf.length; i++) if ((binOf[i] as number) >= probs.length) binOf[i] = probs.length - 1;
  }
  const counts = new Float64Array(probs.length);
  for (const x of samples) {
    const idx = Math.min(Math.max(x + K, 0), 2 * K);
    counts[binOf[idx] as number] = (counts[binOf[idx] as number] as number) + 1;
  }
  let stat = 0;
  probs.forEach((p, b) => {
    const e = p * n;
    stat += ((counts[b] as number) - e) ** 2 / e;
  });
  return { stat, df: probs.length - 1 };
}

describe('exact discrete Gaussian sampler (Canonne, Kamath, Steinke 2020, Alg. 3)', () => {
  const sigmas = [0.5, 1, 3, 30, 1000, 10_000];
  for (const [k, sigma] of sigmas.entries()) {
    it(`matches the exact pmf at sigma = ${sigma}: chi-square, mean, variance, tails`, () => {
      const sigma2 = sigma * sigma;
      const n = 20_000;
      const samples = sampleDiscreteGaussian(sigma2, n, seededRandom(1000 + k));
      const { pmf, K } = discreteGaussianPmf(sigma2);
      let exactVar = 0;
      pmf.forEach((p, i) => (exactVar += p * (i - K) ** 2));
      let mean = 0;
      let m2 = 0;
      for (const x of samples) {
        mean += x;
        m2 += x * x;
      }
      mean /= n;
      const variance = m2 / n - mean * mean;
      expect(Math.abs(mean)).toBeLessThan(5 * Math.sqrt(exactVar / n));
      // Var of the sample variance ~ 2 sigma^4 / n for a near-Gaussian.
      expect(Math.abs(variance - exactVar)).toBeLessThan(5 * exactVar * Math.sqrt(2 / n) + 1e-9);
      const { stat, df } = chiSquare(samples, sigma2, 20);
      expect(df).toBeGreaterThanOrEqual(sigma < 1 ? 2 : sigma < 10 ? 4 : 15);
      expect(stat).toBeLessThan(chiSquareCritical(df));
      // Tail beyond 2 sigma: observed frequency within 5 binomial standard errors of the exact mass.
      const cut = Math.ceil(2 * sigma);
      let tailMass = 0;
      pmf.forEach((p, i) => {
        if (Math.abs(i - K) >= cut) tailMass += p;
      });
      const tailCount = samples.reduce((c, x) => c + (Math.abs(x) >= cut ? 1 : 0), 0);
      expect(Math.abs(tailCount - n * tailMass)).toBeLessThan(5 * Math.sqrt(n * tailMass * (1 - tailMass)) + 1);
    });
  }

  it('is deterministic for a fixed seed and differs across seeds', () => {
    const a = sampleDiscreteGaussian(25, 64, seededRandom(7));
    const b = sampleDiscreteGaussian(25, 64, seededRandom(7));
    const c = sampleDiscreteGaussian(25, 64, seededRandom(8));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });

  it('takes a rational variance exactly and rounds a float variance up', () => {
    const r = rationalAtLeast(0.1);
    expect(Number(r.num) / Number(r.den)).toBeGreaterThanOrEqual(0.1);
    expect(Number(r.num) / Number(r.den) - 0.1).toBeLessThan(2 ** -32);
    expect(rationalAtLeast(12)).toEqual({ num: 12n, den: 1n });
    const s = new DiscreteGaussianSampler({ num: 9n, den: 4n }, seededRandom(3));
    expect(s.sigma2).toEqual({ num: 9n, den: 4n });
    expect(() => new DiscreteGaussianSampler(0, seededRandom(3))).toThrow(/sigma2/);
  });
});

describe('building blocks', () => {
  it('Bernoulli(exp(-gamma)) has the right frequency for gamma = 0.3, 1, 2.5', () => {
    const stream = new RandomStream(seededRandom(11));
    for (const [num, den] of [
      [3, 10],
      [1, 1],
      [5, 2],
    ] as const) {
      const n = 40_000;
      let hits = 0;
      for (let i = 0; i < n; i++) if (bernoulliExpNeg(stream, num, den)) hits++;
      const p = Math.exp(-num / den);
      expect(Math.abs(hits / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
    }
  });

  it('discrete Laplace with scale t has P[0] = (1 - e^{-1/t}) / (1 + e^{-1/t})', () => {
    const stream = new RandomStream(seededRandom(12));
    const t = 3;
    const n = 40_000;
    let zeros = 0;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const x = sampleDiscreteLaplace(stream, t);
      if (x === 0) zeros++;
      sum += x;
    }
    const r = Math.exp(-1 / t);
    const p0 = (1 - r) / (1 + r);
    expect(Math.abs(zeros / n - p0)).toBeLessThan(5 * Math.sqrt((p0 * (1 - p0)) / n));
    expect(Math.abs(sum / n)).toBeLessThan(0.1);
  });

  it('uniform draws below n are unbiased (no modulo bias) for n not a power of two', () => {
    const stream = new RandomStream(seededRandom(13));
    const counts = new Array<number>(3).fill(0);
    for (let i = 0; i < 30_000; i++) counts[stream.below(3)]! += 1;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(5 * Math.sqrt(30_000 * (1 / 3) * (2 / 3)));
    const big = 2n ** 70n + 12345n;
    for (let i = 0; i < 100; i++) expect(stream.belowBig(big) < big).toBe(true);
  });
});

/** The exact rational value of a finite double, from its exact binary expansion. */
function doubleToRational(x: number): { num: bigint; den: bigint } {
  const [intPart, fracPart = ''] = x.toString(2).split('.');
  return { num: BigInt(`0b${intPart}${fracPart}`), den: 1n << BigInt(fracPart.length) };
}

describe('fast exact paths (certified floating point with an exact fallback)', () => {
  it('acceptanceGamma is within its error bound of the exact rational gamma', () => {
    const stream = new RandomStream(seededRandom(21));
    for (const variance of [0.1, 2.7, 12_128_319.754626025, 1e8, 3.3e11]) {
      const r = rationalAtLeast(variance);
      const sigma2 = Number(r.num) / Number(r.den);
      const t = Math.floor(Math.sqrt(sigma2)) + 1;
      const centre = Math.round(sigma2 / t);
      const ys = [0, 1, Math.max(0, centre - 1), centre, centre + 1, t, 3 * t, 40 * (t + 1)];
      for (let i = 0; i < 200; i++) ys.push(stream.below(40 * (t + 1)));
      for (const absY of ys) {
        const { gamma, error } = acceptanceGamma(absY, sigma2, t);
        const root = BigInt(absY) * BigInt(t) * r.den - r.num;
        const exactNum = root * root;
        const exactDen = 2n * r.num * r.den * BigInt(t) * BigInt(t);
        const a = doubleToRational(gamma);
        const e = doubleToRational(error);
        // |exact - approx| <= error, cross-multiplied in integers.
        const diff = exactNum * a.den - a.num * exactDen;
        expect((diff < 0n ? -diff : diff) * e.den <= e.num * exactDen * a.den).toBe(true);
        expect(error).toBeLessThan(2 ** -20 * Math.max(1, gamma));
      }
    }
  });

  it('bernoulliExpNegApprox has frequency exp(-gamma) of the exact gamma even when the double is off within its error', () => {
    const stream = new RandomStream(seededRandom(22));
    // [exact num, exact den, approx, error]: wide errors force the exact fallback often; 1 ± 0.05 straddles an integer.
    for (const [num, den, approx, error] of [
      [3n, 10n, 0.3, 0.2],
      [3n, 10n, 0.45, 0.2],
      [5n, 2n, 2.45, 0.1],
      [1n, 1n, 1.02, 0.05],
      [7n, 1000n, 0.007, 1e-12],
    ] as const) {
      const n = 40_000;
      let hits = 0;
      for (let i = 0; i < n; i++) if (bernoulliExpNegApprox(stream, approx, error, () => ({ num, den }))) hits++;
      const p = Math.exp(-Number(num) / Number(den));
      expect(Math.abs(hits / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
    }
    expect(() => bernoulliExpNegApprox(stream, -1, 0, () => ({ num: 0n, den: 1n }))).toThrow(/approx/);
    expect(() => bernoulliExpNegApprox(stream, 1, 0.5, () => ({ num: 1n, den: 1n }))).toThrow(/error/);
  });

  it('RandomStream.bernoulli draws the remainder when the first word is the cell holding the threshold', () => {
    // Every other word is floor(2^32 / 3), the cell that contains 1/3: the first word cannot decide.
    const seeded = seededRandom(23);
    const cellFirst = (bytes: Uint8Array<ArrayBuffer>): Uint8Array => {
      seeded(bytes);
      const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
      for (let i = 0; i < words.length; i += 2) words[i] = Math.floor(2 ** 32 / 3);
      return bytes;
    };
    const stream = new RandomStream(cellFirst);
    const n = 30_000;
    let hits = 0;
    for (let i = 0; i < n; i++) if (stream.bernoulli(1, 3)) hits++;
    expect(Math.abs(hits / n - 1 / 3)).toBeLessThan(5 * Math.sqrt((1 / 3) * (2 / 3) / n));

    const plain = new RandomStream(seededRandom(24));
    for (let i = 0; i < 1000; i++) {
      expect(plain.bernoulli(0, 7)).toBe(false);
      expect(plain.bernoulli(7, 7)).toBe(true);
    }
    // Near 2^53 the threshold's double is inexact: still about one half.
    let half = 0;
    for (let i = 0; i < n; i++) if (plain.bernoulli(2 ** 52 + 1, 2 ** 53 - 1)) half++;
    expect(Math.abs(half / n - 0.5)).toBeLessThan(5 * Math.sqrt(0.25 / n));
    expect(() => plain.bernoulli(4, 3)).toThrow(RangeError);
  });

  for (const variance of [0.3, 2.7, 12_128_319.754626025]) {
    it(`matches the exact pmf at the non-integer variance ${variance} (certified acceptance path): chi-square`, () => {
      const r = rationalAtLeast(variance);
      const sigma2 = Number(r.num) / Number(r.den);
      const samples = sampleDiscreteGaussian(variance, 20_000, seededRandom(Math.round(variance * 10)));
      const { stat, df } = chiSquare(samples, sigma2, 20);
      expect(df).toBeGreaterThanOrEqual(2);
      expect(stat).toBeLessThan(chiSquareCritical(df));
    });
  }
});

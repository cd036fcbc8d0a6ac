import { describe, expect, it } from 'vitest';
import { clipToNorm, l2Norm } from '../../../shared/privacy/clip.ts';
import { buildPrivacyConfig } from '../../../shared/privacy/config.ts';
import { addCentralNoise, decodeAggregate, privatiseUpdate } from '../../../shared/privacy/mechanism.ts';
import { addModular, fromModular, sumModular, toModular } from '../../../shared/privacy/modular.ts';
import { nextPowerOfTwo, randomSigns, rotate, unrotate } from '../../../shared/privacy/rotation.ts';
import { conditionalRandomizedRound, randomizedRound, roundedNormBound } from '../../../shared/privacy/rounding.ts';
import { RandomStream } from '../../../shared/privacy/random.ts';
import { seededRandom } from './seeded-random.ts';

function gaussianVector(length: number, seed: number, scale = 1): Float32Array {
  const s = new RandomStream(seededRandom(seed));
  return Float32Array.from({ length }, () => scale * Math.sqrt(-2 * Math.log(1 - s.unitFloat())) * Math.cos(2 * Math.PI * s.unitFloat()));
}

describe('clipToNorm', () => {
  it('scales a long vector to the clip norm and returns the original norm, without touching the input', () => {
    const v = gaussianVector(1000, 1, 3);
    const before = Float32Array.from(v);
    const { clipped, norm } = clipToNorm(v, 2);
    expect(norm).toBeCloseTo(l2Norm(before), 10);
    expect(l2Norm(clipped)).toBeLessThanOrEqual(2);
    expect(l2Norm(clipped)).toBeGreaterThan(2 * (1 - 1e-6));
    expect(Array.from(v)).toEqual(Array.from(before));
    // Direction preserved.
    expect((clipped[5] as number) / (clipped[9] as number)).toBeCloseTo((v[5] as number) / (v[9] as number), 4);
  });
  it('returns a short vector unchanged and rejects a bad clip', () => {
    const v = Float32Array.from([0.3, -0.4]);
    const { clipped, norm } = clipToNorm(v, 1);
    expect(Array.from(clipped)).toEqual(Array.from(v));
    expect(norm).toBeCloseTo(0.5, 7);
    expect(() => clipToNorm(v, 0)).toThrow(/"clip"/);
    expect(() => clipToNorm(Float32Array.from([Number.NaN]), 1)).toThrow(/"values"/);
  });
});

describe('randomised rounding (Kairouz, Liu, Steinke 2021, Sec. 4.1)', () => {
  it('is unbiased and moves each coordinate by less than 1', () => {
    const x = Float64Array.from([0.25, -1.75, 3.5, 10]);
    const stream = new RandomStream(seededRandom(2));
    const n = 20_000;
    const sums = new Float64Array(4);
    for (let r = 0; r < n; r++) {
      const y = randomizedRound(x, stream);
      y.forEach((v, i) => {
        expect(Math.abs(v - (x[i] as number))).toBeLessThan(1);
        sums[i] = (sums[i] as number) + v;
      });
    }
    sums.forEach((s, i) => expect(Math.abs(s / n - (x[i] as number))).toBeLessThan(5 * Math.sqrt(0.25 / n) + 1e-12));
  });

  it('conditional rounding always meets the bound used as the sensitivity', () => {
    for (const beta of [0, Math.exp(-0.5), 1e-3]) {
      const d = 512;
      const c = 40;
      const bound = roundedNormBound(c, d, beta);
      expect(bound).toBeLessThanOrEqual(c + Math.sqrt(d));
      const stream = new RandomStream(seededRandom(3));
      for (let trial = 0; trial < 50; trial++) {
        const x = Float64Array.from(gaussianVector(d, 100 + trial));
        const scale = c / l2Norm(x);
        for (let i = 0; i < d; i++) x[i] = (x[i] as number) * scale;
        const y = conditionalRandomizedRound(x, bound, stream);
        expect(l2Norm(y)).toBeLessThanOrEqual(bound);
      }
    }
    expect(roundedNormBound(10, 100, 0)).toBe(20);
    expect(() => roundedNormBound(10, 100, 1)).toThrow(/"beta"/);
  });
});

describe('rotation and modular reduction', () => {
  it('the random Hadamard rotation preserves the norm and inverts exactly (up to float error)', () => {
    const x = gaussianVector(300, 4);
    const n = nextPowerOfTwo(300);
    expect(n).toBe(512);
    const signs = randomSigns(n, seededRandom(5));
    const y = rotate(x, signs);
    expect(l2Norm(y)).toBeCloseTo(l2Norm(x), 9);
    const back = unrotate(y, signs, 300);
    back.forEach((v, i) => expect(v).toBeCloseTo(x[i] as number, 9));
    // A spike is spread flat: every coordinate has magnitude 1/sqrt(n).
    const spike = new Float64Array(n);
    spike[7] = 1;
    for (const v of rotate(spike, signs)) expect(Math.abs(v)).toBeCloseTo(1 / Math.sqrt(n), 12);
  });

  it('mod 2^32 round trip returns the centred integers, and sums wrap consistently', () => {
    const ints = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 123456789, -987654321];
    const residues = toModular(ints);
    expect(residues[2]).toBe(2 ** 32 - 1);
    expect(Array.from(fromModular(residues))).toEqual(ints);
    expect(Array.from(fromModular(toModular([2 ** 32 + 5, -(2 ** 32) - 5])))).toEqual([5, -5]);
    const a = [2 ** 31 - 10, -5, 7];
    const b = [20, -(2 ** 31), -9];
    const sum = addModular(toModular(a), toModular(b));
    // The true sums that fit in [-2^31, 2^31) come back exactly; an overflow wraps.
    expect(Array.from(fromModular(sum)).slice(2)).toEqual([-2]);
    expect(Array.from(fromModular(sumModular([toModular([1, -3]), toModular([-4, 10]), toModular([2, 2])], 2)))).toEqual([-1, 9]);
    expect(() => toModular([0.5])).toThrow(/values\[0\]/);
  });
});

describe('end to end: the noise in an aggregated sum', () => {
  const base = { clip: 1, noiseMultiplier: 1.3, delta: 1e-6, population: 10_000, dimension: 8192, granularity: 1 / 64, rotation: false } as const;

  it('t clients noising zero updates (distributed) give a sum whose variance is (z·Δ₂)²', () => {
    const t = 5;
    const config = buildPrivacyConfig({ ...base, mode: 'distributed', minSurvivors: t });
    expect(config.clientNoiseVariance).toBeCloseTo((config.noiseMultiplier * config.l2Sensitivity) ** 2 / t, 6);
    const zero = new Float32Array(config.dimension);
    const shares = Array.from({ length: t }, (_, i) => privatiseUpdate(zero, config, null, seededRandom(50 + i)));
    const ints = fromModular(sumModular(shares, config.paddedDimension));
    let m = 0;
    let m2 = 0;
    for (const v of ints) {
      m += v;
      m2 += v * v;
    }
    const n = ints.length;
    const variance = m2 / n - (m / n) ** 2;
    const expected = (config.noiseMultiplier * config.l2Sensitivity) ** 2;
    expect(Math.abs(variance / expected - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(Math.abs(m / n)).toBeLessThan(5 * Math.sqrt(expected / n));
    // In update units the noise std is z·Δ₂·γ, about z·C.
    const decoded = decodeAggregate(sumModular(shares, config.paddedDimension), config, null);
    const std = Math.sqrt(decoded.reduce((s, v) => s + v * v, 0) / decoded.length);
    expect(std / (config.noiseMultiplier * config.clip)).toBeGreaterThan(0.9);
    expect(std / (config.noiseMultiplier * config.clip)).toBeLessThan(1.3);
  });

  it('central noise is added by the server only, and local noise fully by each client', () => {
    const central = buildPrivacyConfig({ ...base, mode: 'central', allowCentral: true, minSurvivors: 3 });
    const zero = new Float32Array(central.dimension);
    const clean = privatiseUpdate(zero, central, null, seededRandom(60));
    expect(clean.every((v) => v === 0)).toBe(true);
    const noisy = fromModular(addCentralNoise(clean, central, seededRandom(61)));
    const variance = noisy.reduce((s, v) => s + v * v, 0) / noisy.length;
    expect(Math.abs(variance / central.serverNoiseVariance - 1)).toBeLessThan(5 * Math.sqrt(2 / noisy.length));
    const local = buildPrivacyConfig({ ...base, mode: 'local', minSurvivors: 3 });
    const one = fromModular(privatiseUpdate(zero, local, null, seededRandom(62)));
    const localVariance = one.reduce((s, v) => s + v * v, 0) / one.length;
    expect(Math.abs(localVariance / (local.noiseMultiplier * local.l2Sensitivity) ** 2 - 1)).toBeLessThan(5 * Math.sqrt(2 / one.length));
  });

  it('decodes the sum of real updates (rotation on) to the sum of the clipped updates, up to the noise', () => {
    const config = buildPrivacyConfig({ clip: 1, noiseMultiplier: 0.05, delta: 1e-6, population: 1000, dimension: 1000, minSurvivors: 4 });
    expect(config.paddedDimension).toBe(1024);
    const signs = randomSigns(config.paddedDimension, seededRandom(70));
    const updates = Array.from({ length: 4 }, (_, i) => gaussianVector(config.dimension, 80 + i, 0.02));
    const residues = updates.map((u, i) => privatiseUpdate(u, config, signs, seededRandom(90 + i)));
    const decoded = decodeAggregate(sumModular(residues, config.paddedDimension), config, signs);
    const expected = new Float64Array(config.dimension);
    for (const u of updates) {
      const { clipped } = clipToNorm(u, config.clip);
      clipped.forEach((v, i) => (expected[i] = (expected[i] as number) + v));
    }
    const error = l2Norm(Float64Array.from(decoded, (v, i) => v - (expected[i] as number)));
    // The error is the summed noise: norm ≈ z·Δ₂·γ·sqrt(d) (rounding adds only ~γ·sqrt(n·d)/2, negligible at this γ).
    const noiseNorm = config.noiseMultiplier * config.l2Sensitivity * config.granularity * Math.sqrt(config.dimension);
    expect(error / noiseNorm).toBeGreaterThan(0.9);
    expect(error / noiseNorm).toBeLessThan(1.1);
    expect(l2Norm(expected)).toBeGreaterThan(1);
    expect(() => privatiseUpdate(updates[0] as Float32Array, config, null, seededRandom(1))).toThrow(/"signs"/);
  });
});

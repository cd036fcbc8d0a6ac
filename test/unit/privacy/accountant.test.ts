import { describe, expect, it } from 'vitest';
import vectors from '../../vectors/privacy/rdp-epsilon.json' with { type: 'json' };
import { calibrateNoiseMultiplier } from '../../../shared/privacy/calibrate.ts';
import { buildPrivacyConfig, roundsEpsilon, roundsRdp, type PrivacyConfigInput } from '../../../shared/privacy/config.ts';
import { distributedEpsilon, distributedSlack } from '../../../shared/privacy/distributed.ts';
import { DEFAULT_RDP_ORDERS, computeEpsilon, epsilonFromRdp, rdpSubsampledGaussianAt } from '../../../shared/privacy/rdp.ts';

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

describe('RDP accountant of the Poisson-subsampled Gaussian (Mironov, Talwar, Zhang 2019)', () => {
  it('uses dp_accounting’s order list', () => {
    expect(DEFAULT_RDP_ORDERS.length).toBe(99 + 53 + 4);
    expect(DEFAULT_RDP_ORDERS.slice(0, 3)).toEqual([1.1, 1.2, 1.3]);
    expect(DEFAULT_RDP_ORDERS).toContain(8.1);
    expect(DEFAULT_RDP_ORDERS.slice(98, 101)).toEqual([10.9, 11, 12]);
    expect(DEFAULT_RDP_ORDERS.slice(-5)).toEqual([63, 128, 256, 512, 1024]);
  });

  it('matches dp_accounting’s published values within 1e-6 relative', () => {
    const a = computeEpsilon({ q: 0.01, noiseMultiplier: 1.0, steps: 1000, delta: 1e-5 });
    expect(rel(a.epsilon, 2.101366525420273)).toBeLessThan(1e-6);
    const b = computeEpsilon({ q: 256 / 60000, noiseMultiplier: 1.1, steps: 14063, delta: 1e-5 });
    expect(rel(b.epsilon, 2.596655529521983)).toBeLessThan(1e-6);
    expect(b.order).toBe(8.1);
  });

  for (const c of vectors.cases) {
    it(`vector q=${c.q} z=${c.noiseMultiplier} T=${c.steps} δ=${c.delta}: equals the reference, never below the 60-digit value`, () => {
      const r = computeEpsilon(c);
      expect(rel(r.epsilon, c.reference.epsilon)).toBeLessThan(1e-9);
      expect(r.order).toBe(c.reference.order);
      expect(r.epsilon).toBeGreaterThanOrEqual(c.mpmath.epsilon * (1 - 1e-9));
    });
  }

  it('q = 1 is the plain Gaussian: RDP α/(2z²) at every order', () => {
    for (const a of [1.5, 2, 8.1, 1024]) expect(rdpSubsampledGaussianAt(1, 2, a)).toBeCloseTo(a / 8, 12);
    expect(rdpSubsampledGaussianAt(0, 2, 3)).toBe(0);
  });

  it('is monotone: non-decreasing in steps and q, non-increasing in z', () => {
    const base = { q: 0.02, noiseMultiplier: 1.2, steps: 200, delta: 1e-6 };
    let prev = 0;
    for (const steps of [1, 10, 100, 1000, 10_000]) {
      const e = computeEpsilon({ ...base, steps }).epsilon;
      expect(e).toBeGreaterThanOrEqual(prev);
      prev = e;
    }
    prev = 0;
    for (const q of [0.001, 0.01, 0.05, 0.2, 0.6, 1]) {
      const e = computeEpsilon({ ...base, q }).epsilon;
      expect(e).toBeGreaterThan(prev);
      prev = e;
    }
    prev = Infinity;
    for (const z of [0.5, 0.8, 1, 2, 5, 20]) {
      const e = computeEpsilon({ ...base, noiseMultiplier: z }).epsilon;
      expect(e).toBeLessThan(prev);
      prev = e;
    }
  });

  it('converts with Canonne, Kamath, Steinke 2020 Prop. 12 and validates its input', () => {
    const orders = [2, 4];
    const rdp = [0.5, 1];
    const expected = Math.min(0.5 + Math.log1p(-1 / 2) - Math.log(1e-5 * 2), 1 + Math.log1p(-1 / 4) - Math.log(1e-5 * 4) / 3);
    expect(epsilonFromRdp(orders, rdp, 1e-5).epsilon).toBeCloseTo(expected, 12);
    expect(epsilonFromRdp(orders, [0, 0], 0)).toEqual({ epsilon: 0, order: 0 });
    expect(() => epsilonFromRdp(orders, [1], 1e-5)).toThrow(/"rdp"/);
    expect(() => computeEpsilon({ q: 1.5, noiseMultiplier: 1, steps: 1, delta: 1e-5 })).toThrow(/"q"/);
    expect(() => computeEpsilon({ q: 0.5, noiseMultiplier: 1, steps: 1.5, delta: 1e-5 })).toThrow(/"steps"/);
  });
});

describe('calibration', () => {
  it('finds the smallest z reaching a target epsilon', () => {
    const target = 2.101366525420273;
    const r = calibrateNoiseMultiplier({ epsilon: target, delta: 1e-5, q: 0.01, steps: 1000 });
    expect(r.epsilon).toBeLessThanOrEqual(target);
    expect(Math.abs(r.noiseMultiplier - 1)).toBeLessThan(1e-6);
    expect(computeEpsilon({ q: 0.01, noiseMultiplier: r.noiseMultiplier * (1 - 1e-6), steps: 1000, delta: 1e-5 }).epsilon).toBeGreaterThan(target);
    const small = calibrateNoiseMultiplier({ epsilon: 50, delta: 1e-5, q: 1, steps: 1 });
    expect(small.noiseMultiplier).toBeLessThan(1);
    expect(small.epsilon).toBeLessThanOrEqual(50);
  });
});

describe('distributed discrete Gaussian accounting (Kairouz, Liu, Steinke 2021)', () => {
  it('the slack τ vanishes for wide shares and is positive for narrow ones', () => {
    expect(distributedSlack(4, 1)).toBe(0);
    expect(distributedSlack(0.25, 10)).toBeGreaterThan(0.01);
    expect(distributedSlack(25, 100)).toBeLessThan(1e-100);
    expect(distributedSlack(0.25, 10)).toBeCloseTo(10 * Array.from({ length: 9 }, (_, i) => Math.exp(-2 * Math.PI ** 2 * 0.25 * ((i + 1) / (i + 2)))).reduce((a, b) => a + b, 0), 12);
  });

  it('is never below the continuous Gaussian at the same z, and equals it when τ = 0 (q = 1)', () => {
    const z = 1.1;
    const gauss = computeEpsilon({ q: 1, noiseMultiplier: z, steps: 100, delta: 1e-6 }).epsilon;
    const wide = distributedEpsilon({ l2Sensitivity: 100, localVariance: (z * 100) ** 2 / 10, shares: 10, dimension: 1 << 16, q: 1, steps: 100, delta: 1e-6 });
    expect(rel(wide.epsilon, gauss)).toBeLessThan(1e-9);
    const narrow = distributedEpsilon({ l2Sensitivity: 2, localVariance: (z * 2) ** 2 / 40, shares: 40, dimension: 1 << 10, q: 1, steps: 100, delta: 1e-6 });
    expect(narrow.epsilon).toBeGreaterThan(gauss * 1.01);
  });

  it('with subsampling (Zhu & Wang 2019) it is at least the subsampled Gaussian and at most the unsampled bound', () => {
    const input = { l2Sensitivity: 50, localVariance: (1.0 * 50) ** 2 / 8, shares: 8, dimension: 4096, steps: 1000, delta: 1e-5 };
    const sampled = distributedEpsilon({ ...input, q: 0.01 }).epsilon;
    const full = distributedEpsilon({ ...input, q: 1 }).epsilon;
    const gauss = computeEpsilon({ q: 0.01, noiseMultiplier: 1.0, steps: 1000, delta: 1e-5 }).epsilon;
    expect(sampled).toBeGreaterThanOrEqual(gauss);
    expect(sampled).toBeLessThan(full);
    expect(sampled).toBeLessThan(gauss * 1.5);
  });

  it('a config is accounted with t survivors, q = 1 without verified Poisson sampling, and more rounds never cost less', () => {
    const input: PrivacyConfigInput = { clip: 1, noiseMultiplier: 1, minSurvivors: 10, delta: 1e-6, population: 100_000, dimension: 5000, samplingRate: 0.01 };
    const unverified = buildPrivacyConfig(input);
    expect(unverified.accountingSamplingRate).toBe(1);
    const verified = buildPrivacyConfig({ ...input, poissonSampling: true });
    expect(verified.accountingSamplingRate).toBe(0.01);
    expect(roundsEpsilon(verified, 100).epsilon).toBeLessThan(roundsEpsilon(unverified, 100).epsilon);
    const gauss = computeEpsilon({ q: 1, noiseMultiplier: 1, steps: 100, delta: 1e-6 }).epsilon;
    expect(roundsEpsilon(unverified, 100).epsilon).toBeGreaterThanOrEqual(gauss);
    let prev = 0;
    for (const rounds of [1, 5, 50, 500]) {
      const e = roundsEpsilon(verified, rounds).epsilon;
      expect(e).toBeGreaterThanOrEqual(prev);
      prev = e;
    }
    const none = buildPrivacyConfig({ ...input, mode: 'none', allowNone: true });
    expect(roundsEpsilon(none, 1).epsilon).toBe(Infinity);
    expect(roundsRdp(none, 1).every((v) => v === Infinity)).toBe(true);
  });
});

describe('privacy config validation', () => {
  const ok: PrivacyConfigInput = { clip: 1, noiseMultiplier: 1, minSurvivors: 5, delta: 1e-6, population: 1000, dimension: 100 };
  const cases: [string, Partial<Record<keyof PrivacyConfigInput, unknown>>][] = [
    ['clip', { clip: 0 }],
    ['clip', { clip: -1 }],
    ['noiseMultiplier', { noiseMultiplier: 0 }],
    ['minSurvivors', { minSurvivors: 0 }],
    ['minSurvivors', { minSurvivors: 2.5 }],
    ['delta', { delta: 1e-3 }],
    ['delta', { delta: 0 }],
    ['population', { population: 0 }],
    ['dimension', { dimension: 0 }],
    ['samplingRate', { samplingRate: 0 }],
    ['samplingRate', { samplingRate: 1.5 }],
    ['roundingBeta', { roundingBeta: 1 }],
    ['granularity', { granularity: -1 }],
    ['expectedClients', { expectedClients: 2 }],
    ['mode', { mode: 'secret' }],
    ['mode', { mode: 'central' }],
    ['mode', { mode: 'none' }],
  ];
  for (const [field, patch] of cases) {
    it(`rejects ${JSON.stringify(patch)} naming "${field}"`, () => {
      expect(() => buildPrivacyConfig({ ...ok, ...patch } as PrivacyConfigInput)).toThrow(new RegExp(`"${field}"`));
      expect(() => buildPrivacyConfig({ ...ok, ...patch } as PrivacyConfigInput)).toThrow(RangeError);
    });
  }
  it('rejects a wrong type with a TypeError naming the field', () => {
    expect(() => buildPrivacyConfig({ ...ok, clip: '1' } as unknown as PrivacyConfigInput)).toThrow(TypeError);
    expect(() => buildPrivacyConfig({ ...ok, clip: '1' } as unknown as PrivacyConfigInput)).toThrow(/"clip"/);
  });
  it('sizes each mode’s noise on the grid', () => {
    const d = buildPrivacyConfig(ok);
    expect(d.mode).toBe('distributed');
    expect(d.clientNoiseVariance * d.minSurvivors).toBeCloseTo((d.noiseMultiplier * d.l2Sensitivity) ** 2, 6);
    expect(d.serverNoiseVariance).toBe(0);
    expect(d.l2Sensitivity).toBeGreaterThanOrEqual(d.scaledClip);
    const l = buildPrivacyConfig({ ...ok, mode: 'local' });
    expect(l.clientNoiseVariance).toBeCloseTo((l.noiseMultiplier * l.l2Sensitivity) ** 2, 6);
    const c = buildPrivacyConfig({ ...ok, mode: 'central', allowCentral: true });
    expect(c.clientNoiseVariance).toBe(0);
    expect(c.serverNoiseVariance).toBeCloseTo((c.noiseMultiplier * c.l2Sensitivity) ** 2, 6);
    const n = buildPrivacyConfig({ ...ok, mode: 'none', allowNone: true, noiseMultiplier: 0 });
    expect(n.differentiallyPrivate).toBe(false);
    expect(n.clientNoiseVariance + n.serverNoiseVariance).toBe(0);
  });
});

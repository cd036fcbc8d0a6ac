/**
 * Launch ranges (issue 17): every number of a launch outside its range is refused with
 * INVALID_ARGUMENT naming the field, and every launch inside them, at each corner of the ranges
 * in every DP mode, is either refused the same way by a cross-field check or yields a privacy
 * config with real noise and a finite projected spend. A round stored before the ranges existed
 * (noise multiplier 1e-300) projects as an infinite spend, so later launches are refused with
 * BUDGET_EXCEEDED instead of an internal error.
 */
import { describe, expect, it } from 'vitest';
import { checkLaunchBudget, projectedRoundRdp } from '../../../server/ledger/budget.ts';
import { PrivacyLedger } from '../../../server/ledger/ledger.ts';
import { MemoryLedgerStore } from '../../../server/ledger/memory.ts';
import { EpsilonProjections } from '../../../server/rounds/projection.ts';
import { MemoryRoundStore } from '../../../server/storage/memory.ts';
import { buildPrivacyConfig } from '../../../shared/privacy/config.ts';
import { DEFAULT_RDP_ORDERS } from '../../../shared/privacy/rdp.ts';
import { ProtocolError } from '../../../shared/protocol/errors.ts';
import { DEFAULT_MAX_UPDATE_NORM, LAUNCH_LIMITS, parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import type { RoundSpec } from '../../../shared/protocol/messages.ts';
import { checkRoundPrivacy } from '../../../shared/protocol/privacy.ts';
import { checkRoundSecAgg } from '../../../shared/secagg/round-config.ts';
import { fixedClock, seededKey } from '../ledger/fixtures.ts';

const POLICY = { allowCentral: true, allowNone: true };
/** The test model's parameter count (synthetic:60) and a small one. */
const DIMENSIONS = [12_623, 100];

/** The coordinator's launch checks in the order server/http.ts runs them; returns the config or the refusal. */
function admit(body: unknown, dimension = DIMENSIONS[0] as number): { spec: RoundSpec } | ProtocolError {
  try {
    const { spec } = parseLaunchRequest(body);
    const dp = spec.privacy ? checkRoundPrivacy(spec.privacy, dimension, spec.clientsPerRound, POLICY) : null;
    if (spec.secagg) checkRoundSecAgg(spec.secagg, spec.clientsPerRound, dp);
    return { spec };
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    throw err;
  }
}

describe('launch ranges', () => {
  const base = { clientsPerRound: 10, secagg: 'off' } as const;
  const local = (privacy: Record<string, unknown>) => ({ ...base, privacy: { mode: 'local', ...privacy } });

  it.each([
    ['privacy.noiseMultiplier', local({ noiseMultiplier: 1e-300 })],
    ['privacy.noiseMultiplier', local({ noiseMultiplier: 1e-20 })],
    ['privacy.noiseMultiplier', local({ noiseMultiplier: 0.05 })],
    ['privacy.noiseMultiplier', local({ noiseMultiplier: 0 })],
    ['privacy.noiseMultiplier', local({ noiseMultiplier: 2e4 })],
    ['privacy.noiseMultiplier', { ...base, privacy: { mode: 'central', noiseMultiplier: 1e-300 } }],
    ['privacy.clip', local({ clip: 1e-300 })],
    ['privacy.clip', local({ clip: 2e6 })],
    ['privacy.delta', local({ delta: 1e-300 })],
    ['privacy.delta', local({ delta: 1e-5 })],
    ['privacy.population', local({ population: 5 })],
    ['samplingRate', { ...local({}), selection: 'poisson', samplingRate: 1e-300 }],
    ['samplingRate', { ...local({}), selection: 'poisson', samplingRate: 1.5 }],
    ['aggregation.tau', { ...local({}), aggregation: { serverOptimizer: 'fedadam', tau: 1e-300 } }],
    ['aggregation.maxUpdateNorm', { ...base, privacy: { mode: 'none' }, aggregation: { maxUpdateNorm: 0 } }],
    ['aggregation.maxUpdateNorm', { ...base, privacy: { mode: 'none' }, aggregation: { maxUpdateNorm: 1e300 } }],
    ['deadlines.checkinMs', { ...local({}), deadlines: { checkinMs: 1 } }],
    ['deadlines.trainingMs', { ...local({}), deadlines: { trainingMs: 1e12 } }],
    ['clientsPerRound', { ...local({}), clientsPerRound: 1e9 }],
    ['epsilonCap', { ...local({}), epsilonCap: -1 }],
  ])('refuses %s out of range with INVALID_ARGUMENT naming it', (field, body) => {
    const refusal = admit(body);
    expect(refusal).toBeInstanceOf(ProtocolError);
    expect((refusal as ProtocolError).code).toBe('INVALID_ARGUMENT');
    expect((refusal as ProtocolError).message).toContain(`"${field}"`);
  });

  it('refuses values no JSON body can carry but a script can pass (NaN, Infinity)', () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY]) {
      for (const body of [local({ noiseMultiplier: value }), local({ clip: value }), { ...local({}), epsilonCap: value }]) {
        expect((admit(body) as ProtocolError).code).toBe('INVALID_ARGUMENT');
      }
    }
  });

  it('fills the plaintext update bound of a round without DP', () => {
    const none = admit({ ...base, privacy: { mode: 'none' } }) as { spec: RoundSpec };
    expect(none.spec.aggregation.maxUpdateNorm).toBe(DEFAULT_MAX_UPDATE_NORM);
    const set = admit({ ...base, privacy: { mode: 'none' }, aggregation: { maxUpdateNorm: 5 } }) as { spec: RoundSpec };
    expect(set.spec.aggregation.maxUpdateNorm).toBe(5);
  });

  it('at every corner of the ranges, in every DP mode, admits only configs with real noise and a finite projected spend', () => {
    const corners = {
      clip: [LAUNCH_LIMITS.clip.min, LAUNCH_LIMITS.clip.max],
      noiseMultiplier: [LAUNCH_LIMITS.noiseMultiplier.min, LAUNCH_LIMITS.noiseMultiplier.max],
      delta: [LAUNCH_LIMITS.delta.min, 0.99e-5],
      samplingRate: [undefined, LAUNCH_LIMITS.samplingRate.min, LAUNCH_LIMITS.samplingRate.max],
      clientsPerRound: [1, 3, 100_000],
    };
    let admitted = 0;
    let refused = 0;
    for (const dimension of DIMENSIONS)
      for (const mode of ['distributed', 'local', 'central'] as const)
        for (const clip of corners.clip)
          for (const noiseMultiplier of corners.noiseMultiplier)
            for (const delta of corners.delta)
              for (const samplingRate of corners.samplingRate)
                for (const clientsPerRound of corners.clientsPerRound) {
                  const body = {
                    clientsPerRound,
                    ...(samplingRate === undefined ? {} : { selection: 'poisson', samplingRate }),
                    privacy: { mode, clip, noiseMultiplier, delta, population: 100_000 },
                    ...(mode === 'distributed' ? {} : { secagg: 'off' }),
                  };
                  const result = admit(body, dimension);
                  const what = JSON.stringify({ dimension, ...body });
                  if (result instanceof ProtocolError) {
                    expect(result.code, `${what}: ${result.message}`).toBe('INVALID_ARGUMENT');
                    refused++;
                    continue;
                  }
                  admitted++;
                  const rdp = projectedRoundRdp(result.spec, dimension, DEFAULT_RDP_ORDERS) as Float64Array;
                  expect(rdp.every((v) => Number.isFinite(v) && v >= 0), what).toBe(true);
                }
    // Most corners are sane launches; the refusals are cross-field (SecAgg+ below 3 clients, a sum that could wrap 32 bits).
    expect(admitted).toBeGreaterThan(refused);
  });

  it('refuses a DP config whose noise variance underflows to 0, naming the noise multiplier', () => {
    expect(() => buildPrivacyConfig({ mode: 'local', clip: 1, noiseMultiplier: 1e-300, minSurvivors: 2, delta: 1e-6, population: 1000, dimension: 100 })).toThrow(/"noiseMultiplier" 1e-300 gives a grid noise variance of 0/);
    expect(() => buildPrivacyConfig({ mode: 'central', clip: 1, noiseMultiplier: 1e-300, minSurvivors: 2, delta: 1e-6, population: 1000, dimension: 100, allowCentral: true })).toThrow(/"noiseMultiplier"/);
    // A tiny but representable one is still a config (simulations use it to isolate rounding).
    expect(buildPrivacyConfig({ mode: 'distributed', clip: 100, noiseMultiplier: 1e-7, minSurvivors: 5, delta: 1e-6, population: 1000, dimension: 100 }).clientNoiseVariance).toBeGreaterThan(0);
  });
});

describe('a round stored before the ranges existed', () => {
  const legacy = (): RoundSpec => {
    const { spec } = parseLaunchRequest({ clientsPerRound: 10, secagg: 'off', privacy: { mode: 'local' } });
    return { ...spec, privacy: { ...(spec.privacy as NonNullable<RoundSpec['privacy']>), noiseMultiplier: 1e-300 } };
  };

  it('projects as an infinite spend, so capped launches are refused with BUDGET_EXCEEDED, not an internal error', async () => {
    const spec = legacy();
    const rdp = projectedRoundRdp(spec, 100, DEFAULT_RDP_ORDERS) as Float64Array;
    expect([...rdp].every((v) => v === Infinity)).toBe(true);
    expect(new EpsilonProjections(() => 100).of({ ...(await new MemoryRoundStore().createRounds([spec], 't'))[0]!, privacy: undefined })).toBe(Infinity);

    const rounds = new MemoryRoundStore();
    await rounds.createRounds([spec], 't');
    const ledger = await PrivacyLedger.open({ store: new MemoryLedgerStore(), key: seededKey(1), software: 'portrait/test', clock: fixedClock(), cap: null });
    const { spec: capped } = parseLaunchRequest({ clientsPerRound: 10, secagg: 'off', privacy: { mode: 'local' }, epsilonCap: 50 });
    const err = await checkLaunchBudget(ledger, rounds, capped, 1, 100).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe('BUDGET_EXCEEDED');
    expect((err as ProtocolError).message).toMatch(/after 1 pending would bring cumulative epsilon to Infinity/);
    // Without that round the same launch fits.
    expect(await checkLaunchBudget(ledger, new MemoryRoundStore(), capped, 1, 100)).toHaveLength(1);
  });
});

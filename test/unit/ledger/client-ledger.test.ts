/**
 * The device's own privacy ledger: it accounts every joined round at q = 1 whatever rate the
 * coordinator claims, refuses a round that would pass its cap (and any round without DP), keeps
 * its state through the text storage seam, and validates its cap naming the field.
 */
import { describe, expect, it } from 'vitest';
import { checkEpsilonCap, ClientPrivacyLedger, MemoryClientLedgerStorage, textLedgerStorage } from '../../../client/core/privacy-ledger.ts';
import { buildPrivacyConfig } from '../../../shared/privacy/config.ts';
import type { PrivacyConfig } from '../../../shared/privacy/config.ts';
import { distributedEpsilon } from '../../../shared/privacy/distributed.ts';
import { roundsEpsilon } from '../../../shared/privacy/config.ts';

function config(samplingRate?: number): PrivacyConfig {
  return buildPrivacyConfig({ mode: 'distributed', clip: 1, noiseMultiplier: 1, minSurvivors: 5, delta: 1e-5, population: 1000, dimension: 100, expectedClients: 10, ...(samplingRate ? { samplingRate, poissonSampling: true } : {}) });
}

const CAP = { epsilon: 10, delta: 1e-5 };

describe('ClientPrivacyLedger', () => {
  it('accounts a joined round with the accountant at q = 1, whatever q the coordinator claims', async () => {
    const ledger = await ClientPrivacyLedger.open(new MemoryClientLedgerStorage(), CAP);
    expect(ledger.spent).toBe(0);
    const c = config(0.01);
    const atQ1 = distributedEpsilon({ l2Sensitivity: c.l2Sensitivity, localVariance: c.clientNoiseVariance, shares: c.noiseShares, dimension: c.paddedDimension, q: 1, steps: 1, delta: 1e-5 }).epsilon;
    expect(ledger.projected(c)).toBeCloseTo(atQ1, 12);
    expect(ledger.projected(c)).toBeGreaterThan(roundsEpsilon(c, 1).epsilon);
    await ledger.record(7, c);
    expect(ledger.spent).toBeCloseTo(atQ1, 12);
    expect(ledger.rounds[0]).toMatchObject({ roundId: 7, mode: 'distributed', noiseMultiplier: 1, claimedQ: 0.01, t: 5, delta: 1e-5 });
    // A round id seen again (a coordinator restarted on a fresh data directory numbers from 1
    // again) is counted again: the device never under-counts on the coordinator's word.
    await ledger.record(7, c);
    expect(ledger.rounds).toHaveLength(2);
    expect(ledger.spent as number).toBeGreaterThan(atQ1 * 1.2);
  });

  it('refuses the round that would pass its cap, naming the projected epsilon', async () => {
    const one = (await ClientPrivacyLedger.open(new MemoryClientLedgerStorage(), CAP)).projected(config()) as number;
    const probe = await ClientPrivacyLedger.open(new MemoryClientLedgerStorage(), { epsilon: 1e9, delta: 1e-5 });
    await probe.record(1, config());
    const two = probe.projected(config()) as number;
    const ledger = await ClientPrivacyLedger.open(new MemoryClientLedgerStorage(), { epsilon: (one + two) / 2, delta: 1e-5 });
    expect(ledger.refusal(config())).toBeNull();
    await ledger.record(1, config());
    expect(ledger.refusal(config())).toBe(`joining would bring this device's epsilon to ${two.toFixed(4)} at delta 0.00001, above its own cap of ${(one + two) / 2}`);
    expect(ledger.refusal(null)).toMatch(/unbounded/);
  });

  it('keeps its state through a text store and reopens with the same spend', async () => {
    let text: string | null = null;
    const storage = textLedgerStorage(async () => text, async (t) => void (text = t));
    const first = await ClientPrivacyLedger.open(storage, CAP);
    await first.record(1, config());
    await first.record(2, config());
    expect(JSON.parse(text as unknown as string)).toMatchObject({ version: 1, rounds: [{ roundId: 1 }, { roundId: 2 }] });
    const again = await ClientPrivacyLedger.open(storage, CAP);
    expect(again.spent).toBe(first.spent);
  });

  it('validates its cap naming the field', () => {
    expect(() => checkEpsilonCap({ epsilon: 0, delta: 1e-5 })).toThrow(new RangeError('"epsilonCap.epsilon" expected a finite number > 0, got 0'));
    expect(() => checkEpsilonCap({ epsilon: 1, delta: 1 })).toThrow(/"epsilonCap.delta" expected a number in \(0, 1\), got 1/);
    expect(() => checkEpsilonCap(null as unknown as { epsilon: number; delta: number })).toThrow(TypeError);
  });
});

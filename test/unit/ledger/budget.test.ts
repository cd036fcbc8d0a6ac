/**
 * The deployment budget: a release that would take the cumulative epsilon past the cap is
 * refused before anything is written, naming the projected epsilon; a launch is refused up
 * front with its projection (pending rounds included); a launch without DP is unbounded. A
 * launch's own cap (`epsilonCap`, at its rounds' delta) is enforced the same way, alone or under
 * a deployment cap, and each refusal names the cap it passes.
 */
import { describe, expect, it } from 'vitest';
import { parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import { BudgetExceededError, PrivacyLedger } from '../../../server/ledger/ledger.ts';
import { checkLaunchBudget, launchWithinBudget, projectedRoundRdp } from '../../../server/ledger/budget.ts';
import { MemoryLedgerStore } from '../../../server/ledger/memory.ts';
import { MemoryRoundStore } from '../../../server/storage/memory.ts';
import { fixedClock, roundSpend, seededKey } from './fixtures.ts';

async function cappedLedger(epsilon: number | null): Promise<PrivacyLedger> {
  return PrivacyLedger.open({ store: new MemoryLedgerStore(), key: seededKey(1), software: 'portrait/test', clock: fixedClock(), cap: epsilon === null ? null : { epsilon, delta: 1e-5 } });
}

const DIMENSION = 100;

/** A DP launch spec and a ledger whose cap lies halfway between `fits` and `fits + 1` rounds of it. */
async function launchFixture(fits: number) {
  const { spec } = parseLaunchRequest({ rounds: 1, clientsPerRound: 10, minClients: 5, privacy: { mode: 'distributed', noiseMultiplier: 1, clip: 1, delta: 1e-5, population: 1000 } });
  const rdp = projectedRoundRdp(spec, DIMENSION, (await cappedLedger(1)).orders) as Float64Array;
  const probe = await cappedLedger(1e9);
  const epsilonOf = (rounds: number) => probe.epsilon(1e-5, rdp.map((v) => rounds * v)) as number;
  return { spec, epsilonOf, ledger: await cappedLedger((epsilonOf(fits) + epsilonOf(fits + 1)) / 2) };
}

describe('deployment budget', () => {
  it('refuses a release past the cap, with the projected epsilon, writing nothing', async () => {
    const probe = await cappedLedger(1e9);
    const once = (await probe.recordRound(roundSpend({ roundId: 1 }))).round.epsilonCumulative as number;
    const twice = (await probe.recordRound(roundSpend({ roundId: 2 }))).round.epsilonCumulative as number;
    expect(twice).toBeGreaterThan(once);
    const ledger = await cappedLedger((once + twice) / 2);
    await ledger.recordRound(roundSpend({ roundId: 1 }));
    const err = await ledger.recordRound(roundSpend({ roundId: 2 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BudgetExceededError);
    expect((err as BudgetExceededError).projected).toBeCloseTo(twice, 12);
    expect((err as Error).message).toContain(`cumulative epsilon to ${twice.toFixed(4)} at delta 0.00001, above the deployment cap`);
    expect(ledger.entries).toBe(2);
    // An aborted round spends nothing, so it is still entered.
    await ledger.recordRound(roundSpend({ roundId: 2, outcome: 'aborted' }));
    expect(ledger.entries).toBe(3);
  });

  it('refuses a launch whose projection exceeds the cap, pending rounds included', async () => {
    // The cap lies between one and two rounds.
    const { spec, epsilonOf, ledger } = await launchFixture(1);
    const perRound = epsilonOf(1);
    const threeRounds = epsilonOf(3);
    const rounds = new MemoryRoundStore();
    // One round fits.
    const [ok, ...more] = await checkLaunchBudget(ledger, rounds, spec, 1, DIMENSION);
    expect(more).toEqual([]);
    expect(ok).toMatchObject({ kind: 'deployment', spent: 0, cap: ledger.cap });
    expect(ok!.projected).toBeCloseTo(perRound, 12);
    // Three do not: the error carries the projected epsilon.
    await expect(checkLaunchBudget(ledger, rounds, spec, 3, DIMENSION)).rejects.toThrow(`would bring cumulative epsilon to ${threeRounds.toFixed(4)}`);
    // Two pending rounds plus one new one are three as well.
    await rounds.createRounds([spec, spec], new Date(0).toISOString());
    await expect(checkLaunchBudget(ledger, rounds, spec, 1, DIMENSION)).rejects.toThrow(/after 2 pending/);
  });

  it('refuses any launch without DP under a cap (unbounded epsilon)', async () => {
    const { spec } = parseLaunchRequest({ rounds: 1, clientsPerRound: 4, privacy: { mode: 'none' } });
    await expect(checkLaunchBudget(await cappedLedger(100), new MemoryRoundStore(), spec, 1, 100)).rejects.toThrow(/unbounded/);
  });

  it('runs concurrent launches one at a time: two that each fit alone cannot both pass against a store with latency', async () => {
    const { spec, ledger } = await launchFixture(1);
    // A store whose reads take a while, as a networked database's would.
    class SlowRoundStore extends MemoryRoundStore {
      override async unfinished() {
        const snapshot = await super.unfinished();
        await new Promise((r) => setTimeout(r, 20));
        return snapshot;
      }
    }
    const rounds = new SlowRoundStore();
    const launch = () => launchWithinBudget(ledger, rounds, spec, 1, DIMENSION, () => rounds.createRounds([spec], new Date(0).toISOString()));
    const results = await Promise.allSettled([launch(), launch()]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(String((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason)).toMatch(/after 1 pending/);
    expect((await rounds.list(10)).length).toBe(1);
    // The queue recovers after a refusal: a check against the same ledger still runs.
    await expect(launch()).rejects.toThrow(/BUDGET|budget/);
  });

  it("refuses a launch past its own epsilonCap, with no deployment cap or under a looser one, naming the launch's cap", async () => {
    const { spec, epsilonOf } = await launchFixture(1);
    const between = (epsilonOf(1) + epsilonOf(2)) / 2;
    const capped = { ...spec, epsilonCap: between };
    for (const deployment of [null, 1e6]) {
      const ledger = await cappedLedger(deployment);
      const rounds = new MemoryRoundStore();
      const ok = await checkLaunchBudget(ledger, rounds, capped, 1, DIMENSION);
      expect(ok.map((p) => [p.kind, p.cap])).toEqual([...(deployment === null ? [] : [['deployment', { epsilon: deployment, delta: 1e-5 }]]), ['launch', { epsilon: between, delta: 1e-5 }]]);
      for (const p of ok) expect(p.projected).toBeCloseTo(epsilonOf(1), 12);
      await expect(checkLaunchBudget(ledger, rounds, capped, 2, DIMENSION)).rejects.toThrow(`would bring cumulative epsilon to ${epsilonOf(2).toFixed(4)} at delta 0.00001, above the launch's cap of ${between}`);
      // The same launch without its cap passes: the cap is the launch's, nobody else's.
      expect((await checkLaunchBudget(ledger, rounds, spec, 2, DIMENSION)).map((p) => p.kind)).toEqual(deployment === null ? [] : ['deployment']);
    }
    // The tighter of the two refuses, and is the one named.
    const { ledger } = await launchFixture(1);
    const rounds = new MemoryRoundStore();
    await expect(checkLaunchBudget(ledger, rounds, { ...spec, epsilonCap: 1e6 }, 2, DIMENSION)).rejects.toThrow(/above the deployment cap of/);
    await expect(checkLaunchBudget(await cappedLedger(1e6), rounds, { ...spec, epsilonCap: between }, 2, DIMENSION)).rejects.toThrow(/above the launch's cap of/);
  });

  it("reads the launch's cap at its rounds' delta, not the deployment cap's", async () => {
    // Deployment cap at delta 1e-5; the launch's rounds (and so its cap) at 1e-6, where the same
    // spend reads as a larger epsilon.
    const { spec: at6 } = parseLaunchRequest({ rounds: 1, clientsPerRound: 10, minClients: 5, privacy: { mode: 'distributed', noiseMultiplier: 1, clip: 1, delta: 1e-6, population: 1000 } });
    const probe = await cappedLedger(1e9);
    const rdp = projectedRoundRdp(at6, DIMENSION, probe.orders) as Float64Array;
    const at5 = probe.epsilon(1e-5, rdp) as number;
    const at6epsilon = probe.epsilon(1e-6, rdp) as number;
    expect(at6epsilon).toBeGreaterThan(at5);
    const cap = (at5 + at6epsilon) / 2;
    const ledger = await cappedLedger(1e6);
    await expect(checkLaunchBudget(ledger, new MemoryRoundStore(), { ...at6, epsilonCap: cap }, 1, DIMENSION)).rejects.toThrow(`cumulative epsilon to ${at6epsilon.toFixed(4)} at delta 0.000001, above the launch's cap of ${cap}`);
    // At release too: the round-hook passes { epsilonCap, delta of the round }.
    const err = await ledger.recordRound(roundSpend({ roundId: 1, delta: 1e-6 }), { epsilon: 1e-3, delta: 1e-6 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/at delta 0\.000001, above the launch's cap of 0\.001$/);
  });

  it('says what makes a projection unbounded: a pending round without DP, or a past release without it', async () => {
    const { spec } = await launchFixture(1);
    const ledger = await cappedLedger(null);
    const rounds = new MemoryRoundStore();
    const { spec: none } = parseLaunchRequest({ rounds: 1, clientsPerRound: 4, privacy: { mode: 'none' } });
    const [pending] = await rounds.createRounds([none], new Date(0).toISOString());
    await expect(checkLaunchBudget(ledger, rounds, { ...spec, epsilonCap: 100 }, 1, DIMENSION)).rejects.toThrow(`to unbounded (round ${pending!.id}, pending, runs without differential privacy) at delta 0.00001, above the launch's cap of 100 (spent so far: 0.0000)`);
    const released = await cappedLedger(null);
    await released.recordRound({ ...roundSpend({ roundId: 1 }), mode: 'none', mechanism: 'none' });
    await expect(checkLaunchBudget(released, new MemoryRoundStore(), { ...spec, epsilonCap: 100 }, 1, DIMENSION)).rejects.toThrow('to unbounded (a model was released without differential privacy) at delta 0.00001, above the launch\'s cap of 100 (spent so far: unbounded)');
  });

  it("refuses a release past the round's launch cap, writing nothing, while the same release without it is entered", async () => {
    const probe = await cappedLedger(null);
    const once = (await probe.recordRound(roundSpend({ roundId: 1 }))).round.epsilonCumulative as number;
    const twice = (await probe.recordRound(roundSpend({ roundId: 2 }))).round.epsilonCumulative as number;
    const ledger = await cappedLedger(null);
    const launchCap = { epsilon: (once + twice) / 2, delta: 1e-5 };
    await ledger.recordRound(roundSpend({ roundId: 1 }), launchCap);
    const err = await ledger.recordRound(roundSpend({ roundId: 2 }), launchCap).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BudgetExceededError);
    expect((err as BudgetExceededError).kind).toBe('launch');
    expect((err as Error).message).toBe(`round 2 would bring cumulative epsilon to ${twice.toFixed(4)} at delta 0.00001, above the launch's cap of ${launchCap.epsilon}`);
    expect(ledger.entries).toBe(2);
    // A cap equal to the projection is not passed; a looser one is not either.
    await expect(ledger.recordRound(roundSpend({ roundId: 2 }), { epsilon: twice, delta: 1e-5 })).resolves.toMatchObject({ round: { roundId: 2 } });
    await expect(ledger.recordRound(roundSpend({ roundId: 3 }), { epsilon: 1e6, delta: 1e-5 })).resolves.toMatchObject({ round: { roundId: 3 } });
    expect(ledger.entries).toBe(4);
  });

  it('refuses an epsilonCap without DP or out of range at parse time', () => {
    const base = { rounds: 1, clientsPerRound: 4 };
    expect(() => parseLaunchRequest({ ...base, privacy: { mode: 'none' }, epsilonCap: 5 })).toThrow(/"epsilonCap" needs differential privacy/);
    for (const epsilonCap of [0, -1, Number.POSITIVE_INFINITY, '5']) expect(() => parseLaunchRequest({ ...base, epsilonCap })).toThrow(/epsilonCap/);
    expect(parseLaunchRequest({ ...base, epsilonCap: 5 }).spec.epsilonCap).toBe(5);
  });
});

/** The demo's private rounds: Poisson over the fleet, t below the expected cohort, z calibrated to the target epsilon. */
import { describe, expect, it } from 'vitest';
import { planPrivateRounds } from '../../../scripts/cli/demo.ts';
import { buildPrivacyConfig, roundsEpsilon } from '../../../shared/privacy/config.ts';

const BASE = { population: 3405, clientsPerRound: 140, rounds: 5, epsilon: 2.4, delta: 1e-6, clip: 0.1, dimension: 2900, train: { epochs: 1, learningRate: 0.02 }, serverLearningRate: 0.1 };

function epsilonAt(noiseMultiplier: number, rounds: number, plan: ReturnType<typeof planPrivateRounds>): number {
  const config = buildPrivacyConfig({ mode: 'distributed', clip: 0.1, noiseMultiplier, minSurvivors: plan.t, delta: 1e-6, population: plan.population, dimension: 2900, samplingRate: plan.samplingRate, poissonSampling: true, expectedClients: 140, rotation: true });
  return roundsEpsilon(config, rounds).epsilon;
}

describe('planPrivateRounds', () => {
  it('samples each device of the fleet with q = K / N and counts t three deviations below the expected cohort', () => {
    const plan = planPrivateRounds(BASE);
    expect(plan.samplingRate).toBeCloseTo(140 / 3405, 12);
    expect(plan.t).toBe(Math.floor(140 - 3 * Math.sqrt(140 * (1 - 140 / 3405))));
    expect(plan.spec).toMatchObject({ selection: 'poisson', samplingRate: plan.samplingRate, minClients: plan.t, secagg: 'on', privacy: { mode: 'distributed', t: plan.t, population: 3405, delta: 1e-6, noiseMultiplier: plan.noiseMultiplier } });
  });

  it('spends at most the target over the rounds and at most 1.9 in one round, with the least noise that does (z rounded up to three digits)', () => {
    const plan = planPrivateRounds(BASE);
    expect(plan.epsilon).toBeLessThanOrEqual(2.4);
    expect(plan.epsilon).toBe(epsilonAt(plan.noiseMultiplier, 5, plan));
    // The smallest such z: 1 % less noise passes the total target or the one-round limit (1.9).
    expect(epsilonAt(plan.noiseMultiplier * 0.99, 5, plan) > 2.4 || epsilonAt(plan.noiseMultiplier * 0.99, 1, plan) > 1.9).toBe(true);
    expect(plan.epsilonPerRound).toBe(epsilonAt(plan.noiseMultiplier, 1, plan));
    // The demo's default keeps one round alone under the launch warning's threshold.
    expect(plan.epsilonPerRound).toBeLessThan(2);
  });

  it('keeps one round alone at most epsilon 2 in short runs, spending less than the target then', () => {
    for (const rounds of [1, 2, 3]) {
      const plan = planPrivateRounds({ ...BASE, rounds });
      expect(plan.epsilonPerRound).toBeLessThanOrEqual(2);
      expect(plan.epsilonPerRound).toBeGreaterThan(1.8);
      expect(plan.epsilon).toBeLessThanOrEqual(2.4);
    }
  });

  it('states the unamplified epsilon (q = 1), the guarantee against the coordinator that picks the cohort', () => {
    const plan = planPrivateRounds(BASE);
    const config = buildPrivacyConfig({ mode: 'distributed', clip: 0.1, noiseMultiplier: plan.noiseMultiplier, minSurvivors: plan.t, delta: 1e-6, population: 3405, dimension: 2900, samplingRate: 1, poissonSampling: false, expectedClients: 140, rotation: true });
    expect(plan.epsilonUnamplified).toBe(roundsEpsilon(config, 5).epsilon);
    expect(plan.epsilonUnamplified).toBeGreaterThan(plan.epsilon * 2);
  });

  it('refuses a cohort larger than the fleet and a delta not below 1/population', () => {
    expect(() => planPrivateRounds({ ...BASE, clientsPerRound: 4000 })).toThrow(/"clients-per-round" expected at most the 3405 devices/);
    expect(() => planPrivateRounds({ ...BASE, delta: 1e-3 })).toThrow(/"delta" expected below 1\/population/);
  });
});

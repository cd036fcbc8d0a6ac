/** Test helpers for the ledger: seeded Ed25519 keys and round spends built from a real privacy config. */
import nacl from 'tweetnacl';
import type { SigningKey } from '../../../shared/ledger/entry.ts';
import { buildPrivacyConfig } from '../../../shared/privacy/config.ts';
import type { RoundSpendInput } from '../../../server/ledger/ledger.ts';

export function seededKey(seed: number): SigningKey {
  const pair = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(seed));
  return { publicKey: pair.publicKey, secretKey: pair.secretKey };
}

export function fixedClock(start = Date.UTC(2026, 10, 27)): () => number {
  let t = start;
  return () => (t += 1000);
}

export interface SpendOptions {
  roundId: number;
  outcome?: 'released' | 'aborted';
  noiseMultiplier?: number;
  q?: number;
  delta?: number;
  survivors?: number;
}

/** A distributed-DP round with the parameters the runner would record for a 10-client cohort. */
export function roundSpend(o: SpendOptions): RoundSpendInput {
  const z = o.noiseMultiplier ?? 1;
  const delta = o.delta ?? 1e-5;
  const config = buildPrivacyConfig({ mode: 'distributed', clip: 1, noiseMultiplier: z, minSurvivors: 5, delta, population: 1000, dimension: 100, expectedClients: 10, ...(o.q !== undefined ? { samplingRate: o.q, poissonSampling: true } : {}) });
  return {
    roundId: o.roundId,
    outcome: o.outcome ?? 'released',
    reason: o.outcome === 'aborted' ? 'too few survivors' : null,
    modelVersionIn: o.roundId,
    modelVersionOut: o.outcome === 'aborted' ? null : o.roundId + 1,
    mode: 'distributed',
    mechanism: 'distributed-discrete-gaussian',
    secagg: 'off',
    clip: 1,
    noiseMultiplier: z,
    samplingMethod: o.q !== undefined ? 'poisson' : 'fixed',
    q: config.accountingSamplingRate,
    cohortSize: 10,
    survivors: o.survivors ?? 8,
    t: 5,
    delta,
    population: 1000,
    l2Sensitivity: config.l2Sensitivity,
    shareVariance: config.clientNoiseVariance,
    shares: config.noiseShares,
    paddedDimension: config.paddedDimension,
    startedAt: '2026-11-27T00:00:00.000Z',
  };
}

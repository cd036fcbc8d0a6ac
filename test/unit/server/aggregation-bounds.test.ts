/**
 * Bounds on what a round aggregates (issue 17): a plaintext update of 1e38 everywhere is clipped,
 * so the mean stays finite; the decoded DP sum of honest updates, clipped and noised as the
 * round's config says, passes its bound in every mode (updates all pointing the same way, the
 * tight case), and a sum holding one unclipped update fails it; new weights or optimiser state
 * that are non-finite or past MAX_ABS_MODEL_WEIGHT fail; no tensor is left behind, even on failure.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../../client/node/tfjs-backend.ts';
import { UpdateAccumulator } from '../../../server/aggregation/accumulator.ts';
import { checkModelStep, checkPlainMean, checkPrivateSum, MAX_ABS_MODEL_WEIGHT, plainRoundStep, privateRoundStep, privateSumNormBound } from '../../../server/aggregation/bounds.ts';
import { l2Norm } from '../../../shared/privacy/clip.ts';
import { buildPrivacyConfig } from '../../../shared/privacy/config.ts';
import type { PrivacyConfig } from '../../../shared/privacy/config.ts';
import { addCentralNoise, decodeAggregate, privatiseUpdate } from '../../../shared/privacy/mechanism.ts';
import { sumModular, toModular } from '../../../shared/privacy/modular.ts';
import { randomSigns } from '../../../shared/privacy/rotation.ts';
import { ProtocolError } from '../../../shared/protocol/errors.ts';
import { parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import { seededRandom } from '../privacy/seeded-random.ts';

beforeAll(async () => {
  await useNodeBackend();
});

function refusal(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof ProtocolError) return `${err.code}: ${err.message}`;
    throw err;
  }
}

const none = parseLaunchRequest({ clientsPerRound: 2, privacy: { mode: 'none' } }).spec.aggregation;

describe('rounds without DP', () => {
  it('clips an update of 1e38 everywhere to the bound, so the mean and the new weights stay finite', () => {
    const before = tf.memory().numTensors;
    const length = 12_623;
    const acc = new UpdateAccumulator(length, 64, 100);
    acc.add(new Float32Array(length).fill(1e38), 64);
    acc.add(new Float32Array(length).fill(1e-3), 4);
    expect(acc.clipped).toBe(1);
    const { step, clipped, examples } = plainRoundStep(acc, none, new Float32Array(length), undefined);
    acc.dispose();
    expect([clipped, examples]).toEqual([1, 68]);
    expect(step.weights.every(Number.isFinite)).toBe(true);
    expect(step.updateNorm).toBeLessThanOrEqual(100 * (1 + 1e-4));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('leaves an update within the bound untouched', () => {
    const acc = new UpdateAccumulator(3, 64, 10);
    acc.add(Float32Array.from([3, 4, 0]), 1);
    const mean = acc.mean();
    expect(Array.from(mean.dataSync())).toEqual([3, 4, 0]);
    mean.dispose();
    acc.dispose();
    expect(acc.clipped).toBe(0);
    expect(() => new UpdateAccumulator(3, 64, 0)).toThrow(/"maxNorm" expected a number > 0/);
  });

  it('refuses a mean that is non-finite or over the bound', () => {
    expect(refusal(() => checkPlainMean(Float32Array.from([1, Number.NaN]), 10))).toMatch(/^AGGREGATE_OUT_OF_BOUNDS: the mean update holds a non-finite value at coordinate 1; nothing was committed/);
    expect(refusal(() => checkPlainMean(Float32Array.from([30, 40]), 10))).toMatch(/L2 norm 50.00, above the 10 each update was clipped to/);
    expect(refusal(() => checkPlainMean(Float32Array.from([6, 8]), 10))).toBe('ok');
  });
});

describe('the new model', () => {
  const step = (weights: number[], state: number[] = []) => ({ weights: Float32Array.from(weights), state: new Uint8Array(Float32Array.from(state).buffer), updateNorm: 1 });

  it('must be finite and within the weight bound, and so must the optimiser state', () => {
    expect(refusal(() => checkModelStep(step([1, -2, MAX_ABS_MODEL_WEIGHT])))).toBe('ok');
    expect(refusal(() => checkModelStep(step([1, Number.POSITIVE_INFINITY])))).toMatch(/the new weights hold a non-finite value at index 1/);
    expect(refusal(() => checkModelStep(step([1, -2 * MAX_ABS_MODEL_WEIGHT])))).toMatch(/the new weights reach \|2.000e\+4\| at index 1, past the bound of 10000/);
    expect(refusal(() => checkModelStep(step([1, 2], [0, Number.NaN, 0, 0])))).toMatch(/optimiser's new state holds a non-finite value at index 1/);
    expect(refusal(() => checkModelStep({ ...step([1]), updateNorm: Number.NaN }))).toMatch(/norm is NaN/);
  });

  it('catches a FedAdam step made NaN by a tau that rounds to 0 in Float32, and disposes its tensors', () => {
    const before = tf.memory().numTensors;
    const fedadam = { ...parseLaunchRequest({ clientsPerRound: 2, privacy: { mode: 'none' }, aggregation: { serverOptimizer: 'fedadam' } }).spec.aggregation, tau: 1e-300 };
    const acc = new UpdateAccumulator(3, 64, 10);
    acc.add(Float32Array.from([1, 0, 0]), 1);
    expect(refusal(() => plainRoundStep(acc, fedadam, new Float32Array(3), undefined))).toMatch(/^AGGREGATE_OUT_OF_BOUNDS: the new weights hold a non-finite value at index 1/);
    acc.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('DP rounds', () => {
  const dimension = 1000;
  const count = 6;
  const configs: [string, PrivacyConfig][] = (['distributed', 'local', 'central'] as const).flatMap((mode) =>
    [0.5, 4].map((noiseMultiplier): [string, PrivacyConfig] => [
      `${mode} z=${noiseMultiplier}`,
      buildPrivacyConfig({ mode, clip: 0.5, noiseMultiplier, minSurvivors: 4, delta: 1e-6, population: 1000, dimension, expectedClients: count, allowCentral: true }),
    ]),
  );

  function decodedSum(config: PrivacyConfig, updates: readonly Float32Array[], seed: number, extra: Uint32Array[] = []): Float32Array {
    const signs = randomSigns(config.paddedDimension, seededRandom(seed));
    const residues = [...updates.map((u, i) => privatiseUpdate(u, config, signs, seededRandom(seed * 100 + i))), ...extra];
    const sum = sumModular(residues, config.paddedDimension);
    const noised = config.mode === 'central' ? addCentralNoise(sum, config, seededRandom(seed + 7)) : sum;
    return decodeAggregate(noised, config, signs);
  }

  it.each(configs)('passes the sum of honest updates all pointing one way, ten times their clip (%s)', (_name, config) => {
    const update = Float32Array.from({ length: dimension }, (_, i) => (i % 3 === 0 ? 1 : -0.5));
    for (let seed = 1; seed <= 3; seed++) {
      const sum = decodedSum(config, Array.from({ length: count }, () => update), seed);
      const bound = privateSumNormBound(config, count);
      expect(l2Norm(sum)).toBeLessThanOrEqual(bound);
      // Not a vacuous bound: the signal alone is most of it at low noise.
      expect(l2Norm(sum)).toBeGreaterThan(config.noiseMultiplier < 1 ? 0.5 * bound : 0);
      expect(refusal(() => checkPrivateSum(sum, config, count))).toBe('ok');
    }
  });

  it.each(configs)('refuses a sum holding one update that was never clipped (%s)', (_name, config) => {
    const honest = Array.from({ length: count - 1 }, (_, i) => Float32Array.from({ length: dimension }, (_, j) => ((i + j) % 5) / 100));
    // Residues of a vector ten times the bound, sent as they are: no clip, no rounding, no noise.
    const perCoordinate = Math.ceil((10 * privateSumNormBound(config, count)) / config.granularity / Math.sqrt(config.paddedDimension));
    expect(perCoordinate).toBeLessThan(2 ** 31);
    const evil = toModular(new Float64Array(config.paddedDimension).fill(perCoordinate));
    const sum = decodedSum(config, honest, 11, [evil]);
    expect(refusal(() => checkPrivateSum(sum, config, count))).toMatch(/^AGGREGATE_OUT_OF_BOUNDS: the decoded sum of 6 updates has L2 norm .*, above .*, the most 6 updates clipped to 0.5 plus the round's noise can reach: an update was not clipped as its privacy requires; nothing was committed$/);
    const before = tf.memory().numTensors;
    expect(refusal(() => privateRoundStep(sum, config, count, none, new Float32Array(dimension), undefined))).toMatch(/^AGGREGATE_OUT_OF_BOUNDS/);
    expect(tf.memory().numTensors).toBe(before);
  });
});

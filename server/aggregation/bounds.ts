/**
 * Bounds on everything a round aggregates, so nothing non-finite or absurd is ever committed
 * (issue 17). Without DP each plaintext update is clipped (accumulator.ts) and the mean checked
 * against that bound; with DP the decoded sum is checked against the most that `count` updates
 * clipped as the round's privacy requires, plus its noise, can reach (a device that skipped
 * clipping, or sent arbitrary residues, exceeds it); in every mode the new weights and optimiser
 * state must be finite and every weight within MAX_ABS_MODEL_WEIGHT. A failed check throws
 * AGGREGATE_OUT_OF_BOUNDS: the runner aborts the round with that reason and commits nothing.
 */
import { l2Norm } from '../../shared/privacy/clip.ts';
import type { PrivacyConfig } from '../../shared/privacy/config.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import type { AggregationConfig } from '../../shared/protocol/messages.ts';
import { uniformMean } from './accumulator.ts';
import type { UpdateAccumulator } from './accumulator.ts';
import { serverStep } from './server-optimizer.ts';
import type { ServerStep } from './server-optimizer.ts';

/**
 * Largest |weight| a committed model may hold. Trained portrait models stay within ±10 (a run
 * that diverged on purpose, lr 10 for 5 epochs, within ±1,000); past 1e4 a logit over a few
 * hundred active features leaves the range where the devices' Float32 training stays finite.
 */
export const MAX_ABS_MODEL_WEIGHT = 1e4;

/** Tail t of the noise-norm bound below: honest noise passes it except with probability e^-t. */
const NOISE_TAIL = 50;

/** Slack for Float32 rounding of values computed in double precision. */
const FLOAT32_SLACK = 1 + 1e-4;

function outOfBounds(message: string): never {
  throw new ProtocolError('AGGREGATE_OUT_OF_BOUNDS', `${message}; nothing was committed`);
}

function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}

/**
 * The largest L2 norm, in update units, of the decoded sum of `count` updates privatised with
 * `config`. On the grid each rounded update has norm at most Δ₂ (conditional rounding, Kairouz,
 * Liu, Steinke 2021, Sec. 4.1), and rotation preserves norms. The noise summed over the counted
 * shares has variance σ² = count·σ²_client + σ²_server per coordinate and is σ²-sub-Gaussian
 * (Canonne, Kamath, Steinke 2020), so its norm over D coordinates stays below
 * σ·sqrt(D + 2·sqrt(D·t) + 2t) except with probability e^-t (Hsu, Kakade, Zhang 2012, Thm 1).
 */
export function privateSumNormBound(config: PrivacyConfig, count: number): number {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`"count" expected an integer >= 1, got ${count}`);
  const d = config.paddedDimension;
  const sigma = Math.sqrt(count * config.clientNoiseVariance + config.serverNoiseVariance);
  const noise = sigma * Math.sqrt(d + 2 * Math.sqrt(d * NOISE_TAIL) + 2 * NOISE_TAIL);
  return config.granularity * (count * config.l2Sensitivity + noise) * FLOAT32_SLACK;
}

/** Throws AGGREGATE_OUT_OF_BOUNDS unless the decoded DP sum is finite and within privateSumNormBound. */
export function checkPrivateSum(sum: Float32Array, config: PrivacyConfig, count: number): void {
  const bad = firstNonFinite(sum);
  if (bad >= 0) outOfBounds(`the decoded sum holds a non-finite value at coordinate ${bad}`);
  const norm = l2Norm(sum);
  const bound = privateSumNormBound(config, count);
  if (!(norm <= bound)) {
    outOfBounds(
      `the decoded sum of ${count} updates has L2 norm ${norm.toPrecision(4)}, above ${bound.toPrecision(4)}, the most ${count} updates clipped to ${config.clip} plus the round's noise can reach: an update was not clipped as its privacy requires`,
    );
  }
}

/** Throws AGGREGATE_OUT_OF_BOUNDS unless the mean of updates clipped to `maxNorm` is finite and within it. */
export function checkPlainMean(mean: Float32Array, maxNorm: number): void {
  const bad = firstNonFinite(mean);
  if (bad >= 0) outOfBounds(`the mean update holds a non-finite value at coordinate ${bad}`);
  const norm = l2Norm(mean);
  if (!(norm <= maxNorm * FLOAT32_SLACK)) outOfBounds(`the mean update has L2 norm ${norm.toPrecision(4)}, above the ${maxNorm} each update was clipped to`);
}

/** Returns `step` once its weights, optimiser state and update norm are finite and every weight within MAX_ABS_MODEL_WEIGHT; else throws AGGREGATE_OUT_OF_BOUNDS. */
export function checkModelStep(step: ServerStep): ServerStep {
  const bad = firstNonFinite(step.weights);
  if (bad >= 0) outOfBounds(`the new weights hold a non-finite value at index ${bad}`);
  let largest = 0;
  let at = 0;
  for (let i = 0; i < step.weights.length; i++) {
    const v = Math.abs(step.weights[i] as number);
    if (v > largest) (largest = v), (at = i);
  }
  if (largest > MAX_ABS_MODEL_WEIGHT) outOfBounds(`the new weights reach |${largest.toPrecision(4)}| at index ${at}, past the bound of ${MAX_ABS_MODEL_WEIGHT} on any model weight`);
  if (step.state.byteLength > 0) {
    const copy = step.state.slice();
    const state = new Float32Array(copy.buffer, 0, copy.byteLength >> 2);
    const badState = firstNonFinite(state);
    if (badState >= 0) outOfBounds(`the server optimiser's new state holds a non-finite value at index ${badState}`);
  }
  if (!Number.isFinite(step.updateNorm)) outOfBounds(`the mean update's norm is ${step.updateNorm}`);
  return step;
}

/** A round's checked server step and the counts its record reports. */
export interface BoundedStep {
  step: ServerStep;
  examples: number;
  weight: number;
  /** Plaintext updates scaled down to `aggregation.maxUpdateNorm` (rounds without DP). */
  clipped?: number;
}

/** A round without DP: the weighted mean of the clipped updates, checked, and the server step it makes, checked. */
export function plainRoundStep(accumulator: UpdateAccumulator, aggregation: AggregationConfig, weights: Float32Array, state: Uint8Array | undefined): BoundedStep {
  const mean = accumulator.mean();
  try {
    checkPlainMean(mean.dataSync() as Float32Array, accumulator.maxNorm);
    const step = checkModelStep(serverStep(aggregation, weights, mean, state));
    return { step, examples: accumulator.examples, weight: accumulator.weight, clipped: accumulator.clipped };
  } finally {
    mean.dispose();
  }
}

/** A DP round: the decoded sum, checked, its uniform mean (accumulator.ts), and the server step it makes, checked. */
export function privateRoundStep(sum: Float32Array, privacy: PrivacyConfig, count: number, aggregation: AggregationConfig, weights: Float32Array, state: Uint8Array | undefined): BoundedStep {
  checkPrivateSum(sum, privacy, count);
  const mean = uniformMean(sum, count);
  try {
    return { step: checkModelStep(serverStep(aggregation, weights, mean, state)), examples: count, weight: count };
  } finally {
    mean.dispose();
  }
}

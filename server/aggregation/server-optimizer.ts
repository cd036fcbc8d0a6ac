/**
 * Server optimisers applied to the averaged client delta Δ (Reddi et al. 2021, "Adaptive
 * Federated Optimization", Alg. 2): FedAvg with a server learning rate, x ← x + η·Δ, and FedAdam,
 * m ← β1·m + (1−β1)·Δ, v ← β2·v + (1−β2)·Δ², x ← x + η·m / (√v + τ) (no bias correction, as in
 * the paper). Tensor math runs in tfjs inside `tidy`; state lives in Float32Arrays between rounds
 * so no tensor outlives a step, and it serialises for storage with each model version.
 */
import * as tf from '@tensorflow/tfjs';
import type { AggregationConfig } from '../../shared/protocol/messages.ts';

export interface ServerStep {
  weights: Float32Array;
  /** Serialised optimiser state after the step (empty for FedAvg). */
  state: Uint8Array;
  /** L2 norm of the averaged delta. */
  updateNorm: number;
}

/** FedAdam state m ‖ v as raw Float32 bytes, or a fresh zero state. */
function readState(state: Uint8Array | undefined, length: number): { m: Float32Array; v: Float32Array } {
  if (state && state.byteLength === 8 * length) {
    const copy = state.slice();
    const all = new Float32Array(copy.buffer, copy.byteOffset, 2 * length);
    return { m: all.slice(0, length), v: all.slice(length) };
  }
  return { m: new Float32Array(length), v: new Float32Array(length) };
}

export function serverStep(config: AggregationConfig, weights: Float32Array, meanDelta: tf.Tensor1D, previousState: Uint8Array | undefined): ServerStep {
  if (meanDelta.size !== weights.length) throw new RangeError(`"meanDelta" expected ${weights.length} values, got ${meanDelta.size}`);
  const eta = config.serverLearningRate;
  if (config.serverOptimizer === 'fedavg') {
    const [next, norm] = tf.tidy(() => [tf.tensor1d(weights).add(meanDelta.mul(eta)).dataSync() as Float32Array, tf.norm(meanDelta).dataSync()[0] as number] as const);
    return { weights: Float32Array.from(next), state: new Uint8Array(0), updateNorm: norm };
  }
  const { m, v } = readState(previousState, weights.length);
  const out = tf.tidy(() => {
    const m1 = tf.tensor1d(m).mul(config.beta1).add(meanDelta.mul(1 - config.beta1));
    const v1 = tf.tensor1d(v).mul(config.beta2).add(meanDelta.square().mul(1 - config.beta2));
    const x1 = tf.tensor1d(weights).add(m1.mul(eta).div(v1.sqrt().add(config.tau)));
    return { x: x1.dataSync() as Float32Array, m: m1.dataSync() as Float32Array, v: v1.dataSync() as Float32Array, norm: tf.norm(meanDelta).dataSync()[0] as number };
  });
  const state = new Float32Array(2 * weights.length);
  state.set(out.m, 0);
  state.set(out.v, weights.length);
  return { weights: Float32Array.from(out.x), state: new Uint8Array(state.buffer), updateNorm: out.norm };
}

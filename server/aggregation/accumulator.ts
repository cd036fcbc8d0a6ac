/**
 * FedAvg's weighted sum, accumulated in tfjs as updates arrive, so the coordinator holds one
 * running sum rather than every update (McMahan et al. 2017, Alg. 1, with each client weighted by
 * its example count). The weight is capped per client so one heavy user cannot dominate, and each
 * update is clipped to an L2 norm bound so one client cannot move the model arbitrarily far: an
 * update of 12,623 values of 1e38 is finite, yet its average is not (issue 17).
 */
import * as tf from '@tensorflow/tfjs';
import { clipToNorm } from '../../shared/privacy/clip.ts';

export class UpdateAccumulator {
  private sum: tf.Tensor1D | null;
  private totalWeight = 0;
  private totalExamples = 0;
  private count = 0;
  private clippedCount = 0;

  constructor(
    readonly length: number,
    readonly exampleCap: number,
    /** Each update is scaled down to this L2 norm before it is added (Infinity: none). */
    readonly maxNorm: number = Number.POSITIVE_INFINITY,
  ) {
    if (!Number.isInteger(length) || length < 1) throw new RangeError(`"length" expected a positive integer, got ${length}`);
    if (!Number.isInteger(exampleCap) || exampleCap < 1) throw new RangeError(`"exampleCap" expected a positive integer, got ${exampleCap}`);
    if (!(maxNorm > 0)) throw new RangeError(`"maxNorm" expected a number > 0, got ${maxNorm}`);
    this.sum = tf.zeros([length]);
  }

  add(delta: Float32Array, examples: number): void {
    if (!this.sum) throw new Error('accumulator already disposed');
    if (delta.length !== this.length) throw new RangeError(`"delta" expected ${this.length} values, got ${delta.length}`);
    let bounded = delta;
    if (Number.isFinite(this.maxNorm)) {
      const { clipped, norm } = clipToNorm(delta, this.maxNorm);
      bounded = clipped;
      if (norm > this.maxNorm) this.clippedCount++;
    }
    const weight = Math.min(examples, this.exampleCap);
    const previous = this.sum;
    this.sum = tf.tidy(() => previous.add(tf.tensor1d(bounded).mul(weight)));
    previous.dispose();
    this.totalWeight += weight;
    this.totalExamples += examples;
    this.count++;
  }

  get updates(): number {
    return this.count;
  }

  /** How many updates were scaled down to `maxNorm`. */
  get clipped(): number {
    return this.clippedCount;
  }

  get examples(): number {
    return this.totalExamples;
  }

  get weight(): number {
    return this.totalWeight;
  }

  /** The weighted mean delta; the caller owns (and disposes) the tensor. */
  mean(): tf.Tensor1D {
    if (!this.sum) throw new Error('accumulator already disposed');
    if (this.count === 0) throw new RangeError('no updates to average');
    const sum = this.sum;
    return tf.tidy(() => sum.div(this.totalWeight));
  }

  dispose(): void {
    this.sum?.dispose();
    this.sum = null;
  }
}

/**
 * The uniform mean of a decoded DP sum: each client's clipped delta counts once. Weighting by
 * example count would make a client's influence (the sensitivity) depend on a private,
 * unbounded claim, so DP rounds never use it (McMahan et al. 2018, Sec. 2, fixed-weight form).
 * The caller owns (and disposes) the tensor.
 */
export function uniformMean(sum: Float32Array, count: number): tf.Tensor1D {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`"count" expected an integer >= 1, got ${count}`);
  return tf.tidy(() => tf.tensor1d(sum).div(count));
}

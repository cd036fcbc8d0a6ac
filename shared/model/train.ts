/**
 * Minibatch training with a masked multi-task loss: the sum over heads of each head's mean loss
 * over the examples whose label is known. Used for the centralised baseline and, unchanged, for
 * a device's local epochs in a federated round.
 */
import * as tf from '@tensorflow/tfjs';
import type { Example } from '../features/examples.ts';
import type { HeadTarget } from './batches.ts';
import { inputTensors, outputsOf, targetTensors } from './batches.ts';
import { SeededRandom } from '../features/seeded-random.ts';
import type { ModelConfig } from './spec.ts';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: 'sgd' | 'adam';
  /** Seeds the example order (a data-order choice, not privacy randomness). */
  shuffleSeed: number;
  onEpoch?: (epoch: number, meanLoss: number) => void;
}

const EPS = 1e-7;
/** Weight of the listwise term of the interests loss relative to the pointwise one. */
const LISTWISE_WEIGHT = 1;

/**
 * Masked loss of one head on probabilities (the heads end in sigmoid/softmax). Multi-label heads
 * sum their per-label cross-entropies (one binary decision per label), so the 50-way interests
 * head is not drowned by the single-decision heads sharing the trunk.
 */
export function headLoss(head: HeadTarget, probs: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const p = tf.clipByValue(probs, EPS, 1 - EPS);
    const y = head.target;
    const perExample =
      head.spec.kind === 'multiclass'
        ? tf.neg(tf.sum(tf.mul(y, tf.log(p)), 1))
        : tf.neg(tf.sum(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p)))), 1));
    const known = tf.sum(head.mask);
    const pointwise = tf.div(tf.sum(tf.mul(perExample, head.mask)), tf.maximum(known, 1)) as tf.Scalar;
    if (head.spec.name !== 'interests') return pointwise;
    // Listwise term (softmax cross-entropy against the normalised multi-hot target, as in
    // Cao et al. 2007 "Learning to Rank: From Pairwise Approach to Listwise Approach"): the
    // pointwise loss calibrates across users, this one orders categories within a user.
    const logits = tf.sub(tf.log(p), tf.log(tf.sub(1, p)));
    const positives = tf.sum(y, 1);
    const hasPositive = tf.cast(tf.greater(positives, 0), 'float32');
    const target = tf.div(y, tf.expandDims(tf.maximum(positives, 1), 1));
    const listwise = tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1));
    const listMean = tf.div(tf.sum(tf.mul(listwise, hasPositive)), tf.maximum(tf.sum(hasPositive), 1));
    return tf.add(pointwise, tf.mul(LISTWISE_WEIGHT, listMean)) as tf.Scalar;
  });
}

export function totalLoss(model: tf.LayersModel, inputs: tf.Tensor[], targets: HeadTarget[], training: boolean): tf.Scalar {
  return tf.tidy(() => {
    const outputs = outputsOf(model.apply(inputs.length === 1 ? (inputs[0] as tf.Tensor) : inputs, { training }));
    return tf.addN(targets.map((t, i) => headLoss(t, outputs[i] as tf.Tensor))) as tf.Scalar;
  });
}

export function shuffled<T>(items: readonly T[], uniform: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

export function makeOptimizer(kind: TrainOptions['optimizer'], learningRate: number): tf.Optimizer {
  return kind === 'adam' ? tf.train.adam(learningRate) : tf.train.sgd(learningRate);
}

/** Trains in place; returns the mean loss of each epoch. Leaves no tensors behind. */
export async function trainModel(model: tf.LayersModel, config: ModelConfig, examples: readonly Example[], options: TrainOptions): Promise<number[]> {
  if (examples.length === 0) return [];
  const optimizer = makeOptimizer(options.optimizer, options.learningRate);
  const shuffleSource = new SeededRandom(options.shuffleSeed >>> 0);
  const uniform = () => shuffleSource.next();
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const losses: number[] = [];
  try {
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      const order = shuffled(examples, uniform);
      let sum = 0;
      let batches = 0;
      for (let start = 0; start < order.length; start += options.batchSize) {
        const batch = order.slice(start, start + options.batchSize);
        const inputs = inputTensors(config, batch);
        const targets = targetTensors(config, batch);
        const cost = optimizer.minimize(() => totalLoss(model, inputs, targets, true), true, variables);
        sum += cost ? (await cost.data())[0] as number : 0;
        cost?.dispose();
        tf.dispose(inputs);
        targets.forEach((t) => tf.dispose([t.target, t.mask]));
        batches++;
      }
      const mean = sum / Math.max(1, batches);
      losses.push(mean);
      options.onEpoch?.(epoch, mean);
    }
  } finally {
    optimizer.dispose();
  }
  return losses;
}

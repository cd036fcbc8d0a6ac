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
  /** Ranking term of the interests loss (default `listwise`); see `headLoss`. */
  interestsRanking?: InterestsRanking;
  onEpoch?: (epoch: number, meanLoss: number) => void;
}

const EPS = 1e-7;

/**
 * `listwise`: softmax cross-entropy against the normalised multi-hot target (Cao et al. 2007);
 * `lambda`: pairwise logistic loss over (positive, negative) category pairs weighted by the NDCG
 * change of swapping them at the current ranks (LambdaRank, Burges 2010 "From RankNet to
 * LambdaRank to LambdaMART", Sec. 4), which puts the weight on the top of the list;
 * `both`: the sum of the two.
 */
export const INTERESTS_RANKINGS = ['listwise', 'lambda', 'both'] as const;
export type InterestsRanking = (typeof INTERESTS_RANKINGS)[number];
/** Weight of the listwise term of the interests loss relative to the pointwise one. */
const LISTWISE_WEIGHT = 1;

/**
 * Masked loss of one head on probabilities (the heads end in sigmoid/softmax). Multi-label heads
 * sum their per-label cross-entropies (one binary decision per label), so the 50-way interests
 * head is not drowned by the single-decision heads sharing the trunk.
 */
export function headLoss(head: HeadTarget, probs: tf.Tensor, ranking: InterestsRanking = 'listwise'): tf.Scalar {
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
    const users = tf.maximum(tf.sum(hasPositive), 1);
    let loss: tf.Tensor = pointwise;
    if (ranking !== 'lambda') {
      const listwise = tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1));
      loss = tf.add(loss, tf.mul(LISTWISE_WEIGHT, tf.div(tf.sum(tf.mul(listwise, hasPositive)), users)));
    }
    if (ranking !== 'listwise') loss = tf.add(loss, tf.div(tf.sum(lambdaPairLoss(logits, y)), users));
    return loss as tf.Scalar;
  });
}

/**
 * Per-user LambdaRank loss with binary relevance: for every positive i and negative j,
 * |1/log2(1+r_i) − 1/log2(1+r_j)| · softplus(s_j − s_i), ranks r from the current scores
 * (ties counted against), divided by the user's ideal DCG. The rank weights carry no gradient
 * (tf.step's gradient is zero), as in LambdaRank. Returns [batch].
 */
export function lambdaPairLoss(logits: tf.Tensor, relevant: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const si = tf.expandDims(logits, 2);
    const sj = tf.expandDims(logits, 1);
    // rank_i = 1 + #{j : s_j > s_i}
    const ranks = tf.add(1, tf.sum(tf.step(tf.sub(sj, si)), 2));
    const discount = tf.div(Math.LN2, tf.log1p(ranks));
    const delta = tf.abs(tf.sub(tf.expandDims(discount, 2), tf.expandDims(discount, 1)));
    const pairs = tf.mul(tf.expandDims(relevant, 2), tf.expandDims(tf.sub(1, relevant), 1));
    const pairLoss = tf.softplus(tf.sub(sj, si));
    const positives = tf.sum(relevant, 1);
    const k = relevant.shape[1] as number;
    const idealDiscounts = tf.div(Math.LN2, tf.log1p(tf.range(1, k + 1)));
    const ideal = tf.sum(tf.mul(idealDiscounts, tf.cast(tf.less(tf.expandDims(tf.range(0, k), 0), tf.expandDims(positives, 1)), 'float32')), 1);
    return tf.div(tf.sum(tf.mul(tf.mul(pairs, delta), pairLoss), [1, 2]), tf.maximum(ideal, EPS));
  });
}

export function totalLoss(model: tf.LayersModel, inputs: tf.Tensor[], targets: HeadTarget[], training: boolean, ranking: InterestsRanking = 'listwise'): tf.Scalar {
  return tf.tidy(() => {
    const outputs = outputsOf(model.apply(inputs.length === 1 ? (inputs[0] as tf.Tensor) : inputs, { training }));
    return tf.addN(targets.map((t, i) => headLoss(t, outputs[i] as tf.Tensor, ranking))) as tf.Scalar;
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
        const cost = optimizer.minimize(() => totalLoss(model, inputs, targets, true, options.interestsRanking), true, variables);
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

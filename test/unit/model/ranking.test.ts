/** The interests head's ranking pieces: the LambdaRank pair loss and the residual-over-heuristic scorer. */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../../client/node/tfjs-backend.ts';
import { historyBefore } from '../../../shared/features/extract.ts';
import { prepareData } from '../../../shared/features/prepare.ts';
import type { PreparedData } from '../../../shared/features/prepare.ts';
import { syntheticDataset } from '../../../shared/features/synthetic.ts';
import { buildModel } from '../../../shared/model/build.ts';
import { ownHistoryScores, predictExamples } from '../../../shared/model/evaluate.ts';
import type { ModelConfig } from '../../../shared/model/spec.ts';
import { lambdaPairLoss, trainModel } from '../../../shared/model/train.ts';
import { dataConfig, modelConfigFor } from '../../../scripts/lib/central.ts';

const discount = (rank: number) => 1 / Math.log2(1 + rank);

describe('lambdaPairLoss', () => {
  beforeAll(async () => {
    await useNodeBackend();
  });

  it('weights each (positive, negative) pair by the NDCG change of swapping them', () => {
    // Scores 2, 1, 0 → ranks 1, 2, 3; the one positive sits at rank 2, so the ideal DCG is 1.
    const expected =
      Math.abs(discount(2) - discount(1)) * Math.log1p(Math.exp(2 - 1)) + Math.abs(discount(2) - discount(3)) * Math.log1p(Math.exp(0 - 1));
    const loss = tf.tidy(() => lambdaPairLoss(tf.tensor2d([[2, 1, 0]]), tf.tensor2d([[0, 1, 0]])).dataSync());
    expect(loss[0]).toBeCloseTo(expected, 5);
  });

  it('divides by the ideal DCG and is zero for a user without positives', () => {
    // Two positives at ranks 1 and 3, one negative at rank 2: ideal DCG = D(1) + D(2).
    const expected =
      (Math.abs(discount(1) - discount(2)) * Math.log1p(Math.exp(1 - 2)) + Math.abs(discount(3) - discount(2)) * Math.log1p(Math.exp(1 - 0))) /
      (discount(1) + discount(2));
    const loss = tf.tidy(() => lambdaPairLoss(tf.tensor2d([[2, 1, 0], [3, 2, 1]]), tf.tensor2d([[1, 0, 1], [0, 0, 0]])).dataSync());
    expect(loss[0]).toBeCloseTo(expected, 5);
    expect(loss[1]).toBe(0);
  });

  it('pushes positives up and negatives down, and leaves no tensors behind', () => {
    const before = tf.memory().numTensors;
    const grad = tf.tidy(() => {
      const y = tf.tensor2d([[0, 1, 0]]);
      return tf.grad((s: tf.Tensor) => tf.sum(lambdaPairLoss(s, y)))(tf.tensor2d([[2, 1, 0]])).dataSync();
    });
    expect(grad[1]).toBeLessThan(0);
    expect(grad[0]).toBeGreaterThan(0);
    expect(grad[2]).toBeGreaterThan(0);
    // The pair above the positive (a rank swap worth more NDCG) gets the larger push.
    expect(grad[0]).toBeGreaterThan(grad[2] as number);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('interests scorer as a residual over the own-history score', () => {
  let prepared: PreparedData;
  let config: ModelConfig;
  beforeAll(async () => {
    await useNodeBackend();
    const data = dataConfig();
    const dataset = syntheticDataset({ users: 80, seed: 4 });
    prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, false);
    config = modelConfigFor(prepared, data, 'mlp', false);
  });

  it('starts at exactly the own-history ranking (β = 1) for every example', () => {
    const model = buildModel(config, 3, { ownHistoryPrior: true });
    const examples = prepared.examples.train.slice(0, 40);
    const rows = predictExamples(model, config, examples).get('interests') ?? [];
    const eventsOf = new Map(prepared.users.train.map((u) => [u.userId, u.events]));
    examples.forEach((e, i) => {
      const heuristic = ownHistoryScores(config.vocabulary, historyBefore(eventsOf.get(e.userId) ?? [], e.cutDay), 1);
      // sigmoid(log h) = h / (1 + h): the same order, and recoverable exactly.
      const row = rows[i] as Float32Array;
      heuristic.forEach((h, c) => expect(row[c]).toBeCloseTo(h / (1 + h), 5));
    });
    model.dispose();
  });

  it('trains with the LambdaRank term beside the listwise one: the loss falls and no tensor leaks', async () => {
    const model = buildModel(config, 3, { ownHistoryPrior: true });
    const before = tf.memory().numTensors;
    const losses = await trainModel(model, config, prepared.examples.train, {
      epochs: 3, batchSize: 32, learningRate: 0.01, optimizer: 'adam', shuffleSeed: 1, interestsRanking: 'both',
    });
    expect(losses).toHaveLength(3);
    expect(losses[2]).toBeLessThan(losses[0] as number);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('has the prior read and the residual as trainable weights', () => {
    const plain = buildModel(config, 3);
    const residual = buildModel(config, 3, { ownHistoryPrior: true });
    const names = residual.trainableWeights.map((w) => w.name);
    expect(names.some((n) => n.startsWith('own_history_prior'))).toBe(true);
    expect(residual.countParams()).toBe(plain.countParams() + 4);
    plain.dispose();
    residual.dispose();
  });
});

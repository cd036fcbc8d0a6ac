/**
 * FedAvg with a per-client example cap and the server optimisers (FedAvg with server learning
 * rate, FedAdam per Reddi et al. 2021 Alg. 2), checked against a plain-JS reference, leaving no
 * tensors behind.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../../client/node/tfjs-backend.ts';
import { parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import { UpdateAccumulator } from '../../../server/aggregation/accumulator.ts';
import { serverStep } from '../../../server/aggregation/server-optimizer.ts';

beforeAll(async () => {
  await useNodeBackend();
});

const updates: [Float32Array, number][] = [
  [Float32Array.from([1, 0, -2]), 10],
  [Float32Array.from([0, 4, 2]), 1000],
  [Float32Array.from([-1, 1, 1]), 30],
];

function referenceMean(cap: number): number[] {
  const weights = updates.map(([, n]) => Math.min(n, cap));
  const total = weights.reduce((a, b) => a + b, 0);
  return [0, 1, 2].map((i) => updates.reduce((s, [d], k) => s + (d[i] as number) * (weights[k] as number), 0) / total);
}

describe('aggregation', () => {
  it('averages weighted by capped example counts', () => {
    const before = tf.memory().numTensors;
    const acc = new UpdateAccumulator(3, 50);
    for (const [d, n] of updates) acc.add(d, n);
    const mean = acc.mean();
    const got = Array.from(mean.dataSync());
    mean.dispose();
    acc.dispose();
    referenceMean(50).forEach((v, i) => expect(got[i]).toBeCloseTo(v, 6));
    expect([acc.updates, acc.examples, acc.weight]).toEqual([3, 1040, 90]);
    // The heavy client (1000 examples) counts as 50, not 1000.
    expect(got[1]).toBeCloseTo((4 * 50 + 30) / 90, 6);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => new UpdateAccumulator(3, 5).add(new Float32Array(2), 1)).toThrow('"delta" expected 3 values, got 2');
  });

  it('applies FedAvg with a server learning rate', () => {
    const config = parseLaunchRequest({ clientsPerRound: 2, privacy: { mode: 'none' }, aggregation: { serverOptimizer: 'fedavg', serverLearningRate: 0.5 } }).spec.aggregation;
    const before = tf.memory().numTensors;
    const delta = tf.tensor1d([2, -4, 0]);
    const step = serverStep(config, Float32Array.from([1, 1, 1]), delta, undefined);
    delta.dispose();
    expect(Array.from(step.weights)).toEqual([2, -1, 1]);
    expect(step.updateNorm).toBeCloseTo(Math.sqrt(20), 5);
    expect(step.state.byteLength).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('applies FedAdam (Reddi et al. 2021, Alg. 2) and carries its state between rounds', () => {
    const config = parseLaunchRequest({ clientsPerRound: 2, privacy: { mode: 'none' }, aggregation: { serverOptimizer: 'fedadam', serverLearningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 0.001 } }).spec.aggregation;
    const before = tf.memory().numTensors;
    let x = [0.5, -0.5];
    let m = [0, 0];
    let v = [0, 0];
    let weights: Float32Array = Float32Array.from(x);
    let state: Uint8Array | undefined;
    for (const d of [[0.2, -0.1], [0.1, 0.3]]) {
      m = m.map((mi, i) => 0.9 * mi + 0.1 * (d[i] as number));
      v = v.map((vi, i) => 0.99 * vi + 0.01 * (d[i] as number) ** 2);
      x = x.map((xi, i) => xi + (0.1 * (m[i] as number)) / (Math.sqrt(v[i] as number) + 0.001));
      const delta = tf.tensor1d(d);
      const step = serverStep(config, weights, delta, state);
      delta.dispose();
      weights = step.weights;
      state = step.state;
      x.forEach((xi, i) => expect(weights[i]).toBeCloseTo(xi, 5));
    }
    expect(state?.byteLength).toBe(2 * 2 * 4);
    expect(tf.memory().numTensors).toBe(before);
  });
});

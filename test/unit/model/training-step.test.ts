/**
 * The fast training step against its slow reference: the loss written out with its gradient
 * (batchLossTerms + fusedBatchLoss) against totalLoss taped op by op, FlatAdam against
 * tf.train.adam, and trainModel against the plain loop that runs totalLoss through tfjs's own
 * optimizers (the training loop before the TRAINING SPEED issue), on small seeded models.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../../client/node/tfjs-backend.ts';
import type { Example } from '../../../shared/features/examples.ts';
import { prepareData } from '../../../shared/features/prepare.ts';
import type { PreparedData } from '../../../shared/features/prepare.ts';
import { SeededRandom } from '../../../shared/features/seeded-random.ts';
import { syntheticDataset } from '../../../shared/features/synthetic.ts';
import { inputTensors, targetArrays, targetTensors } from '../../../shared/model/batches.ts';
import { buildModel } from '../../../shared/model/build.ts';
import type { ModelConfig } from '../../../shared/model/spec.ts';
import { makeModelConfig } from '../../../shared/model/spec.ts';
import { batchLossTerms, disposeBatchLossTerms, FlatAdam, INTERESTS_RANKINGS, shuffled, totalLoss, trainingLoss, trainModel } from '../../../shared/model/train.ts';
import type { TrainOptions } from '../../../shared/model/train.ts';
import { flattenWeights, setFlatWeights } from '../../../shared/model/weights.ts';
import { dataConfig, modelConfigFor } from '../../../scripts/lib/central.ts';

let prepared: PreparedData;
type HeadSet = 'plain' | 'sensitive' | 'interests last';
const configs = {} as Record<HeadSet, ModelConfig>;

beforeAll(async () => {
  await useNodeBackend();
  const data = dataConfig();
  const dataset = syntheticDataset({ users: 120, seed: 7 });
  prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, false);
  configs.plain = modelConfigFor(prepared, data, 'mlp', false);
  configs.sensitive = modelConfigFor(prepared, data, 'mlp', true);
  // The interests block away from the start of the loss's vector.
  const { sensitiveHeads: _, ...plain } = configs.plain;
  configs['interests last'] = makeModelConfig({ ...plain, heads: ['purchase', 'spending', 'interests'] });
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

/** Loss and every weight's gradient (flattened in variable order) of one loss function. */
function lossAndGradient(model: tf.LayersModel, loss: () => tf.Scalar): { value: number; gradient: Float32Array } {
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(loss, variables);
  const parts = variables.map((v) => (grads[v.name] as tf.Tensor).dataSync() as Float32Array);
  const gradient = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, p) => (gradient.set(p, offset), offset + p.length), 0);
  const out = { value: value.dataSync()[0] as number, gradient };
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

/** The training loop before the issue: targetTensors, totalLoss taped, tfjs's optimizer, the loss read per batch. */
async function referenceTrain(model: tf.LayersModel, config: ModelConfig, examples: readonly Example[], options: TrainOptions): Promise<number[]> {
  const optimizer = options.optimizer === 'adam' ? tf.train.adam(options.learningRate) : tf.train.sgd(options.learningRate);
  const source = new SeededRandom(options.shuffleSeed >>> 0);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const losses: number[] = [];
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const order = shuffled(examples, () => source.next());
    let sum = 0;
    let batches = 0;
    for (let start = 0; start < order.length; start += options.batchSize) {
      const batch = order.slice(start, start + options.batchSize);
      const inputs = inputTensors(config, batch);
      const targets = targetTensors(config, batch);
      const cost = optimizer.minimize(() => totalLoss(model, inputs, targets, true, options.interestsRanking), true, variables) as tf.Scalar;
      sum += cost.dataSync()[0] as number;
      tf.dispose([cost, ...inputs, ...targets.flatMap((t) => [t.target, t.mask])]);
      batches++;
    }
    losses.push(sum / batches);
  }
  optimizer.dispose();
  return losses;
}

describe('batchLossTerms: the batch constants of totalLoss, computed on the host', () => {
  it('weights log p by −y·mask/known and log(1 − p) by −(1 − y)·mask/known, none on multiclass units; the listwise target is y/positives over users', () => {
    const config = configs.plain;
    // One example without a spending label (mask 0 for that head), one without any interest.
    const examples = prepared.examples.train.slice(0, 3).map((e, i) => ({
      ...e,
      labels: { ...e.labels, spending: i === 1 ? undefined : 2, interests: i === 2 ? new Float32Array(e.labels.interests.length) : e.labels.interests },
    }));
    const labels = targetArrays(config, examples);
    const terms = batchLossTerms(labels, 'listwise');
    const logWeight = terms.logWeight.dataSync();
    const log1mWeight = terms.log1mWeight.dataSync();
    // Head after head, each head's [batch, units] block row-major.
    let offset = 0;
    labels.forEach(({ spec, units, target, mask }) => {
      const known = mask.reduce((a, b) => a + b, 0);
      examples.forEach((_, i) => {
        for (let j = 0; j < units; j++) {
          const y = target[i * units + j] as number;
          const w = (mask[i] as number) / Math.max(known, 1);
          expect(logWeight[offset + i * units + j]).toBeCloseTo(-w * y, 7);
          expect(log1mWeight[offset + i * units + j]).toBeCloseTo(spec.kind === 'multiclass' ? 0 : -w * (1 - y), 7);
        }
      });
      offset += examples.length * units;
    });
    expect(offset).toBe(logWeight.length);
    expect(terms.shapes).toEqual(labels.map((l) => [examples.length, l.units]));
    expect(labels.find((l) => l.spec.name === 'spending')?.mask).toEqual(Float32Array.of(1, 0, 1));
    const listwise = terms.listwise as NonNullable<typeof terms.listwise>;
    const interests = examples.map((e) => e.labels.interests);
    const users = interests.filter((row) => row.some((y) => y > 0)).length;
    const listTarget = listwise.target.arraySync();
    interests.forEach((row, i) => {
      const positives = row.reduce((a, b) => a + b, 0);
      row.forEach((y, j) => expect(listTarget[i]?.[j]).toBeCloseTo(positives > 0 ? y / positives / users : 0, 7));
    });
    const userWeight = listwise.userWeight.arraySync();
    interests.forEach((row, i) => expect(userWeight[i]).toEqual(Array.from(row, () => Math.fround(row.some((y) => y > 0) ? 1 / users : 0))));
    expect(terms.lambda).toBeUndefined();
    disposeBatchLossTerms(terms);
  });
});

describe('fusedBatchLoss against totalLoss taped op by op', () => {
  for (const heads of ['plain', 'sensitive', 'interests last'] as const) {
    for (const ranking of INTERESTS_RANKINGS) {
      // Scale 1: the seeded model as built. Scale 3: every weight tripled, so that many outputs
      // saturate past the clip at ε and 1 − ε, whose gradient is zero there.
      for (const scale of [1, 3]) {
        it(`gives the same loss and gradient (${heads} heads, ${ranking} ranking, weights × ${scale})`, () => {
          const config = configs[heads];
          const model = buildModel(config, 2);
          setFlatWeights(model, flattenWeights(model).map((w) => w * scale));
          const batch = prepared.examples.train.slice(0, 24);
          const before = tf.memory().numTensors;
          const inputs = inputTensors(config, batch);
          const targets = targetTensors(config, batch);
          const terms = batchLossTerms(targetArrays(config, batch), ranking);
          const reference = lossAndGradient(model, () => totalLoss(model, inputs, targets, true, ranking));
          const fused = lossAndGradient(model, () => trainingLoss(model, inputs, terms));
          expect(Math.abs(fused.value - reference.value) / Math.abs(reference.value)).toBeLessThan(1e-5);
          const largest = reference.gradient.reduce((m, g) => Math.max(m, Math.abs(g)), 0);
          expect(largest).toBeGreaterThan(0);
          expect(maxAbsDiff(fused.gradient, reference.gradient)).toBeLessThan(1e-5 * Math.max(1, largest));
          tf.dispose([...inputs, ...targets.flatMap((t) => [t.target, t.mask])]);
          disposeBatchLossTerms(terms);
          expect(tf.memory().numTensors).toBe(before);
          model.dispose();
        });
      }
    }
  }
});

describe('FlatAdam', () => {
  it('updates every weight bit for bit as tf.train.adam does, and leaves no tensors behind', () => {
    const config = configs.plain;
    const run = (flat: boolean) => {
      const model = buildModel(config, 4);
      const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const adam = tf.train.adam(0.01);
      const flatAdam = new FlatAdam(variables, 0.01);
      for (let s = 0; s < 8; s++) {
        const batch = prepared.examples.train.slice(s * 12, s * 12 + 12);
        const inputs = inputTensors(config, batch);
        const targets = targetTensors(config, batch);
        const loss = () => totalLoss(model, inputs, targets, true);
        tf.dispose(flat ? flatAdam.step(loss) : (adam.minimize(loss, true, variables) as tf.Scalar));
        tf.dispose([...inputs, ...targets.flatMap((t) => [t.target, t.mask])]);
      }
      adam.dispose();
      flatAdam.dispose();
      const weights = flattenWeights(model);
      model.dispose();
      return weights;
    };
    const before = tf.memory().numTensors;
    const reference = run(false);
    const flat = run(true);
    expect(Array.from(flat)).toEqual(Array.from(reference));
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('trainModel against the training loop before the issue', () => {
  for (const [optimizer, learningRate] of [['adam', 0.003], ['sgd', 0.05]] as const) {
    it(`gives the same epoch losses and weights within 1e-5 (${optimizer}, 2 epochs, batch 16)`, async () => {
      const config = configs.plain;
      const options: TrainOptions = { epochs: 2, batchSize: 16, learningRate, optimizer, shuffleSeed: 3 };
      const examples = prepared.examples.train.slice(0, 100);
      const initial = buildModel(config, 5);
      const start = flattenWeights(initial);
      initial.dispose();
      const reference = buildModel(config, 5);
      const referenceLosses = await referenceTrain(reference, config, examples, options);
      const model = buildModel(config, 5);
      const before = tf.memory().numTensors;
      const losses = await trainModel(model, config, examples, options);
      expect(tf.memory().numTensors).toBe(before);
      expect(maxAbsDiff(losses, referenceLosses)).toBeLessThan(1e-5 * Math.max(...referenceLosses));
      const trained = flattenWeights(model);
      expect(maxAbsDiff(trained, start)).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(trained, flattenWeights(reference))).toBeLessThan(1e-5);
      reference.dispose();
      model.dispose();
    });
  }
});

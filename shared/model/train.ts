/**
 * Minibatch training with a masked multi-task loss: the sum over heads of each head's mean loss
 * over the examples whose label is known. Used for the centralised baseline and, unchanged, for
 * a device's local epochs in a federated round. `headLoss` and `totalLoss` define the loss and
 * stay as the slow reference; a step runs `fusedBatchLoss`, the same loss with its gradient
 * written out, and Adam as `FlatAdam`, the same updates over one flat vector, since on wasm and
 * cpu a model this small costs per kernel launched, not per flop (docs/benchmarks.md, "Training
 * step"); test/unit/model/training-step.test.ts holds the fast path to the reference.
 */
import * as tf from '@tensorflow/tfjs';
import type { Example } from '../features/examples.ts';
import type { HeadLabels, HeadTarget } from './batches.ts';
import { inputTensors, outputsOf, targetArrays } from './batches.ts';
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

/**
 * One batch's labels as the terms of `totalLoss` over every head's outputs in one vector, head
 * after head, each head's [batch, units] block row-major, computed once on the host. With
 * w = mask / max(known, 1) per head and example, and, for the interests head, t = y / max(positives, 1)
 * and v = hasPositive / max(users, 1) per example:
 *   totalLoss = Σ (logWeight·log p + log1mWeight·log(1 − p)) − Σ (v·t·logSoftmax(z)) + lambda,
 * p = clip(P, ε, 1 − ε), z = log p − log(1 − p) on the interests block (LISTWISE_WEIGHT is in v).
 * Blocks rather than columns: a block is a contiguous span, which tfjs's cpu backend slices and
 * splits as a view, where a column slice of [batch, units] runs element by element.
 */
export interface BatchLossTerms {
  /** Each head's output shape, [batch, units], in config order. */
  shapes: [number, number][];
  /** −w·y per output: the weight of log p. */
  logWeight: tf.Tensor1D;
  /** −w·(1 − y) on binary and multi-label heads' outputs, 0 on multiclass ones: the weight of log(1 − p). */
  log1mWeight: tf.Tensor1D;
  /** The interests head's listwise term, unless the ranking is `lambda` alone: its block's start, and v·t and v per output. */
  listwise?: { offset: number; shape: [number, number]; target: tf.Tensor2D; userWeight: tf.Tensor2D };
  /** The interests head's LambdaRank term (taped), when the ranking asks for it. */
  lambda?: { head: number; relevant: tf.Tensor2D; users: number };
}

export function batchLossTerms(labels: readonly HeadLabels[], ranking: InterestsRanking = 'listwise'): BatchLossTerms {
  const b = labels[0]?.mask.length ?? 0;
  const shapes = labels.map((l): [number, number] => [b, l.units]);
  const size = b * labels.reduce((n, l) => n + l.units, 0);
  const logWeight = new Float32Array(size);
  const log1mWeight = new Float32Array(size);
  const terms: Partial<BatchLossTerms> = {};
  let offset = 0;
  labels.forEach(({ spec, units: u, target, mask }, head) => {
    const known = Math.max(mask.reduce((n, m) => n + m, 0), 1);
    for (let k = 0; k < b * u; k++) {
      const w = (mask[Math.floor(k / u)] as number) / known;
      const y = target[k] as number;
      logWeight[offset + k] = -w * y;
      if (spec.kind !== 'multiclass') log1mWeight[offset + k] = -w * (1 - y);
    }
    if (spec.name === 'interests') {
      const positives = Array.from({ length: b }, (_, i) => target.subarray(i * u, (i + 1) * u).reduce((n, y) => n + y, 0));
      const users = Math.max(positives.filter((n) => n > 0).length, 1);
      if (ranking !== 'lambda') {
        const listTarget = new Float32Array(b * u);
        const userWeight = new Float32Array(b * u);
        positives.forEach((n, i) => {
          const v = (LISTWISE_WEIGHT * (n > 0 ? 1 : 0)) / users;
          for (let j = 0; j < u; j++) {
            userWeight[i * u + j] = v;
            listTarget[i * u + j] = v * ((target[i * u + j] as number) / Math.max(n, 1));
          }
        });
        terms.listwise = { offset, shape: [b, u], target: tf.tensor2d(listTarget, [b, u]), userWeight: tf.tensor2d(userWeight, [b, u]) };
      }
      if (ranking !== 'listwise') terms.lambda = { head, relevant: tf.tensor2d(target, [b, u]), users };
    }
    offset += b * u;
  });
  return { ...terms, shapes, logWeight: tf.tensor1d(logWeight), log1mWeight: tf.tensor1d(log1mWeight) };
}

export function disposeBatchLossTerms(terms: BatchLossTerms): void {
  tf.dispose([terms.logWeight, terms.log1mWeight]);
  if (terms.listwise) tf.dispose([terms.listwise.target, terms.listwise.userWeight]);
  if (terms.lambda) tf.dispose(terms.lambda.relevant);
}

/**
 * `totalLoss` on the heads' outputs, with the gradient of its pointwise and listwise terms written
 * out (tf.customGrad) rather than taped op by op: the same value and a gradient equal up to float
 * rounding. Taped, the loss and its gradient were about 260 of a batch-16 step's 673 kernels;
 * written out they are about 50 (the model's forward and backward are 213). With a = logWeight,
 * c = log1mWeight, q = 1 − p and s = softmax(z), and since Σ_j t_j = 1 for a user with a positive:
 *   ∂/∂p (a·log p + c·log q) = a/p − c/q;   ∂/∂z (−v·t·logSoftmax z) = v·s − v·t;   ∂z/∂p = 1/p + 1/q;
 * and ∂p/∂P is 1 inside [ε, 1 − ε] and 0 outside, as tf.clipByValue's gradient. The LambdaRank
 * term, not the default, stays taped.
 */
export function fusedBatchLoss(outputs: readonly tf.Tensor[], terms: BatchLossTerms): tf.Scalar {
  const { logWeight, log1mWeight, listwise, shapes } = terms;
  const sizes = shapes.map(([b, u]) => b * u);
  const total = sizes.reduce((a, n) => a + n, 0);
  const interestsBlock = (t: tf.Tensor) => (listwise ? tf.reshape(tf.slice(t, listwise.offset, listwise.shape[0] * listwise.shape[1]), listwise.shape) : t);
  const pointwiseAndListwise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const x = tf.concat((args as tf.Tensor[]).map((o) => tf.reshape(o, [-1])));
    const p = tf.clipByValue(x, EPS, 1 - EPS);
    const q = tf.sub(1, p);
    const logP = tf.log(p);
    const logQ = tf.log(q);
    let value = tf.sum(tf.add(tf.mul(logWeight, logP), tf.mul(log1mWeight, logQ)));
    const saved = [x, p, q];
    if (listwise) {
      const logSoftmax = tf.logSoftmax(interestsBlock(tf.sub(logP, logQ)));
      value = tf.sub(value, tf.sum(tf.mul(listwise.target, logSoftmax)));
      saved.push(tf.exp(logSoftmax));
    }
    save(saved);
    return {
      value: value as tf.Scalar,
      gradFunc: (dy: tf.Tensor, [xs, ps, qs, softmax]: tf.Tensor[]) => {
        const [x0, p0, q0] = [xs, ps, qs] as tf.Tensor[];
        let grad = tf.sub(tf.div(logWeight, p0), tf.div(log1mWeight, q0));
        if (listwise && softmax) {
          const dz = tf.sub(tf.mul(softmax, listwise.userWeight), listwise.target);
          const dzdp = interestsBlock(tf.add(tf.reciprocal(p0), tf.reciprocal(q0)));
          const end = listwise.offset + listwise.shape[0] * listwise.shape[1];
          const spans = [tf.zeros([listwise.offset]), tf.reshape(tf.mul(dz, dzdp), [-1]), tf.zeros([total - end])];
          grad = tf.add(grad, tf.concat(spans.filter((t) => t.size > 0)));
        }
        const inside = tf.cast(tf.equal(p0, x0), 'float32');
        return tf.split(tf.mul(tf.mul(grad, inside), dy), sizes).map((g, h) => tf.reshape(g, shapes[h] as [number, number]));
      },
    };
  });
  const loss = pointwiseAndListwise(...outputs);
  if (!terms.lambda) return loss;
  const { head, relevant, users } = terms.lambda;
  return tf.tidy(() => {
    const p = tf.clipByValue(outputs[head] as tf.Tensor, EPS, 1 - EPS);
    const logits = tf.sub(tf.log(p), tf.log(tf.sub(1, p)));
    return tf.add(loss, tf.div(tf.sum(lambdaPairLoss(logits, relevant)), users)) as tf.Scalar;
  });
}

/** The training loss of one batch: the model's outputs in training mode, through `fusedBatchLoss`. */
export function trainingLoss(model: tf.LayersModel, inputs: tf.Tensor[], terms: BatchLossTerms): tf.Scalar {
  return tf.tidy(() => fusedBatchLoss(outputsOf(model.apply(inputs.length === 1 ? (inputs[0] as tf.Tensor) : inputs, { training: true })), terms));
}

export function shuffled<T>(items: readonly T[], uniform: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** One training run's update rule over the model's trainable variables. */
export interface TrainingOptimizer {
  /** Gradients of `loss` with respect to the variables, then one update; returns the loss. */
  step(loss: () => tf.Scalar): tf.Scalar;
  dispose(): void;
}

const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;

/**
 * tf.train.adam(learningRate) (Kingma & Ba 2015, Alg. 1, as tfjs-core's AdamOptimizer writes it)
 * over every variable at once: the gradients are concatenated into one vector, the moments live as
 * one vector each, and the step is split back per variable. Every operation is elementwise, in
 * tfjs's order on the same float32 constants, so the weights are bit for bit tf.train.adam's;
 * what changes is about 45 kernels per step (the matrices' reshapes, one concat, the update, one
 * split) instead of 14 per variable, 200 for the MLP's 14. A variable the loss does not reach gets a zero
 * gradient: its moments start at zero and stay there, so it is left unchanged, as tfjs's skip
 * leaves it (the loss reaches the same variables at every step of a run).
 */
export class FlatAdam implements TrainingOptimizer {
  private readonly variables: tf.Variable[];
  private readonly sizes: number[];
  private readonly firstMoment: tf.Variable;
  private readonly secondMoment: tf.Variable;
  private readonly accBeta1: tf.Variable;
  private readonly accBeta2: tf.Variable;
  private readonly constants: { beta1: tf.Scalar; oneMinusBeta1: tf.Scalar; beta2: tf.Scalar; oneMinusBeta2: tf.Scalar; one: tf.Scalar; epsilon: tf.Scalar; minusRate: tf.Scalar };

  constructor(variables: readonly tf.Variable[], learningRate: number) {
    this.variables = [...variables];
    this.sizes = variables.map((v) => v.size);
    const total = this.sizes.reduce((a, b) => a + b, 0);
    [this.firstMoment, this.secondMoment, this.accBeta1, this.accBeta2] = tf.tidy(() => [
      tf.variable(tf.zeros([total]), false),
      tf.variable(tf.zeros([total]), false),
      tf.variable(tf.scalar(ADAM_BETA1), false),
      tf.variable(tf.scalar(ADAM_BETA2), false),
    ]);
    this.constants = {
      beta1: tf.scalar(ADAM_BETA1),
      oneMinusBeta1: tf.scalar(1 - ADAM_BETA1),
      beta2: tf.scalar(ADAM_BETA2),
      oneMinusBeta2: tf.scalar(1 - ADAM_BETA2),
      one: tf.scalar(1),
      epsilon: tf.scalar(tf.backend().epsilon()),
      minusRate: tf.scalar(-learningRate),
    };
  }

  step(loss: () => tf.Scalar): tf.Scalar {
    const { value, grads } = tf.variableGrads(loss, this.variables);
    tf.tidy(() => {
      const c = this.constants;
      // Biases are already vectors: a reshape is a kernel launch even when it changes nothing.
      const asVector = (t: tf.Tensor) => (t.rank === 1 ? t : t.reshape([-1]));
      const flat = tf.concat(this.variables.map((v) => asVector(grads[v.name] ?? tf.zerosLike(v))));
      const oneMinusAccBeta1 = tf.sub(c.one, this.accBeta1);
      const oneMinusAccBeta2 = tf.sub(c.one, this.accBeta2);
      const m = tf.add(tf.mul(this.firstMoment, c.beta1), tf.mul(flat, c.oneMinusBeta1));
      const v = tf.add(tf.mul(this.secondMoment, c.beta2), tf.mul(tf.square(flat), c.oneMinusBeta2));
      const correctedM = tf.div(m, oneMinusAccBeta1);
      const correctedV = tf.div(v, oneMinusAccBeta2);
      this.firstMoment.assign(m);
      this.secondMoment.assign(v);
      const update = tf.mul(tf.div(correctedM, tf.add(tf.sqrt(correctedV), c.epsilon)), c.minusRate);
      tf.split(update, this.sizes).forEach((piece, i) => {
        const variable = this.variables[i] as tf.Variable;
        variable.assign(tf.add(variable.rank === 1 ? piece : piece.reshape(variable.shape), variable));
      });
      this.accBeta1.assign(tf.mul(this.accBeta1, c.beta1));
      this.accBeta2.assign(tf.mul(this.accBeta2, c.beta2));
    });
    tf.dispose(grads);
    return value;
  }

  dispose(): void {
    tf.dispose([this.firstMoment, this.secondMoment, this.accBeta1, this.accBeta2, ...Object.values(this.constants)]);
  }
}

/** SGD is tfjs's own: two kernels per variable already. Adam is FlatAdam, the same updates in fewer kernels. */
export function makeOptimizer(kind: TrainOptions['optimizer'], learningRate: number, variables: readonly tf.Variable[]): TrainingOptimizer {
  if (kind === 'adam') return new FlatAdam(variables, learningRate);
  const sgd = tf.train.sgd(learningRate);
  return {
    step: (loss) => sgd.minimize(loss, true, [...variables]) as tf.Scalar,
    dispose: () => sgd.dispose(),
  };
}

/** Trains in place; returns the mean loss of each epoch. Leaves no tensors behind. */
export async function trainModel(model: tf.LayersModel, config: ModelConfig, examples: readonly Example[], options: TrainOptions): Promise<number[]> {
  if (examples.length === 0) return [];
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer = makeOptimizer(options.optimizer, options.learningRate, variables);
  const shuffleSource = new SeededRandom(options.shuffleSeed >>> 0);
  const uniform = () => shuffleSource.next();
  const losses: number[] = [];
  try {
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      const order = shuffled(examples, uniform);
      let sum = 0;
      let batches = 0;
      for (let start = 0; start < order.length; start += options.batchSize) {
        const batch = order.slice(start, start + options.batchSize);
        const inputs = inputTensors(config, batch);
        const terms = batchLossTerms(targetArrays(config, batch), options.interestsRanking);
        const cost = optimizer.step(() => trainingLoss(model, inputs, terms));
        sum += (await cost.data())[0] as number;
        cost.dispose();
        tf.dispose(inputs);
        disposeBatchLossTerms(terms);
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

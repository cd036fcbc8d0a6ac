/**
 * Scores a model's heads on held-out examples and computes the baselines every result table
 * carries, on the same examples: majority class, global category popularity, and the user's own
 * history counts with a small popularity prior (for `interests`).
 */
import * as tf from '@tensorflow/tfjs';
import type { BehaviourEvent } from '../features/events.ts';
import type { Example } from '../features/examples.ts';
import { categoryIndex } from '../features/vocabulary.ts';
import type { Vocabulary } from '../features/vocabulary.ts';
import { inputTensors, labelRow, outputsOf } from './batches.ts';
import { accuracy, argmax, auc, macroF1, microAuc, ovrAuc, recallAtK } from './metrics.ts';
import type { HeadName, HeadSpec, ModelConfig } from './spec.ts';
import { headSpecs } from './spec.ts';

export type Metrics = Partial<Record<'accuracy' | 'macroF1' | 'auc' | 'microAuc' | 'recallAt5', number>> & { examples: number };
export type HeadScores = Partial<Record<HeadName, Metrics>>;

/** Per-head probability rows for each example, in example order. */
export function predictExamples(model: tf.LayersModel, config: ModelConfig, examples: readonly Example[], batchSize = 512): Map<HeadName, Float32Array[]> {
  const specs = headSpecs(config);
  const out = new Map<HeadName, Float32Array[]>(specs.map((s) => [s.name, []]));
  for (let start = 0; start < examples.length; start += batchSize) {
    const batch = examples.slice(start, start + batchSize);
    const values = tf.tidy(() => {
      const inputs = inputTensors(config, batch);
      const outputs = outputsOf(model.predict(inputs.length === 1 ? (inputs[0] as tf.Tensor) : inputs));
      return outputs.map((o) => ({ data: o.dataSync() as Float32Array, width: o.shape[1] as number }));
    });
    specs.forEach((spec, h) => {
      const { data, width } = values[h] as { data: Float32Array; width: number };
      const rows = out.get(spec.name) as Float32Array[];
      for (let i = 0; i < batch.length; i++) rows.push(data.slice(i * width, (i + 1) * width));
    });
  }
  return out;
}

/** Metrics of one head from score rows; examples whose label is unknown are skipped. */
export function scoreHead(spec: HeadSpec, rows: readonly Float32Array[], examples: readonly Example[]): Metrics {
  const scores: Float32Array[] = [];
  const truths: Float32Array[] = [];
  examples.forEach((e, i) => {
    const truth = labelRow(spec, e.labels);
    if (truth) {
      scores.push(rows[i] as Float32Array);
      truths.push(truth);
    }
  });
  const metrics: Metrics = { examples: truths.length };
  if (truths.length === 0) return metrics;
  if (spec.kind === 'multilabel') {
    metrics.microAuc = microAuc(scores, truths);
    const width = truths[0]?.length ?? 0;
    const perLabel: number[] = [];
    for (let j = 0; j < width; j++) {
      const a = auc(scores.map((s) => s[j] as number), truths.map((t) => t[j] as number));
      if (!Number.isNaN(a)) perLabel.push(a);
    }
    metrics.auc = perLabel.length === 0 ? Number.NaN : perLabel.reduce((x, y) => x + y, 0) / perLabel.length;
    if (spec.name === 'interests') metrics.recallAt5 = recallAtK(scores, truths, 5);
    return metrics;
  }
  if (spec.kind === 'binary') {
    const p = scores.map((s) => s[0] as number);
    const y = truths.map((t) => t[0] as number);
    const predicted = p.map((v) => (v >= 0.5 ? 1 : 0));
    metrics.accuracy = accuracy(predicted, y);
    metrics.macroF1 = macroF1(predicted, y, 2);
    metrics.auc = auc(p, y);
    return metrics;
  }
  const actual = truths.map((t) => argmax(t));
  const predicted = scores.map((s) => argmax(s));
  metrics.accuracy = accuracy(predicted, actual);
  metrics.macroF1 = macroF1(predicted, actual, spec.classes.length);
  metrics.auc = ovrAuc(scores, actual, spec.classes.length);
  return metrics;
}

export function scoreModel(model: tf.LayersModel, config: ModelConfig, examples: readonly Example[]): HeadScores {
  const predictions = predictExamples(model, config, examples);
  const scores: HeadScores = {};
  for (const spec of headSpecs(config)) scores[spec.name] = scoreHead(spec, predictions.get(spec.name) as Float32Array[], examples);
  return scores;
}

/** Label frequencies (train) per unit of a head: the constant "prior" prediction. */
function priorRow(spec: HeadSpec, train: readonly Example[]): Float32Array {
  let sum: Float32Array | undefined;
  let n = 0;
  for (const e of train) {
    const row = labelRow(spec, e.labels);
    if (!row) continue;
    sum ??= new Float32Array(row.length);
    for (let j = 0; j < row.length; j++) sum[j] = (sum[j] as number) + (row[j] as number);
    n++;
  }
  const out = sum ?? new Float32Array(spec.kind === 'binary' ? 1 : spec.classes.length);
  return out.map((v) => v / Math.max(1, n));
}

/** Majority class: every example gets the training prior, so ranking metrics sit at 0.5 by construction. */
export function majorityBaseline(config: ModelConfig, train: readonly Example[], test: readonly Example[]): HeadScores {
  const scores: HeadScores = {};
  for (const spec of headSpecs(config)) {
    if (spec.kind === 'multilabel') continue;
    const prior = priorRow(spec, train);
    const row = spec.kind === 'binary' ? Float32Array.of(prior[0] as number >= 0.5 ? 1 : 0) : prior;
    scores[spec.name] = scoreHead(spec, test.map(() => row), test);
  }
  return scores;
}

/** Global popularity: every user gets the training label frequencies of a multi-label head. */
export function popularityBaseline(config: ModelConfig, train: readonly Example[], test: readonly Example[]): HeadScores {
  const scores: HeadScores = {};
  for (const spec of headSpecs(config)) {
    if (spec.kind !== 'multilabel') continue;
    const prior = priorRow(spec, train);
    scores[spec.name] = scoreHead(spec, test.map(() => prior), test);
  }
  return scores;
}

/**
 * Own history + popularity prior for `interests`: score_c = (n_c + β·p_c) / (N + β), the user's
 * count of events in category c before the cut smoothed towards global popularity p_c with β
 * pseudo-events. β is chosen on the validation examples, to give the heuristic its best shot.
 */
export function ownHistoryScores(vocab: Vocabulary, history: readonly BehaviourEvent[], beta: number): Float32Array {
  const index = categoryIndex(vocab);
  const counts = new Float32Array(vocab.categories.length);
  for (const e of history) {
    const slot = index.get(e.category);
    if (slot !== undefined) counts[slot] = (counts[slot] as number) + 1;
  }
  const total = history.length;
  return counts.map((n, c) => (n + beta * (vocab.popularity[c] as number)) / (total + beta));
}

export const OWN_HISTORY_BETAS = [0.1, 0.3, 1, 3, 10, 30] as const;

export function ownHistoryBaseline(
  config: ModelConfig,
  histories: (e: Example) => readonly BehaviourEvent[],
  validation: readonly Example[],
  test: readonly Example[],
): { scores: HeadScores; beta: number } {
  const spec = headSpecs(config).find((s) => s.name === 'interests');
  if (!spec) return { scores: {}, beta: Number.NaN };
  const run = (examples: readonly Example[], beta: number) =>
    scoreHead(spec, examples.map((e) => ownHistoryScores(config.vocabulary, histories(e), beta)), examples);
  let beta: number = OWN_HISTORY_BETAS[0];
  if (validation.length > 0) {
    let best = -Infinity;
    for (const b of OWN_HISTORY_BETAS) {
      const m = run(validation, b);
      const value = (m.microAuc ?? 0) + (m.recallAt5 ?? 0);
      if (value > best) {
        best = value;
        beta = b;
      }
    }
  }
  return { scores: { interests: run(test, beta) }, beta };
}

/**
 * Scores a model's heads on held-out examples: the metrics of every head from score rows, so the
 * model and its baselines (shared/model/baselines.ts) are scored by the same code on the same
 * examples.
 */
import * as tf from '@tensorflow/tfjs';
import type { BehaviourEvent } from '../features/events.ts';
import type { Example } from '../features/examples.ts';
import { categoryIndex } from '../features/vocabulary.ts';
import type { Vocabulary } from '../features/vocabulary.ts';
import { inputTensors, labelRow, outputsOf } from './batches.ts';
import { accuracy, argmax, auc, macroF1, microAuc, ovrAuc, perUserAuc, recallAtK } from './metrics.ts';
import type { HeadName, HeadSpec, ModelConfig } from './spec.ts';
import { headSpecs } from './spec.ts';

export type Metrics = Partial<Record<MetricName, number>> & { examples: number };
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

export type MetricName = 'accuracy' | 'macroF1' | 'auc' | 'microAuc' | 'userAuc' | 'recallAt5';

/**
 * The metrics a head reports, by kind; `recallAt5` only for `interests`. `userAuc` (interests
 * only) is asked for separately: it is no sum over devices, so the federated evaluation
 * (shared/analytics/evaluation.ts), which decodes exactly the default set, cannot release it.
 */
export function headMetricNames(spec: HeadSpec, withUserAuc = false): MetricName[] {
  if (spec.kind === 'multilabel') return spec.name === 'interests' ? ['microAuc', 'auc', ...(withUserAuc ? (['userAuc'] as const) : []), 'recallAt5'] : ['microAuc', 'auc'];
  return ['accuracy', 'macroF1', 'auc'];
}

/** Score rows and label rows of the examples whose label is known, with their users. */
export interface LabelledRows {
  scores: Float32Array[];
  truths: Float32Array[];
  users: (string | number)[];
}

export function labelledRows(spec: HeadSpec, rows: readonly Float32Array[], examples: readonly Example[], users: readonly (string | number)[] = examples.map((e) => e.userId)): LabelledRows {
  const out: LabelledRows = { scores: [], truths: [], users: [] };
  examples.forEach((e, i) => {
    const truth = labelRow(spec, e.labels);
    if (truth) {
      out.scores.push(rows[i] as Float32Array);
      out.truths.push(truth);
      out.users.push(users[i] as string | number);
    }
  });
  return out;
}

/**
 * One metric of a head. Binary heads threshold at 0.5 for accuracy and F1; categorical heads take
 * the argmax; a multi-label head's `auc` is the mean of its per-label AUCs.
 */
export function headMetric(spec: HeadSpec, metric: MetricName, { scores, truths, users }: LabelledRows): number {
  if (truths.length === 0) return Number.NaN;
  if (spec.kind === 'multilabel') {
    switch (metric) {
      case 'microAuc':
        return microAuc(scores, truths);
      case 'userAuc':
        return perUserAuc(scores, truths, users);
      case 'recallAt5':
        return recallAtK(scores, truths, 5);
      case 'auc': {
        const width = truths[0]?.length ?? 0;
        const perLabel: number[] = [];
        for (let j = 0; j < width; j++) {
          const a = auc(scores.map((s) => s[j] as number), truths.map((t) => t[j] as number));
          if (!Number.isNaN(a)) perLabel.push(a);
        }
        return perLabel.length === 0 ? Number.NaN : perLabel.reduce((x, y) => x + y, 0) / perLabel.length;
      }
      default:
        return Number.NaN;
    }
  }
  if (spec.kind === 'binary') {
    const p = scores.map((s) => s[0] as number);
    const y = truths.map((t) => t[0] as number);
    if (metric === 'auc') return auc(p, y);
    const predicted = p.map((v) => (v >= 0.5 ? 1 : 0));
    if (metric === 'accuracy') return accuracy(predicted, y);
    if (metric === 'macroF1') return macroF1(predicted, y, 2);
    return Number.NaN;
  }
  const actual = truths.map((t) => argmax(t));
  if (metric === 'auc') return ovrAuc(scores, actual, spec.classes.length);
  const predicted = scores.map((s) => argmax(s));
  if (metric === 'accuracy') return accuracy(predicted, actual);
  if (metric === 'macroF1') return macroF1(predicted, actual, spec.classes.length);
  return Number.NaN;
}

/** Metrics of one head from score rows; examples whose label is unknown are skipped. */
export function scoreHead(spec: HeadSpec, rows: readonly Float32Array[], examples: readonly Example[], withUserAuc = false): Metrics {
  const labelled = labelledRows(spec, rows, examples);
  const metrics: Metrics = { examples: labelled.truths.length };
  if (labelled.truths.length === 0) return metrics;
  for (const m of headMetricNames(spec, withUserAuc)) metrics[m] = headMetric(spec, m, labelled);
  return metrics;
}

/** Every head's metrics, per-user AUC included, from per-head score rows (one row per example, in example order). */
export function scoreRows(config: ModelConfig, rows: ReadonlyMap<HeadName, readonly Float32Array[]>, examples: readonly Example[]): HeadScores {
  const scores: HeadScores = {};
  for (const spec of headSpecs(config)) {
    const r = rows.get(spec.name);
    if (r) scores[spec.name] = scoreHead(spec, r, examples, true);
  }
  return scores;
}

export function scoreModel(model: tf.LayersModel, config: ModelConfig, examples: readonly Example[]): HeadScores {
  const predictions = predictExamples(model, config, examples);
  const scores: HeadScores = {};
  for (const spec of headSpecs(config)) scores[spec.name] = scoreHead(spec, predictions.get(spec.name) as Float32Array[], examples);
  return scores;
}

/**
 * Own history + popularity prior for `interests` from raw events: score_c = (n_c + β·p_c) / (N + β),
 * the user's count of events in category c before the cut smoothed towards global popularity p_c
 * with β pseudo-events (the baselines compute the same from the features: baselines.ts).
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

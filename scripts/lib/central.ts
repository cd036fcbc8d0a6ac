/**
 * The centralised, non-private baseline: pool the training users' examples, train the portrait
 * model, and score it beside its baselines on held-out test users. The upper bound that federated
 * and private training are compared with.
 */
import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../../shared/features/dataset.ts';
import type { Example } from '../../shared/features/examples.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import { chooseWindows } from '../../shared/features/windows.ts';
import type { PreparedData } from '../../shared/features/prepare.ts';
import { buildModel } from '../../shared/model/build.ts';
import { compareWithBest, computeBaselineReport } from '../../shared/model/baselines.ts';
import type { BaselineReport, BootstrapOptions, Comparison } from '../../shared/model/baselines.ts';
import { predictExamples, scoreModel, scoreRows } from '../../shared/model/evaluate.ts';
import type { HeadScores, Metrics } from '../../shared/model/evaluate.ts';
import type { Architecture, HeadName, ModelConfig } from '../../shared/model/spec.ts';
import { trainModel } from '../../shared/model/train.ts';
import { dataConfig, modelConfigFor } from './central-config.ts';
import type { CentralOptions } from './central-config.ts';
import { flattenWeights, parameterCount, setFlatWeights } from '../../shared/model/weights.ts';

export { dataConfig, DEFAULT_CENTRAL, modelConfigFor } from './central-config.ts';
export type { CentralOptions } from './central-config.ts';

/** A head's metrics with its comparison against the best baseline, paired on the same examples. */
export type HeadResults = Partial<Record<HeadName, Metrics & { vsBest?: Comparison }>>;

export interface Evaluation {
  heads: HeadResults;
  /** Metrics of every baseline (shared/model/baselines.ts), by name then head. */
  baselines: Record<string, HeadScores>;
  bestBaselines: BaselineReport['best'];
  ownHistoryBeta: number;
}

/**
 * Scores `model` and every baseline on the same `test` examples and puts model − best baseline,
 * with its paired bootstrap interval over users, beside each head.
 */
export function evaluateWithBaselines(model: tf.LayersModel, config: ModelConfig, examples: { train: readonly Example[]; validation: readonly Example[]; test: readonly Example[] }, bootstrap: BootstrapOptions = {}): Evaluation {
  const rows = predictExamples(model, config, examples.test);
  const scores = scoreRows(config, rows, examples.test);
  const report = computeBaselineReport(config, examples.train, examples.validation, examples.test);
  const comparisons = compareWithBest(config, rows, report, examples.test, bootstrap);
  const heads: HeadResults = {};
  for (const [head, metrics] of Object.entries(scores) as [HeadName, Metrics][]) {
    const vsBest = comparisons[head];
    heads[head] = vsBest ? { ...metrics, vsBest } : metrics;
  }
  return { heads, baselines: report.scores, bestBaselines: report.best, ownHistoryBeta: report.ownHistoryBeta };
}

export interface CentralResult {
  dataset: string;
  architecture: Architecture;
  backend: string;
  windows: PreparedData['windows'];
  windowSummary: string;
  coverage: PreparedData['coverage'];
  warnings: string[];
  split: PreparedData['split'];
  heads: HeadResults;
  baselines: Record<string, HeadScores>;
  bestBaselines: BaselineReport['best'];
  ownHistoryBeta: number;
  sensitiveHeads: HeadName[];
  training: { epochs: number; bestEpoch: number; batchSize: number; learningRate: number; parameters: number; finalLoss: number; seconds: number; examplesPerSecond: number };
}

export async function trainCentral(dataset: Dataset, options: CentralOptions): Promise<{ result: CentralResult; model: tf.LayersModel; config: ModelConfig; prepared: PreparedData }> {
  // The dataset's default windows (shared/features/windows.ts) unless the caller set them.
  const data = dataConfig({ ...options.data, windows: options.data?.windows ?? chooseWindows(dataset.days) });
  const prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, options.architecture === 'gru');
  const config = modelConfigFor(prepared, data, options.architecture, options.sensitiveHeads);
  const model = buildModel(config, options.seed, { ownHistoryPrior: options.ownHistoryPrior ?? false });
  const started = performance.now();
  // Model selection on the validation users (never the test users): keep the epoch with the best
  // interests micro-AUC + recall@5, the quantities the quality bar is stated in.
  let best = { score: -Infinity, epoch: 0, weights: flattenWeights(model) };
  const losses = await trainModel(model, config, prepared.examples.train, {
    epochs: options.epochs,
    batchSize: options.batchSize,
    learningRate: options.learningRate,
    optimizer: 'adam',
    shuffleSeed: options.seed,
    interestsRanking: options.interestsRanking ?? 'listwise',
    onEpoch: (epoch, loss) => {
      const validation = scoreModel(model, config, prepared.examples.validation).interests;
      const score = (validation?.microAuc ?? 0) + (validation?.recallAt5 ?? 0);
      if (score > best.score) best = { score, epoch: epoch + 1, weights: flattenWeights(model) };
      options.log?.(`epoch ${epoch + 1}/${options.epochs} loss ${loss.toFixed(4)} validation interests microAuc ${validation?.microAuc?.toFixed(4)} recall@5 ${validation?.recallAt5?.toFixed(4)}`);
    },
  });
  setFlatWeights(model, best.weights);
  const seconds = (performance.now() - started) / 1000;
  const evaluation = evaluateWithBaselines(model, config, prepared.examples);
  const result: CentralResult = {
    dataset: dataset.name,
    architecture: options.architecture,
    backend: tf.getBackend(),
    windows: prepared.windows,
    windowSummary: prepared.windowSummary,
    coverage: prepared.coverage,
    warnings: prepared.warnings,
    split: prepared.split,
    ...evaluation,
    sensitiveHeads: config.sensitiveHeads,
    training: {
      epochs: options.epochs,
      bestEpoch: best.epoch,
      batchSize: options.batchSize,
      learningRate: options.learningRate,
      parameters: parameterCount(model),
      finalLoss: losses.at(-1) ?? Number.NaN,
      seconds,
      examplesPerSecond: (prepared.examples.train.length * options.epochs) / seconds,
    },
  };
  return { result, model, config, prepared };
}

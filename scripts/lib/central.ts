/**
 * The centralised, non-private baseline: pool the training users' examples, train the portrait
 * model, and score it with its baselines on held-out test users. The upper bound that federated
 * and private training are compared with.
 */
import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../../shared/features/dataset.ts';
import type { Example } from '../../shared/features/examples.ts';
import { historyBefore } from '../../shared/features/extract.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import { chooseWindows } from '../../shared/features/windows.ts';
import type { PreparedData } from '../../shared/features/prepare.ts';
import { buildModel } from '../../shared/model/build.ts';
import { majorityBaseline, ownHistoryBaseline, popularityBaseline, scoreModel } from '../../shared/model/evaluate.ts';
import type { HeadScores } from '../../shared/model/evaluate.ts';
import type { Architecture, HeadName, ModelConfig } from '../../shared/model/spec.ts';
import { trainModel } from '../../shared/model/train.ts';
import { dataConfig, modelConfigFor } from './central-config.ts';
import type { CentralOptions } from './central-config.ts';
import { flattenWeights, parameterCount, setFlatWeights } from '../../shared/model/weights.ts';

export { dataConfig, DEFAULT_CENTRAL, modelConfigFor } from './central-config.ts';
export type { CentralOptions } from './central-config.ts';

export interface Baselines {
  majority: HeadScores;
  popularity: HeadScores;
  ownHistory: HeadScores;
}

/** The baselines every result table carries, on the same test examples. */
export function computeBaselines(config: ModelConfig, prepared: PreparedData): { baselines: Baselines; ownHistoryBeta: number } {
  const byUser = new Map([...prepared.users.validation, ...prepared.users.test].map((u) => [u.userId, u.events]));
  const histories = (e: Example) => historyBefore(byUser.get(e.userId) ?? [], e.cutDay);
  const own = ownHistoryBaseline(config, histories, prepared.examples.validation, prepared.examples.test);
  return {
    baselines: {
      majority: majorityBaseline(config, prepared.examples.train, prepared.examples.test),
      popularity: popularityBaseline(config, prepared.examples.train, prepared.examples.test),
      ownHistory: own.scores,
    },
    ownHistoryBeta: own.beta,
  };
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
  heads: HeadScores;
  baselines: Baselines;
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
  const { baselines, ownHistoryBeta } = computeBaselines(config, prepared);
  const result: CentralResult = {
    dataset: dataset.name,
    architecture: options.architecture,
    backend: tf.getBackend(),
    windows: prepared.windows,
    windowSummary: prepared.windowSummary,
    coverage: prepared.coverage,
    warnings: prepared.warnings,
    split: prepared.split,
    heads: scoreModel(model, config, prepared.examples.test),
    baselines,
    ownHistoryBeta,
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

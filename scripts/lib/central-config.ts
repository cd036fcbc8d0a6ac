/**
 * The configuration of the centralised baseline (scripts/lib/central.ts): its defaults, the data
 * pipeline's configuration and the model configuration for a prepared dataset. Without tfjs, so
 * the CLI can show the defaults and configure a coordinator's first model before it loads tfjs.
 */
import type { DataConfig, PreparedData } from '../../shared/features/prepare.ts';
import { DEFAULT_DATA_CONFIG } from '../../shared/features/prepare.ts';
import { DEFAULT_SPLIT } from '../../shared/features/split.ts';
import type { Vocabulary } from '../../shared/features/vocabulary.ts';
import { DEFAULT_WINDOWS } from '../../shared/features/windows.ts';
import type { Architecture, HeadName, ModelConfig } from '../../shared/model/spec.ts';
import { makeModelConfig, NON_SENSITIVE_HEADS, SENSITIVE_HEADS } from '../../shared/model/spec.ts';
import type { InterestsRanking } from '../../shared/model/train.ts';

export interface CentralOptions {
  architecture: Architecture;
  epochs: number;
  batchSize: number;
  learningRate: number;
  sensitiveHeads: boolean;
  seed: number;
  /** Interests scorer as a residual over the own-history score (MLP; see shared/model/build.ts). */
  ownHistoryPrior?: boolean;
  /** Ranking term of the interests loss (shared/model/train.ts); default `listwise`. */
  interestsRanking?: InterestsRanking;
  data?: Partial<DataConfig>;
  log?: (line: string) => void;
}

export const DEFAULT_CENTRAL: CentralOptions = { architecture: 'mlp', epochs: 30, batchSize: 64, learningRate: 0.003, sensitiveHeads: false, seed: 1 };

export function dataConfig(overrides: Partial<DataConfig> = {}): DataConfig {
  return { windows: DEFAULT_WINDOWS, split: DEFAULT_SPLIT, ...DEFAULT_DATA_CONFIG, ...overrides };
}

/** Hidden units of the MLP trunk: the centralised baseline's; the demo's private rounds use a smaller trunk (scripts/cli/demo.ts). */
export const DEFAULT_HIDDEN_UNITS: [number, number] = [64, 32];

export function modelConfigFor(prepared: PreparedData, data: DataConfig, architecture: Architecture, sensitiveHeads: boolean, hiddenUnits: [number, number] = DEFAULT_HIDDEN_UNITS): ModelConfig {
  return modelConfigForVocabulary(prepared.vocabulary, data, architecture, sensitiveHeads, hiddenUnits);
}

/** The same model configuration from a vocabulary alone: a production coordinator's comes from the shop's catalogue (shared/features/shop-catalog.ts), with no users to prepare. */
export function modelConfigForVocabulary(vocabulary: Vocabulary, data: DataConfig, architecture: Architecture, sensitiveHeads: boolean, hiddenUnits: [number, number] = DEFAULT_HIDDEN_UNITS): ModelConfig {
  const heads: HeadName[] = sensitiveHeads ? [...NON_SENSITIVE_HEADS, ...SENSITIVE_HEADS] : [...NON_SENSITIVE_HEADS];
  return makeModelConfig({
    architecture,
    heads,
    enableSensitiveHeads: sensitiveHeads,
    vocabulary,
    windows: data.windows,
    sequenceLength: data.sequenceLength,
    hiddenUnits,
  });
}

/**
 * From users to ready examples: the seeded user-level split, the vocabulary (from training users
 * only) and the windowed examples of each split. Shared by the centralised baseline, evaluation
 * and the federated demo, so they all see the same split and windows.
 */
import type { UserRecord } from './dataset.ts';
import { buildExamples } from './examples.ts';
import type { Example } from './examples.ts';
import { coverageWarning, describeWindows, summarizeWindows, validateWindows, windowCoverage } from './windows.ts';
import type { WindowConfig, WindowCoverage, WindowDescription } from './windows.ts';
import { featureContext } from './extract.ts';
import type { FeatureContext } from './extract.ts';
import { splitUsers } from './split.ts';
import type { SplitConfig, SplitName } from './split.ts';
import { buildVocabulary } from './vocabulary.ts';
import type { Vocabulary } from './vocabulary.ts';

export interface DataConfig {
  windows: WindowConfig;
  split: SplitConfig;
  topK: number;
  hashBuckets: number;
  sequenceLength: number;
}

export const DEFAULT_DATA_CONFIG: Omit<DataConfig, 'windows' | 'split'> = { topK: 50, hashBuckets: 8, sequenceLength: 30 };

export interface SplitSummary {
  method: string;
  seed: number;
  users: Record<SplitName, number>;
  examples: Record<SplitName, number>;
}

export interface PreparedData {
  users: Record<SplitName, UserRecord[]>;
  examples: Record<SplitName, Example[]>;
  vocabulary: Vocabulary;
  context: FeatureContext;
  windows: WindowDescription[];
  /** The windows in one line, for people. */
  windowSummary: string;
  /** How many of all users' events some window reads. */
  coverage: WindowCoverage;
  /** Loud notes for the result (a run that reads under half its events). */
  warnings: string[];
  split: SplitSummary;
}

/**
 * `vocabulary`, when given (an existing model's), is used as is instead of being rebuilt from the
 * training users, so a saved model is evaluated on exactly the features it was trained with.
 */
export function prepareData(users: Iterable<UserRecord>, startDay: number, days: number, config: DataConfig, withSequences: boolean, vocabularyOverride?: Vocabulary): PreparedData {
  const windows = validateWindows(config.windows, days);
  const split = splitUsers(users, config.split);
  const vocabulary = vocabularyOverride ?? buildVocabulary(split.train, { topK: config.topK, hashBuckets: config.hashBuckets, windows, startDay });
  const context = featureContext(vocabulary, startDay);
  const options = withSequences ? { windows, sequenceLength: config.sequenceLength } : { windows };
  const examples = {
    train: buildExamples(split.train, context, options),
    validation: buildExamples(split.validation, context, options),
    test: buildExamples(split.test, context, options),
  };
  const offsets = function* () {
    for (const part of [split.train, split.validation, split.test]) for (const user of part) for (const e of user.events) yield e.day - startDay;
  };
  const coverage = windowCoverage(windows, offsets());
  const windowSummary = summarizeWindows(windows, startDay);
  const warning = coverageWarning(coverage, windowSummary);
  const count = <T>(r: Record<SplitName, T[]>) => ({ train: r.train.length, validation: r.validation.length, test: r.test.length });
  return {
    users: split,
    examples,
    vocabulary,
    context,
    windows: describeWindows(windows, startDay),
    windowSummary,
    coverage,
    warnings: warning === null ? [] : [warning],
    split: {
      method: `user-level hash split (seed ${config.split.seed}): ${Math.round(config.split.testShare * 100)}% test, ${Math.round(config.split.validationShare * 100)}% validation, rest train`,
      seed: config.split.seed,
      users: count(split),
      examples: count(examples),
    },
  };
}

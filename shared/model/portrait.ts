/**
 * The portrait a device computes for its own user: features from the local event history,
 * one forward pass of the current global model, and a readable summary per head. Nothing here
 * leaves the device.
 */
import type * as tf from '@tensorflow/tfjs';
import type { BehaviourEvent } from '../features/events.ts';
import { sortEvents } from '../features/events.ts';
import type { Example } from '../features/examples.ts';
import { extractFeatures, extractSequence, featureContext, historyBefore } from '../features/extract.ts';
import { predictExamples } from './evaluate.ts';
import type { HeadName, ModelConfig } from './spec.ts';
import { headSpecs } from './spec.ts';

export interface ClassScore {
  label: string;
  probability: number;
}

export interface Portrait {
  /** The day the portrait looks ahead from (the day after the last event unless given). */
  asOfDay: number;
  events: number;
  heads: Partial<Record<HeadName, { top: ClassScore[]; sensitive: boolean }>>;
}

const TOP = 5;

/**
 * `historyStartDay` is where the device's retained history begins (it scales recency features
 * like the training windows' start day did); defaults to the earliest event.
 */
export function computePortrait(model: tf.LayersModel, config: ModelConfig, events: readonly BehaviourEvent[], options: { asOfDay?: number; historyStartDay?: number } = {}): Portrait {
  const sorted = sortEvents([...events]);
  const lastDay = sorted.at(-1)?.day ?? 0;
  const asOfDay = options.asOfDay ?? lastDay + 1;
  const history = historyBefore(sorted, asOfDay);
  const startDay = options.historyStartDay ?? history[0]?.day ?? asOfDay - 1;
  const ctx = featureContext(config.vocabulary, startDay);
  const example: Example = {
    userId: 'self',
    cutDay: asOfDay,
    features: extractFeatures(history, asOfDay, ctx),
    labels: { interests: new Float32Array(config.vocabulary.categories.length), purchase: 0 },
  };
  if (config.architecture === 'gru') example.sequence = extractSequence(history, asOfDay, config.sequenceLength, ctx);
  const predictions = predictExamples(model, config, [example]);
  const heads: Portrait['heads'] = {};
  for (const spec of headSpecs(config)) {
    const row = (predictions.get(spec.name) as Float32Array[])[0] as Float32Array;
    const scores: ClassScore[] =
      spec.kind === 'binary'
        ? [{ label: 'yes', probability: row[0] as number }]
        : Array.from(row, (p, i) => ({ label: spec.classes[i] as string, probability: p }));
    scores.sort((a, b) => b.probability - a.probability);
    heads[spec.name] = { top: scores.slice(0, TOP), sensitive: spec.sensitive };
  }
  return { asOfDay, events: history.length, heads };
}

/**
 * A device's part of a federated round, platform-free: load the global weights, run E local
 * epochs on its own examples, and return the weight delta (the only thing that, after clipping,
 * noise and masking, ever leaves the device).
 */
import type * as tf from '@tensorflow/tfjs';
import type { Example } from '../features/examples.ts';
import type { ModelConfig } from './spec.ts';
import { trainModel } from './train.ts';
import type { TrainOptions } from './train.ts';
import { flattenWeights, setFlatWeights } from './weights.ts';

export interface LocalUpdate {
  /** New weights minus global weights, in the flat order of shared/model/weights.ts. */
  delta: Float32Array;
  examples: number;
  /** Mean training loss of the last local epoch. */
  loss: number;
}

export async function computeLocalUpdate(
  model: tf.LayersModel,
  config: ModelConfig,
  globalWeights: Float32Array,
  examples: readonly Example[],
  options: Omit<TrainOptions, 'onEpoch'>,
): Promise<LocalUpdate> {
  setFlatWeights(model, globalWeights);
  const losses = await trainModel(model, config, examples, options);
  const trained = flattenWeights(model);
  const delta = new Float32Array(trained.length);
  for (let i = 0; i < trained.length; i++) delta[i] = (trained[i] as number) - (globalWeights[i] as number);
  setFlatWeights(model, globalWeights);
  return { delta, examples: examples.length, loss: losses.at(-1) ?? Number.NaN };
}

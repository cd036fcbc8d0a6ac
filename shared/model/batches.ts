/**
 * Packs examples into the input and target tensors of one minibatch. Unknown labels become a
 * zero mask so that head's loss and metrics skip the example.
 */
import * as tf from '@tensorflow/tfjs';
import type { Example } from '../features/examples.ts';
import type { ExampleLabels } from '../features/extract.ts';
import { featureBlocks, splitFeatureVector } from '../features/extract.ts';
import type { HeadSpec, ModelConfig } from './spec.ts';
import { headSpecs, headUnits } from './spec.ts';

export interface HeadTarget {
  spec: HeadSpec;
  target: tf.Tensor2D;
  /** 1 where the label is known. */
  mask: tf.Tensor1D;
}

export function inputTensors(config: ModelConfig, examples: readonly Example[]): tf.Tensor[] {
  const b = examples.length;
  if (config.architecture === 'mlp') {
    const blocks = featureBlocks(config.vocabulary);
    const expected = blocks.dense + blocks.interest;
    const [k, channels] = blocks.categorySignals;
    const dense = new Float32Array(b * blocks.dense);
    const interest = new Float32Array(b * blocks.interest);
    const signals = new Float32Array(b * k * channels);
    examples.forEach((e, i) => {
      if (e.features.length !== expected) throw new RangeError(`"example.features" expected ${expected} values, got ${e.features.length}`);
      splitFeatureVector(
        e.features,
        config.vocabulary,
        dense.subarray(i * blocks.dense, (i + 1) * blocks.dense),
        interest.subarray(i * blocks.interest, (i + 1) * blocks.interest),
        signals.subarray(i * k * channels, (i + 1) * k * channels),
      );
    });
    return [tf.tensor2d(dense, [b, blocks.dense]), tf.tensor2d(interest, [b, blocks.interest]), tf.tensor3d(signals, [b, k, channels])];
  }
  const n = config.sequenceLength;
  const seqs = examples.map((e) => {
    if (!e.sequence) throw new TypeError(`"example.sequence" missing for the gru architecture (user ${e.userId})`);
    return e.sequence;
  });
  const catWidth = seqs[0] ? seqs[0].categories.length / n : 0;
  const evWidth = seqs[0] ? seqs[0].events.length / n : 0;
  const cats = new Float32Array(b * n * catWidth);
  const evs = new Float32Array(b * n * evWidth);
  seqs.forEach((s, i) => {
    cats.set(s.categories, i * n * catWidth);
    evs.set(s.events, i * n * evWidth);
  });
  return [tf.tensor3d(cats, [b, n, catWidth]), tf.tensor3d(evs, [b, n, evWidth])];
}

/** The label of one head as a dense row, or undefined when unknown. */
export function labelRow(spec: HeadSpec, labels: ExampleLabels): Float32Array | undefined {
  const units = headUnits(spec);
  switch (spec.name) {
    case 'interests':
      return labels.interests;
    case 'purchase':
      return Float32Array.of(labels.purchase);
    case 'stage':
      return labels.stage;
    default: {
      const cls = labels[spec.name];
      if (cls === undefined) return undefined;
      const row = new Float32Array(units);
      row[cls] = 1;
      return row;
    }
  }
}

/** One head's labels for a batch as host arrays: rows of `units` values, and 1 in `mask` where the label is known. */
export interface HeadLabels {
  spec: HeadSpec;
  units: number;
  target: Float32Array;
  mask: Float32Array;
}

export function targetArrays(config: ModelConfig, examples: readonly Example[]): HeadLabels[] {
  return headSpecs(config).map((spec) => {
    const units = headUnits(spec);
    const target = new Float32Array(examples.length * units);
    const mask = new Float32Array(examples.length);
    examples.forEach((e, i) => {
      const row = labelRow(spec, e.labels);
      if (row) {
        target.set(row, i * units);
        mask[i] = 1;
      }
    });
    return { spec, units, target, mask };
  });
}

export function targetTensors(config: ModelConfig, examples: readonly Example[]): HeadTarget[] {
  return targetArrays(config, examples).map(({ spec, units, target, mask }) => ({ spec, target: tf.tensor2d(target, [mask.length, units]), mask: tf.tensor1d(mask) }));
}

/** model.apply returns a bare tensor for single-output models: always hand back an array. */
export function outputsOf(result: tf.Tensor | tf.Tensor[] | tf.SymbolicTensor | tf.SymbolicTensor[]): tf.Tensor[] {
  const list = Array.isArray(result) ? result : [result];
  return list as tf.Tensor[];
}

/**
 * Weights as one Float32Array, the form federated rounds ship. Order: `model.weights` order,
 * which tfjs fixes as layer order, then each layer's own order (kernel, recurrent kernel, bias),
 * every tensor in row-major order. `weightLayout` names each span so the order is inspectable.
 */
import * as tf from '@tensorflow/tfjs';

export interface WeightSpan {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** Weight shapes are always concrete (null appears only in input shapes); check, don't assume. */
function concreteShape(name: string, shape: readonly (number | null)[]): number[] {
  return shape.map((d) => {
    if (d === null) throw new RangeError(`weight "${name}" has an unknown dimension`);
    return d;
  });
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function weightLayout(model: tf.LayersModel): WeightSpan[] {
  let offset = 0;
  return model.weights.map((w) => {
    const shape = concreteShape(w.originalName, w.shape);
    const size = sizeOf(shape);
    const span = { name: w.originalName, shape, offset, size };
    offset += size;
    return span;
  });
}

export function parameterCount(model: tf.LayersModel): number {
  return model.weights.reduce((n, w) => n + sizeOf(concreteShape(w.originalName, w.shape)), 0);
}

export function flattenWeights(model: tf.LayersModel): Float32Array {
  const out = new Float32Array(parameterCount(model));
  let offset = 0;
  for (const w of model.weights) {
    const values = w.read().dataSync() as Float32Array;
    out.set(values, offset);
    offset += values.length;
  }
  return out;
}

export function setFlatWeights(model: tf.LayersModel, flat: Float32Array): void {
  const expected = parameterCount(model);
  if (!(flat instanceof Float32Array)) throw new TypeError(`"flat" expected Float32Array, got ${Object.prototype.toString.call(flat)}`);
  if (flat.length !== expected) throw new RangeError(`"flat" expected ${expected} weights, got ${flat.length}`);
  let offset = 0;
  const tensors = model.weights.map((w) => {
    const shape = concreteShape(w.originalName, w.shape);
    const size = sizeOf(shape);
    const t = tf.tensor(flat.subarray(offset, offset + size), shape, 'float32');
    offset += size;
    return t;
  });
  model.setWeights(tensors);
  tf.dispose(tensors);
}

/**
 * Random rotation before rounding: y = H·D·x / sqrt(n), with H the Walsh–Hadamard matrix
 * and D a diagonal of random signs, the vector zero-padded to a power of two n
 * (Kairouz, Liu, Steinke 2021, Sec. 4.1, "flattening"; Suresh et al. 2017). It spreads a
 * spiky update evenly over coordinates so the modular wrap-around is unlikely. The signs
 * are public and shared by all clients of a round (the server inverts the same rotation),
 * so they come from a round seed, not from a client's private randomness.
 */
import { RandomStream, type RandomSource } from './random.ts';

export function nextPowerOfTwo(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`"n" expected an integer >= 1, got ${n}`);
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** `length` random ±1 signs (length a power of two). */
export function randomSigns(length: number, random: RandomSource): Int8Array {
  if (nextPowerOfTwo(length) !== length) throw new RangeError(`"length" expected a power of two, got ${length}`);
  const stream = new RandomStream(random);
  const signs = new Int8Array(length);
  for (let i = 0; i < length; i += 32) {
    const word = stream.uint32();
    for (let b = 0; b < 32 && i + b < length; b++) signs[i + b] = (word >>> b) & 1 ? 1 : -1;
  }
  return signs;
}

/** In-place unnormalised fast Walsh–Hadamard transform (length a power of two). */
function walshHadamard(v: Float64Array): void {
  for (let h = 1; h < v.length; h *= 2) {
    for (let i = 0; i < v.length; i += 2 * h) {
      for (let j = i; j < i + h; j++) {
        const a = v[j] as number;
        const b = v[j + h] as number;
        v[j] = a + b;
        v[j + h] = a - b;
      }
    }
  }
}

/** Rotates `values` (padded with zeros to `signs.length`): H·D·x / sqrt(n). Preserves the L2 norm. */
export function rotate(values: ArrayLike<number>, signs: Int8Array): Float64Array {
  const n = signs.length;
  if (nextPowerOfTwo(n) !== n) throw new RangeError(`"signs" expected a power-of-two length, got ${n}`);
  if (values.length > n) throw new RangeError(`"values" expected at most ${n} entries, got ${values.length}`);
  const out = new Float64Array(n);
  for (let i = 0; i < values.length; i++) out[i] = (values[i] as number) * (signs[i] as number);
  walshHadamard(out);
  const norm = 1 / Math.sqrt(n);
  for (let i = 0; i < n; i++) out[i] = (out[i] as number) * norm;
  return out;
}

/** Inverts `rotate`: D·H·y / sqrt(n), truncated to the first `length` entries. */
export function unrotate(rotated: ArrayLike<number>, signs: Int8Array, length: number): Float64Array {
  const n = signs.length;
  if (rotated.length !== n) throw new RangeError(`"rotated" expected ${n} entries, got ${rotated.length}`);
  if (!Number.isInteger(length) || length < 0 || length > n) throw new RangeError(`"length" expected an integer in [0, ${n}], got ${length}`);
  const work = Float64Array.from(rotated);
  walshHadamard(work);
  const norm = 1 / Math.sqrt(n);
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = (work[i] as number) * norm * (signs[i] as number);
  return out;
}

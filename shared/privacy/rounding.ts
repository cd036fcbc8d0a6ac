/**
 * Randomised rounding onto the integer grid and its norm bound: conditional randomised
 * rounding of Kairouz, Liu, Steinke 2021 ("The Distributed Discrete Gaussian Mechanism for
 * Federated Learning with Secure Aggregation", Sec. 4.1 and Alg. 1, the bound of their
 * Lemma/Proposition 22): round each coordinate up with probability equal to its
 * fractional part, and retry until the rounded vector's norm is within the bound that the
 * sensitivity uses. Unconditional rounding (beta = 0) has the deterministic bound c + sqrt(d).
 */
import { RandomStream, type RandomSource } from './random.ts';

/**
 * Norm bound after (conditional) randomised rounding of a vector of norm at most `norm`
 * in `dimension` coordinates:
 *   beta = 0: norm + sqrt(d)  (every coordinate moves by less than 1);
 *   beta > 0: min(norm + sqrt(d), sqrt(norm² + d/4 + sqrt(2 ln(1/beta)) (norm + sqrt(d)/2))),
 * the second holding with probability >= 1 - beta for one unconditional rounding
 * (Kairouz et al. 2021, Sec. 4.1), hence the retry loop.
 */
export function roundedNormBound(norm: number, dimension: number, beta: number): number {
  if (!Number.isFinite(norm) || norm < 0) throw new RangeError(`"norm" expected a finite number >= 0, got ${norm}`);
  if (!Number.isInteger(dimension) || dimension < 1) throw new RangeError(`"dimension" expected an integer >= 1, got ${dimension}`);
  if (!(beta >= 0 && beta < 1)) throw new RangeError(`"beta" expected a number in [0, 1), got ${beta}`);
  const unconditional = norm + Math.sqrt(dimension);
  if (beta === 0) return unconditional;
  const conditionalSquared = norm * norm + dimension / 4 + Math.sqrt(2 * Math.log(1 / beta)) * (norm + Math.sqrt(dimension) / 2);
  return Math.min(unconditional, Math.sqrt(conditionalSquared));
}

/** One unconditional randomised rounding: E[result] = values, |result - values| < 1 per coordinate. */
export function randomizedRound(values: ArrayLike<number>, random: RandomSource | RandomStream): Int32Array {
  const stream = random instanceof RandomStream ? random : new RandomStream(random);
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!Number.isFinite(v) || Math.abs(v) > 2 ** 31 - 2) throw new RangeError(`"values[${i}]" expected a finite number within ±(2^31 - 2), got ${v}`);
    const floor = Math.floor(v);
    out[i] = floor + (stream.unitFloat() < v - floor ? 1 : 0);
  }
  return out;
}

function squaredNorm(values: Int32Array): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += (values[i] as number) * (values[i] as number);
  return s;
}

/**
 * Conditional randomised rounding: re-rounds until the L2 norm is at most `bound`
 * (use `roundedNormBound` of the pre-rounding norm bound). The expected number of tries is
 * at most 1 / (1 - beta); `maxTries` only guards against a bound that cannot hold.
 */
export function conditionalRandomizedRound(values: ArrayLike<number>, bound: number, random: RandomSource | RandomStream, maxTries = 1000): Int32Array {
  if (!Number.isFinite(bound) || bound <= 0) throw new RangeError(`"bound" expected a finite number > 0, got ${bound}`);
  const stream = random instanceof RandomStream ? random : new RandomStream(random);
  const boundSquared = bound * bound;
  for (let attempt = 0; attempt < maxTries; attempt++) {
    const rounded = randomizedRound(values, stream);
    if (squaredNorm(rounded) <= boundSquared) return rounded;
  }
  throw new RangeError(`"bound" ${bound} was not met after ${maxTries} roundings; is the input norm within the bound's premise?`);
}

/**
 * Noise calibration: the smallest noise multiplier z whose accounted epsilon at delta is at
 * most a target, by bisection on z (epsilon is non-increasing in z for the subsampled
 * Gaussian, Mironov et al. 2019, and for the distributed discrete Gaussian bound). The
 * returned z always satisfies the target; it is within `relativeTolerance` of the smallest.
 */
import { computeEpsilon, type EpsilonResult } from './rdp.ts';

export interface CalibrationResult {
  noiseMultiplier: number;
  /** The epsilon actually achieved by `noiseMultiplier` (<= the target). */
  epsilon: number;
  order: number;
}

/** Bisection for any accountant `epsilonOf(z)` that is non-increasing in z. */
export function calibrateNoise(targetEpsilon: number, epsilonOf: (z: number) => EpsilonResult, relativeTolerance = 1e-9): CalibrationResult {
  if (!(targetEpsilon > 0) || !Number.isFinite(targetEpsilon)) throw new RangeError(`"epsilon" expected a finite number > 0, got ${targetEpsilon}`);
  if (!(relativeTolerance > 0 && relativeTolerance < 1)) throw new RangeError(`"relativeTolerance" expected a number in (0, 1), got ${relativeTolerance}`);
  let hi = 1;
  let hiResult = epsilonOf(hi);
  while (hiResult.epsilon > targetEpsilon) {
    hi *= 2;
    if (hi > 1e7) throw new RangeError(`"epsilon" ${targetEpsilon} is not reachable with a noise multiplier below 1e7`);
    hiResult = epsilonOf(hi);
  }
  let lo = hi / 2;
  if (hi === 1) {
    while (epsilonOf(lo).epsilon <= targetEpsilon) {
      hi = lo;
      lo /= 2;
      if (lo < 1e-6) break;
    }
    hiResult = epsilonOf(hi);
  }
  while (hi - lo > relativeTolerance * hi) {
    const mid = (lo + hi) / 2;
    const midResult = epsilonOf(mid);
    if (midResult.epsilon <= targetEpsilon) {
      hi = mid;
      hiResult = midResult;
    } else lo = mid;
  }
  return { noiseMultiplier: hi, epsilon: hiResult.epsilon, order: hiResult.order };
}

export interface GaussianCalibrationInput {
  epsilon: number;
  delta: number;
  q: number;
  steps: number;
  orders?: readonly number[];
}

/** The smallest z (to 1e-9 relative) for which `steps` rounds of the subsampled Gaussian at rate q spend at most `epsilon` at `delta`. */
export function calibrateNoiseMultiplier(input: GaussianCalibrationInput): CalibrationResult {
  const { epsilon, delta, q, steps, orders } = input;
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`"steps" expected an integer >= 1, got ${steps}`);
  if (!(q > 0 && q <= 1)) throw new RangeError(`"q" expected a number in (0, 1], got ${q}`);
  if (!(delta > 0 && delta < 1)) throw new RangeError(`"delta" expected a number in (0, 1), got ${delta}`);
  return calibrateNoise(epsilon, (z) => computeEpsilon({ q, noiseMultiplier: z, steps, delta, ...(orders ? { orders } : {}) }));
}

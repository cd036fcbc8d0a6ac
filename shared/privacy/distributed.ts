/**
 * Accounting for integer noise: the (distributed) discrete Gaussian. The sum of n
 * independent N_Z(0, σ²) shares is *not* exactly N_Z(0, nσ²); Kairouz, Liu, Steinke 2021
 * (Theorem 1 and Proposition 14 / Eq. 17) bound the Rényi divergence of the summed
 * mechanism by the discrete-Gaussian one plus a slack
 *   τ = 10 · Σ_{k=1}^{n-1} exp(-2π² σ² · k/(k+1)),
 * giving, per step and order α, with Δ₂, Δ₁ the L2/L1 sensitivities on the integer grid:
 *   ε(α) = min{ α Δ₂²/(2nσ²) + τ d,
 *               α/2 · (Δ₂²/(nσ²) + 2 τ Δ₁/sqrt(nσ²) + τ² d),
 *               α/2 · (Δ₂/sqrt(nσ²) + τ sqrt(d))² }.
 * With n = 1 the slack is 0 and this is the discrete Gaussian's exact Gaussian-like RDP
 * (Canonne, Kamath, Steinke 2020, Prop. 5). Poisson subsampling of this general mechanism
 * uses the bound of Zhu, Wang 2019 ("Poisson Subsampled Rényi Differential Privacy",
 * Theorem 9) at integer orders; a fractional order takes the value at its ceiling, which is
 * an upper bound since RDP is non-decreasing in the order.
 */
import { DEFAULT_RDP_ORDERS, epsilonFromRdp, logAdd, type EpsilonResult } from './rdp.ts';

/** The slack τ of Kairouz et al. 2021, Theorem 1, for `shares` summed N_Z(0, localVariance). */
export function distributedSlack(localVariance: number, shares: number): number {
  if (!(localVariance > 0) || !Number.isFinite(localVariance)) throw new RangeError(`"localVariance" expected a finite number > 0, got ${localVariance}`);
  if (!Number.isInteger(shares) || shares < 1) throw new RangeError(`"shares" expected an integer >= 1, got ${shares}`);
  let tau = 0;
  for (let k = 1; k < shares; k++) tau += Math.exp(-2 * Math.PI * Math.PI * localVariance * (k / (k + 1)));
  return 10 * tau;
}

export interface DistributedGaussianInput {
  /** L2 sensitivity on the integer grid (after scaling and rounding). */
  l2Sensitivity: number;
  /** L1 sensitivity on the grid; defaults to Δ₂ · min(sqrt(d), Δ₂) (integer vectors have ‖x‖₁ ≤ ‖x‖₂²). */
  l1Sensitivity?: number;
  /** Variance parameter σ² of each share's discrete Gaussian, in grid units. */
  localVariance: number;
  /** Number of shares whose noise is counted (the t survivors; 1 for central or local noise). */
  shares: number;
  /** Dimension d of the noised vector (after padding). */
  dimension: number;
  /** Poisson sampling rate; 1 unless sampling is verified. */
  q: number;
  steps: number;
  delta: number;
  orders?: readonly number[];
}

function validate(input: DistributedGaussianInput): { l1: number; tau: number } {
  const { l2Sensitivity, localVariance, shares, dimension, q, steps } = input;
  if (!(l2Sensitivity > 0) || !Number.isFinite(l2Sensitivity)) throw new RangeError(`"l2Sensitivity" expected a finite number > 0, got ${l2Sensitivity}`);
  if (!Number.isInteger(dimension) || dimension < 1) throw new RangeError(`"dimension" expected an integer >= 1, got ${dimension}`);
  if (!(q >= 0 && q <= 1)) throw new RangeError(`"q" expected a number in [0, 1], got ${q}`);
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError(`"steps" expected an integer >= 0, got ${steps}`);
  const l1 = input.l1Sensitivity ?? l2Sensitivity * Math.min(Math.sqrt(dimension), l2Sensitivity);
  if (!(l1 > 0) || !Number.isFinite(l1)) throw new RangeError(`"l1Sensitivity" expected a finite number > 0, got ${l1}`);
  return { l1, tau: distributedSlack(localVariance, shares) };
}

/** Per-step RDP at `order` without subsampling (Kairouz et al. 2021, Prop. 14). */
function stepRdp(order: number, l2Scale: number, l1Scale: number, tau: number, dimension: number): number {
  const a = (order / 2) * l2Scale * l2Scale + tau * dimension;
  const b = (order / 2) * (l2Scale * l2Scale + 2 * l1Scale * tau + tau * tau * dimension);
  const root = l2Scale + Math.sqrt(dimension) * tau;
  const c = (order / 2) * root * root;
  return Math.min(a, b, c);
}

/** Zhu & Wang 2019, Theorem 9: RDP at integer order α of the Poisson-subsampled mechanism with per-step RDP `eps`. */
function subsampledRdp(order: number, q: number, eps: (l: number) => number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let sum = (order - 1) * log1mQ + Math.log1p((order - 1) * q);
  let logBinom = Math.log(order) + Math.log(order - 1) - Math.LN2; // log C(α, 2)
  sum = logAdd(sum, logBinom + 2 * logQ + (order - 2) * log1mQ + eps(2));
  for (let l = 3; l <= order; l++) {
    logBinom += Math.log(order - l + 1) - Math.log(l);
    sum = logAdd(sum, Math.log(3) + logBinom + l * logQ + (order - l) * log1mQ + (l - 1) * eps(l));
  }
  return sum / (order - 1);
}

/** RDP of `steps` rounds of the (subsampled) distributed discrete Gaussian, at each order. */
export function rdpDistributedDiscreteGaussian(input: DistributedGaussianInput): Float64Array {
  const { l1, tau } = validate(input);
  const orders = input.orders ?? DEFAULT_RDP_ORDERS;
  const totalStd = Math.sqrt(input.shares * input.localVariance);
  const l2Scale = input.l2Sensitivity / totalStd;
  const l1Scale = l1 / totalStd;
  const eps = (order: number): number => stepRdp(order, l2Scale, l1Scale, tau, input.dimension);
  const { q, steps } = input;
  return Float64Array.from(orders, (order) => {
    if (!(order > 1)) throw new RangeError(`"orders" expected values > 1, got ${order}`);
    if (q === 0 || steps === 0) return 0;
    const full = eps(order);
    if (q === 1) return steps * full;
    const integerOrder = Math.ceil(order);
    const sub = integerOrder >= 2 ? subsampledRdp(integerOrder, q, eps) : Infinity;
    return steps * Math.min(full, sub);
  });
}

/** Epsilon at `delta` of the distributed discrete Gaussian (slack included). */
export function distributedEpsilon(input: DistributedGaussianInput): EpsilonResult {
  const orders = input.orders ?? DEFAULT_RDP_ORDERS;
  return epsilonFromRdp(orders, rdpDistributedDiscreteGaussian(input), input.delta);
}

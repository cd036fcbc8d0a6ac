/**
 * Rényi-DP accountant for the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang
 * 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism": Sec. 3.2 for
 * integer orders, the series of Sec. 3.3 for fractional ones), composed over steps and
 * converted to (epsilon, delta) with Canonne, Kamath, Steinke 2020, Prop. 12 — the same
 * computation and default orders as Google's dp_accounting RdpAccountant (0.4 and later).
 * All sums are in log space; fractional-order terms are added in absolute value, which can
 * only over-estimate the divergence (never under-report epsilon).
 */

/** dp_accounting's default orders: 1.1, 1.2, ..., 10.9, then 11..63, 128, 256, 512, 1024. */
export const DEFAULT_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 53 }, (_, i) => 11 + i),
  128,
  256,
  512,
  1024,
]);

/** log(exp(a) + exp(b)). */
export function logAdd(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (lo === -Infinity) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/** erf(x) for 0 <= x <= 3 from the all-positive series e^{-x²} Σ (2x²)^n x / (1·3···(2n+1)). */
function erfSeries(x: number): number {
  const x2 = 2 * x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= x2 / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x * x) * sum;
}

/** log(erfc(x)) for x >= 2.5 via the continued fraction erfc(x) = e^{-x²}/sqrt(pi) · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))). */
function logErfcContinuedFraction(x: number): number {
  // Modified Lentz evaluation of x + K(a_k / x) with a_k = k/2.
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    d = x + a * d;
    d = d === 0 ? tiny : d;
    c = x + a / c;
    c = c === 0 ? tiny : c;
    d = 1 / d;
    const step = c * d;
    f *= step;
    if (Math.abs(step - 1) < 1e-16) break;
  }
  return -x * x - LOG_SQRT_PI - Math.log(f);
}

/** log(erfc(x)) accurate to ~1e-12 relative for all real x, including deep in the tails. */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) {
    // erfc(x) = 2 - erfc(-x)
    const tail = Math.exp(logErfc(-x));
    return Math.LN2 + Math.log1p(-tail / 2);
  }
  if (x < 2.5) return Math.log1p(-erfSeries(x));
  return logErfcContinuedFraction(x);
}

function checkRate(q: number): void {
  if (typeof q !== 'number' || !(q >= 0 && q <= 1)) throw new RangeError(`"q" expected a number in [0, 1], got ${q}`);
}
function checkNoise(z: number): void {
  if (typeof z !== 'number' || !(z >= 0) || Number.isNaN(z)) throw new RangeError(`"noiseMultiplier" expected a number >= 0, got ${z}`);
}

/** log A_alpha for integer alpha (Mironov et al. 2019, Sec. 3.2): Σ_i C(α,i) q^i (1-q)^{α-i} exp((i² - i)/(2σ²)). */
function logAInt(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logA = -Infinity;
  let logBinom = 0; // log C(alpha, 0)
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const s = logBinom + i * logQ + (alpha - i) * log1mQ + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

const MAX_FRACTIONAL_TERMS = 1000;

/**
 * log A_alpha for fractional alpha (Mironov et al. 2019, Sec. 3.3): the integral split at
 * z0 = σ² log(1/q - 1) + 1/2 into two binomial series with Gaussian tail factors. Terms
 * whose binomial coefficient is negative are added in absolute value (an upper bound).
 * Returns +Infinity (the order is then useless, never optimistic) if it does not converge.
 */
function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const sqrt2Sigma = Math.SQRT2 * sigma;
  let logAbsBinom = 0; // log |C(alpha, 0)|
  let lastS0 = -Infinity;
  let lastS1 = -Infinity;
  for (let i = 0; i < MAX_FRACTIONAL_TERMS; i++) {
    if (i > 0) logAbsBinom += Math.log(Math.abs(alpha - i + 1)) - Math.log(i);
    const j = alpha - i;
    const logT0 = logAbsBinom + i * logQ + j * log1mQ;
    const logT1 = logAbsBinom + j * logQ + i * log1mQ;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / sqrt2Sigma);
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / sqrt2Sigma);
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    logA0 = logAdd(logA0, logS0);
    logA1 = logAdd(logA1, logS1);
    const total = logAdd(logA0, logA1);
    if (logS0 < lastS0 && logS1 < lastS1 && Math.max(logS0, logS1) < total - 30) return total;
    lastS0 = logS0;
    lastS1 = logS1;
  }
  return Infinity;
}

/** RDP at one order of one step of the Poisson-subsampled Gaussian with sampling rate q and noise multiplier z. */
export function rdpSubsampledGaussianAt(q: number, noiseMultiplier: number, order: number): number {
  checkRate(q);
  checkNoise(noiseMultiplier);
  if (!(order > 1)) throw new RangeError(`"order" expected a number > 1, got ${order}`);
  if (q === 0) return 0;
  if (noiseMultiplier === 0 || order === Infinity) return Infinity;
  if (q === 1) return order / (2 * noiseMultiplier * noiseMultiplier);
  const logA = Number.isInteger(order) ? logAInt(q, noiseMultiplier, order) : logAFrac(q, noiseMultiplier, order);
  return logA / (order - 1);
}

/** RDP of `steps` compositions of the Poisson-subsampled Gaussian, at each order. */
export function rdpSubsampledGaussian(q: number, noiseMultiplier: number, steps: number, orders: readonly number[] = DEFAULT_RDP_ORDERS): Float64Array {
  checkSteps(steps);
  return Float64Array.from(orders, (order) => steps * rdpSubsampledGaussianAt(q, noiseMultiplier, order));
}

function checkSteps(steps: number): void {
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError(`"steps" expected an integer >= 0, got ${steps}`);
}

export interface EpsilonResult {
  epsilon: number;
  /** The order at which the conversion was tightest (0 when delta = 0 and the RDP is all zero). */
  order: number;
}

/**
 * (epsilon, delta) from RDP curves (Canonne, Kamath, Steinke 2020, Prop. 12):
 * epsilon = min over orders α > 1.01 of  rdp(α) + log1p(-1/α) - log(δ α) / (α - 1),
 * and epsilon = 0 where the KL bound already gives δ (δ² > 1 - exp(-rdp)).
 */
export function epsilonFromRdp(orders: readonly number[], rdp: ArrayLike<number>, delta: number): EpsilonResult {
  if (typeof delta !== 'number' || !(delta >= 0 && delta <= 1)) throw new RangeError(`"delta" expected a number in [0, 1], got ${delta}`);
  if (orders.length !== rdp.length) throw new RangeError(`"rdp" expected ${orders.length} entries, got ${rdp.length}`);
  if (delta === 0) {
    for (let i = 0; i < rdp.length; i++) if (rdp[i] !== 0) return { epsilon: Infinity, order: 0 };
    return { epsilon: 0, order: 0 };
  }
  let best = Infinity;
  let bestOrder = orders[0] ?? 0;
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i] as number;
    const r = rdp[i] as number;
    if (!(a >= 1)) throw new RangeError(`"orders[${i}]" expected a number >= 1, got ${a}`);
    if (!(r >= 0)) throw new RangeError(`"rdp[${i}]" expected a number >= 0, got ${r}`);
    let eps: number;
    if (delta * delta + Math.expm1(-r) > 0) eps = 0;
    else if (a > 1.01) eps = r + Math.log1p(-1 / a) - Math.log(delta * a) / (a - 1);
    else eps = Infinity;
    if (eps < best) {
      best = eps;
      bestOrder = a;
    }
  }
  return { epsilon: Math.max(0, best), order: bestOrder };
}

export interface GaussianAccountingInput {
  q: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
  orders?: readonly number[];
}

/** Epsilon of `steps` rounds of the Poisson-subsampled Gaussian at the given delta. */
export function computeEpsilon(input: GaussianAccountingInput): EpsilonResult {
  const orders = input.orders ?? DEFAULT_RDP_ORDERS;
  return epsilonFromRdp(orders, rdpSubsampledGaussian(input.q, input.noiseMultiplier, input.steps, orders), input.delta);
}

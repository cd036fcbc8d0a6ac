/**
 * SecAgg+ parameters: neighbour degree k and Shamir threshold t from the cohort size n, the tolerated
 * dropout rate delta and the tolerated colluding fraction gamma (Bell et al. 2020, Sec. 3, the
 * conditions on a "good" graph; Bonawitz et al. 2017, Sec. 4 and 6, for the complete graph), and the
 * 32-bit overflow headroom of the masked sum. Each client u shares its secrets among the m = k + 1
 * holders {u} + N(u) (as Bonawitz et al. share among all n users including u itself). Formulas and
 * what they simplify are in docs/secagg.md.
 */
import { checkGraphDegree } from './graph.ts';

export const SMALL_COHORT = 20;
export const DEFAULT_SECURITY_BITS = 40;
export const DEFAULT_CORRECTNESS_BITS = 20;

export interface ParameterRequest {
  /** Cohort size (clients selected for the round). */
  readonly n: number;
  /** Fraction of clients that may drop over the whole round, in [0, 1). */
  readonly dropoutRate: number;
  /** Fraction of clients that may collude with the coordinator, in [0, 1). */
  readonly corruptFraction: number;
  /** sigma: the privacy failure probability is at most 2^-sigma (default 40). */
  readonly securityBits?: number;
  /** eta: the abort probability at the stated dropout rate is at most 2^-eta (default 20). */
  readonly correctnessBits?: number;
  /** Round-config override of the degree; validated. */
  readonly k?: number;
  /** Round-config override of the threshold; validated. */
  readonly t?: number;
}

export interface SecAggParameters {
  readonly n: number;
  readonly k: number;
  readonly t: number;
  readonly completeGraph: boolean;
  readonly regime: 'complete-graph-worst-case' | 'random-graph-tail-bounds';
  readonly dropoutRate: number;
  readonly corruptFraction: number;
  readonly securityBits: number;
  readonly correctnessBits: number;
  /** Upper bound on the probability that some client ends with fewer than t live holders at this dropout rate. */
  readonly abortProbabilityBound: number;
  readonly overridden: boolean;
}

function checkFraction(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`"${name}" expected a number, got ${typeof value}`);
  if (!Number.isFinite(value) || value < 0 || value >= 1) throw new RangeError(`"${name}" expected a number in [0, 1), got ${value}`);
  return value;
}

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`"${name}" expected a number, got ${typeof value}`);
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`"${name}" expected an integer in [${min}, ${max}], got ${value}`);
  return value;
}

/** P[Bin(trials, q) >= atLeast], summed exactly in log space (terms below ~1e-308 vanish, harmlessly). */
export function binomialUpperTail(trials: number, q: number, atLeast: number): number {
  if (atLeast <= 0) return 1;
  if (atLeast > trials) return 0;
  if (q <= 0) return 0;
  if (q >= 1) return 1;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logChoose = 0;
  for (let i = 1; i <= atLeast; i++) logChoose += Math.log(trials - i + 1) - Math.log(i);
  let sum = 0;
  for (let i = atLeast; i <= trials; i++) {
    if (i > atLeast) logChoose += Math.log(trials - i + 1) - Math.log(i);
    sum += Math.exp(logChoose + i * logQ + (trials - i) * log1mQ);
  }
  return Math.min(1, sum);
}

/** ceil with a tolerance, so 0.3 * 10 = 3.0000000000000004 counts as 3. */
function ceilCount(x: number): number {
  return Math.ceil(x - 1e-9);
}

interface Context {
  n: number;
  delta: number;
  gamma: number;
  sigma: number;
  eta: number;
}

/**
 * Complete graph, worst case: at most C = ceil(gamma n) colluders and D = ceil(delta n) dropouts, all
 * possibly among u's holders. Security (honest holders cannot be split into two groups of t that
 * reveal both of u's secrets, counting colluders in both): 2t > m + C. Correctness: t <= m - D.
 */
function completeGraphThreshold(ctx: Context): { t: number; maxDrops: number; corrupt: number } {
  const m = ctx.n;
  const corrupt = Math.min(ctx.n - 1, ceilCount(ctx.gamma * ctx.n));
  return { t: Math.floor((m + corrupt) / 2) + 1, maxDrops: ceilCount(ctx.delta * ctx.n), corrupt };
}

/** Smallest t in (m/2, k] with P[Bin(k, gamma) >= 2t - m] <= 2^-sigma / n (union bound over clients). */
function randomGraphThreshold(ctx: Context, k: number): number | undefined {
  const m = k + 1;
  const budget = 2 ** -ctx.sigma / ctx.n;
  for (let t = Math.floor(m / 2) + 1; t <= k; t++) {
    if (binomialUpperTail(k, ctx.gamma, 2 * t - m) <= budget) return t;
  }
  return undefined;
}

/** n (gamma + delta)^k <= 2^-sigma: no honest survivor loses every neighbour (isolation, the dominant disconnection event). */
function isolationBoundHolds(ctx: Context, k: number): boolean {
  const q = ctx.gamma + ctx.delta;
  return q === 0 || Math.log2(ctx.n) + k * Math.log2(q) <= -ctx.sigma;
}

/** n * P[Bin(k, delta) > k - t]: some client (dropped or not) is left with fewer than t live holders. */
function randomGraphAbortBound(ctx: Context, k: number, t: number): number {
  return Math.min(1, ctx.n * binomialUpperTail(k, ctx.delta, k - t + 1));
}

function result(ctx: Context, k: number, t: number, overridden: boolean): SecAggParameters {
  const completeGraph = k === ctx.n - 1;
  let abortProbabilityBound: number;
  if (completeGraph) {
    abortProbabilityBound = t <= ctx.n - ceilCount(ctx.delta * ctx.n) ? 0 : 1;
  } else {
    abortProbabilityBound = randomGraphAbortBound(ctx, k, t);
  }
  return {
    n: ctx.n,
    k,
    t,
    completeGraph,
    regime: completeGraph ? 'complete-graph-worst-case' : 'random-graph-tail-bounds',
    dropoutRate: ctx.delta,
    corruptFraction: ctx.gamma,
    securityBits: ctx.sigma,
    correctnessBits: ctx.eta,
    abortProbabilityBound,
    overridden,
  };
}

function chooseComplete(ctx: Context): SecAggParameters {
  const { t, maxDrops, corrupt } = completeGraphThreshold(ctx);
  const m = ctx.n;
  if (t > m - maxDrops || t > ctx.n - 1) {
    throw new RangeError(
      `"dropoutRate" ${ctx.delta} with "corruptFraction" ${ctx.gamma} is infeasible for n=${ctx.n}: ` +
        `security needs t >= ${t} (2t > m + C with m=${m}, C=${corrupt}) but ${maxDrops} dropouts leave only ${m - maxDrops} holders`,
    );
  }
  return result(ctx, ctx.n - 1, t, false);
}

function chooseDegree(ctx: Context): SecAggParameters {
  if (ctx.n <= SMALL_COHORT) return chooseComplete(ctx);
  const budget = 2 ** -ctx.eta;
  for (let k = minimumDegree(ctx.n); k < ctx.n - 1; k += 2) {
    if (!isolationBoundHolds(ctx, k)) continue;
    const t = randomGraphThreshold(ctx, k);
    if (t === undefined) continue;
    if (randomGraphAbortBound(ctx, k, t) <= budget) return result(ctx, k, t, false);
  }
  return chooseComplete(ctx);
}

/** Floor of ceil(log2 n), rounded up to even: a degree-O(log n) random graph, never a ring even at zero risk. */
export function minimumDegree(n: number): number {
  const k = Math.max(2, Math.ceil(Math.log2(n)));
  return k % 2 === 0 ? k : k + 1;
}

function validateOverride(ctx: Context, k: number, tOverride: number | undefined): SecAggParameters {
  checkGraphDegree(ctx.n, k);
  const complete = k === ctx.n - 1;
  if (!complete && k < minimumDegree(ctx.n)) {
    throw new RangeError(`"k" = ${k} is below the minimum degree ${minimumDegree(ctx.n)} (ceil(log2 n), even) for n=${ctx.n}`);
  }
  if (!complete && !isolationBoundHolds(ctx, k)) {
    throw new RangeError(
      `"k" = ${k} is unsafe for n=${ctx.n}: n (corruptFraction + dropoutRate)^k = ` +
        `2^${(Math.log2(ctx.n) + k * Math.log2(ctx.gamma + ctx.delta)).toFixed(1)} exceeds 2^-${ctx.sigma}`,
    );
  }
  const minimum = complete ? completeGraphThreshold(ctx).t : randomGraphThreshold(ctx, k);
  if (minimum === undefined || minimum > k) {
    throw new RangeError(`"k" = ${k} is unsafe for n=${ctx.n}, corruptFraction=${ctx.gamma}: no threshold t <= k keeps colluders below 2t - k - 1 with probability 1 - 2^-${ctx.sigma}`);
  }
  const t = tOverride ?? minimum;
  checkInteger('t', t, 1, ctx.n);
  if (t < minimum) {
    throw new RangeError(
      `"t" = ${t} is unsafe for k=${k}, n=${ctx.n}, corruptFraction=${ctx.gamma}: need t >= ${minimum} ` +
        (complete ? '(2t > k + 1 + ceil(corruptFraction n))' : `(P[colluding neighbours >= 2t - k - 1] <= 2^-${ctx.sigma}/n)`),
    );
  }
  if (t > k) throw new RangeError(`"t" = ${t} exceeds k=${k}: a dropped client's key could never be reconstructed from its k neighbours`);
  return result(ctx, k, t, true);
}

/** Chooses (k, t) or validates a round-config override; every refusal names the field. */
export function chooseParameters(request: ParameterRequest): SecAggParameters {
  const ctx: Context = {
    n: checkInteger('n', request.n, 3, 1_000_000),
    delta: checkFraction('dropoutRate', request.dropoutRate),
    gamma: checkFraction('corruptFraction', request.corruptFraction),
    sigma: checkInteger('securityBits', request.securityBits ?? DEFAULT_SECURITY_BITS, 1, 256),
    eta: checkInteger('correctnessBits', request.correctnessBits ?? DEFAULT_CORRECTNESS_BITS, 1, 256),
  };
  if (ctx.gamma >= 0.5) throw new RangeError(`"corruptFraction" expected below 0.5 (an honest majority of holders), got ${ctx.gamma}`);
  if (request.k === undefined && request.t === undefined) return chooseDegree(ctx);
  const k = request.k ?? chooseDegree(ctx).k;
  if (request.k !== undefined) checkInteger('k', request.k, 2, ctx.n - 1);
  return validateOverride(ctx, k, request.t);
}

export interface OverflowHeadroom {
  readonly n: number;
  /** Largest |value| of one coordinate of one client's (noised, quantised) update. */
  readonly bound: number;
  /** n * bound: the largest |sum| of a coordinate. */
  readonly maxAbsSum: number;
  /** 2^31: centred decoding of a sum mod 2^32 is exact while |sum| < 2^31. */
  readonly limit: number;
  readonly headroomBits: number;
}

/** Checks that n clients' coordinates bounded by B cannot wrap mod 2^32: n * B < 2^31. */
export function checkOverflowHeadroom(n: number, bound: number): OverflowHeadroom {
  checkInteger('n', n, 1, Number.MAX_SAFE_INTEGER);
  if (typeof bound !== 'number') throw new TypeError(`"bound" expected a number, got ${typeof bound}`);
  if (!Number.isFinite(bound) || bound < 0) throw new RangeError(`"bound" expected a finite number >= 0, got ${bound}`);
  const limit = 2 ** 31;
  const maxAbsSum = n * bound;
  if (maxAbsSum >= limit) {
    throw new RangeError(
      `"bound" ${bound} times cohort n=${n} is ${maxAbsSum}, not below 2^31 = ${limit}: the sum mod 2^32 could wrap ` +
        `(reduce the clip / scale so bound < ${Math.floor((limit - 1) / n)})`,
    );
  }
  return { n, bound, maxAbsSum, limit, headroomBits: Math.log2(limit / Math.max(1, maxAbsSum)) };
}

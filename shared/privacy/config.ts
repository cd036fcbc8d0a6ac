/**
 * The privacy configuration of a round, validated when built (Flower's dp_fixed_clipping
 * style: every bad field fails up front, naming the field), and the noise sizing of the
 * four modes on the integer grid of Kairouz, Liu, Steinke 2021, Sec. 4:
 *   distributed: each client adds N_Z(0, (zΔ₂)²/t), so any t survivors' shares sum to
 *                variance (zΔ₂)² (more survivors only add noise);
 *   local:       each client adds N_Z(0, (zΔ₂)²) itself;
 *   central:     the server adds N_Z(0, (zΔ₂)²) to the sum (trusted server; explicit opt-in);
 *   none:        no noise, a baseline only (explicit opt-in; epsilon is reported as Infinity).
 * Δ₂ is the L2 sensitivity on the grid after scaling by 1/γ and conditional rounding.
 */
import { distributedEpsilon, rdpDistributedDiscreteGaussian } from './distributed.ts';
import { DEFAULT_RDP_ORDERS, type EpsilonResult } from './rdp.ts';
import { roundedNormBound } from './rounding.ts';
import { nextPowerOfTwo } from './rotation.ts';

export const PRIVACY_MODES = ['distributed', 'central', 'local', 'none'] as const;
export type PrivacyMode = (typeof PRIVACY_MODES)[number];

/** Bits of the secure-aggregation group Z_{2^32}. */
export const MODULUS_BITS = 32;
/** Kairouz et al. 2021 use beta = exp(-0.5) for conditional rounding in their experiments. */
export const DEFAULT_ROUNDING_BETA = Math.exp(-0.5);

export interface PrivacyConfigInput {
  mode?: PrivacyMode;
  /** L2 clipping norm C of a user's update. */
  clip: number;
  /** Target noise multiplier z: noise std of the released sum / its L2 sensitivity. Ignored (may be 0) for `none`. */
  noiseMultiplier: number;
  /** t: the minimum number of survivors whose noise is counted (the SecAgg threshold). */
  minSurvivors: number;
  delta: number;
  /** Number of users who could ever take part; delta must be below 1/population. */
  population: number;
  /** Length d of the flattened update. */
  dimension: number;
  /** Poisson sampling rate q of users per round; default 1. */
  samplingRate?: number;
  /** True only when selection is verifiably Poisson at `samplingRate`; otherwise rounds are accounted with q = 1. */
  poissonSampling?: boolean;
  /** Expected clients per round, for the default granularity; default `minSurvivors`. */
  expectedClients?: number;
  /** Grid step γ in update units; default `defaultGranularity`. */
  granularity?: number;
  /** Conditional-rounding parameter beta in [0, 1); 0 is plain randomised rounding. */
  roundingBeta?: number;
  /** Random Hadamard rotation before rounding; default true. */
  rotation?: boolean;
  /** Server-side opt-ins: `central` and `none` are refused without them. */
  allowCentral?: boolean;
  allowNone?: boolean;
}

export interface PrivacyConfig {
  readonly mode: PrivacyMode;
  readonly differentiallyPrivate: boolean;
  readonly clip: number;
  readonly noiseMultiplier: number;
  readonly minSurvivors: number;
  readonly delta: number;
  readonly population: number;
  readonly dimension: number;
  /** Dimension after padding for the rotation (a power of two), else `dimension`. */
  readonly paddedDimension: number;
  readonly rotation: boolean;
  readonly samplingRate: number;
  /** The q used by the accountant: `samplingRate` with verified Poisson sampling (and not local mode), else 1. */
  readonly accountingSamplingRate: number;
  readonly granularity: number;
  readonly roundingBeta: number;
  /** C/γ: the norm bound before rounding, in grid units. */
  readonly scaledClip: number;
  /** Δ₂: the L2 sensitivity on the grid after conditional rounding. */
  readonly l2Sensitivity: number;
  /** σ² of each client's discrete Gaussian, grid units (0 when clients add none). */
  readonly clientNoiseVariance: number;
  /** σ² of the server's discrete Gaussian on the sum, grid units (0 unless central). */
  readonly serverNoiseVariance: number;
  /** How many noise shares the accountant counts: t for distributed, else 1. */
  readonly noiseShares: number;
}

function finite(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`"${name}" expected a number, got ${typeof value}`);
  if (!Number.isFinite(value)) throw new RangeError(`"${name}" expected a finite number, got ${value}`);
  return value;
}
function positive(name: string, value: unknown): number {
  const v = finite(name, value);
  if (!(v > 0)) throw new RangeError(`"${name}" expected a number > 0, got ${v}`);
  return v;
}
function positiveInteger(name: string, value: unknown): number {
  const v = finite(name, value);
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`"${name}" expected an integer >= 1, got ${v}`);
  return v;
}
function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`"${name}" expected a boolean, got ${typeof value}`);
  return value;
}

/**
 * A grid step γ so that k = 4 standard deviations of an aggregated coordinate fit in
 * [-2^31, 2^31) (the heuristic of Kairouz et al. 2021, Sec. 4.2/4.4, with a rotated,
 * evenly spread signal of norm n·C over d coordinates), but no finer than C/(1000·sqrt(d)),
 * where the rounding inflation of the sensitivity is already below 0.1 %.
 */
export function defaultGranularity(params: { mode: PrivacyMode; clip: number; noiseMultiplier: number; minSurvivors: number; expectedClients: number; paddedDimension: number; rotation: boolean }): number {
  const { mode, clip, noiseMultiplier: z, minSurvivors: t, expectedClients: n, paddedDimension: d, rotation } = params;
  const signal = rotation ? (n * clip) / Math.sqrt(d) : n * clip;
  const noiseVariance = mode === 'distributed' ? (n / t) * (z * clip) ** 2 : mode === 'local' ? n * (z * clip) ** 2 : mode === 'central' ? (z * clip) ** 2 : 0;
  const k = 4;
  const half = 2 ** (MODULUS_BITS - 1);
  const headroom = half - k * Math.sqrt(n);
  if (!(headroom > 0)) throw new RangeError(`"expectedClients" ${n} is too large for ${MODULUS_BITS}-bit aggregation`);
  const fit = (k * Math.sqrt(signal * signal + noiseVariance)) / headroom;
  return Math.max(fit, clip / (1000 * Math.sqrt(d)));
}

/** Validates `input` and derives the noise sizing; throws TypeError/RangeError naming the field. */
export function buildPrivacyConfig(input: PrivacyConfigInput): PrivacyConfig {
  if (typeof input !== 'object' || input === null) throw new TypeError('"privacy" expected an object');
  const mode = input.mode ?? 'distributed';
  if (!(PRIVACY_MODES as readonly string[]).includes(mode)) throw new RangeError(`"mode" expected one of ${PRIVACY_MODES.join(', ')}, got ${String(mode)}`);
  const allowCentral = flag('allowCentral', input.allowCentral, false);
  const allowNone = flag('allowNone', input.allowNone, false);
  if (mode === 'central' && !allowCentral) throw new RangeError('"mode" central requires the server to opt in with "allowCentral" (trusted-server setting)');
  if (mode === 'none' && !allowNone) throw new RangeError('"mode" none (no differential privacy) requires "allowNone"; it is for baselines only');

  const clip = positive('clip', input.clip);
  const noiseMultiplier = mode === 'none' ? finite('noiseMultiplier', input.noiseMultiplier ?? 0) : positive('noiseMultiplier', input.noiseMultiplier);
  if (noiseMultiplier < 0) throw new RangeError(`"noiseMultiplier" expected a number >= 0, got ${noiseMultiplier}`);
  const minSurvivors = positiveInteger('minSurvivors', input.minSurvivors);
  const population = positiveInteger('population', input.population);
  const delta = finite('delta', input.delta);
  if (!(delta > 0 && delta < 1 / population)) throw new RangeError(`"delta" expected a number in (0, 1/population = ${1 / population}), got ${delta}`);
  const dimension = positiveInteger('dimension', input.dimension);
  const samplingRate = input.samplingRate === undefined ? 1 : finite('samplingRate', input.samplingRate);
  if (!(samplingRate > 0 && samplingRate <= 1)) throw new RangeError(`"samplingRate" expected a number in (0, 1], got ${samplingRate}`);
  const poissonSampling = flag('poissonSampling', input.poissonSampling, false);
  const expectedClients = input.expectedClients === undefined ? minSurvivors : positiveInteger('expectedClients', input.expectedClients);
  if (expectedClients < minSurvivors) throw new RangeError(`"expectedClients" expected at least minSurvivors = ${minSurvivors}, got ${expectedClients}`);
  const roundingBeta = input.roundingBeta === undefined ? DEFAULT_ROUNDING_BETA : finite('roundingBeta', input.roundingBeta);
  if (!(roundingBeta >= 0 && roundingBeta < 1)) throw new RangeError(`"roundingBeta" expected a number in [0, 1), got ${roundingBeta}`);
  const rotation = flag('rotation', input.rotation, true);
  const paddedDimension = rotation ? nextPowerOfTwo(dimension) : dimension;
  const granularity =
    input.granularity === undefined
      ? defaultGranularity({ mode, clip, noiseMultiplier, minSurvivors, expectedClients, paddedDimension, rotation })
      : positive('granularity', input.granularity);

  const scaledClip = clip / granularity;
  const l2Sensitivity = roundedNormBound(scaledClip, paddedDimension, roundingBeta);
  const fullVariance = (noiseMultiplier * l2Sensitivity) ** 2;
  const clientNoiseVariance = mode === 'distributed' ? fullVariance / minSurvivors : mode === 'local' ? fullVariance : 0;
  const serverNoiseVariance = mode === 'central' ? fullVariance : 0;
  if (clientNoiseVariance >= 2 ** 60 || serverNoiseVariance >= 2 ** 60) throw new RangeError(`"granularity" ${granularity} makes the grid noise variance exceed 2^60; use a coarser grid`);
  // A DP mode whose noise squares to 0 (z = 1e-300 underflows) adds none, and the accountant cannot count it.
  if (mode !== 'none' && !(clientNoiseVariance + serverNoiseVariance > 0)) throw new RangeError(`"noiseMultiplier" ${noiseMultiplier} gives a grid noise variance of 0 (it underflows): no noise would be added`);
  const accountingSamplingRate = poissonSampling && mode !== 'local' ? samplingRate : 1;

  return Object.freeze({
    mode,
    differentiallyPrivate: mode !== 'none',
    clip,
    noiseMultiplier,
    minSurvivors,
    delta,
    population,
    dimension,
    paddedDimension,
    rotation,
    samplingRate,
    accountingSamplingRate,
    granularity,
    roundingBeta,
    scaledClip,
    l2Sensitivity,
    clientNoiseVariance,
    serverNoiseVariance,
    noiseShares: mode === 'distributed' ? minSurvivors : 1,
  });
}

/** The noise variance (grid units) a single noise share contributes for this config: the client's, or the server's in central mode. */
function shareVariance(config: PrivacyConfig): number {
  return config.mode === 'central' ? config.serverNoiseVariance : config.clientNoiseVariance;
}

/** The accountant's view of `rounds` rounds run with a DP `config`. */
function accountingOf(config: PrivacyConfig, rounds: number) {
  return {
    l2Sensitivity: config.l2Sensitivity,
    localVariance: shareVariance(config),
    shares: config.noiseShares,
    dimension: config.paddedDimension,
    q: config.accountingSamplingRate,
    steps: rounds,
    delta: config.delta,
  };
}

/**
 * The noise a round with `config` adds, as the ledger records and the accountant reads it: the
 * sensitivity, the variance of one noise share (the server's in central mode, each device's
 * otherwise), how many shares the sum counts, and the padded dimension.
 */
export function accountedNoise(config: PrivacyConfig): { l2Sensitivity: number; shareVariance: number; shares: number; paddedDimension: number } {
  return {
    l2Sensitivity: config.l2Sensitivity,
    shareVariance: config.mode === 'central' ? config.serverNoiseVariance : config.clientNoiseVariance,
    shares: config.noiseShares,
    paddedDimension: config.paddedDimension,
  };
}

/**
 * Standard deviation, in update units, of the noise on each coordinate of a decoded sum of
 * `contributors` privatised updates: every contributor's discrete Gaussian share (distributed:
 * σ² each, so more survivors than t only add noise; local: the full σ² each), or the server's
 * (central), plus each contributor's randomised rounding, whose variance is at most 1/4 grid
 * unit² per coordinate (Kairouz, Liu, Steinke 2021, Sec. 4.1); the rotation is orthonormal, so
 * it keeps the per-coordinate variance. 0 for `none`.
 */
export function releasedNoiseStd(config: PrivacyConfig, contributors: number): number {
  if (!config.differentiallyPrivate) return 0;
  const noise = config.mode === 'central' ? config.serverNoiseVariance : contributors * config.clientNoiseVariance;
  return config.granularity * Math.sqrt(noise + contributors / 4);
}

/** RDP of `rounds` rounds run with `config` (Infinity everywhere for `none`). */
export function roundsRdp(config: PrivacyConfig, rounds: number, orders: readonly number[] = DEFAULT_RDP_ORDERS): Float64Array {
  if (!config.differentiallyPrivate) return new Float64Array(orders.length).fill(rounds === 0 ? 0 : Infinity);
  return rdpDistributedDiscreteGaussian({ ...accountingOf(config, rounds), orders });
}

/** (epsilon, delta) after `rounds` rounds with `config`, slack of the summed discrete Gaussians included. */
export function roundsEpsilon(config: PrivacyConfig, rounds: number): EpsilonResult {
  if (!config.differentiallyPrivate) return { epsilon: rounds === 0 ? 0 : Infinity, order: 0 };
  return distributedEpsilon(accountingOf(config, rounds));
}

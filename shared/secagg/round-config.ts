/**
 * A federated round's SecAgg+ settings, checked when the round is launched and again when its cohort
 * is known: (k, t) from `chooseParameters` (Bell et al. 2020, Sec. 3; overrides validated there) and
 * the 32-bit overflow headroom of the masked sum (Bonawitz et al. 2017, Sec. 3: inputs live in
 * Z_R and the sum must not wrap). A client's coordinate is the conditionally rounded update, whose L2
 * norm (hence every coordinate) is at most Delta_2 (Kairouz, Liu, Steinke 2021, Sec. 4.1), plus its
 * discrete Gaussian noise, which is sigma-subgaussian (Canonne, Kamath, Steinke 2020, Sec. 2), so
 * |noise| <= tau sigma except with probability 2 exp(-tau^2 / 2), union-bounded over the coordinates.
 */
import { ProtocolError } from '../protocol/errors.ts';
import type { PrivacyConfig } from '../privacy/config.ts';
import { checkOverflowHeadroom, chooseParameters, type OverflowHeadroom, type SecAggParameters } from './parameters.ts';

/** The overflow check's failure probability over all coordinates of one round: 2^-40. */
export const OVERFLOW_FAILURE_BITS = 40;

export interface SecAggRoundOptions {
  readonly k?: number;
  readonly t?: number;
  readonly dropoutRate: number;
  readonly corruptFraction: number;
}

/** tau with 2 d exp(-tau^2 / 2) <= 2^-bits: no coordinate's noise exceeds tau sigma except with that probability. */
export function noiseTailMultiplier(dimension: number, bits = OVERFLOW_FAILURE_BITS): number {
  return Math.sqrt(2 * (Math.log(2 * dimension) + bits * Math.LN2));
}

/** Largest |value| of one coordinate of one client's residue vector (grid units), before reduction mod 2^32. */
export function perClientBound(privacy: PrivacyConfig): number {
  const tau = noiseTailMultiplier(privacy.paddedDimension);
  return Math.ceil(privacy.l2Sensitivity) + Math.ceil(tau * Math.sqrt(privacy.clientNoiseVariance));
}

/**
 * n clients' residues, plus the server's noise in central mode, cannot wrap mod 2^32. Refuses with the
 * numbers (INVALID_ARGUMENT) so an operator sees what to change.
 */
export function checkSumHeadroom(privacy: PrivacyConfig, n: number): OverflowHeadroom {
  const perClient = perClientBound(privacy);
  const serverTail = Math.ceil(noiseTailMultiplier(privacy.paddedDimension) * Math.sqrt(privacy.serverNoiseVariance));
  // The server's noise is one more term of the sum; spread it over the n clients' share of the bound.
  const bound = perClient + Math.ceil(serverTail / n);
  try {
    return checkOverflowHeadroom(n, bound);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new ProtocolError(
      'INVALID_ARGUMENT',
      `"secagg" overflow: cohort n=${n} x per-client bound ${bound} (Delta_2=${Math.ceil(privacy.l2Sensitivity)} grid units from clip ${privacy.clip} / granularity ${privacy.granularity.toPrecision(4)}, ` +
        `noise tail ${noiseTailMultiplier(privacy.paddedDimension).toFixed(2)} sigma with sigma=${Math.sqrt(privacy.clientNoiseVariance).toFixed(1)}) = ${n * bound} >= 2^31 = ${2 ** 31}: ` +
        `the masked sum could wrap; use fewer clients per round, a smaller clip or a coarser granularity`,
    );
  }
}

/** (k, t) for a cohort of n; a bad override becomes INVALID_ARGUMENT naming `secagg.<field>`. */
export function roundParameters(options: SecAggRoundOptions, n: number): SecAggParameters {
  try {
    return chooseParameters({
      n,
      dropoutRate: options.dropoutRate,
      corruptFraction: options.corruptFraction,
      ...(options.k !== undefined ? { k: options.k } : {}),
      ...(options.t !== undefined ? { t: options.t } : {}),
    });
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) {
      throw new ProtocolError('INVALID_ARGUMENT', err.message.replace(/^"([A-Za-z]+)"/, (_m, field: string) => `"secagg.${field === 'n' ? 'cohort' : field}"`));
    }
    throw err;
  }
}

/** The launch-time check: parameters exist for the largest cohort and its sum has 32-bit headroom. */
export function checkRoundSecAgg(options: SecAggRoundOptions, clientsPerRound: number, privacy: PrivacyConfig | null): { parameters: SecAggParameters; headroom: OverflowHeadroom | null } {
  const parameters = roundParameters(options, clientsPerRound);
  if (privacy === null || !privacy.differentiallyPrivate) {
    throw new ProtocolError('INVALID_ARGUMENT', '"secagg" on needs integer updates from a DP mode (distributed, central or local)');
  }
  return { parameters, headroom: checkSumHeadroom(privacy, clientsPerRound) };
}

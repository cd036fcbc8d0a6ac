/**
 * The privacy record of a round and the deployment's running epsilon. Per round: the RDP of the
 * (subsampled) distributed discrete Gaussian actually run, counting t survivors' noise only
 * (Kairouz, Liu, Steinke 2021, Theorem 1 / Prop. 14, slack included), or the discrete Gaussian
 * of the one noise share in central/local mode. Cumulative: RDP composes additively over every
 * round whose sum was released, whatever its own delta (Mironov 2017, Prop. 1), converted with
 * Canonne, Kamath, Steinke 2020, Prop. 12. A round that released nothing spends nothing.
 */
import { DEFAULT_RDP_ORDERS, epsilonFromRdp } from '../../shared/privacy/rdp.ts';
import { spendRdp } from '../../shared/ledger/accountant.ts';
import type { PrivacyConfig } from '../../shared/privacy/config.ts';
import type { PrivacySpec, RoundPrivacyRecord, RoundRecord } from '../../shared/protocol/messages.ts';

/**
 * The record at launch: parameters only, nothing spent yet; `none` is marked as such from the
 * start, and so is a round launched with secure aggregation.
 */
export function pendingPrivacyRecord(spec: PrivacySpec | null, secagg = false): RoundPrivacyRecord {
  const p = spec ?? { mode: 'none' as const, clip: 0, noiseMultiplier: 0, delta: 0, t: 0, population: 0 };
  return {
    mode: p.mode,
    differentiallyPrivate: p.mode !== 'none',
    clip: p.clip,
    noiseMultiplier: p.noiseMultiplier,
    t: p.t,
    delta: p.delta,
    population: p.population,
    q: null,
    samplingMethod: null,
    dimension: null,
    paddedDimension: null,
    granularity: null,
    l2Sensitivity: null,
    shareVariance: null,
    shares: null,
    released: false,
    epsilonRound: null,
    epsilonCumulative: null,
    order: null,
    secagg: secagg ? 'on' : 'off',
  };
}

/** The record once the round's config is fixed (after selection), still unspent. */
export function configuredPrivacyRecord(spec: PrivacySpec, config: PrivacyConfig, samplingMethod: 'fixed' | 'poisson' | null, secagg = false): RoundPrivacyRecord {
  const base = pendingPrivacyRecord(spec, secagg);
  if (!config.differentiallyPrivate) return { ...base, samplingMethod, dimension: config.dimension };
  return {
    ...base,
    q: config.accountingSamplingRate,
    samplingMethod,
    dimension: config.dimension,
    paddedDimension: config.paddedDimension,
    granularity: config.granularity,
    l2Sensitivity: config.l2Sensitivity,
    shareVariance: config.mode === 'central' ? config.serverNoiseVariance : config.clientNoiseVariance,
    shares: config.noiseShares,
  };
}

/** One released round's RDP at each default order, from what its record holds. */
export function recordRdp(record: RoundPrivacyRecord): Float64Array | null {
  if (!record.released || !record.differentiallyPrivate) return null;
  const { l2Sensitivity, shareVariance, shares, paddedDimension, q } = record;
  if (l2Sensitivity === null || shareVariance === null || shares === null || paddedDimension === null || q === null) return null;
  // The same per-round curve the ledger records and `audit verify` recomputes.
  return spendRdp({ outcome: 'released', mode: record.mode, q, delta: record.delta, l2Sensitivity, shareVariance, shares, paddedDimension });
}

/**
 * Per-round RDP curves of finished rounds, by round id: a finished round's privacy record never
 * changes, and one curve costs about 1.5 ms (about 150 orders), so a deployment with thousands of
 * rounds would otherwise recompute seconds of curves at every release.
 */
export type RdpCache = Map<number, Float64Array | null>;

/**
 * Marks `record` released and fills in its epsilon and the cumulative epsilon over `history`
 * (the deployment's other rounds; every released one counts, as in the ledger). Curves of
 * finished rounds are taken from `cache` when given, and added to it.
 */
export function releasedPrivacyRecord(record: RoundPrivacyRecord, history: readonly RoundRecord[], roundId: number, cache?: RdpCache): RoundPrivacyRecord {
  const released = { ...record, released: true };
  const own = recordRdp(released);
  if (!own) return released;
  const orders = DEFAULT_RDP_ORDERS;
  const total = Float64Array.from(own);
  // A model released without DP voids every guarantee after it: the cumulative epsilon is
  // unbounded (null), as in the ledger.
  let unbounded = false;
  for (const r of history) {
    if (r.id === roundId) continue;
    if (r.status === 'committed' && (!r.privacy || !r.privacy.differentiallyPrivate)) unbounded = true;
    if (!r.privacy) continue;
    const finished = r.status === 'committed' || r.status === 'aborted';
    let rdp = finished ? cache?.get(r.id) : undefined;
    if (rdp === undefined) {
      rdp = recordRdp(r.privacy);
      if (finished) cache?.set(r.id, rdp);
    }
    if (rdp) for (let i = 0; i < total.length; i++) total[i] = (total[i] as number) + (rdp[i] as number);
  }
  const round = epsilonFromRdp(orders, own, record.delta);
  const cumulative = epsilonFromRdp(orders, total, record.delta);
  return { ...released, epsilonRound: round.epsilon, epsilonCumulative: unbounded ? null : cumulative.epsilon, order: unbounded ? null : cumulative.order };
}

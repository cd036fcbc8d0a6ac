/**
 * The epsilon a round will spend, for the REST API's round records before they spend it: the
 * dashboard warns about a round whose epsilon per round is large while it is still pending or
 * running, not only once it is spent. Once the round's config is fixed (after selection) its own
 * privacy record holds what the release will account (the q actually used); before that it is
 * projected from the launch spec as the launch's budget check projects it
 * (server/ledger/budget.ts, unknown q counted as 1, so never an under-count). RDP of one round,
 * converted at the round's delta (Canonne, Kamath, Steinke 2020, Prop. 12), as the release does
 * in server/rounds/accounting.ts.
 */
import { spendRdp } from '../../shared/ledger/accountant.ts';
import { DEFAULT_RDP_ORDERS, epsilonFromRdp } from '../../shared/privacy/rdp.ts';
import { roundDimension } from '../../shared/protocol/messages.ts';
import type { RoundRecord } from '../../shared/protocol/messages.ts';
import { projectedRoundRdp } from '../ledger/budget.ts';

/** Spec projections kept; a launch of many rounds shares one spec, so a few cover every pending round. */
const SPEC_CACHE_SIZE = 64;

/**
 * Projected epsilon per round, by round. A pending round's projection depends only on its spec
 * and the model's dimension, and is cached by them: GET /api/v1/rounds polls every pending round
 * every few seconds, and one projection costs about 0.4 ms at q < 1.
 */
export class EpsilonProjections {
  private readonly bySpec = new Map<string, number | null>();

  constructor(private readonly dimension: () => number) {}

  /**
   * For a round still to release a sum (pending, or running and not yet released): the epsilon
   * it spends if released, at its own delta; null without DP (unbounded). Undefined for a round
   * that has finished or released, whose record already says what it spent.
   */
  of(record: RoundRecord): number | null | undefined {
    if (record.status === 'committed' || record.status === 'aborted' || record.privacy?.released) return undefined;
    const p = record.privacy;
    if (p && !p.differentiallyPrivate) return null;
    if (p && p.l2Sensitivity !== null && p.shareVariance !== null && p.shares !== null && p.paddedDimension !== null && p.q !== null) {
      const rdp = spendRdp({ outcome: 'released', mode: p.mode, q: p.q, delta: p.delta, l2Sensitivity: p.l2Sensitivity, shareVariance: p.shareVariance, shares: p.shares, paddedDimension: p.paddedDimension }, DEFAULT_RDP_ORDERS);
      return rdp === null ? null : epsilonFromRdp(DEFAULT_RDP_ORDERS, rdp, p.delta).epsilon;
    }
    return this.fromSpec(record.config);
  }

  private fromSpec(spec: RoundRecord['config']): number | null {
    const dimension = roundDimension(spec, this.dimension());
    const key = JSON.stringify([dimension, spec.privacy, spec.selection, spec.samplingRate, spec.clientsPerRound]);
    const cached = this.bySpec.get(key);
    if (cached !== undefined) return cached;
    const rdp = projectedRoundRdp(spec, dimension, DEFAULT_RDP_ORDERS);
    const epsilon = rdp === null || !spec.privacy ? null : epsilonFromRdp(DEFAULT_RDP_ORDERS, rdp, spec.privacy.delta).epsilon;
    if (this.bySpec.size >= SPEC_CACHE_SIZE) this.bySpec.delete(this.bySpec.keys().next().value as string);
    this.bySpec.set(key, epsilon);
    return epsilon;
  }
}

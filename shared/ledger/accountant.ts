/**
 * The ledger's accountant: a round's RDP curve from the parameters its entry records, and the
 * running total. RDP composes additively over rounds (Mironov 2017, Prop. 1) whatever each
 * round's delta, so the cumulative curve sums every released round; it is converted to
 * (epsilon, delta) with Canonne, Kamath, Steinke 2020, Prop. 12. A round's curve is the
 * (Poisson-subsampled) distributed discrete Gaussian counting t survivors' noise only
 * (Kairouz, Liu, Steinke 2021, Theorem 1 / Prop. 14; Zhu, Wang 2019, Theorem 9), as in
 * server/rounds/accounting.ts. The same code runs on the coordinator and in `audit verify`.
 */
import { rdpDistributedDiscreteGaussian } from '../privacy/distributed.ts';
import { DEFAULT_RDP_ORDERS, epsilonFromRdp } from '../privacy/rdp.ts';
import type { RoundSpend } from './entry.ts';

export const ACCOUNTANT_METHOD = 'rdp: subsampled distributed discrete Gaussian (Kairouz-Liu-Steinke 2021 Thm 1, Zhu-Wang 2019 Thm 9), conversion Canonne-Kamath-Steinke 2020 Prop 12';
export const LEDGER_ORDERS: readonly number[] = DEFAULT_RDP_ORDERS;

export type SpendParams = Pick<RoundSpend, 'outcome' | 'mode' | 'q' | 'delta' | 'l2Sensitivity' | 'shareVariance' | 'shares' | 'paddedDimension'>;

/**
 * The RDP one round spent at each order: zeros when nothing was released, null when a sum
 * was released without differential privacy (unbounded).
 */
export function spendRdp(spend: SpendParams, orders: readonly number[] = LEDGER_ORDERS): Float64Array | null {
  if (spend.outcome === 'aborted') return new Float64Array(orders.length);
  if (spend.mode === 'none') return null;
  const { l2Sensitivity, shareVariance, shares, paddedDimension, q } = spend;
  if (l2Sensitivity === null || shareVariance === null || shares === null || paddedDimension === null || q === null) {
    throw new RangeError('a released DP round needs "l2Sensitivity", "shareVariance", "shares", "paddedDimension" and "q"');
  }
  return rdpDistributedDiscreteGaussian({ l2Sensitivity, localVariance: shareVariance, shares, dimension: paddedDimension, q, steps: 1, delta: spend.delta, orders });
}

/** A running RDP total; null once any release was unbounded. */
export class RdpTotal {
  private total: Float64Array | null;

  constructor(readonly orders: readonly number[] = LEDGER_ORDERS) {
    this.total = new Float64Array(orders.length);
  }

  get curve(): Float64Array | null {
    return this.total ? Float64Array.from(this.total) : null;
  }

  add(rdp: ArrayLike<number> | null): void {
    if (!this.total) return;
    if (rdp === null) {
      this.total = null;
      return;
    }
    if (rdp.length !== this.orders.length) throw new RangeError(`"rdp" expected ${this.orders.length} entries, got ${rdp.length}`);
    for (let i = 0; i < rdp.length; i++) this.total[i] = (this.total[i] as number) + (rdp[i] as number);
  }

  /** Epsilon at delta of the total plus `extra` (a projection); null when unbounded. */
  epsilon(delta: number, extra?: ArrayLike<number> | null): { epsilon: number; order: number } | null {
    if (!this.total || extra === null) return null;
    const sum = Float64Array.from(this.total);
    if (extra) for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (extra[i] as number);
    return epsilonFromRdp(this.orders, sum, delta);
  }
}

/** Equal up to relative 1e-9 (a verifier on another JS engine may differ in the last bits of exp/log). */
export function nearlyEqual(a: number | null, b: number | null): boolean {
  if (a === null || b === null) return a === b;
  if (a === b) return true;
  return Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));
}

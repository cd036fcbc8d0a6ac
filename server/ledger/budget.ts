/**
 * The budgets at launch: the epsilon the ledger has spent plus every pending round and the rounds
 * asked for, each projected at full release with the privacy config the runner would build (q
 * from a stated Poisson rate, else 1), must stay within the deployment cap and within the
 * launch's own `epsilonCap`, or the launch is refused before anything runs, naming the projected
 * epsilon and the cap it passes. RDP adds over rounds (Mironov 2017, Prop. 1); the projection
 * over-counts rather than under-counts (unknown q counts as 1).
 */
import { spendRdp } from '../../shared/ledger/accountant.ts';
import { buildPrivacyConfig } from '../../shared/privacy/config.ts';
import type { BudgetCap } from '../../shared/ledger/bundle.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import type { RoundSpec } from '../../shared/protocol/messages.ts';
import { privacyInput } from '../../shared/protocol/privacy.ts';
import type { RoundStore } from '../storage/stores.ts';
import type { PrivacyLedger } from './ledger.ts';

/** RDP of one round of `spec` if released; null when unbounded (no DP). */
export function projectedRoundRdp(spec: RoundSpec, dimension: number, orders: readonly number[]): Float64Array | null {
  const p = spec.privacy;
  if (!p || p.mode === 'none') return null;
  const selection = spec.selection === 'poisson' && spec.samplingRate !== undefined ? { method: 'poisson' as const, rate: spec.samplingRate } : null;
  const config = buildPrivacyConfig(privacyInput(p, dimension, selection, spec.clientsPerRound, { allowCentral: true, allowNone: true }));
  return spendRdp(
    {
      outcome: 'released',
      mode: p.mode,
      q: config.accountingSamplingRate,
      delta: p.delta,
      l2Sensitivity: config.l2Sensitivity,
      shareVariance: config.mode === 'central' ? config.serverNoiseVariance : config.clientNoiseVariance,
      shares: config.noiseShares,
      paddedDimension: config.paddedDimension,
    },
    orders,
  );
}

export interface LaunchProjection {
  spent: number | null;
  projected: number | null;
  cap: { epsilon: number; delta: number } | null;
}

/**
 * Throws BUDGET_EXCEEDED with the projected epsilon when the launch would exceed the deployment
 * cap or its own `epsilonCap` (at its rounds' delta). Returns the projection against the
 * deployment cap, or the launch's when the deployment has none.
 */
export async function checkLaunchBudget(ledger: PrivacyLedger, rounds: RoundStore, spec: RoundSpec, count: number, dimension: number): Promise<LaunchProjection> {
  const own: BudgetCap | null = spec.epsilonCap !== undefined && spec.privacy ? { epsilon: spec.epsilonCap, delta: spec.privacy.delta } : null;
  const caps = [[ledger.cap, 'deployment'], [own, 'launch']] as const;
  if (!ledger.cap && !own) return { spent: null, projected: null, cap: null };
  const orders = ledger.orders;
  const extra = new Float64Array(orders.length);
  let unbounded = false;
  const add = (s: RoundSpec, times: number) => {
    const rdp = projectedRoundRdp(s, dimension, orders);
    if (rdp === null) unbounded = true;
    else for (let i = 0; i < extra.length; i++) extra[i] = (extra[i] as number) + times * (rdp[i] as number);
  };
  const waiting = (await rounds.list(Number.MAX_SAFE_INTEGER)).filter((r) => r.status === 'pending' || r.status === 'running');
  for (const r of waiting) add(r.config, 1);
  add(spec, count);
  let first: LaunchProjection | null = null;
  for (const [cap, kind] of caps) {
    if (!cap) continue;
    const spent = ledger.epsilon(cap.delta);
    const projected = unbounded ? null : ledger.epsilon(cap.delta, extra);
    if (projected === null || projected > cap.epsilon) {
      const what = `launching ${count} round(s)${waiting.length > 0 ? ` after ${waiting.length} pending` : ''}`;
      throw new ProtocolError(
        'BUDGET_EXCEEDED',
        `privacy budget: ${what} would bring cumulative epsilon to ${projected === null ? 'unbounded (no differential privacy)' : projected.toFixed(4)} at delta ${cap.delta}, above the ${kind === 'deployment' ? 'deployment cap' : "launch's cap"} of ${cap.epsilon} (spent so far: ${spent === null ? 'unbounded' : spent.toFixed(4)})`,
      );
    }
    first ??= { spent, projected, cap };
  }
  return first as LaunchProjection;
}

/**
 * Checks the budget and creates the rounds as one step on the ledger's queue (`exclusive`): two
 * launches that each fit alone cannot both pass the check before either has stored its rounds (the
 * store is async; a networked one would interleave them), and no release is appended in between.
 */
export function launchWithinBudget<T>(ledger: PrivacyLedger, rounds: RoundStore, spec: RoundSpec, count: number, dimension: number, create: () => Promise<T>): Promise<T> {
  return ledger.exclusive(async () => {
    await checkLaunchBudget(ledger, rounds, spec, count, dimension);
    return create();
  });
}

/**
 * The budgets at launch: the epsilon the ledger has spent plus every pending round and the rounds
 * asked for, each projected at full release with the privacy config the runner would build (q
 * from a stated Poisson rate, else 1), must stay within the deployment cap and within the
 * launch's own `epsilonCap`, or the launch is refused before anything runs, naming the projected
 * epsilon and the cap it passes. RDP adds over rounds (Mironov 2017, Prop. 1); the projection
 * over-counts rather than under-counts (unknown q counts as 1).
 */
import { spendRdp } from '../../shared/ledger/accountant.ts';
import { accountedNoise, buildPrivacyConfig } from '../../shared/privacy/config.ts';
import type { BudgetCap } from '../../shared/ledger/bundle.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import { roundDimension } from '../../shared/protocol/messages.ts';
import type { LaunchBudget, RoundSpec } from '../../shared/protocol/messages.ts';
import { privacyInput } from '../../shared/protocol/privacy.ts';
import type { RoundStore } from '../storage/stores.ts';
import { passedCap } from './ledger.ts';
import type { PrivacyLedger } from './ledger.ts';

/**
 * RDP of one round of `spec` if released; null when unbounded (no DP). A spec the accountant
 * cannot project (a round stored before launch ranges were checked, e.g. a noise multiplier of
 * 1e-300 whose noise variance is 0) counts as an infinite spend at every order: an over-count,
 * never an under-count, and never an internal error for every later launch that projects it.
 */
export function projectedRoundRdp(spec: RoundSpec, modelParameters: number, orders: readonly number[]): Float64Array | null {
  try {
    // An analytics round's vector is its query's, not the model's.
    const rdp = accountedProjection(spec, roundDimension(spec, modelParameters), orders);
    if (rdp === null || rdp.every((v) => v >= 0)) return rdp;
  } catch (err) {
    if (!(err instanceof RangeError || err instanceof TypeError)) throw err;
  }
  return new Float64Array(orders.length).fill(Infinity);
}

function accountedProjection(spec: RoundSpec, dimension: number, orders: readonly number[]): Float64Array | null {
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
      ...accountedNoise(config),
    },
    orders,
  );
}

/**
 * Throws BUDGET_EXCEEDED with the projected epsilon when the launch would exceed the deployment
 * cap or its own `epsilonCap` (at its rounds' delta), naming the cap and, when the projection is
 * unbounded, what makes it so. Returns the projection against each cap there is.
 */
export async function checkLaunchBudget(ledger: PrivacyLedger, rounds: RoundStore, spec: RoundSpec, count: number, dimension: number): Promise<LaunchBudget[]> {
  const own: BudgetCap | null = spec.epsilonCap !== undefined && spec.privacy ? { epsilon: spec.epsilonCap, delta: spec.privacy.delta } : null;
  if (!ledger.cap && !own) return [];
  const orders = ledger.orders;
  const extra = new Float64Array(orders.length);
  let unboundedBy: string | null = null;
  const add = (s: RoundSpec, times: number, who: string) => {
    const rdp = projectedRoundRdp(s, dimension, orders);
    if (rdp === null) unboundedBy ??= who;
    else for (let i = 0; i < extra.length; i++) extra[i] = (extra[i] as number) + times * (rdp[i] as number);
  };
  const waiting = await rounds.unfinished();
  for (const r of waiting) add(r.config, 1, `round ${r.id}, ${r.status}, runs without differential privacy`);
  add(spec, count, 'these rounds run without differential privacy');
  const projections = ledger.capProjections(unboundedBy === null ? extra : null, own);
  const over = passedCap(projections);
  if (over) {
    const what = `launching ${count} round(s)${waiting.length > 0 ? ` after ${waiting.length} pending` : ''}`;
    const to = over.projected !== null ? over.projected.toFixed(4) : `unbounded (${unboundedBy ?? 'a model was released without differential privacy'})`;
    throw new ProtocolError(
      'BUDGET_EXCEEDED',
      `privacy budget: ${what} would bring cumulative epsilon to ${to} at delta ${over.cap.delta}, above the ${over.kind === 'deployment' ? 'deployment cap' : "launch's cap"} of ${over.cap.epsilon} (spent so far: ${over.spent === null ? 'unbounded' : over.spent.toFixed(4)})`,
    );
  }
  return projections;
}

/**
 * Checks the budget and creates the rounds as one step on the ledger's queue (`exclusive`), and
 * returns them with the projections (the launch reply's `budget`): two launches that each fit
 * alone cannot both pass the check before either has stored its rounds (the store is async; a
 * networked one would interleave them), and no release is appended in between.
 */
export function launchWithinBudget<T>(ledger: PrivacyLedger, rounds: RoundStore, spec: RoundSpec, count: number, dimension: number, create: () => Promise<T>): Promise<{ created: T; budget: LaunchBudget[] }> {
  return ledger.exclusive(async () => {
    const budget = await checkLaunchBudget(ledger, rounds, spec, count, dimension);
    return { created: await create(), budget };
  });
}

/** The pure round state: check-in, selection (fixed and Poisson, seeded), admission checks, dropouts and closing. */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../../shared/features/seeded-random.ts';
import { ProtocolError } from '../../../shared/protocol/errors.ts';
import { parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import { abortRound, acceptUpdate, checkIn, checkinComplete, closeTraining, commitRound, declineRound, dropClient, openRound, selectCohort, trainingComplete } from '../../../shared/protocol/round.ts';
import type { RoundState } from '../../../shared/protocol/round.ts';

const nonce = (i: number) => `nonce-${String(i).padStart(12, '0')}`;

/** Selection randomness from the project's seeded PRNG (tests only; production uses crypto). */
function seeded(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  return 'ok';
}

function checkedIn(n: number, spec = parseLaunchRequest({ clientsPerRound: 3, minClients: 2, privacy: { mode: 'local' } }).spec): RoundState {
  let s = openRound(5, 1, spec, 0);
  for (let i = 0; i < n; i++) s = checkIn(s, `client-${i}`, 5, nonce(i), 10);
  return s;
}

describe('round state', () => {
  it('selects a fixed-size uniform cohort and records the rate', () => {
    const s = selectCohort(checkedIn(6), seeded(1), 100);
    expect(s.stage).toBe('training');
    expect(s.cohort.size).toBe(3);
    expect([...s.cohort].every((c) => s.checkedIn.has(c))).toBe(true);
    expect(s.selection).toEqual({ method: 'fixed', rate: 0.5 });
    expect(s.stageEndsAt).toBe(100 + s.spec.deadlines.trainingMs);
    // Different randomness, different cohorts (over several seeds at least two differ).
    const cohorts = new Set([1, 2, 3, 4, 5].map((seed) => [...selectCohort(checkedIn(6), seeded(seed), 0).cohort].sort().join()));
    expect(cohorts.size).toBeGreaterThan(1);
  });

  it('samples Poisson at the given or derived rate', () => {
    const spec = parseLaunchRequest({ clientsPerRound: 50, minClients: 1, selection: 'poisson', samplingRate: 0.25 }).spec;
    const s = selectCohort(checkedIn(400, spec), seeded(9), 0);
    expect(s.selection).toEqual({ method: 'poisson', rate: 0.25 });
    expect(s.cohort.size).toBeGreaterThan(70);
    expect(s.cohort.size).toBeLessThan(130);
    const derived = parseLaunchRequest({ clientsPerRound: 10, minClients: 1, selection: 'poisson' }).spec;
    expect(selectCohort(checkedIn(40, derived), seeded(3), 0).selection?.rate).toBe(0.25);
  });

  it('aborts at selection below minClients, saying why', () => {
    const s = selectCohort(checkedIn(1), seeded(1), 0);
    expect(s.stage).toBe('aborted');
    expect(s.reason).toMatch(/too few clients: 1 selected of 1 checked in, fewer than minClients 2/);
  });

  it('refuses bad check-ins and updates by code', () => {
    const open = checkedIn(3);
    expect(codeOf(() => checkIn(open, 'x', 4, nonce(99), 10))).toBe('STALE_ROUND');
    expect(codeOf(() => checkIn(open, 'x', 6, nonce(99), 10))).toBe('UNKNOWN_ROUND');
    expect(codeOf(() => checkIn(open, 'x', 5, nonce(0), 10))).toBe('REPLAYED_MESSAGE');
    expect(codeOf(() => checkIn(open, 'x', 5, nonce(99), open.stageEndsAt))).toBe('DEADLINE_PASSED');
    // A decline stands: the same client cannot then check in (nor decline twice once checked in).
    const declined = declineRound(open, 'x', 5, nonce(97), 10);
    expect(codeOf(() => checkIn(declined, 'x', 5, nonce(98), 10))).toBe('DUPLICATE_UPDATE');
    expect(codeOf(() => declineRound(open, 'client-0', 5, nonce(96), 10))).toBe('DUPLICATE_UPDATE');
    expect(declined.checkedIn.has('x')).toBe(false);
    expect(codeOf(() => acceptUpdate(open, 'client-0', 5, nonce(50), 10))).toBe('WRONG_STAGE');
    const training = selectCohort(checkedIn(4), seeded(2), 20);
    const outside = [...training.checkedIn].find((c) => !training.cohort.has(c)) as string;
    const inside = [...training.cohort][0] as string;
    expect(codeOf(() => checkIn(training, 'late', 5, nonce(60), 30))).toBe('WRONG_STAGE');
    expect(codeOf(() => acceptUpdate(training, outside, 5, nonce(61), 30))).toBe('NOT_IN_COHORT');
    expect(codeOf(() => acceptUpdate(training, inside, 5, nonce(62), training.stageEndsAt))).toBe('DEADLINE_PASSED');
    const once = acceptUpdate(training, inside, 5, nonce(63), 30);
    expect(codeOf(() => acceptUpdate(once, inside, 5, nonce(63), 31))).toBe('REPLAYED_MESSAGE');
    expect(codeOf(() => acceptUpdate(once, inside, 5, nonce(64), 31))).toBe('DUPLICATE_UPDATE');
    const dropped = dropClient(training, inside);
    expect(codeOf(() => acceptUpdate(dropped, inside, 5, nonce(65), 31))).toBe('NOT_IN_COHORT');
    // Refusals leave the state untouched (pure functions).
    expect(training.reported.size).toBe(0);
  });

  it('closes check-in early when every connected client is in, and training when all reported or dropped', () => {
    const s = checkedIn(3);
    expect(checkinComplete(s, 10, 4)).toBe(false);
    expect(checkinComplete(s, 10, 3)).toBe(true);
    expect(checkinComplete(s, s.stageEndsAt, 10)).toBe(true);
    let t = selectCohort(s, seeded(4), 20);
    const [a, b, c] = [...t.cohort] as [string, string, string];
    t = acceptUpdate(t, a, 5, nonce(70), 21);
    t = acceptUpdate(t, b, 5, nonce(71), 21);
    expect(trainingComplete(t, 22)).toBe(false);
    t = dropClient(t, c);
    expect(trainingComplete(t, 22)).toBe(true);
    const agg = closeTraining(t);
    expect(agg.stage).toBe('aggregating');
    expect(commitRound(agg).stage).toBe('committed');
    expect(codeOf(() => commitRound(commitRound(agg)))).toBe('INVALID_TRANSITION');
    expect(codeOf(() => abortRound(commitRound(agg), 'late'))).toBe('INVALID_TRANSITION');
  });

  it('aborts when too few updates arrive', () => {
    let t = selectCohort(checkedIn(3), seeded(4), 20);
    t = acceptUpdate(t, [...t.cohort][0] as string, 5, nonce(80), 21);
    const closed = closeTraining(t);
    expect(closed.stage).toBe('aborted');
    expect(closed.reason).toBe('too few updates: 1 of 3 selected clients reported (0 dropped), fewer than minClients 2');
  });

  it('validates launch requests naming the field', () => {
    expect(() => parseLaunchRequest({ clientsPerRound: 2, minClients: 3 })).toThrow(/"minClients" expected at most clientsPerRound/);
    expect(() => parseLaunchRequest({ clientsPerRound: -1 })).toThrow(/"clientsPerRound"/);
    expect(parseLaunchRequest({ clientsPerRound: 4, aggregation: { serverOptimizer: 'fedadam' } }).spec.aggregation.serverLearningRate).toBe(0.01);
  });

  it('defaults a distributed-DP round to 80% survivors, so each device adds noise for a realistic t', () => {
    // Distributed (the default mode): minClients and t are 80% of the cohort, not 2.
    const distributed = parseLaunchRequest({ clientsPerRound: 100 }).spec;
    expect(distributed).toMatchObject({ minClients: 80, privacy: { mode: 'distributed', t: 80 } });
    expect(parseLaunchRequest({ clientsPerRound: 4 }).spec).toMatchObject({ minClients: 3, privacy: { t: 3 } });
    // Explicit values win; modes that do not split noise across devices keep the floor of 2.
    expect(parseLaunchRequest({ clientsPerRound: 100, minClients: 50 }).spec).toMatchObject({ minClients: 50, privacy: { t: 50 } });
    expect(parseLaunchRequest({ clientsPerRound: 100, privacy: { mode: 'local' } }).spec.minClients).toBe(2);
    expect(parseLaunchRequest({ clientsPerRound: 100, privacy: { mode: 'none' } }).spec.minClients).toBe(2);
  });
});

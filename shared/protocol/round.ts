/**
 * One round's state and the pure functions that move it: check-in, cohort selection, update
 * admission, dropouts and closing. No I/O, no timers: the coordinator's runner feeds in messages
 * and the clock, sends what the state says, and aggregates the updates these functions admitted.
 * Every stage change goes through `assertTransition`, so only the table in stages.ts can happen.
 */
import { ProtocolError } from './errors.ts';
import type { RoundSpec } from './messages.ts';
import { assertTransition, isTerminal } from './stages.ts';
import type { RoundStage } from './stages.ts';

export interface Selection {
  method: 'fixed' | 'poisson';
  /** Probability each checked-in client was selected (for fixed: size / checked-in). */
  rate: number;
}

export interface RoundState {
  readonly roundId: number;
  readonly modelVersion: number;
  readonly spec: RoundSpec;
  readonly stage: RoundStage;
  /** When the current waiting stage ends (checkin, training), in ms on the runner's clock. */
  readonly stageEndsAt: number;
  readonly checkedIn: ReadonlySet<string>;
  /** Connected clients that answered check-in with a decline (e.g. no training examples): check-in need not wait for them. */
  readonly declined: ReadonlySet<string>;
  readonly cohort: ReadonlySet<string>;
  readonly reported: ReadonlySet<string>;
  readonly dropped: ReadonlySet<string>;
  readonly nonces: ReadonlySet<string>;
  readonly selection: Selection | null;
  readonly reason?: string;
}

export function openRound(roundId: number, modelVersion: number, spec: RoundSpec, now: number): RoundState {
  return {
    roundId,
    modelVersion,
    spec,
    stage: 'checkin',
    stageEndsAt: now + spec.deadlines.checkinMs,
    checkedIn: new Set(),
    declined: new Set(),
    cohort: new Set(),
    reported: new Set(),
    dropped: new Set(),
    nonces: new Set(),
    selection: null,
  };
}

function withAdded(set: ReadonlySet<string>, value: string): Set<string> {
  const out = new Set(set);
  out.add(value);
  return out;
}

function moveTo(state: RoundState, stage: RoundStage, patch: Partial<RoundState> = {}): RoundState {
  assertTransition(state.stage, stage);
  return { ...state, ...patch, stage };
}

/** Refuses a message for another round: older ids are stale, newer ones were never issued. */
export function checkRoundId(state: RoundState, roundId: number): void {
  if (roundId < state.roundId) throw new ProtocolError('STALE_ROUND', `round ${roundId} is over; the current round is ${state.roundId}`);
  if (roundId > state.roundId) throw new ProtocolError('UNKNOWN_ROUND', `round ${roundId} does not exist`);
  if (isTerminal(state.stage)) throw new ProtocolError('STALE_ROUND', `round ${roundId} is already ${state.stage}`);
}

function claimNonce(state: RoundState, nonce: string): Set<string> {
  if (state.nonces.has(nonce)) throw new ProtocolError('REPLAYED_MESSAGE', 'this message nonce was already used in this round');
  return withAdded(state.nonces, nonce);
}

export function checkIn(state: RoundState, clientId: string, roundId: number, nonce: string, now: number): RoundState {
  checkRoundId(state, roundId);
  const nonces = claimNonce(state, nonce);
  if (state.stage !== 'checkin') throw new ProtocolError('WRONG_STAGE', `round ${state.roundId} is in stage "${state.stage}", not accepting check-ins`);
  if (now >= state.stageEndsAt) throw new ProtocolError('DEADLINE_PASSED', `check-in for round ${state.roundId} has closed`);
  // A decline stands for the round: it is counted (by reason) on the record, and the device is never selected.
  if (state.declined?.has(clientId)) throw new ProtocolError('DUPLICATE_UPDATE', `this client declined round ${state.roundId}`);
  return { ...state, nonces, checkedIn: withAdded(state.checkedIn, clientId) };
}

/** Check-in may close early once every client the runner knows of has checked in. */
export function checkinComplete(state: RoundState, now: number, connectedClients: number): boolean {
  return state.stage === 'checkin' && (now >= state.stageEndsAt || (connectedClients > 0 && state.checkedIn.size + (state.declined?.size ?? 0) >= connectedClients));
}

/**
 * A connected client declines this round (it has nothing to train on): during check-in it is never
 * selected; once selected (it only found out on loading the model) it leaves the cohort as dropped,
 * so the round need not wait for its update.
 */
export function declineRound(state: RoundState, clientId: string, roundId: number, nonce: string, now: number): RoundState {
  checkRoundId(state, roundId);
  const nonces = claimNonce(state, nonce);
  if (state.stage === 'training' && state.cohort.has(clientId)) {
    if (state.reported.has(clientId)) throw new ProtocolError('DUPLICATE_UPDATE', `this client already sent its update for round ${state.roundId}`);
    return { ...state, nonces, dropped: withAdded(state.dropped, clientId) };
  }
  if (state.stage !== 'checkin') throw new ProtocolError('WRONG_STAGE', `round ${state.roundId} is in stage "${state.stage}", not accepting check-ins`);
  if (now >= state.stageEndsAt) throw new ProtocolError('DEADLINE_PASSED', `check-in for round ${state.roundId} has closed`);
  if (state.checkedIn.has(clientId)) throw new ProtocolError('DUPLICATE_UPDATE', `this client already checked in to round ${state.roundId}`);
  return { ...state, nonces, declined: withAdded(state.declined ?? new Set(), clientId) };
}

/**
 * Samples the cohort from the checked-in clients. Poisson: each independently with probability q
 * (the recorded rate, so a privacy accountant can claim amplification by sampling); fixed: a
 * uniformly random subset of `clientsPerRound`. `uniform` returns values in [0, 1) and is
 * injected (the coordinator passes a crypto-backed source). `connectedClients`, the devices
 * connected as check-in closes, lets an abort say that none was there at all.
 */
export function selectCohort(state: RoundState, uniform: () => number, now: number, connectedClients?: number): RoundState {
  const pool = [...state.checkedIn].sort();
  const { spec } = state;
  let cohort: string[];
  let rate: number;
  if (spec.selection === 'poisson') {
    rate = spec.samplingRate ?? (pool.length === 0 ? 1 : Math.min(1, spec.clientsPerRound / pool.length));
    cohort = pool.filter(() => uniform() < rate);
  } else {
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(uniform() * (i + 1));
      [pool[i], pool[j]] = [pool[j] as string, pool[i] as string];
    }
    cohort = pool.slice(0, spec.clientsPerRound);
    rate = pool.length === 0 ? 0 : cohort.length / pool.length;
  }
  const selection: Selection = { method: spec.selection, rate };
  if (cohort.length < spec.minClients) {
    return moveTo(state, 'aborted', {
      selection,
      cohort: new Set(cohort),
      reason:
        pool.length === 0 && connectedClients === 0
          ? `too few clients: no device was connected when check-in closed, fewer than minClients ${spec.minClients}`
          : `too few clients: ${cohort.length} selected of ${pool.length} checked in, fewer than minClients ${spec.minClients}`,
    });
  }
  return moveTo(state, 'training', { selection, cohort: new Set(cohort), stageEndsAt: now + spec.deadlines.trainingMs });
}

/** Admits one update (its weights are checked by the caller before this). */
export function acceptUpdate(state: RoundState, clientId: string, roundId: number, nonce: string, now: number): RoundState {
  checkRoundId(state, roundId);
  const nonces = claimNonce(state, nonce);
  if (state.stage !== 'training') throw new ProtocolError('WRONG_STAGE', `round ${state.roundId} is in stage "${state.stage}", not accepting updates`);
  if (!state.cohort.has(clientId)) throw new ProtocolError('NOT_IN_COHORT', `this client was not selected for round ${state.roundId}`);
  if (state.dropped.has(clientId)) throw new ProtocolError('NOT_IN_COHORT', `this client dropped out of round ${state.roundId}`);
  if (state.reported.has(clientId)) throw new ProtocolError('DUPLICATE_UPDATE', `this client already sent its update for round ${state.roundId}`);
  if (now >= state.stageEndsAt) throw new ProtocolError('DEADLINE_PASSED', `the update deadline of round ${state.roundId} has passed`);
  return { ...state, nonces, reported: withAdded(state.reported, clientId) };
}

/**
 * SecAgg+ rounds: a client's masked input is its update. The SecAgg+ session has already refused
 * replays, duplicates and late messages with its own codes, so no nonce is claimed here.
 */
export function markReported(state: RoundState, clientId: string): RoundState {
  if (state.stage !== 'training') throw new ProtocolError('WRONG_STAGE', `round ${state.roundId} is in stage "${state.stage}", not accepting updates`);
  if (!state.cohort.has(clientId)) throw new ProtocolError('NOT_IN_COHORT', `this client was not selected for round ${state.roundId}`);
  if (state.reported.has(clientId)) throw new ProtocolError('DUPLICATE_UPDATE', `this client already sent its update for round ${state.roundId}`);
  return { ...state, reported: withAdded(state.reported, clientId) };
}

/** A disconnect: before selection the client just leaves the pool; after, it counts as dropped. */
export function dropClient(state: RoundState, clientId: string): RoundState {
  if (state.stage === 'checkin' && (state.checkedIn.has(clientId) || state.declined?.has(clientId))) {
    const checkedIn = new Set(state.checkedIn);
    checkedIn.delete(clientId);
    const declined = new Set(state.declined);
    declined.delete(clientId);
    return { ...state, checkedIn, declined };
  }
  if (state.stage === 'training' && state.cohort.has(clientId) && !state.reported.has(clientId)) {
    return { ...state, dropped: withAdded(state.dropped, clientId) };
  }
  return state;
}

export function trainingComplete(state: RoundState, now: number): boolean {
  return state.stage === 'training' && (now >= state.stageEndsAt || state.reported.size + state.dropped.size >= state.cohort.size);
}

/** Ends collection: aggregate if at least minClients updates arrived, else abort saying why. */
export function closeTraining(state: RoundState): RoundState {
  const n = state.reported.size;
  if (n < state.spec.minClients) {
    return moveTo(state, 'aborted', {
      reason: `too few updates: ${n} of ${state.cohort.size} selected clients reported (${state.dropped.size} dropped), fewer than minClients ${state.spec.minClients}`,
    });
  }
  return moveTo(state, 'aggregating');
}

export function commitRound(state: RoundState): RoundState {
  return moveTo(state, 'committed');
}

export function abortRound(state: RoundState, reason: string): RoundState {
  return moveTo(state, 'aborted', { reason });
}

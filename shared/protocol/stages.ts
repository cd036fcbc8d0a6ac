/**
 * The round as a named state machine (after Flower's SecAgg+ workflow constants): stages,
 * the transition table, and stage deadlines as data. Every transition not in the table is
 * rejected with `INVALID_TRANSITION`.
 */
import { ProtocolError } from './errors.ts';

export const ROUND_STAGES = ['checkin', 'training', 'aggregating', 'committed', 'aborted'] as const;
export type RoundStage = (typeof ROUND_STAGES)[number];

export const TERMINAL_STAGES: readonly RoundStage[] = ['committed', 'aborted'];

/**
 * checkin → training once a cohort is selected; training → aggregating once enough updates are
 * in (all of the cohort, or the deadline); aggregating → committed once the new model version is
 * stored. Any stage but a terminal one may abort.
 */
export const TRANSITIONS: Readonly<Record<RoundStage, readonly RoundStage[]>> = {
  checkin: ['training', 'aborted'],
  training: ['aggregating', 'aborted'],
  aggregating: ['committed', 'aborted'],
  committed: [],
  aborted: [],
};

export function canTransition(from: RoundStage, to: RoundStage): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(from: RoundStage, to: RoundStage): RoundStage {
  if (!canTransition(from, to)) throw new ProtocolError('INVALID_TRANSITION', `round stage "${from}" cannot move to "${to}"`);
  return to;
}

export function isTerminal(stage: RoundStage): boolean {
  return TERMINAL_STAGES.includes(stage);
}

/** How long each waiting stage may last, in milliseconds. */
export interface StageDeadlines {
  checkinMs: number;
  trainingMs: number;
}

export const DEFAULT_DEADLINES: StageDeadlines = { checkinMs: 10_000, trainingMs: 60_000 };

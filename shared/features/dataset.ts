/**
 * What a dataset is to the rest of Portrait: users, each with their own events and optional
 * profile labels, plus the report of what cleaning dropped or repaired.
 */
import type { BehaviourEvent } from './events.ts';
import type { ProfileLabels } from './labels.ts';

export interface UserRecord {
  userId: string;
  /** Sorted by day (then ts). */
  events: BehaviourEvent[];
  labels: ProfileLabels;
}

/** Every count of rows cleaning dropped or repaired, by reason. Nothing vanishes silently. */
export interface CleaningReport {
  rowsRead: number;
  eventsKept: number;
  /** Dropped rows, by reason (e.g. `exactDuplicate`, `unknownItem`, `malformed`, `unknownUser`). */
  dropped: Record<string, number>;
  /** Repaired fields, by reason (e.g. `missingPrice`, `absurdPrice`: price removed, event kept). */
  repaired: Record<string, number>;
  /**
   * The first few 1-based line numbers of the dropped rows, by the same reasons as `dropped`, in
   * the file those rows come from; absent when the importer does not record them.
   */
  droppedLines?: Record<string, number[]>;
}

export interface Dataset {
  name: string;
  /** First day with data (UTC days since epoch); window offsets count from here. */
  startDay: number;
  /** Number of days covered. */
  days: number;
  users: UserRecord[];
  cleaning: CleaningReport;
}

export function emptyCleaningReport(): CleaningReport {
  return { rowsRead: 0, eventsKept: 0, dropped: {}, repaired: {} };
}

export function countInto(counts: Record<string, number>, reason: string, n = 1): void {
  counts[reason] = (counts[reason] ?? 0) + n;
}

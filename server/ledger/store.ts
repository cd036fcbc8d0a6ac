/**
 * Where ledger entries live: append-only, in seq order. `append` resolves only once the entry is
 * durable (the write-ahead rule of docs/ledger.md relies on it) and refuses any seq but last + 1.
 * sqlite.ts is the embedded default, memory.ts the reference the contract tests also run.
 */
import type { LedgerEntry } from '../../shared/ledger/entry.ts';

export interface LedgerStore {
  /** Appends durably; RangeError unless `entry.seq` is the last seq + 1. */
  append(entry: LedgerEntry): Promise<void>;
  /** Every stored entry in seq order, as stored (not re-validated: the verifier does that). */
  all(): Promise<unknown[]>;
  count(): Promise<number>;
  /** The stored entries after `seq` (seq > `seq`), in seq order: what other writers appended since. */
  since(seq: number): Promise<unknown[]>;
  /**
   * A store several processes append to (PostgreSQL) runs `run` holding a deployment-wide lock
   * (an advisory lock), so reading the head, checking a budget and appending is one step across
   * every node; absent where one process is the only writer (memory, SQLite).
   */
  exclusive?<T>(run: () => Promise<T>): Promise<T>;
  close(): void;
}

export function checkNextSeq(entry: LedgerEntry, count: number): void {
  if (entry.seq !== count + 1) throw new RangeError(`"seq" expected ${count + 1} (append-only), got ${entry.seq}`);
}

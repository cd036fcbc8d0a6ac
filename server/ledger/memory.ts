/** The in-memory LedgerStore: the reference implementation for unit and contract tests. */
import type { LedgerEntry } from '../../shared/ledger/entry.ts';
import { checkNextSeq } from './store.ts';
import type { LedgerStore } from './store.ts';

export class MemoryLedgerStore implements LedgerStore {
  private readonly entries: string[] = [];

  async append(entry: LedgerEntry): Promise<void> {
    checkNextSeq(entry, this.entries.length);
    this.entries.push(JSON.stringify(entry));
  }

  async all(): Promise<unknown[]> {
    return this.entries.map((e) => JSON.parse(e) as unknown);
  }

  async count(): Promise<number> {
    return this.entries.length;
  }

  async since(seq: number): Promise<unknown[]> {
    return this.entries.slice(Math.max(0, seq)).map((e) => JSON.parse(e) as unknown);
  }

  close(): void {}
}

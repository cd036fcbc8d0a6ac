/**
 * The embedded default LedgerStore: its own SQLite file (`ledger.db`) under the data directory,
 * WAL with synchronous=FULL, so an append has reached the disk when the transaction commits
 * (SQLite "PRAGMA synchronous": FULL syncs the WAL on every commit). Rows keep the entry's JSON
 * exactly as signed; seq is the primary key, so a second writer of the same seq fails.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { LedgerEntry } from '../../shared/ledger/entry.ts';
import { checkNextSeq } from './store.ts';
import type { LedgerStore } from './store.ts';

export const LEDGER_DATABASE_FILE = 'ledger.db';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ledger_entries (
  seq INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  entry TEXT NOT NULL
);
`;

export class SqliteLedgerStore implements LedgerStore {
  private readonly db: Database.Database;

  /** `beforeCommit` is the crash-test seam: called inside the transaction, after the insert. */
  constructor(
    file: string,
    private readonly beforeCommit?: (entry: LedgerEntry) => void,
  ) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
  }

  static inDataDir(dataDir: string, beforeCommit?: (entry: LedgerEntry) => void): SqliteLedgerStore {
    return new SqliteLedgerStore(path.join(dataDir, LEDGER_DATABASE_FILE), beforeCommit);
  }

  async append(entry: LedgerEntry): Promise<void> {
    const insert = this.db.transaction(() => {
      const { n } = this.db.prepare('SELECT COUNT(*) AS n FROM ledger_entries').get() as { n: number };
      checkNextSeq(entry, n);
      this.db.prepare('INSERT INTO ledger_entries (seq, kind, entry) VALUES (?, ?, ?)').run(entry.seq, entry.kind, JSON.stringify(entry));
      this.beforeCommit?.(entry);
    });
    insert.immediate();
  }

  async all(): Promise<unknown[]> {
    const rows = this.db.prepare('SELECT entry FROM ledger_entries ORDER BY seq').all() as { entry: string }[];
    return rows.map((r) => JSON.parse(r.entry) as unknown);
  }

  async since(seq: number): Promise<unknown[]> {
    const rows = this.db.prepare('SELECT entry FROM ledger_entries WHERE seq > ? ORDER BY seq').all(seq) as { entry: string }[];
    return rows.map((r) => JSON.parse(r.entry) as unknown);
  }

  async count(): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM ledger_entries').get() as { n: number }).n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

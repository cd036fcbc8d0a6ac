/**
 * The cluster LedgerStore: the ledger_entries table of the shared PostgreSQL database
 * (server/storage/postgres-migrations.ts), which every coordinator node appends to. Rows keep the
 * entry's JSON text exactly as given, as the SQLite store does. An append checks seq = count + 1
 * and inserts in one transaction holding an advisory lock, so of two nodes appending the same seq
 * exactly one succeeds (the other gets the RangeError, as a second writer would anywhere); it
 * resolves after COMMIT, which PostgreSQL has flushed to its WAL (synchronous_commit, the default).
 * exclusive() holds a second, session-level advisory lock on a connection of its own for the whole
 * run, so a read-check-append sequence is one step across the cluster; if that connection drops,
 * PostgreSQL releases the lock with it, and the append lock with its seq check still keeps the
 * chain whole.
 */
import type pg from 'pg';
import type { LedgerEntry } from '../../shared/ledger/entry.ts';
import { ADVISORY_LOCKS, inTransaction, query, withSessionLock } from '../storage/postgres-migrations.ts';
import { checkNextSeq } from './store.ts';
import type { LedgerStore } from './store.ts';

const parseEntries = (rows: { entry: string }[]): unknown[] => rows.map((r) => JSON.parse(r.entry) as unknown);

export class PostgresLedgerStore implements LedgerStore {
  /** Exclusive runs of this process, one after another (see exclusive). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly pool: pg.Pool) {}

  async append(entry: LedgerEntry): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.ledgerAppend]);
      const { rows } = await client.query<{ n: string }>('SELECT COUNT(*) AS n FROM ledger_entries');
      checkNextSeq(entry, Number(rows[0]!.n));
      await client.query('INSERT INTO ledger_entries (seq, kind, entry) VALUES ($1, $2, $3)', [entry.seq, entry.kind, JSON.stringify(entry)]);
    });
  }

  async all(): Promise<unknown[]> {
    return parseEntries(await query<{ entry: string }>(this.pool, 'SELECT entry FROM ledger_entries ORDER BY seq'));
  }

  async since(seq: number): Promise<unknown[]> {
    return parseEntries(await query<{ entry: string }>(this.pool, 'SELECT entry FROM ledger_entries WHERE seq > $1 ORDER BY seq', [seq]));
  }

  async count(): Promise<number> {
    const [row] = await query<{ n: string }>(this.pool, 'SELECT COUNT(*) AS n FROM ledger_entries');
    return Number(row!.n);
  }

  /**
   * Runs `run` holding the cluster-wide ledger lock; `run` may read and append through this store
   * but must not call exclusive() again. Runs of one process queue here before taking a connection:
   * otherwise each waiter would hold a pooled connection while the holder's `run` needs one.
   */
  exclusive<T>(run: () => Promise<T>): Promise<T> {
    const next = this.queue.then(() => withSessionLock(this.pool, ADVISORY_LOCKS.ledgerExclusive, run));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The pool is shared: openPostgresStores' close() ends it. */
  close(): void {}
}

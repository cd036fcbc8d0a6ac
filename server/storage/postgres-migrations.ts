/**
 * The PostgreSQL database that every node of a cluster shares: its schema as numbered migrations,
 * the advisory lock keys that serialise work across nodes, and the two things every PostgreSQL
 * store does with a connection (a transaction, and telling an unavailable database from a bug).
 * Nodes start together, so migrations run in one transaction under an advisory lock: whichever
 * node takes it first applies what is missing, the others then find nothing to do. A migration
 * is never edited once released; a change of schema is a new one at the end of the list.
 */
import type pg from 'pg';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import { StorageUnavailableError } from './failures.ts';

/**
 * Every advisory lock key the coordinator takes (PostgreSQL "Advisory Locks", Sec. 13.3.5), in one
 * place so that no two uses share one. Keys are 64-bit; these stay below 2^53 so a JS number holds them.
 */
export const ADVISORY_LOCKS = {
  /** Held by the transaction that applies migrations. */
  migrations: 0x506f_7274_0001,
  /** Held by a createRounds transaction, so one call's ids are contiguous and commit in id order. */
  roundIds: 0x506f_7274_0002,
  /** Held by a ledger append transaction, so reading the count and inserting seq count + 1 is one step. */
  ledgerAppend: 0x506f_7274_0003,
  /** Held on its own connection for the whole of a LedgerStore.exclusive run. */
  ledgerExclusive: 0x506f_7274_0004,
  /** Held by the node making a cluster's first start (server/cluster/node.ts: keys, version 1, genesis, tokens). */
  clusterInit: 0x506f_7274_0005,
} as const;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Records keep the JSON text as written (TEXT, not JSONB, which reorders keys), as the SQLite
 * store does; a model's model.json text is what its sha256 covers (model-digest.ts), so it is
 * stored the same way. Timestamps inside records and tokens are the callers' ISO strings.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'rounds, models, API tokens, ledger and cluster tables',
    sql: `
CREATE TABLE rounds (
  id BIGSERIAL PRIMARY KEY,
  status TEXT NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX rounds_status ON rounds (status, id);
CREATE TABLE models (
  version INTEGER PRIMARY KEY,
  record TEXT NOT NULL,
  model_json TEXT NOT NULL,
  weights BYTEA NOT NULL,
  optimizer_state BYTEA
);
CREATE TABLE serving (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pointer TEXT NOT NULL
);
CREATE TABLE api_tokens (
  id BIGSERIAL PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  hash BYTEA NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  expires_at TEXT,
  revoked_at TEXT
);
CREATE TABLE ledger_entries (
  seq BIGINT PRIMARY KEY,
  kind TEXT NOT NULL,
  entry TEXT NOT NULL
);
CREATE TABLE cluster_leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  token BIGINT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE cluster_nodes (
  node_id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  started_at TIMESTAMPTZ NOT NULL,
  seen_at TIMESTAMPTZ NOT NULL,
  connections INTEGER NOT NULL DEFAULT 0,
  ready BOOLEAN NOT NULL DEFAULT TRUE,
  leader BOOLEAN NOT NULL DEFAULT FALSE
);
`,
  },
];

/**
 * Applies the migrations the database lacks, in one transaction; returns the versions applied now
 * (none when another node got there first). A database migrated by a newer coordinator (a version
 * this code does not know) is refused rather than written with an older idea of its schema.
 */
export async function migrate(pool: pg.Pool, log?: (line: string) => void): Promise<number[]> {
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.migrations]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((r) => r.version));
    const known = MIGRATIONS.at(-1)?.version ?? 0;
    const newest = Math.max(0, ...applied);
    if (newest > known) {
      throw new ProtocolError('UNAVAILABLE', `PostgreSQL schema is at version ${newest}, newer than this coordinator knows (${known}): a newer coordinator migrated it, run that version or a later one`);
    }
    const pending = MIGRATIONS.filter((m) => !applied.has(m.version));
    for (const migration of pending) {
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())', [migration.version, migration.name]);
      log?.(`PostgreSQL: applied migration ${migration.version} (${migration.name})`);
    }
    return pending.map((m) => m.version);
  });
}

/**
 * Runs `work` in one transaction on one pooled connection: committed when it resolves, rolled back
 * when it throws (the error then rethrown, as UNAVAILABLE when the database failed, see
 * asPostgresStorageError).
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await connect(pool);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    release(client);
    return result;
  } catch (err) {
    // A connection that cannot roll back is broken: the pool discards it instead of reusing it.
    await client.query('ROLLBACK').then(
      () => release(client),
      (rollbackError: Error) => release(client, rollbackError),
    );
    throw asPostgresStorageError(err);
  }
}

/** Runs one statement on any pooled connection, a database failure thrown as UNAVAILABLE. */
export async function query<R extends pg.QueryResultRow>(pool: pg.Pool, text: string, values: unknown[] = []): Promise<R[]> {
  try {
    return (await pool.query<R>(text, values)).rows;
  } catch (err) {
    throw asPostgresStorageError(err);
  }
}

/**
 * A connection checked out of the pool, with a listener for its 'error' event: node-postgres
 * emits one when the connection drops between queries, and an unheard 'error' ends the process.
 * The next query on it fails instead, and is reported then.
 */
export async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    const client = await pool.connect();
    client.on('error', ignoreUntilNextQuery);
    return client;
  } catch (err) {
    throw asPostgresStorageError(err);
  }
}

/** Gives a connect()ed connection back; with `err`, the pool closes it instead of reusing it. */
export function release(client: pg.PoolClient, err?: Error): void {
  client.removeListener('error', ignoreUntilNextQuery);
  client.release(err);
}

function ignoreUntilNextQuery(): void {}

/**
 * SQLSTATE classes and codes that mean "the database cannot do this now" rather than "this request
 * is wrong" (PostgreSQL "Error Codes", Appendix A): 08 connection exception, 53 insufficient
 * resources (disk full, out of memory, too many connections), 57 operator intervention (shutdown,
 * a terminated backend, a cancelled statement), 58 system error (I/O), 25006 a read-only
 * transaction (a standby after failover), 40001 and 40P01 a serialisation failure or deadlock.
 */
const SQLSTATE_UNAVAILABLE = /^(08|53|57|58)[0-9A-Z]{3}$|^(25006|40001|40P01)$/;
/** Socket errors on the way to the server. */
const ERRNO_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
/** node-postgres's own errors for a lost or never-made connection, which carry no code. */
const DRIVER_UNAVAILABLE = /^(Connection terminated|Client has encountered a connection error|Client was closed|timeout exceeded when trying to connect)/;

/**
 * `err` as a StorageUnavailableError (UNAVAILABLE, failures.ts) when the database failed rather than
 * the request; otherwise `err` itself (a RangeError, a ProtocolError, a FencedError, a bug).
 */
export function asPostgresStorageError(err: unknown): unknown {
  if (err instanceof ProtocolError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  const detail = `PostgreSQL: ${(err.message || String(code)).split('\n')[0]!.slice(0, 200)}`;
  if (typeof code === 'string' && (SQLSTATE_UNAVAILABLE.test(code) || ERRNO_UNAVAILABLE.has(code))) return new StorageUnavailableError(code, detail);
  if (code === undefined && DRIVER_UNAVAILABLE.test(err.message)) return new StorageUnavailableError('connection', detail);
  return err;
}

/**
 * Runs `run` holding the session-level advisory lock `key` on a connection of its own (so `run`
 * may use the pool meanwhile); if that connection drops, PostgreSQL releases the lock with it.
 */
export async function withSessionLock<T>(pool: pg.Pool, key: number, run: () => Promise<T>): Promise<T> {
  const client = await connect(pool);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [key]);
  } catch (err) {
    release(client, err as Error);
    throw asPostgresStorageError(err);
  }
  try {
    return await run();
  } finally {
    // An unlock that fails means a broken connection: closing it releases the lock anyway.
    await client.query('SELECT pg_advisory_unlock($1)', [key]).then(
      () => release(client),
      (err: Error) => release(client, err),
    );
  }
}

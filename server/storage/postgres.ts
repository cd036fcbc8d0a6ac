/**
 * The cluster storage: rounds, model versions (their files included, so every node serves them),
 * API token hashes and the privacy ledger (server/ledger/postgres.ts) in one PostgreSQL database
 * that several coordinator nodes share. Same records and errors as the SQLite stores (sqlite.ts,
 * sqlite-tokens.ts); what differs is that other writers exist. Ids and versions are assigned under
 * a lock inside their transaction, so concurrent nodes never hand out the same one, and a write
 * that carries a Fence (stores.ts) is made only while the cluster_leases row still holds its token:
 * the row is read FOR SHARE in the write's transaction, so the lease cannot pass to another node
 * until the write has committed or rolled back. A database that fails a read or write (connection
 * lost, disk full, shutdown) throws StorageUnavailableError (UNAVAILABLE, failures.ts).
 */
import pg from 'pg';
import type { ModelFiles } from '../../shared/model/artifacts.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import { tokenRecord } from '../auth/api-tokens.ts';
import type { TokenRow } from '../auth/api-tokens.ts';
import type { ModelRecord, RoundRecord, RoundSpec, ServingPointer } from '../../shared/protocol/messages.ts';
import { PostgresLedgerStore } from '../ledger/postgres.ts';
import { modelDigest } from './model-digest.ts';
import { ADVISORY_LOCKS, inTransaction, migrate, query } from './postgres-migrations.ts';
import { newRoundRecord } from './round-record.ts';
import { FencedError } from './stores.ts';
import type { ApiRole, ApiTokenRecord, ApiTokenStore, Fence, ModelStore, NewModel, RoundPatch, RoundStore } from './stores.ts';

/** How long opening a connection may take before the database counts as unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;

/** Within the write's transaction: FencedError unless the lease still holds the fence's token, which then cannot change until commit. */
async function holdFence(client: pg.PoolClient, fence: Fence | undefined): Promise<void> {
  if (!fence) return;
  const { rowCount } = await client.query('SELECT 1 FROM cluster_leases WHERE name = $1 AND token = $2 FOR SHARE', [fence.lease, fence.token]);
  if (rowCount === 0) throw new FencedError(fence);
}

interface RecordRow {
  record: string;
}

const parseRound = (row: RecordRow): RoundRecord => JSON.parse(row.record) as RoundRecord;
const parseModel = (row: RecordRow): ModelRecord => JSON.parse(row.record) as ModelRecord;

export class PostgresRoundStore implements RoundStore {
  constructor(private readonly pool: pg.Pool) {}

  async createRounds(specs: readonly RoundSpec[], createdAt: string): Promise<RoundRecord[]> {
    return inTransaction(this.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.roundIds]);
      const { rows } = await client.query<{ id: string }>("SELECT nextval(pg_get_serial_sequence('rounds', 'id')) AS id FROM generate_series(1, $1)", [specs.length]);
      const ids = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
      const records = specs.map((spec, i) => newRoundRecord(ids[i]!, spec, createdAt));
      await client.query("INSERT INTO rounds (id, status, record) SELECT id, 'pending', record FROM unnest($1::bigint[], $2::text[]) AS r(id, record)", [ids, records.map((r) => JSON.stringify(r))]);
      return records;
    });
  }

  async update(id: number, patch: RoundPatch, fence?: Fence): Promise<RoundRecord> {
    return inTransaction(this.pool, async (client) => {
      await holdFence(client, fence);
      const { rows } = await client.query<RecordRow>('SELECT record FROM rounds WHERE id = $1 FOR UPDATE', [id]);
      if (!rows[0]) throw new ProtocolError('NOT_FOUND', `round ${id} does not exist`);
      const next: RoundRecord = { ...parseRound(rows[0]), ...patch };
      await client.query('UPDATE rounds SET status = $1, record = $2 WHERE id = $3', [next.status, JSON.stringify(next), id]);
      return next;
    });
  }

  async get(id: number): Promise<RoundRecord | undefined> {
    const [row] = await query<RecordRow>(this.pool, 'SELECT record FROM rounds WHERE id = $1', [id]);
    return row && parseRound(row);
  }

  async list(limit: number): Promise<RoundRecord[]> {
    return (await query<RecordRow>(this.pool, 'SELECT record FROM rounds ORDER BY id DESC LIMIT $1', [limit])).map(parseRound);
  }

  async nextPending(): Promise<RoundRecord | undefined> {
    const [row] = await query<RecordRow>(this.pool, "SELECT record FROM rounds WHERE status = 'pending' ORDER BY id ASC LIMIT 1");
    return row && parseRound(row);
  }

  async unfinished(): Promise<RoundRecord[]> {
    return (await query<RecordRow>(this.pool, "SELECT record FROM rounds WHERE status IN ('pending', 'running') ORDER BY id ASC")).map(parseRound);
  }

  async abortUnfinished(reason: string, finishedAt: string): Promise<number> {
    return inTransaction(this.pool, async (client) => {
      const { rows } = await client.query<RecordRow>("SELECT record FROM rounds WHERE status IN ('pending', 'running') FOR UPDATE");
      for (const r of rows.map(parseRound)) {
        const next: RoundRecord = { ...r, status: 'aborted', stage: r.stage === null ? null : 'aborted', reason, finishedAt };
        await client.query('UPDATE rounds SET status = $1, record = $2 WHERE id = $3', ['aborted', JSON.stringify(next), r.id]);
      }
      return rows.length;
    });
  }

  /** The pool is shared: openPostgresStores' close() ends it. */
  close(): void {}
}

export class PostgresModelStore implements ModelStore {
  constructor(private readonly pool: pg.Pool) {}

  async add(model: NewModel, createdAt: string, fence?: Fence): Promise<ModelRecord> {
    return inTransaction(this.pool, async (client) => {
      await holdFence(client, fence);
      // Plain reads go on; a second add waits here until this one commits, then sees its version.
      await client.query('LOCK TABLE models IN EXCLUSIVE MODE');
      const { rows } = await client.query<{ v: number | null }>('SELECT MAX(version) AS v FROM models');
      const version = (rows[0]?.v ?? 0) + 1;
      const record: ModelRecord = { version, createdAt, roundId: model.roundId, parentVersion: model.parentVersion, parameters: model.parameters, ...modelDigest(model.files), ...(model.derivedFrom ? { derivedFrom: [...model.derivedFrom] } : {}) };
      await client.query('INSERT INTO models (version, record, model_json, weights, optimizer_state) VALUES ($1, $2, $3, $4, $5)', [
        version,
        JSON.stringify(record),
        JSON.stringify(model.files.modelJson),
        Buffer.from(model.files.weights),
        model.optimizerState ? Buffer.from(model.optimizerState) : null,
      ]);
      return record;
    });
  }

  async get(version: number): Promise<ModelRecord | undefined> {
    const [row] = await query<RecordRow>(this.pool, 'SELECT record FROM models WHERE version = $1', [version]);
    return row && parseModel(row);
  }

  async files(version: number): Promise<ModelFiles | undefined> {
    const [row] = await query<{ model_json: string; weights: Buffer }>(this.pool, 'SELECT model_json, weights FROM models WHERE version = $1', [version]);
    return row && { modelJson: JSON.parse(row.model_json) as ModelFiles['modelJson'], weights: new Uint8Array(row.weights) };
  }

  async optimizerState(version: number): Promise<Uint8Array | undefined> {
    const [row] = await query<{ s: Buffer | null }>(this.pool, 'SELECT optimizer_state AS s FROM models WHERE version = $1', [version]);
    return row?.s ? new Uint8Array(row.s) : undefined;
  }

  async latest(): Promise<ModelRecord | undefined> {
    const [row] = await query<RecordRow>(this.pool, 'SELECT record FROM models ORDER BY version DESC LIMIT 1');
    return row && parseModel(row);
  }

  async list(): Promise<ModelRecord[]> {
    return (await query<RecordRow>(this.pool, 'SELECT record FROM models ORDER BY version DESC')).map(parseModel);
  }

  async serving(): Promise<ServingPointer | null> {
    const [row] = await query<{ pointer: string }>(this.pool, 'SELECT pointer FROM serving WHERE id = 1');
    return row ? (JSON.parse(row.pointer) as ServingPointer) : null;
  }

  async setServing(pointer: ServingPointer): Promise<void> {
    await query(this.pool, 'INSERT INTO serving (id, pointer) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET pointer = excluded.pointer', [JSON.stringify(pointer)]);
  }

  /** The pool is shared: openPostgresStores' close() ends it. */
  close(): void {}
}

const TOKEN_COLUMNS = 'id, name, role, hash, created_at, expires_at, revoked_at';

export class PostgresApiTokenStore implements ApiTokenStore {
  constructor(private readonly pool: pg.Pool) {}

  async add(name: string, role: ApiRole, tokenHash: Uint8Array, createdAt: string, expiresAt: string | null = null): Promise<ApiTokenRecord> {
    const [row] = await query<TokenRow>(this.pool, `INSERT INTO api_tokens (name, role, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING ${TOKEN_COLUMNS}`, [name, role, Buffer.from(tokenHash), createdAt, expiresAt]);
    return tokenRecord(row!);
  }

  async all(): Promise<(ApiTokenRecord & { hash: Uint8Array })[]> {
    const rows = await query<TokenRow>(this.pool, `SELECT ${TOKEN_COLUMNS} FROM api_tokens ORDER BY id`);
    return rows.map((r) => ({ ...tokenRecord(r), hash: new Uint8Array(r.hash) }));
  }

  async revoke(id: number, revokedAt: string): Promise<ApiTokenRecord | undefined> {
    // A second revocation keeps the first time.
    const [row] = await query<TokenRow>(this.pool, `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING ${TOKEN_COLUMNS}`, [revokedAt, id]);
    return row && tokenRecord(row);
  }

  /** The pool is shared: openPostgresStores' close() ends it. */
  close(): void {}
}

export interface PostgresStores {
  /** The shared connection pool (the cluster runtime's lease and node tables use it too). */
  pool: pg.Pool;
  rounds: PostgresRoundStore;
  models: PostgresModelStore;
  tokens: PostgresApiTokenStore;
  ledger: PostgresLedgerStore;
  /** Ends the pool; a second call does nothing. */
  close(): Promise<void>;
}

/** `url` without its password (in the userinfo or a `password` parameter), for messages and logs. */
export function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    parsed.searchParams.delete('password');
    return parsed.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

/**
 * Connects to the database at `url`, brings its schema up to date (postgres-migrations.ts) and
 * returns the stores over one pool. UNAVAILABLE, naming the server but not the password, when no
 * connection can be made.
 */
export async function openPostgresStores(url: string, options: { log?: (line: string) => void } = {}): Promise<PostgresStores> {
  const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, keepAlive: true });
  // An idle connection that drops emits 'error' on the pool, which would otherwise end the process; the pool replaces it.
  pool.on('error', (err) => options.log?.(`PostgreSQL: an idle connection failed (${err.message}); the pool opens another when needed`));
  try {
    (await pool.connect()).release();
  } catch (err) {
    await pool.end();
    const reason = err instanceof Error ? err.message || String((err as { code?: unknown }).code) : String(err);
    throw new ProtocolError('UNAVAILABLE', `PostgreSQL at ${withoutPassword(url)} is unreachable: ${reason}`);
  }
  try {
    await migrate(pool, options.log);
  } catch (err) {
    await pool.end();
    throw err;
  }
  return {
    pool,
    rounds: new PostgresRoundStore(pool),
    models: new PostgresModelStore(pool),
    tokens: new PostgresApiTokenStore(pool),
    ledger: new PostgresLedgerStore(pool),
    close: async () => {
      if (!pool.ending) await pool.end();
    },
  };
}

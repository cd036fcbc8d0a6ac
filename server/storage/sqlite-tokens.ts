/**
 * The API token table of the embedded SQLite database (`portrait.db`): SHA-256 hashes of the
 * REST bearer tokens with their role, expiry and revocation. Apart from sqlite.ts so that
 * `portrait token` reaches it without loading the model store (and tfjs with it), also while a
 * coordinator runs on the same data directory (SQLite WAL; the coordinator reads the table at
 * every request, so a revocation holds from its next one).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import { tokenRecord } from '../auth/api-tokens.ts';
import type { TokenRow } from '../auth/api-tokens.ts';
import { mapStorageErrors } from './failures.ts';
import type { ApiRole, ApiTokenRecord, ApiTokenStore } from './stores.ts';

export const DATABASE_FILE = 'portrait.db';

const API_TOKENS_SCHEMA = `
CREATE TABLE IF NOT EXISTS api_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  hash BLOB NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  expires_at TEXT,
  revoked_at TEXT
);
`;

/** Creates the table; a database from before tokens could expire or be revoked gets the two columns (null: neither). */
export function prepareApiTokenTable(db: Database.Database): void {
  db.exec(API_TOKENS_SCHEMA);
  const columns = new Set((db.prepare('PRAGMA table_info(api_tokens)').all() as { name: string }[]).map((c) => c.name));
  for (const column of ['expires_at', 'revoked_at']) if (!columns.has(column)) db.exec(`ALTER TABLE api_tokens ADD COLUMN ${column} TEXT`);
}

/** The token store of an existing data directory's database (NOT_FOUND when there is none), for the CLI. */
export function openApiTokenStore(dataDir: string): SqliteApiTokenStore {
  const file = path.join(dataDir, DATABASE_FILE);
  if (!fs.existsSync(file)) throw new ProtocolError('NOT_FOUND', `"data-dir": no coordinator database at ${file}`);
  const db = new Database(file, { fileMustExist: true, timeout: 5_000 });
  prepareApiTokenTable(db);
  return new SqliteApiTokenStore(db, () => db.close());
}

const SELECT = 'SELECT id, name, role, hash, created_at, expires_at, revoked_at FROM api_tokens';

export class SqliteApiTokenStore implements ApiTokenStore {
  constructor(
    private readonly db: Database.Database,
    /** What close() does: nothing when the database is shared with the other stores (sqlite.ts closes it). */
    private readonly onClose: () => void = () => undefined,
  ) {}

  async add(name: string, role: ApiRole, tokenHash: Uint8Array, createdAt: string, expiresAt: string | null = null): Promise<ApiTokenRecord> {
    const id = Number(mapStorageErrors(() => this.db.prepare('INSERT INTO api_tokens (name, role, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(name, role, Buffer.from(tokenHash), createdAt, expiresAt).lastInsertRowid));
    return { id, name, role, createdAt, expiresAt, revokedAt: null };
  }

  async all(): Promise<(ApiTokenRecord & { hash: Uint8Array })[]> {
    const rows = this.db.prepare(`${SELECT} ORDER BY id`).all() as TokenRow[];
    return rows.map((r) => ({ ...tokenRecord(r), hash: new Uint8Array(r.hash) }));
  }

  async revoke(id: number, revokedAt: string): Promise<ApiTokenRecord | undefined> {
    mapStorageErrors(() => this.db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(revokedAt, id));
    const row = this.db.prepare(`${SELECT} WHERE id = ?`).get(id) as TokenRow | undefined;
    return row && tokenRecord(row);
  }

  close(): void {
    this.onClose();
  }
}

/**
 * The embedded default storage: one SQLite file (better-sqlite3, WAL) under the data directory
 * for rounds, model records and API token hashes (sqlite-tokens.ts), and model files in
 * `models/<version>/` in the standard tfjs layout, written atomically before their record is
 * inserted, so a record never points at a missing or half-written model. A round or model write
 * the storage cannot take (disk full, I/O error) throws StorageUnavailableError (UNAVAILABLE,
 * failures.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ModelFiles } from '../../shared/model/artifacts.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import type { ModelRecord, RoundRecord, RoundSpec, ServingPointer } from '../../shared/protocol/messages.ts';
import { mapStorageErrors } from './failures.ts';
import { modelDigest } from './model-digest.ts';
import { readModelFiles, writeModelFiles } from './model-files.ts';
import { newRoundRecord } from './round-record.ts';
import { DATABASE_FILE, prepareApiTokenTable, SqliteApiTokenStore } from './sqlite-tokens.ts';
import type { ModelStore, NewModel, RoundPatch, RoundStore } from './stores.ts';

export { DATABASE_FILE, SqliteApiTokenStore } from './sqlite-tokens.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS rounds (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  status TEXT NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rounds_status ON rounds(status, id);
CREATE TABLE IF NOT EXISTS models (
  version INTEGER PRIMARY KEY,
  record TEXT NOT NULL,
  optimizer_state BLOB
);
CREATE TABLE IF NOT EXISTS serving (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pointer TEXT NOT NULL
);
`;

export function openDatabase(dataDir: string): Database.Database {
  fs.mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, DATABASE_FILE));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(SCHEMA);
  prepareApiTokenTable(db);
  return db;
}

interface RecordRow {
  record: string;
}

export class SqliteRoundStore implements RoundStore {
  constructor(private readonly db: Database.Database) {}

  async createRounds(specs: readonly RoundSpec[], createdAt: string): Promise<RoundRecord[]> {
    const insert = this.db.prepare('INSERT INTO rounds (status, record) VALUES (?, ?)');
    const setRecord = this.db.prepare('UPDATE rounds SET record = ? WHERE id = ?');
    const create = this.db.transaction((all: readonly RoundSpec[]) =>
      all.map((spec) => {
        const id = Number(insert.run('pending', '{}').lastInsertRowid);
        const record = newRoundRecord(id, spec, createdAt);
        setRecord.run(JSON.stringify(record), id);
        return record;
      }),
    );
    return mapStorageErrors(() => create(specs));
  }

  async update(id: number, patch: RoundPatch): Promise<RoundRecord> {
    const apply = this.db.transaction(() => {
      const current = this.read(id);
      if (!current) throw new ProtocolError('NOT_FOUND', `round ${id} does not exist`);
      const next: RoundRecord = { ...current, ...patch };
      this.db.prepare('UPDATE rounds SET status = ?, record = ? WHERE id = ?').run(next.status, JSON.stringify(next), id);
      return next;
    });
    return mapStorageErrors(apply);
  }

  private read(id: number): RoundRecord | undefined {
    const row = this.db.prepare('SELECT record FROM rounds WHERE id = ?').get(id) as RecordRow | undefined;
    return row && (JSON.parse(row.record) as RoundRecord);
  }

  async get(id: number): Promise<RoundRecord | undefined> {
    return this.read(id);
  }

  async list(limit: number): Promise<RoundRecord[]> {
    const rows = this.db.prepare('SELECT record FROM rounds ORDER BY id DESC LIMIT ?').all(limit) as RecordRow[];
    return rows.map((r) => JSON.parse(r.record) as RoundRecord);
  }

  async nextPending(): Promise<RoundRecord | undefined> {
    const row = this.db.prepare("SELECT record FROM rounds WHERE status = 'pending' ORDER BY id ASC LIMIT 1").get() as RecordRow | undefined;
    return row && (JSON.parse(row.record) as RoundRecord);
  }

  async unfinished(): Promise<RoundRecord[]> {
    const rows = this.db.prepare("SELECT record FROM rounds WHERE status IN ('pending', 'running') ORDER BY id ASC").all() as RecordRow[];
    return rows.map((r) => JSON.parse(r.record) as RoundRecord);
  }

  async abortUnfinished(reason: string, finishedAt: string): Promise<number> {
    const abort = this.db.transaction(() => {
      const rows = this.db.prepare("SELECT record FROM rounds WHERE status IN ('pending', 'running')").all() as RecordRow[];
      const write = this.db.prepare('UPDATE rounds SET status = ?, record = ? WHERE id = ?');
      for (const row of rows) {
        const r = JSON.parse(row.record) as RoundRecord;
        const next: RoundRecord = { ...r, status: 'aborted', stage: r.stage === null ? null : 'aborted', reason, finishedAt };
        write.run('aborted', JSON.stringify(next), r.id);
      }
      return rows.length;
    });
    return mapStorageErrors(abort);
  }

  close(): void {}
}

export class SqliteModelStore implements ModelStore {
  private readonly modelsDir: string;

  constructor(
    private readonly db: Database.Database,
    dataDir: string,
  ) {
    this.modelsDir = path.join(dataDir, 'models');
    fs.mkdirSync(this.modelsDir, { recursive: true });
  }

  private dir(version: number): string {
    return path.join(this.modelsDir, String(version));
  }

  async add(model: NewModel, createdAt: string): Promise<ModelRecord> {
    const latest = this.db.prepare('SELECT MAX(version) AS v FROM models').get() as { v: number | null };
    const version = (latest.v ?? 0) + 1;
    const dir = this.dir(version);
    // A directory without a record is what a crash between the two steps leaves: discard it.
    const record: ModelRecord = { version, createdAt, roundId: model.roundId, parentVersion: model.parentVersion, parameters: model.parameters, ...modelDigest(model.files), ...(model.derivedFrom ? { derivedFrom: [...model.derivedFrom] } : {}) };
    return mapStorageErrors(() => {
      if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true });
      writeModelFiles(dir, model.files);
      this.db.prepare('INSERT INTO models (version, record, optimizer_state) VALUES (?, ?, ?)').run(version, JSON.stringify(record), model.optimizerState ? Buffer.from(model.optimizerState) : null);
      return record;
    });
  }

  async get(version: number): Promise<ModelRecord | undefined> {
    const row = this.db.prepare('SELECT record FROM models WHERE version = ?').get(version) as RecordRow | undefined;
    return row && (JSON.parse(row.record) as ModelRecord);
  }

  async files(version: number): Promise<ModelFiles | undefined> {
    if (!(await this.get(version))) return undefined;
    return readModelFiles(this.dir(version));
  }

  async optimizerState(version: number): Promise<Uint8Array | undefined> {
    const row = this.db.prepare('SELECT optimizer_state AS s FROM models WHERE version = ?').get(version) as { s: Buffer | null } | undefined;
    return row?.s ? new Uint8Array(row.s) : undefined;
  }

  async latest(): Promise<ModelRecord | undefined> {
    const row = this.db.prepare('SELECT record FROM models ORDER BY version DESC LIMIT 1').get() as RecordRow | undefined;
    return row && (JSON.parse(row.record) as ModelRecord);
  }

  async list(): Promise<ModelRecord[]> {
    const rows = this.db.prepare('SELECT record FROM models ORDER BY version DESC').all() as RecordRow[];
    return rows.map((r) => JSON.parse(r.record) as ModelRecord);
  }

  async serving(): Promise<ServingPointer | null> {
    const row = this.db.prepare('SELECT pointer FROM serving WHERE id = 1').get() as { pointer: string } | undefined;
    return row ? (JSON.parse(row.pointer) as ServingPointer) : null;
  }

  async setServing(pointer: ServingPointer): Promise<void> {
    mapStorageErrors(() => this.db.prepare('INSERT INTO serving (id, pointer) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET pointer = excluded.pointer').run(JSON.stringify(pointer)));
  }

  close(): void {}
}

export interface SqliteStores {
  rounds: SqliteRoundStore;
  models: SqliteModelStore;
  tokens: SqliteApiTokenStore;
  close(): void;
}

export function openSqliteStores(dataDir: string): SqliteStores {
  const db = openDatabase(dataDir);
  return {
    rounds: new SqliteRoundStore(db),
    models: new SqliteModelStore(db, dataDir),
    tokens: new SqliteApiTokenStore(db),
    close: () => db.close(),
  };
}

/**
 * Models and ledger agree (shared/ledger/models.ts), on the coordinator and for `audit verify
 * --data-dir`: a coordinator refuses to start while a published model version has no release
 * entry (a ledger cut after the fact, or a model stored outside a round), and the audit reads the
 * model records of a data directory directly, read-only, so neither tfjs nor the model store's
 * code loads for a verify. It hashes each version's files as stored (model.json re-serialised as
 * the coordinator serves it, then the weights its manifest names: server/storage/model-digest.ts)
 * for the check against the publication entries.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ModelStore } from '../storage/stores.ts';
import type { StoredModel } from '../../shared/ledger/models.ts';
import { modelDigest } from '../storage/model-digest.ts';

/** server/storage/sqlite.ts's DATABASE_FILE, named here so that importing it does not load tfjs (a test checks they agree). */
export const MODEL_DATABASE_FILE = 'portrait.db';

/** The SHA-256 of a model directory's files as the coordinator serves them; null when they cannot be read. */
export function storedModelDigest(dir: string): string | null {
  try {
    const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
    const parts = modelJson.weightsManifest.flatMap((g) => g.paths).map((p) => {
      const resolved = path.resolve(dir, p);
      if (path.dirname(resolved) !== path.resolve(dir)) throw new RangeError(`weights path ${JSON.stringify(p)} escapes the model directory`);
      return fs.readFileSync(resolved);
    });
    return modelDigest({ modelJson: modelJson as never, weights: new Uint8Array(Buffer.concat(parts)) }).sha256;
  } catch {
    return null;
  }
}

/** The published model versions of a data directory (its `models` table) with their files' digests; null when it has no model database. */
export function readPublishedModels(dataDir: string): StoredModel[] | null {
  const file = path.join(dataDir, MODEL_DATABASE_FILE);
  if (!fs.existsSync(file)) return null;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'models'").get();
    if (!table) return [];
    const rows = db.prepare('SELECT record FROM models ORDER BY version').all() as { record: string }[];
    return rows.map((r) => {
      const { version, roundId, parentVersion, derivedFrom } = JSON.parse(r.record) as StoredModel;
      return { version, roundId, parentVersion, ...(derivedFrom ? { derivedFrom } : {}), sha256: storedModelDigest(path.join(dataDir, 'models', String(version))) };
    });
  } finally {
    db.close();
  }
}

/** A start refused: a stored model version the ledger does not account for (no release entry naming it, or files other than those its publication entry binds). */
export class UnreleasedModelError extends Error {
  constructor(readonly problems: { version: number; reason: string }[]) {
    super(`the model store and the privacy ledger disagree: ${problems.map((p) => p.reason).join('; ')}. A coordinator does not serve a model the ledger does not account for: restore the ledger (audit verify --since a kept tree head shows what was cut) or the version's files, or remove the version`);
    this.name = 'UnreleasedModelError';
  }
}

/**
 * The model versions of a cluster's PostgreSQL store (`audit verify --postgres`), as
 * readPublishedModels reads a data directory's: each with the digest of its files as served.
 */
export async function readPublishedModelsFrom(models: ModelStore): Promise<StoredModel[]> {
  const records = [...(await models.list())].sort((a, b) => a.version - b.version);
  return Promise.all(
    records.map(async ({ version, roundId, parentVersion, derivedFrom }) => {
      const files = await models.files(version);
      return { version, roundId, parentVersion, ...(derivedFrom ? { derivedFrom } : {}), sha256: files ? modelDigest(files).sha256 : null };
    }),
  );
}

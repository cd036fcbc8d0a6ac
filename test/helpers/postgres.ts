/**
 * PostgreSQL for the tests: a fresh database per case on the local server (trust auth, as CI's
 * service provides it), dropped afterwards, and whether that server is there at all. Outside CI a
 * missing server skips the PostgreSQL cases with a warning; in CI (CI=true) it fails the run, so a
 * broken service cannot pass as green.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { onTestFinished } from 'vitest';
import { openPostgresStores } from '../../server/storage/postgres.ts';
import type { PostgresStores } from '../../server/storage/postgres.ts';

const SERVER = 'postgres://postgres@127.0.0.1:5432';

async function onServer(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: `${SERVER}/postgres`, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** True when the server answers; false (with a warning naming why) outside CI; throws in CI. */
export async function postgresAvailable(): Promise<boolean> {
  try {
    await onServer('SELECT 1');
    return true;
  } catch (err) {
    const reason = err instanceof Error ? err.message || String((err as { code?: unknown }).code) : String(err);
    if (process.env.CI === 'true') throw new Error(`PostgreSQL at ${SERVER} is unreachable (${reason}); CI runs the PostgreSQL tests, so its service must be up`);
    console.warn(`Skipping the PostgreSQL tests: ${SERVER} is unreachable (${reason})`);
    return false;
  }
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database `portrait_test_<random hex>`; drop() removes it, closing whatever is still connected. */
export async function createTestDatabase(): Promise<TestDatabase> {
  // Identifiers cannot be query parameters; the name is only hex from randomBytes.
  const name = `portrait_test_${randomBytes(6).toString('hex')}`;
  await onServer(`CREATE DATABASE ${name}`);
  return { url: `${SERVER}/${name}`, drop: () => onServer(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** A fresh database for the running test, dropped when it finishes, passed or failed. */
export async function databaseForTest(): Promise<string> {
  const db = await createTestDatabase();
  onTestFinished(() => db.drop());
  return db.url;
}

/** openPostgresStores on `url`, closed when the running test finishes (before its database is dropped). */
export async function storesForTest(url: string, options: { log?: (line: string) => void } = {}): Promise<PostgresStores> {
  const stores = await openPostgresStores(url, options);
  onTestFinished(() => stores.close());
  return stores;
}

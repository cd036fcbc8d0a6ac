/**
 * One contract for every storage implementation (Hono's common.case style): the in-memory
 * reference, the SQLite embedded default and the PostgreSQL cluster store run the same cases.
 * SQLite also proves that records and model files persist across reopening; PostgreSQL, which
 * several nodes share, that fenced writes of a deposed leader change nothing, that concurrent
 * nodes never get the same round id or model version, and that migrations apply once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { ModelFiles } from '../../../shared/model/artifacts.ts';
import { parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import Database from 'better-sqlite3';
import { authenticate, createApiToken, hashToken } from '../../../server/auth/api-tokens.ts';
import { MemoryApiTokenStore, MemoryModelStore, MemoryRoundStore } from '../../../server/storage/memory.ts';
import { DATABASE_FILE, openSqliteStores } from '../../../server/storage/sqlite.ts';
import { openApiTokenStore } from '../../../server/storage/sqlite-tokens.ts';
import { openPostgresStores } from '../../../server/storage/postgres.ts';
import { MIGRATIONS } from '../../../server/storage/postgres-migrations.ts';
import { modelDigest } from '../../../server/storage/model-digest.ts';
import { ProtocolError } from '../../../shared/protocol/errors.ts';
import { FencedError } from '../../../server/storage/stores.ts';
import type { ApiTokenStore, ModelStore, RoundStore } from '../../../server/storage/stores.ts';
import { databaseForTest, postgresAvailable, storesForTest } from '../../helpers/postgres.ts';

interface Stores {
  rounds: RoundStore;
  models: ModelStore;
  tokens: ApiTokenStore;
  reopen?: () => Stores;
  close(): void | Promise<void>;
}

const spec = parseLaunchRequest({ clientsPerRound: 3, privacy: { mode: 'local' } }).spec;
const files = (n: number): ModelFiles => ({
  modelJson: { modelTopology: { n }, format: 'layers-model', generatedBy: 'test', convertedBy: null, weightsManifest: [{ paths: ['weights.bin'], weights: [] }] },
  weights: Uint8Array.from([n, n + 1, n + 2, n + 3]),
});

function sqlite(dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-store-'))): Stores {
  const s = openSqliteStores(dir);
  return { ...s, reopen: () => (s.close(), sqlite(dir)) };
}

const postgresUp = await postgresAvailable();
/** A fresh database per case, closed and dropped when the case finishes. */
const postgres = async (): Promise<Stores> => storesForTest(await databaseForTest());

const implementations: [string, () => Stores | Promise<Stores>][] = [
  ['memory', () => ({ rounds: new MemoryRoundStore(), models: new MemoryModelStore(), tokens: new MemoryApiTokenStore(), close: () => undefined })],
  ['sqlite', () => sqlite()],
];

/** Every implementation's cases; PostgreSQL's run below, skipped when its server is missing (outside CI). */
function storeContract(open: () => Stores | Promise<Stores>): void {
  it('creates rounds with increasing ids, updates and lists them', async () => {
    const s = await open();
    const created = await s.rounds.createRounds([spec, spec, spec], '2024-01-01T00:00:00.000Z');
    expect(created.map((r) => r.id)).toEqual([1, 2, 3]);
    expect(created[0]).toMatchObject({ status: 'pending', stage: null, participants: 0, config: spec, metrics: null });
    expect((await s.rounds.nextPending())?.id).toBe(1);
    await s.rounds.update(1, { status: 'committed', stage: 'committed', participants: 3, metrics: { heads: { interests: { microAuc: 0.7, auc: null } } } });
    expect((await s.rounds.nextPending())?.id).toBe(2);
    expect((await s.rounds.get(1))?.metrics?.heads?.interests).toEqual({ microAuc: 0.7, auc: null });
    expect((await s.rounds.list(2)).map((r) => r.id)).toEqual([3, 2]);
    expect(await s.rounds.get(9)).toBeUndefined();
    await expect(s.rounds.update(9, { status: 'aborted' })).rejects.toThrow(/round 9 does not exist/);
    await s.rounds.update(2, { status: 'running', stage: 'training' });
    expect((await s.rounds.unfinished()).map((r) => [r.id, r.status])).toEqual([[2, 'running'], [3, 'pending']]);
    expect(await s.rounds.abortUnfinished('restarted', '2024-01-02T00:00:00.000Z')).toBe(2);
    expect(await s.rounds.get(2)).toMatchObject({ status: 'aborted', stage: 'aborted', reason: 'restarted' });
    expect(await s.rounds.get(3)).toMatchObject({ status: 'aborted', stage: null, reason: 'restarted' });
    expect((await s.rounds.get(1))?.status).toBe('committed');
    expect(await s.rounds.nextPending()).toBeUndefined();
    expect(await s.rounds.unfinished()).toEqual([]);
    await s.close();
  });

  it('adds model versions with files, digests and optimizer state', async () => {
    const s = await open();
    expect(await s.models.latest()).toBeUndefined();
    const v1 = await s.models.add({ files: files(1), roundId: null, parentVersion: null, parameters: 1 }, 't1');
    const v2 = await s.models.add({ files: files(2), roundId: 7, parentVersion: 1, parameters: 1, optimizerState: Uint8Array.from([9, 9]) }, 't2');
    expect([v1.version, v2.version]).toEqual([1, 2]);
    expect(v2).toMatchObject({ roundId: 7, parentVersion: 1, parameters: 1 });
    expect(v2.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(v2.sha256).not.toBe(v1.sha256);
    expect((await s.models.latest())?.version).toBe(2);
    expect((await s.models.list()).map((m) => m.version)).toEqual([2, 1]);
    expect((await s.models.files(2))?.weights).toEqual(files(2).weights);
    expect((await s.models.files(2))?.modelJson.modelTopology).toEqual({ n: 2 });
    expect(await s.models.optimizerState(2)).toEqual(Uint8Array.from([9, 9]));
    expect(await s.models.optimizerState(1)).toBeUndefined();
    expect(await s.models.files(3)).toBeUndefined();
    await s.close();
  });

  it('stores token hashes', async () => {
    const s = await open();
    await s.tokens.add('ops', 'operator', hashToken('secret-1'), 't');
    const all = await s.tokens.all();
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ name: 'ops', role: 'operator' });
    expect(all[0]?.hash).toEqual(hashToken('secret-1'));
    await s.close();
  });

  it('keeps API tokens with an expiry, revokes them once, and authenticates only live ones, saying which failed', async () => {
    const s = await open();
    const now = Date.parse('2026-11-27T00:00:00.000Z');
    const forever = await createApiToken(s.tokens, 'ops', 'operator', '2026-11-01T00:00:00.000Z');
    const month = await createApiToken(s.tokens, 'audit', 'auditor', '2026-11-01T00:00:00.000Z', undefined, '2026-12-01T00:00:00.000Z');
    const lapsed = await createApiToken(s.tokens, 'old', 'auditor', '2026-10-01T00:00:00.000Z', undefined, '2026-11-01T00:00:00.000Z');
    expect(forever.record).toMatchObject({ expiresAt: null, revokedAt: null });
    expect(month.record).toMatchObject({ role: 'auditor', expiresAt: '2026-12-01T00:00:00.000Z', revokedAt: null });

    const bearer = (t: { token: string }) => `Bearer ${t.token}`;
    expect(await authenticate(s.tokens, bearer(month), now)).toMatchObject({ id: month.record.id, name: 'audit' });
    const failure = (t: { token: string }, at = now) => authenticate(s.tokens, bearer(t), at).then(() => 'ok', (e: ProtocolError) => `${e.code}: ${e.message}`);
    expect(await failure(lapsed)).toBe(`UNAUTHENTICATED: API token ${lapsed.record.id} ("old") expired at 2026-11-01T00:00:00.000Z`);
    expect(await failure(month, Date.parse('2026-12-01T00:00:00.000Z'))).toMatch(/^UNAUTHENTICATED: API token \d+ \("audit"\) expired at/);

    expect(await s.tokens.revoke(month.record.id, '2026-11-20T00:00:00.000Z')).toMatchObject({ id: month.record.id, revokedAt: '2026-11-20T00:00:00.000Z' });
    // A second revocation keeps the first time; an unknown id is undefined.
    expect((await s.tokens.revoke(month.record.id, '2026-11-21T00:00:00.000Z'))?.revokedAt).toBe('2026-11-20T00:00:00.000Z');
    expect(await s.tokens.revoke(999, '2026-11-21T00:00:00.000Z')).toBeUndefined();
    expect(await failure(month)).toBe(`UNAUTHENTICATED: API token ${month.record.id} ("audit") was revoked at 2026-11-20T00:00:00.000Z`);
    expect(await failure(forever)).toBe('ok');
    expect((await s.tokens.all()).map((t) => [t.name, t.expiresAt, t.revokedAt])).toEqual([
      ['ops', null, null],
      ['audit', '2026-12-01T00:00:00.000Z', '2026-11-20T00:00:00.000Z'],
      ['old', '2026-11-01T00:00:00.000Z', null],
    ]);
    await s.close();
  });
}

describe.each(implementations)('%s stores', (_name, open) => storeContract(open));

describe('sqlite persistence', () => {
  it('opens a database from before API tokens could expire: its tokens neither expire nor are revoked, and can be', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-store-'));
    const old = new Database(path.join(dir, DATABASE_FILE));
    old.exec('CREATE TABLE api_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, role TEXT NOT NULL, hash BLOB NOT NULL UNIQUE, created_at TEXT NOT NULL)');
    old.prepare('INSERT INTO api_tokens (name, role, hash, created_at) VALUES (?, ?, ?, ?)').run('legacy', 'operator', Buffer.from(hashToken('legacy')), 't');
    old.close();
    const s = sqlite(dir);
    expect((await s.tokens.all()).map(({ hash: _hash, ...t }) => t)).toEqual([{ id: 1, name: 'legacy', role: 'operator', createdAt: 't', expiresAt: null, revokedAt: null }]);
    expect((await s.tokens.revoke(1, 'r'))?.revokedAt).toBe('r');
    s.close();
    // The CLI's own handle on the same file sees it; it needs the database to exist.
    const cli = openApiTokenStore(dir);
    expect((await cli.all())[0]?.revokedAt).toBe('r');
    cli.close();
    expect(() => openApiTokenStore(path.join(dir, 'nowhere'))).toThrow(/no coordinator database at/);
  });

  it('keeps rounds, models and files across reopening', async () => {
    const s = sqlite();
    await s.rounds.createRounds([spec], 't');
    await s.rounds.update(1, { status: 'committed', participants: 4 });
    await s.models.add({ files: files(5), roundId: 1, parentVersion: null, parameters: 1 }, 't');
    const again = s.reopen?.() as Stores;
    expect(await again.rounds.get(1)).toMatchObject({ status: 'committed', participants: 4 });
    expect((await again.models.files(1))?.weights).toEqual(files(5).weights);
    // Ids keep increasing after a restart.
    expect((await again.rounds.createRounds([spec], 't'))[0]?.id).toBe(2);
    again.close();
  });
});

describe.skipIf(!postgresUp)('postgres stores', () => {
  storeContract(postgres);

  const lease = "INSERT INTO cluster_leases (name, holder, token, expires_at) VALUES ('leader', 'node-a', 1, now() + interval '1 minute')";
  const fence = { lease: 'leader', token: 1 };

  it('makes a fenced write only while its lease holds its token: a deposed leader changes nothing', async () => {
    const s = await storesForTest(await databaseForTest());
    await s.pool.query(lease);
    const [round] = await s.rounds.createRounds([spec], 't');
    await s.rounds.update(round!.id, { status: 'running' }, fence);
    await s.models.add({ files: files(1), roundId: null, parentVersion: null, parameters: 1 }, 't1', fence);

    await s.pool.query("UPDATE cluster_leases SET holder = 'node-b', token = 2 WHERE name = 'leader'");
    await expect(s.rounds.update(round!.id, { status: 'committed' }, fence)).rejects.toThrow(new FencedError(fence));
    await expect(s.models.add({ files: files(2), roundId: round!.id, parentVersion: 1, parameters: 1 }, 't2', fence)).rejects.toThrow(FencedError);
    expect((await s.rounds.get(round!.id))?.status).toBe('running');
    expect((await s.models.list()).map((m) => m.version)).toEqual([1]);

    // The new holder's token writes; a lease nobody holds fences every write.
    expect((await s.rounds.update(round!.id, { status: 'committed' }, { lease: 'leader', token: 2 })).status).toBe('committed');
    await expect(s.rounds.update(round!.id, { status: 'aborted' }, { lease: 'elsewhere', token: 2 })).rejects.toThrow(FencedError);
  });

  it('answers UNAVAILABLE for a write whose connection is lost (here while its fence waits on a lease change), and takes the retry', async () => {
    const s = await storesForTest(await databaseForTest());
    await s.pool.query(lease);
    const [round] = await s.rounds.createRounds([spec], 't');
    // A lease change in progress holds the row: the fenced write waits for its outcome.
    const leaseChange = await s.pool.connect();
    await leaseChange.query('BEGIN');
    await leaseChange.query("SELECT token FROM cluster_leases WHERE name = 'leader' FOR UPDATE");
    const write = s.rounds.update(round!.id, { status: 'running' }, fence).then(() => 'written', (err: unknown) => err);
    let waiting: number | undefined;
    while (waiting === undefined) {
      const { rows } = await s.pool.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
      waiting = rows[0]?.pid;
      if (waiting === undefined) await sleep(10);
    }
    await s.pool.query('SELECT pg_terminate_backend($1)', [waiting]);
    expect(await write).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/^storage unavailable \(57P01\): PostgreSQL: terminating connection/) });
    await leaseChange.query('ROLLBACK');
    leaseChange.release();
    expect((await s.rounds.get(round!.id))?.status).toBe('pending');
    expect((await s.rounds.update(round!.id, { status: 'running' }, fence)).status).toBe('running');
  });

  it('gives concurrent nodes distinct round ids, each call\'s contiguous and increasing', async () => {
    const url = await databaseForTest();
    const [a, b] = await Promise.all([storesForTest(url), storesForTest(url)]);
    const batches = await Promise.all([a, b, a, b].map((s) => s.rounds.createRounds([spec, spec, spec], 't')));
    for (const batch of batches) expect(batch.map((r) => r.id - batch[0]!.id)).toEqual([0, 1, 2]);
    expect(batches.flat().map((r) => r.id).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect((await b.rounds.list(20)).map((r) => r.id)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
  });

  it('gives concurrent nodes successive model versions, never the same one, each with its own files', async () => {
    const url = await databaseForTest();
    const [a, b] = await Promise.all([storesForTest(url), storesForTest(url)]);
    await a.models.add({ files: files(1), roundId: null, parentVersion: null, parameters: 1 }, 't');
    const added = await Promise.all([a, b, a, b].map((s, i) => s.models.add({ files: files(10 + i), roundId: i, parentVersion: 1, parameters: 1 }, 't')));
    expect(added.map((m) => m.version).sort((x, y) => x - y)).toEqual([2, 3, 4, 5]);
    for (const m of added) expect(modelDigest((await b.models.files(m.version))!).sha256).toBe(m.sha256);
    expect((await a.models.latest())?.version).toBe(5);
  });

  it('applies each migration once when three nodes start together, nothing on a restart, and refuses a newer schema', async () => {
    const url = await databaseForTest();
    const logs: string[][] = [[], [], []];
    const [first] = await Promise.all(logs.map((log) => storesForTest(url, { log: (line) => log.push(line) })));
    expect(logs.flat()).toEqual(MIGRATIONS.map((m) => `PostgreSQL: applied migration ${m.version} (${m.name})`));
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_m, i) => i + 1));
    const applied = async () => (await first!.pool.query<{ version: number; name: string; applied_at: Date }>('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')).rows;
    const before = await applied();
    expect(before.map((r) => [r.version, r.name])).toEqual(MIGRATIONS.map((m) => [m.version, m.name]));

    await first!.rounds.createRounds([spec], 't');
    const restarted: string[] = [];
    const again = await storesForTest(url, { log: (line) => restarted.push(line) });
    expect(restarted).toEqual([]);
    expect(await applied()).toEqual(before);
    expect((await again.rounds.createRounds([spec], 't'))[0]?.id).toBe(2);

    const newer = MIGRATIONS.length + 1;
    await first!.pool.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from the future', now())", [newer]);
    await expect(openPostgresStores(url)).rejects.toMatchObject({ code: 'UNAVAILABLE', message: `PostgreSQL schema is at version ${newer}, newer than this coordinator knows (${newer - 1}): a newer coordinator migrated it, run that version or a later one` });
  });
});

describe('openPostgresStores', () => {
  it('rejects a server it cannot reach with UNAVAILABLE, naming PostgreSQL and the URL without its password', async () => {
    const err: unknown = await openPostgresStores('postgres://portrait:s3cret@127.0.0.1:1/portrait').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/^PostgreSQL at postgres:\/\/portrait@127\.0\.0\.1:1\/portrait is unreachable: .*ECONNREFUSED/) });
    expect((err as Error).message).not.toContain('s3cret');
  });
});

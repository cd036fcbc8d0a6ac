/**
 * One contract for every storage implementation (Hono's common.case style): the in-memory
 * reference and the SQLite embedded default run the same cases, and SQLite also proves that
 * records and model files persist across reopening.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ModelFiles } from '../../../shared/model/artifacts.ts';
import { parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import Database from 'better-sqlite3';
import { authenticate, createApiToken, hashToken } from '../../../server/auth/api-tokens.ts';
import { MemoryApiTokenStore, MemoryModelStore, MemoryRoundStore } from '../../../server/storage/memory.ts';
import { DATABASE_FILE, openSqliteStores } from '../../../server/storage/sqlite.ts';
import { openApiTokenStore } from '../../../server/storage/sqlite-tokens.ts';
import type { ProtocolError } from '../../../shared/protocol/errors.ts';
import type { ApiTokenStore, ModelStore, RoundStore } from '../../../server/storage/stores.ts';

interface Stores {
  rounds: RoundStore;
  models: ModelStore;
  tokens: ApiTokenStore;
  reopen?: () => Stores;
  close(): void;
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

const implementations: [string, () => Stores][] = [
  ['memory', () => ({ rounds: new MemoryRoundStore(), models: new MemoryModelStore(), tokens: new MemoryApiTokenStore(), close: () => undefined })],
  ['sqlite', () => sqlite()],
];

describe.each(implementations)('%s stores', (_name, open) => {
  it('creates rounds with increasing ids, updates and lists them', async () => {
    const s = open();
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
    s.close();
  });

  it('adds model versions with files, digests and optimizer state', async () => {
    const s = open();
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
    s.close();
  });

  it('stores token hashes', async () => {
    const s = open();
    await s.tokens.add('ops', 'operator', hashToken('secret-1'), 't');
    const all = await s.tokens.all();
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ name: 'ops', role: 'operator' });
    expect(all[0]?.hash).toEqual(hashToken('secret-1'));
    s.close();
  });

  it('keeps API tokens with an expiry, revokes them once, and authenticates only live ones, saying which failed', async () => {
    const s = open();
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
    s.close();
  });
});

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

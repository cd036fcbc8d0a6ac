/**
 * The transparency log on a real coordinator (port 0, SQLite in a temp dir, real clients): its
 * ledger key is a PKCS#8 file outside the data directory (`ledgerKeyFile`, what `portrait server
 * --ledger-key` passes), and the data directory holds none. The auditor's REST routes serve the
 * signed tree head and inclusion and consistency proofs that verify (RFC 9162 Sec. 2.1.3.2,
 * 2.1.4.2); `audit verify --server` keeps the head and later checks the ledger against it, the
 * served consistency proof and every published model included. Cut after the fact, the ledger
 * no longer accounts for a published model, and the coordinator refuses to start on it. Each
 * version's files are bound by a publication entry: a publication lost to a crash is entered at
 * the next start, and files swapped under a version number are no longer served by the running
 * coordinator (from the next request), fail the audit (data directory and server) naming the
 * version, and the coordinator's start.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { fromHex } from '../../shared/ledger/digest.ts';
import { verifyConsistency, verifyInclusion } from '../../shared/ledger/merkle.ts';
import type { SignedTreeHead } from '../../shared/ledger/tree-head.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import type { LedgerEntry, PublicationEntry } from '../../shared/ledger/entry.ts';
import { treeHeadSignatureVerifies } from '../../shared/ledger/tree-head.ts';
import type { ErrorBody } from '../../shared/protocol/errors.ts';
import { LEDGER_KEY_FILE } from '../../server/ledger/key.ts';
import { MODEL_DATABASE_FILE } from '../../server/ledger/models.ts';
import { LEDGER_DATABASE_FILE } from '../../server/ledger/sqlite.ts';
import { DATABASE_FILE } from '../../server/storage/sqlite.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { auditJson } from './audit-cli.ts';
import { api, FAST, launch, startClients, startTestCoordinator, stopAll, tempDataDir, waitForRound } from './harness.ts';

const hash = (hex: string) => fromHex('hash', hex, 32);

const audit = (...args: string[]) => auditJson(...args);

describe('the transparency log on a coordinator', () => {
  const dataDir = tempDataDir();
  const secrets = tempDataDir();
  const keyFile = path.join(secrets, 'ledger.pem');
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];
  let publicKey = '';
  let closed = false;

  beforeAll(async () => {
    await useNodeBackend();
    const pair = generateKeyPairSync('ed25519');
    fs.writeFileSync(keyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    publicKey = Buffer.from((pair.publicKey.export({ format: 'jwk' }) as { x: string }).x, 'base64url').toString('hex');
    coordinator = await startTestCoordinator(dataDir, { ledgerKeyFile: keyFile });
    clients = await startClients(coordinator, 3);
  });

  afterAll(async () => {
    stopAll(clients);
    if (!closed) await coordinator?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(secrets, { recursive: true, force: true });
  });

  const read = <T>(pathname: string) => api<T>(coordinator, coordinator.auditor, 'GET', pathname);

  it('signs with the key outside the data directory, and serves heads and proofs that verify', async () => {
    expect(MODEL_DATABASE_FILE).toBe(DATABASE_FILE);
    expect(fs.existsSync(path.join(dataDir, LEDGER_KEY_FILE))).toBe(false);
    const genesisHead = (await read<SignedTreeHead>('/api/v1/ledger/head')).body;
    // Genesis, then the seed model's publication.
    expect(genesisHead).toMatchObject({ treeSize: 2, genesisKey: publicKey, keyId: publicKey });
    expect(treeHeadSignatureVerifies(genesisHead)).toBe(true);

    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 3, minClients: 3, ...FAST });
    expect((await waitForRound(coordinator, r!.id)).status).toBe('committed');
    // The round's release entry, then its version's publication.
    const consistency = (await read<{ first: number; second: number; proof: string[]; head: SignedTreeHead }>('/api/v1/ledger/consistency?first=2')).body;
    expect(consistency).toMatchObject({ first: 2, second: 4, head: { treeSize: 4, keyId: publicKey } });
    expect(treeHeadSignatureVerifies(consistency.head)).toBe(true);
    expect(await verifyConsistency(2, 4, hash(genesisHead.rootHash), hash(consistency.head.rootHash), consistency.proof.map(hash))).toBe(true);
    for (const seq of [1, 2, 3, 4]) {
      const inclusion = (await read<{ leafHash: string; leafIndex: number; treeSize: number; proof: string[]; head: SignedTreeHead }>(`/api/v1/ledger/inclusion?seq=${seq}`)).body;
      expect(inclusion).toMatchObject({ leafIndex: seq - 1, treeSize: 4 });
      expect(await verifyInclusion(hash(inclusion.leafHash), seq - 1, 4, inclusion.proof.map(hash), hash(inclusion.head.rootHash))).toBe(true);
    }
    // The report carries the head the compliance page shows.
    expect((await read<{ head: SignedTreeHead }>('/api/v1/ledger/report?format=json')).body.head).toMatchObject({ treeSize: 4, rootHash: consistency.head.rootHash });
    for (const [query, message] of [
      ['/consistency?first=abc', /"first" expected an integer >= 0, got "abc"/],
      ['/consistency?first=5', /"first" expected an integer in \[0, 4\], got 5/],
      ['/consistency', /"first" expected an integer >= 0, got null/],
      ['/inclusion?seq=0', /"seq" expected an integer >= 1, got "0"/],
      ['/inclusion?seq=2&treeSize=1', /"index" expected an integer in \[0, 0\], got 1/],
    ] as const) {
      const res = await read<ErrorBody>(`/api/v1/ledger${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body, query).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) });
    }
    for (const p of ['/api/v1/ledger/head', '/api/v1/ledger/consistency?first=1', '/api/v1/ledger/inclusion?seq=1']) expect((await api(coordinator, undefined, 'GET', p)).status).toBe(401);
  });

  it('audit verify --server keeps the head, then checks the grown ledger against it (served proof and models included)', async () => {
    const head = path.join(secrets, 'head.json');
    const server = ['--server', coordinator.url, '--token', coordinator.auditor, '--public-key', publicKey];
    expect(await audit('verify', ...server, '--save-head', head)).toMatchObject({ code: 0, ok: true, entries: 4, models: { published: 2, withoutRelease: [], digestMismatch: [], versionOnly: [] } });
    expect(JSON.parse(fs.readFileSync(head, 'utf8'))).toMatchObject({ treeSize: 4, keyId: publicKey, signature: expect.stringMatching(/^[0-9a-f]{128}$/) });
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 3, minClients: 3, ...FAST });
    expect((await waitForRound(coordinator, r!.id)).status).toBe('committed');
    expect(await audit('verify', ...server, '--since', head)).toMatchObject({ code: 0, ok: true, entries: 6, head: { treeSize: 6 }, models: { published: 3, withoutRelease: [], digestMismatch: [], versionOnly: [] } });
  });

  it('refuses to start on a ledger cut after the fact: a published model has lost its release entry', async () => {
    stopAll(clients);
    await coordinator.close();
    closed = true;
    const db = new Database(path.join(dataDir, LEDGER_DATABASE_FILE));
    // Round 2's release entry (seq 5) and its version's publication (seq 6).
    db.prepare('DELETE FROM ledger_entries WHERE seq >= 5').run();
    db.close();
    await expect(startTestCoordinator(dataDir, { ledgerKeyFile: keyFile })).rejects.toThrow(/^the model store and the privacy ledger disagree: model version 3 \(round 2\) is published, but no ledger entry released it/);
    // The refusal released the data directory: a second start fails for the same reason, not on its lock.
    await expect(startTestCoordinator(dataDir, { ledgerKeyFile: keyFile })).rejects.toThrow(/model version 3/);
  });
});

describe('model files bound by publication entries', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator | undefined;
  let clients: TestClient[] = [];

  beforeAll(async () => {
    await useNodeBackend();
  });

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const ledgerEntries = (): LedgerEntry[] => {
    const db = new Database(path.join(dataDir, LEDGER_DATABASE_FILE), { readonly: true });
    try {
      return (db.prepare('SELECT entry FROM ledger_entries ORDER BY seq').all() as { entry: string }[]).map((r) => LedgerEntrySchema.parse(JSON.parse(r.entry)));
    } finally {
      db.close();
    }
  };
  const stop = async () => {
    stopAll(clients);
    clients = [];
    await coordinator?.close();
    coordinator = undefined;
  };

  it('a lost publication is entered at the next start; swapped files fail audit verify (data directory and server) naming the version, and the start; a version without a publication is not served', async () => {
    const logs: string[] = [];
    coordinator = await startTestCoordinator(dataDir, { log: (line) => logs.push(line) });
    clients = await startClients(coordinator, 3);
    for (const r of await launch(coordinator, { rounds: 2, clientsPerRound: 3, minClients: 3, ...FAST })) expect((await waitForRound(coordinator, r.id)).status).toBe('committed');
    const server = ['--server', coordinator.url, '--token', coordinator.auditor];
    const bound = { published: 3, withoutRelease: [], digestMismatch: [], versionOnly: [] };
    expect(await audit('verify', ...server)).toMatchObject({ code: 0, ok: true, entries: 6, models: bound });
    await stop();
    expect(await audit('verify', '--data-dir', dataDir)).toMatchObject({ code: 0, ok: true, entries: 6, models: bound });

    // A crash between version 3's commit and its publication: the entry is missing (the ledger's last).
    const lost = ledgerEntries()[5] as PublicationEntry;
    expect(lost.publication).toMatchObject({ modelVersion: 3, entered: 'at-commit' });
    const db = new Database(path.join(dataDir, LEDGER_DATABASE_FILE));
    db.prepare('DELETE FROM ledger_entries WHERE seq = 6').run();
    db.close();
    expect(await audit('verify', '--data-dir', dataDir)).toMatchObject({ code: 1, ok: false, reason: 'model version 3 has no publication entry binding its digest (a coordinator stopped between the commit and the entry enters it at its next start)', models: { digestMismatch: [3] } });
    coordinator = await startTestCoordinator(dataDir, { log: (line) => logs.push(line) });
    expect(logs).toContain('privacy ledger: entered the publication of 1 model version(s) it lacked');
    const entered = (await api<{ entries: unknown[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger')).body.entries.map((e) => LedgerEntrySchema.parse(e));
    expect(entered).toHaveLength(6);
    expect((entered[5] as PublicationEntry).publication).toEqual({ ...lost.publication, entered: 'at-start' });

    // Version 2's weights swapped for version 1's (same size, other weights) under the running coordinator: the served files no longer match.
    const weights = path.join(dataDir, 'models', '2', 'weights.bin');
    const original = fs.readFileSync(weights);
    fs.copyFileSync(path.join(dataDir, 'models', '1', 'weights.bin'), weights);
    // The coordinator refuses to serve them from the next request (not only after a restart).
    for (const file of ['model.json', 'weights.bin']) {
      const refused = await fetch(`${coordinator.url}/models/2/${file}`);
      expect(refused.status).toBe(409);
      expect(((await refused.json()) as { code: string; message: string }).message).toMatch(/^model version 2's files have SHA-256 [0-9a-f]{64}, but its publication entry binds [0-9a-f]{64}: the files were replaced after publication; not served$/);
    }
    // An audit through the server sees a version it cannot read; one of the data directory, the digest that differs.
    const swapped = await audit('verify', '--server', coordinator.url, '--token', coordinator.auditor);
    expect(swapped).toMatchObject({ code: 1, ok: false, reason: "model version 2's files cannot be read, so they cannot be checked against its publication entry (seq 4)", models: { digestMismatch: [2] } });
    await stop();
    const offline = await audit('verify', '--data-dir', dataDir);
    expect(offline).toMatchObject({ code: 1, ok: false, models: { digestMismatch: [2] } });
    expect(offline.reason).toMatch(/^model version 2's files have SHA-256 [0-9a-f]{64}, but its publication entry \(seq 4\) binds [0-9a-f]{64}: the files were replaced after publication$/);
    await expect(startTestCoordinator(dataDir)).rejects.toThrow(/^the model store and the privacy ledger disagree: model version 2's files have SHA-256 [0-9a-f]{64}, but its publication entry \(seq 4\) binds/);
    // The refusal entered nothing and released the data directory: a second start fails the same way.
    expect(ledgerEntries()).toHaveLength(6);
    await expect(startTestCoordinator(dataDir)).rejects.toThrow(/model version 2's files/);
    // Restored, they agree again.
    fs.writeFileSync(weights, original);
    coordinator = await startTestCoordinator(dataDir);
    expect((await fetch(`${coordinator.url}/models/2/weights.bin`)).status).toBe(200);
    // A version put in the store outside a round, under the running coordinator: no publication binds it, so it is not served.
    const store = coordinator.registry.store;
    const outside = await store.add({ files: (await store.files(3))!, roundId: 99, parentVersion: 3, parameters: coordinator.registry.parameters }, new Date().toISOString());
    for (const file of ['model.json', 'weights.bin']) {
      const res = await fetch(`${coordinator.url}/models/${outside.version}/${file}`);
      expect(res.status, file).toBe(409);
      expect(await res.json(), file).toEqual({ code: 'MODEL_NOT_PUBLISHED', message: `model version ${outside.version} has no publication entry in the privacy ledger binding its files: not served` });
    }
  });
});

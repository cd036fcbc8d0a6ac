/**
 * `portrait audit` against a real data directory: the ledger is written by the embedded
 * default's code (SQLite file, key file, rotation through the CLI), exported, verified, reported,
 * and then tampered with, in the bundle and in the SQLite file: an edited field, a deleted
 * entry, reordered entries, entries re-signed with another key, a truncated bundle. Each is
 * caught with the right firstBadEntry. Then the attacks of issue 17, each shown passing without
 * a kept tree head and failing with one (--since): the ledger cut at its end, a history rewritten
 * and re-signed with the data directory's own key, the whole tamper suite, bundle fields edited;
 * a published model without its release entry; and the ledger key kept outside the data
 * directory (PKCS#8, flag and environment). Most calls run the commander program in-process
 * (same code path, fast); two spawn the real binary to check the exit status.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../shared/ledger/digest.ts';
import { entryHash, LedgerEntrySchema, signEntry } from '../../shared/ledger/entry.ts';
import type { LedgerEntry, SigningKey } from '../../shared/ledger/entry.ts';
import { openDataDirLedger } from '../../server/ledger/data-dir.ts';
import { LEDGER_KEY_FILE, readKeyFile } from '../../server/ledger/key.ts';
import { LEDGER_DATABASE_FILE, SqliteLedgerStore } from '../../server/ledger/sqlite.ts';
import { roundSpend, seededKey } from '../unit/ledger/fixtures.ts';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import { modelToFiles } from '../../shared/model/artifacts.ts';
import { buildModel } from '../../shared/model/build.ts';
import { openSqliteStores } from '../../server/storage/sqlite.ts';
import { loadDataset } from '../../scripts/import/resolve.ts';
import { dataConfig, modelConfigFor } from '../../scripts/lib/central.ts';
import { tempDataDir } from './harness.ts';
import { auditCli, auditJson } from './audit-cli.ts';

const cli = auditCli;
const json = auditJson;

/** Rewrites entries from `from` (1-based) on, re-signed with `key` and re-linked. */
async function resign(entries: LedgerEntry[], from: number, key: SigningKey): Promise<LedgerEntry[]> {
  const out = entries.slice(0, from - 1);
  let prev = await entryHash(out[from - 2] as LedgerEntry);
  for (const e of entries.slice(from - 1)) {
    const { signature: _s, ...rest } = e;
    const signed = signEntry({ ...rest, prevHash: prev, keyId: toHex(key.publicKey) } as Parameters<typeof signEntry>[0], key);
    out.push(signed);
    prev = await entryHash(signed);
  }
  return out;
}

describe('portrait audit', () => {
  const dataDir = tempDataDir();
  const work = tempDataDir();
  let entries: LedgerEntry[] = [];
  let genesisKey = '';
  let bundleFile = '';

  beforeAll(async () => {
    const first = await openDataDirLedger(dataDir, { env: {} });
    await first.ledger.recordRound(roundSpend({ roundId: 1 }));
    await first.ledger.recordRound(roundSpend({ roundId: 2, outcome: 'aborted' }));
    await first.ledger.recordRound(roundSpend({ roundId: 3, q: 0.25 }));
    genesisKey = first.ledger.publicKey;
    first.store.close();
    const rotated = await json<{ previousKey: string; publicKey: string }>('rotate-key', '--data-dir', dataDir, '--reason', 'test rotation');
    expect(rotated.previousKey).toBe(genesisKey);
    expect(rotated.publicKey).not.toBe(genesisKey);
    const keyFile = JSON.parse(fs.readFileSync(path.join(dataDir, LEDGER_KEY_FILE), 'utf8')) as { publicKey: string };
    expect(keyFile.publicKey).toBe(rotated.publicKey);
    expect(fs.statSync(path.join(dataDir, LEDGER_KEY_FILE)).mode & 0o777).toBe(0o600);
    const second = await openDataDirLedger(dataDir, { env: {} });
    await second.ledger.recordRound(roundSpend({ roundId: 4, noiseMultiplier: 2 }));
    entries = (await second.ledger.all()).map((e) => LedgerEntrySchema.parse(e));
    second.store.close();
    bundleFile = path.join(work, 'bundle.json');
  });

  afterAll(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('verifies the data directory, exports a bundle that verifies against the pinned key, and reports', async () => {
    expect(entries.map((e) => e.kind)).toEqual(['genesis', 'round', 'round', 'round', 'key-rotation', 'round']);
    const ok = await json('verify', '--data-dir', dataDir);
    expect(ok).toMatchObject({ code: 0, ok: true, entries: 6, delta: 1e-5 });
    expect(ok.epsilon).toBe((entries[5] as Extract<LedgerEntry, { kind: 'round' }>).round.epsilonCumulative);
    expect(Object.keys(ok).sort()).toEqual(['code', 'delta', 'entries', 'epsilon', 'head', 'ok']);
    expect(ok.head).toMatchObject({ format: 'portrait-tree-head/1', genesisKey: genesisKey, treeSize: 6, rootHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(await json('export', '--data-dir', dataDir, '--out', bundleFile, '--epsilon-cap', '50', '--delta', '1e-5')).toMatchObject({ code: 0, entries: 6, publicKey: genesisKey });
    // An existing bundle is not overwritten unless asked.
    const written = fs.readFileSync(bundleFile, 'utf8');
    expect((await cli('export', '--data-dir', dataDir, '--out', bundleFile)).code).toBe(1);
    expect(fs.readFileSync(bundleFile, 'utf8')).toBe(written);
    expect(await json('export', '--data-dir', dataDir, '--out', bundleFile, '--epsilon-cap', '50', '--delta', '1e-5', '--force')).toMatchObject({ code: 0, entries: 6 });
    expect(await json('verify', '--bundle', bundleFile, '--public-key', genesisKey)).toMatchObject({ code: 0, ok: true, entries: 6 });

    const md = await cli('report', '--bundle', bundleFile, '--format', 'md');
    expect(md.code).toBe(0);
    expect(md.stdout).toContain('The ledger verifies: 6 signed entries');
    expect(md.stdout).toMatch(/Deployment cap: epsilon = 50 at delta = 0\.00001; left: \d+\.\d{4}/);
    expect(md.stdout).toContain('Sensitive model heads');
    expect(md.stdout).toContain('Ledger key rotations: 1');
    expect(md.stdout).toMatch(/round +3 #+ +\| \d+\.\d{4}/);
    const html = await cli('report', '--bundle', bundleFile, '--format', 'html');
    expect(html.stdout).toMatch(/<svg id="epsilon-chart"[\s\S]*<polyline class="spent"/);
    const report = JSON.parse((await cli('report', '--data-dir', dataDir, '--format', 'json')).stdout) as { rounds: unknown[]; budgetLeft: unknown; sensitiveHeads: { enabled: string[] | null } };
    expect(report.rounds).toHaveLength(4);
    // No model store in this directory: which heads the model has is not known here.
    expect(report.sensitiveHeads.enabled).toBeNull();
  });

  it('says in words when nothing private was released yet, and when a release without DP left the spend unbounded', async () => {
    const dir = tempDataDir();
    try {
      const opened = await openDataDirLedger(dir, { env: {} });
      const plain = async () => (await cli('verify', '--data-dir', dir)).stdout;
      expect(await plain()).toMatch(/; no differentially private round released yet$/m);
      await opened.ledger.recordRound({ ...roundSpend({ roundId: 1 }), mode: 'none', mechanism: 'none' });
      opened.store.close();
      expect(await plain()).toMatch(/; cumulative epsilon unbounded \(a model was released without differential privacy\)( at delta [\d.e-]+)?$/m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads the enabled sensitive heads from the data directory's latest model version", async () => {
    await useNodeBackend();
    const dataset = await loadDataset('synthetic:60');
    const data = dataConfig();
    const prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, false);
    const stores = openSqliteStores(dataDir);
    try {
      for (const sensitive of [false, true]) {
        const config = modelConfigFor(prepared, data, 'mlp', sensitive);
        const model = buildModel(config, 1);
        // Version 2 is round 1's release (its ledger entry names version 2), so models and ledger agree.
        await stores.models.add({ files: await modelToFiles(model, config), roundId: sensitive ? 1 : null, parentVersion: sensitive ? 1 : null, parameters: model.countParams() }, new Date().toISOString());
        model.dispose();
        const report = JSON.parse((await cli('report', '--data-dir', dataDir, '--format', 'json')).stdout) as { sensitiveHeads: { enabled: string[] | null } };
        expect(report.sensitiveHeads.enabled).toEqual(sensitive ? ['age', 'gender', 'career', 'stage'] : []);
      }
      const md = await cli('report', '--data-dir', dataDir, '--format', 'md');
      expect(md.stdout).toContain('enabled in the current model: age, gender, career, stage.');
    } finally {
      stores.close();
    }
  });

  it('names the first bad entry for every tampering of the bundle', async () => {
    const bundle = JSON.parse(fs.readFileSync(bundleFile, 'utf8')) as { entries: LedgerEntry[] };
    const cases: [string, (b: { entries: LedgerEntry[] }) => Promise<void> | void, number][] = [
      ['edited field', (b) => void ((b.entries[3] as Extract<LedgerEntry, { kind: 'round' }>).round.survivors = 99), 4],
      ['deleted entry', (b) => void b.entries.splice(2, 1), 3],
      ['reordered entries', (b) => void b.entries.splice(1, 2, b.entries[2] as LedgerEntry, b.entries[1] as LedgerEntry), 2],
      ['re-signed with another key', async (b) => void (b.entries = [...(await resign(b.entries.slice(0, 4), 3, seededKey(7))), ...b.entries.slice(4)]), 3],
      ['truncated', (b) => void b.entries.pop(), 6],
    ];
    for (const [name, tamper, bad] of cases) {
      const copy = structuredClone(bundle);
      await tamper(copy);
      const file = path.join(work, `tampered-${name.replaceAll(' ', '-')}.json`);
      fs.writeFileSync(file, JSON.stringify(copy));
      const result = await json<{ ok: boolean; firstBadEntry: number; reason: string }>('verify', '--bundle', file, '--public-key', genesisKey);
      expect(result, name).toMatchObject({ code: 1, ok: false, firstBadEntry: bad });
      expect(result.reason, name).toBeTruthy();
    }
    // A bundle forged end to end with another key fails against the auditor's pinned key.
    const forged = { ...structuredClone(bundle), publicKey: toHex(seededKey(7).publicKey) };
    fs.writeFileSync(path.join(work, 'forged.json'), JSON.stringify(forged));
    expect(await json('verify', '--bundle', path.join(work, 'forged.json'), '--public-key', genesisKey)).toMatchObject({ code: 1, ok: false, firstBadEntry: 1 });
  });

  it('names the first bad entry for every tampering of the SQLite file', async () => {
    const cases: [string, (db: Database.Database) => Promise<void> | void, number][] = [
      ['edited field', (db) => void db.prepare('UPDATE ledger_entries SET entry = ? WHERE seq = 3').run(JSON.stringify({ ...entries[2], createdAt: '2020-01-01T00:00:00.000Z' })), 3],
      ['deleted entry', (db) => void db.prepare('DELETE FROM ledger_entries WHERE seq = 3').run(), 3],
      [
        'reordered entries',
        (db) => {
          db.prepare('UPDATE ledger_entries SET entry = ? WHERE seq = 2').run(JSON.stringify(entries[2]));
          db.prepare('UPDATE ledger_entries SET entry = ? WHERE seq = 3').run(JSON.stringify(entries[1]));
        },
        2,
      ],
      [
        're-signed with another key',
        async (db) => {
          const forged = await resign(entries.slice(0, 4), 2, seededKey(7));
          for (const e of forged.slice(1)) db.prepare('UPDATE ledger_entries SET entry = ? WHERE seq = ?').run(JSON.stringify(e), e.seq);
        },
        2,
      ],
    ];
    for (const [name, tamper, bad] of cases) {
      const dir = path.join(work, `db-${name.replaceAll(' ', '-')}`);
      fs.mkdirSync(dir);
      fs.copyFileSync(path.join(dataDir, LEDGER_DATABASE_FILE), path.join(dir, LEDGER_DATABASE_FILE));
      const db = new Database(path.join(dir, LEDGER_DATABASE_FILE));
      await tamper(db);
      db.close();
      const result = await json<{ ok: boolean; firstBadEntry: number }>('verify', '--data-dir', dir, '--public-key', genesisKey);
      expect(result, name).toMatchObject({ code: 1, ok: false, firstBadEntry: bad });
    }
  });

  it('exits non-zero from the real binary when the ledger does not verify', () => {
    const bin = path.resolve('bin/portrait.js');
    const good = spawnSync(process.execPath, [bin, 'audit', 'verify', '--bundle', bundleFile, '--json'], { encoding: 'utf8' });
    expect(good.status).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ ok: true, entries: 6 });
    const plain = spawnSync(process.execPath, [bin, 'audit', 'verify', '--bundle', bundleFile], { encoding: 'utf8' });
    expect(plain.stdout).toMatch(/^ledger OK \(.*\): 6 entries, chain and signatures verified, epsilons recomputed; cumulative epsilon \d+\.\d{6} at delta 0\.00001$/m);
    const bad = spawnSync(process.execPath, [bin, 'audit', 'verify', '--bundle', path.join(work, 'tampered-deleted-entry.json')], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/ledger FAILED .* at entry 3: expected seq 3, found 4/);
  });
});

/** A model version in the data directory's store (the files are placeholders: nothing here loads them). */
async function publishModel(dataDir: string, roundId: number | null, parentVersion: number | null): Promise<void> {
  const stores = openSqliteStores(dataDir);
  try {
    const files = { modelJson: { modelTopology: {}, weightsManifest: [] } as unknown as Parameters<typeof stores.models.add>[0]['files']['modelJson'], weights: new Uint8Array(8) };
    await stores.models.add({ files, roundId, parentVersion, parameters: 2 }, new Date().toISOString());
  } finally {
    stores.close();
  }
}

function copyLedger(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  fs.copyFileSync(path.join(from, LEDGER_DATABASE_FILE), path.join(to, LEDGER_DATABASE_FILE));
}

describe('portrait audit with a kept tree head (issue 17 attacks)', () => {
  // A deployment as the issue found it: no key rotation, the key file beside the ledger, models
  // v1 (initial), v2 (round 1) and v3 (round 3) published, each with its release entry.
  const dataDir = tempDataDir();
  const work = tempDataDir();
  const headFile = path.join(work, 'head.json');
  const signedHeadFile = path.join(work, 'signed-head.json');
  const bundleFile = path.join(work, 'bundle.json');
  let genesisKey = '';
  let honestEpsilon = 0;

  beforeAll(async () => {
    const { ledger, store } = await openDataDirLedger(dataDir, { env: {} });
    await ledger.recordRound(roundSpend({ roundId: 1 }));
    await ledger.recordRound(roundSpend({ roundId: 2, outcome: 'aborted' }));
    await ledger.recordRound({ ...roundSpend({ roundId: 3 }), modelVersionIn: 2, modelVersionOut: 3 });
    genesisKey = ledger.publicKey;
    store.close();
    await publishModel(dataDir, null, null);
    await publishModel(dataDir, 1, 1);
    await publishModel(dataDir, 3, 2);
  });

  afterAll(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('keeps the head (verify, report, export --save-head), checks the models, and accepts an honest extension with --since', async () => {
    const ok = await json<{ ok: boolean; epsilon: number; head: { treeSize: number; rootHash: string }; models: unknown }>('verify', '--data-dir', dataDir, '--save-head', headFile);
    expect(ok).toMatchObject({ code: 0, ok: true, entries: 4, models: { published: 3, withoutRelease: [] } });
    honestEpsilon = ok.epsilon;
    const kept = JSON.parse(fs.readFileSync(headFile, 'utf8')) as { treeSize: number; rootHash: string; signature?: string };
    expect(kept).toMatchObject({ format: 'portrait-tree-head/1', genesisKey, treeSize: 4, rootHash: ok.head.rootHash });
    expect(kept.signature).toBeUndefined();
    expect(await json('export', '--data-dir', dataDir, '--out', bundleFile, '--save-head', signedHeadFile)).toMatchObject({ code: 0, head: { treeSize: 4, rootHash: ok.head.rootHash, keyId: genesisKey } });
    expect(JSON.parse(fs.readFileSync(signedHeadFile, 'utf8'))).toMatchObject({ treeSize: 4, rootHash: ok.head.rootHash, signature: expect.stringMatching(/^[0-9a-f]{128}$/) });
    const md = await cli('report', '--data-dir', dataDir, '--format', 'md');
    expect(md.stdout).toContain(`Tree head to keep (transparency log, RFC 9162): size 4, root hash ${ok.head.rootHash}, computed from these entries`);
    expect(md.stdout).toMatch(/## Tree head to keep\n\n```json\n\{\n {2}"format": "portrait-tree-head\/1"/);
    const plain = await cli('verify', '--data-dir', dataDir, '--since', headFile);
    expect(plain.stdout).toMatch(/^ledger OK \(.*\): 4 entries, .*\n {2}a consistent extension of the tree head kept in .*head\.json\n {2}3 published model versions, each released by a ledger entry; all \(1, 2, 3\) checked by version only: the ledger predates publication entries, which bind a version's files to their digest\ntree head to keep: size 4, root [0-9a-f]{64}$/m);

    // The coordinator appends (an honest extension): the kept heads, signed or not, still hold.
    const extended = path.join(work, 'extended');
    fs.cpSync(dataDir, extended, { recursive: true });
    const { ledger, store } = await openDataDirLedger(extended, { env: {} });
    await ledger.recordRound({ ...roundSpend({ roundId: 4 }), modelVersionIn: 3, modelVersionOut: 4 });
    store.close();
    for (const kept of [headFile, signedHeadFile, bundleFile]) expect(await json('verify', '--data-dir', extended, '--since', kept), kept).toMatchObject({ code: 0, ok: true, entries: 5 });
  });

  it('truncation (DELETE FROM ledger_entries WHERE seq >= 3): verifies alone, fails with --since naming the kept head; the models show it too', async () => {
    const cut = path.join(work, 'cut');
    copyLedger(dataDir, cut);
    const db = new Database(path.join(cut, LEDGER_DATABASE_FILE));
    db.prepare('DELETE FROM ledger_entries WHERE seq >= 3').run();
    db.close();
    // The attack as the issue found it: without a kept head, a shorter ledger verifies with the genesis key pinned.
    const alone = await json<{ epsilon: number }>('verify', '--data-dir', cut, '--public-key', genesisKey);
    expect(alone).toMatchObject({ code: 0, ok: true, entries: 2 });
    expect(alone.epsilon).toBeLessThan(honestEpsilon);
    const caught = await json<{ reason: string }>('verify', '--data-dir', cut, '--public-key', genesisKey, '--since', headFile);
    expect(caught).toMatchObject({ code: 1, ok: false, firstBadEntry: 3 });
    expect(caught.reason).toMatch(/^the ledger holds 2 entries, fewer than the 4 of the tree head kept in .*head\.json \(size 4, root [0-9a-f]{16}…, computed .*\): entries were removed from its end$/);
    expect((await cli('verify', '--data-dir', cut, '--since', headFile)).stdout).toMatch(/^ledger FAILED \(.*\) at entry 3: the ledger holds 2 entries, fewer than the 4 of the tree head kept in/);
    // A failed ledger's head is not kept.
    const untouched = fs.readFileSync(headFile, 'utf8');
    expect((await cli('verify', '--data-dir', cut, '--since', headFile, '--save-head', headFile)).code).toBe(1);
    expect(fs.readFileSync(headFile, 'utf8')).toBe(untouched);
    // In the data directory itself, the published model of round 3 has lost its release entry.
    fs.cpSync(dataDir, path.join(work, 'cut-with-models'), { recursive: true });
    copyLedger(cut, path.join(work, 'cut-with-models'));
    const models = await json<{ reason: string; models: unknown }>('verify', '--data-dir', path.join(work, 'cut-with-models'));
    expect(models).toMatchObject({ code: 1, ok: false, models: { published: 3, withoutRelease: [3] } });
    expect(models.reason).toBe('model version 3 (round 3) is published, but no ledger entry released it: its release entry was removed, or the model was stored outside a round');
  });

  it("rewrite with the data directory's own key: less spend recorded, re-accounted and re-signed, verifies with the genesis key pinned and the models agreeing; fails with --since", async () => {
    const forged = path.join(work, 'forged');
    fs.cpSync(dataDir, forged, { recursive: true });
    for (const f of fs.readdirSync(forged).filter((f) => f.startsWith(LEDGER_DATABASE_FILE))) fs.rmSync(path.join(forged, f));
    // ledger-key.json sits beside the ledger: the operator writes a new history with it.
    const { ledger, store } = await openDataDirLedger(forged, { env: {} });
    await ledger.recordRound(roundSpend({ roundId: 1, noiseMultiplier: 5 }));
    await ledger.recordRound(roundSpend({ roundId: 2, outcome: 'aborted' }));
    await ledger.recordRound({ ...roundSpend({ roundId: 3, noiseMultiplier: 5 }), modelVersionIn: 2, modelVersionOut: 3 });
    store.close();
    const alone = await json<{ epsilon: number }>('verify', '--data-dir', forged, '--public-key', genesisKey);
    expect(alone).toMatchObject({ code: 0, ok: true, entries: 4, models: { published: 3, withoutRelease: [] } });
    expect(alone.epsilon).toBeLessThan(honestEpsilon / 4);
    for (const kept of [headFile, signedHeadFile]) {
      const caught = await json<{ reason: string }>('verify', '--data-dir', forged, '--public-key', genesisKey, '--since', kept);
      expect(caught, kept).toMatchObject({ code: 1, ok: false });
      expect(caught.reason).toMatch(/^the ledger's first 4 entries hash to root [0-9a-f]{16}…, not to that of the tree head kept in .*head\.json .*: the history the head covers was rewritten, reordered or cut and regrown/);
    }
  });

  it('catches every tamper of the suite when a head is kept: edit, delete, reorder, truncate, re-sign with another key or the data directory\'s, an unsigned bundle field', async () => {
    const reader = new SqliteLedgerStore(path.join(dataDir, LEDGER_DATABASE_FILE));
    const entries = (await reader.all()).map((e) => LedgerEntrySchema.parse(e));
    reader.close();
    const dataKey = readKeyFile(path.join(dataDir, LEDGER_KEY_FILE)) as SigningKey;
    const dbCases: [string, (db: Database.Database) => Promise<void> | void][] = [
      ['edited field', (db) => void db.prepare('UPDATE ledger_entries SET entry = ? WHERE seq = 2').run(JSON.stringify({ ...entries[1], createdAt: '2020-01-01T00:00:00.000Z' }))],
      ['deleted entry', (db) => void db.prepare('DELETE FROM ledger_entries WHERE seq = 2').run()],
      [
        'reordered entries',
        (db) => {
          db.prepare('UPDATE ledger_entries SET entry = ? WHERE seq = 2').run(JSON.stringify(entries[2]));
          db.prepare('UPDATE ledger_entries SET entry = ? WHERE seq = 3').run(JSON.stringify(entries[1]));
        },
      ],
      ['truncated', (db) => void db.prepare('DELETE FROM ledger_entries WHERE seq >= 4').run()],
      ...(['another key', "the data directory's key"] as const).map((name): [string, (db: Database.Database) => Promise<void>] => [
        `re-signed with ${name}`,
        async (db) => {
          const edited = structuredClone(entries);
          (edited[3] as Extract<LedgerEntry, { kind: 'round' }>).round.survivors = 99;
          for (const e of await resign(edited, 2, name === 'another key' ? seededKey(7) : dataKey)) db.prepare('UPDATE ledger_entries SET entry = ? WHERE seq = ?').run(JSON.stringify(e), e.seq);
        },
      ]),
    ];
    let caught = 0;
    for (const [name, tamper] of dbCases) {
      const dir = path.join(work, `suite-${name.replace(/\W+/g, '-')}`);
      copyLedger(dataDir, dir);
      const db = new Database(path.join(dir, LEDGER_DATABASE_FILE));
      await tamper(db);
      db.close();
      const result = await json<{ ok: boolean }>('verify', '--data-dir', dir, '--since', headFile);
      expect(result, name).toMatchObject({ code: 1, ok: false });
      caught++;
    }
    for (const [name, edit] of [
      ['cap', (b: Record<string, unknown>) => void (b.cap = { epsilon: 1e6, delta: 0.5 })],
      ['accountant orders', (b: Record<string, unknown>) => void ((b.accountant as { orders: number[] }).orders = [2, 3])],
      ['format', (b: Record<string, unknown>) => void (b.format = 'portrait-ledger-bundle/1')],
    ] as const) {
      const copy = JSON.parse(fs.readFileSync(bundleFile, 'utf8')) as Record<string, unknown>;
      edit(copy);
      const file = path.join(work, `suite-bundle-${name.replaceAll(' ', '-')}.json`);
      fs.writeFileSync(file, JSON.stringify(copy));
      expect(await json('verify', '--bundle', file, '--public-key', genesisKey, '--since', headFile), name).toMatchObject({ code: 1, ok: false });
      // The report does not take the edited cap either.
      expect((await cli('report', '--bundle', file, '--format', 'json')).code, name).toBe(1);
      caught++;
    }
    expect(caught).toBe(dbCases.length + 3);
  });
});

describe('the ledger key apart from the data directory', () => {
  const dataDir = tempDataDir();
  const secrets = tempDataDir();
  const pemFile = path.join(secrets, 'ledger.pem');

  afterAll(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(secrets, { recursive: true, force: true });
  });

  it('signs with a PKCS#8 key kept outside (flag or PORTRAIT_LEDGER_KEY_FILE); export and rotate-key need it named; the data directory alone holds no key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    fs.writeFileSync(pemFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const rawPublic = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
    const lines: string[] = [];
    const { ledger, store, keyFile } = await openDataDirLedger(dataDir, { env: {}, keyFile: pemFile, log: (l) => lines.push(l) });
    await ledger.recordRound(roundSpend({ roundId: 1 }));
    store.close();
    expect(keyFile).toBe(pemFile);
    expect(ledger.publicKey).toBe(Buffer.from(rawPublic, 'base64url').toString('hex'));
    expect(fs.existsSync(path.join(dataDir, LEDGER_KEY_FILE))).toBe(false);
    expect(lines).toEqual([]);
    const head = path.join(secrets, 'head.json');
    expect(await json('verify', '--data-dir', dataDir, '--save-head', head)).toMatchObject({ code: 0, ok: true, entries: 2 });

    // Without the key, the audit commands that sign say where to name it; a coordinator would not start.
    const missing = await cli('export', '--data-dir', dataDir, '--out', path.join(secrets, 'b.json'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^portrait: NOT_FOUND: no ledger key at .*ledger-key\.json: pass the coordinator's key file with --ledger-key FILE \(or PORTRAIT_LEDGER_KEY_FILE\)$/m);
    await expect(openDataDirLedger(dataDir, { env: {} })).rejects.toThrow(/"ledger key" expected at .*ledger-key\.json, found none, but the ledger in .* exists \(its current key is [0-9a-f]{64}\): name its key file with --ledger-key FILE or PORTRAIT_LEDGER_KEY_FILE/);
    expect(fs.existsSync(path.join(dataDir, LEDGER_KEY_FILE))).toBe(false);
    expect(await json('export', '--data-dir', dataDir, '--ledger-key', pemFile, '--out', path.join(secrets, 'b.json'))).toMatchObject({ code: 0, publicKey: ledger.publicKey });
    process.env.PORTRAIT_LEDGER_KEY_FILE = pemFile;
    try {
      expect(await json('export', '--data-dir', dataDir, '--out', path.join(secrets, 'b2.json'))).toMatchObject({ code: 0, publicKey: ledger.publicKey });
      const rotated = await json<{ previousKey: string; publicKey: string }>('rotate-key', '--data-dir', dataDir);
      expect(rotated).toMatchObject({ code: 0, previousKey: ledger.publicKey });
      // The new key replaced the old one in the same place and format; still nothing in the data directory.
      expect(fs.readFileSync(pemFile, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(fs.statSync(pemFile).mode & 0o777).toBe(0o600);
      expect(readKeyFile(pemFile)?.publicKey).toEqual(fromHexKey(rotated.publicKey));
      expect(fs.existsSync(path.join(dataDir, LEDGER_KEY_FILE))).toBe(false);
    } finally {
      delete process.env.PORTRAIT_LEDGER_KEY_FILE;
    }
    // A rotation extends the log: the head kept before it still holds.
    expect(await json('verify', '--data-dir', dataDir, '--since', head)).toMatchObject({ code: 0, ok: true, entries: 3 });
  });

  it('warns when a key named outside leaves a copy in the data directory', async () => {
    const dir = tempDataDir();
    try {
      const first = await openDataDirLedger(dir, { env: {} });
      first.store.close();
      const outside = path.join(secrets, 'moved.json');
      fs.copyFileSync(path.join(dir, LEDGER_KEY_FILE), outside);
      const lines: string[] = [];
      const again = await openDataDirLedger(dir, { env: { PORTRAIT_LEDGER_KEY_FILE: outside }, log: (l) => lines.push(l) });
      again.store.close();
      expect(again.keyFile).toBe(outside);
      expect(lines).toEqual([expect.stringMatching(/^warning: the ledger key is read from .*moved\.json, but .*ledger-key\.json is still in the data directory: .* delete the copy in the data directory$/)]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

function fromHexKey(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => Number.parseInt(h, 16));
}

/**
 * `portrait audit` against a real data directory: the ledger is written by the embedded
 * default's code (SQLite file, key file, rotation through the CLI), exported, verified, reported,
 * and then tampered with, in the bundle and in the SQLite file: an edited field, a deleted
 * entry, reordered entries, entries re-signed with another key, a truncated bundle. Each is
 * caught with the right firstBadEntry. Most calls run the commander program in-process
 * (same code path, fast); two spawn the real binary to check the exit status.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { toHex } from '../../shared/ledger/digest.ts';
import { entryHash, LedgerEntrySchema, signEntry } from '../../shared/ledger/entry.ts';
import type { LedgerEntry, SigningKey } from '../../shared/ledger/entry.ts';
import { openDataDirLedger } from '../../server/ledger/data-dir.ts';
import { LEDGER_KEY_FILE } from '../../server/ledger/key.ts';
import { LEDGER_DATABASE_FILE } from '../../server/ledger/sqlite.ts';
import { registerAuditCommands } from '../../scripts/cli/audit.ts';
import { roundSpend, seededKey } from '../unit/ledger/fixtures.ts';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import { modelToFiles } from '../../shared/model/artifacts.ts';
import { buildModel } from '../../shared/model/build.ts';
import { openSqliteStores } from '../../server/storage/sqlite.ts';
import { loadDataset } from '../../scripts/import/resolve.ts';
import { dataConfig, modelConfigFor } from '../../scripts/lib/central.ts';
import { tempDataDir } from './harness.ts';

interface CliResult {
  code: number;
  stdout: string;
}

async function cli(...args: string[]): Promise<CliResult> {
  const program = new Command().exitOverride();
  registerAuditCommands(program);
  const chunks: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  });
  process.exitCode = undefined;
  try {
    await program.parseAsync(['node', 'portrait', 'audit', ...args]);
  } finally {
    write.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, stdout: chunks.join('') };
}

async function json<T = Record<string, unknown>>(...args: string[]): Promise<T & { code: number }> {
  const r = await cli(...args, '--json');
  return { ...(JSON.parse(r.stdout) as T), code: r.code };
}

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
    expect(Object.keys(ok).sort()).toEqual(['code', 'delta', 'entries', 'epsilon', 'ok']);
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
        await stores.models.add({ files: await modelToFiles(model, config), roundId: null, parentVersion: null, parameters: model.countParams() }, new Date().toISOString());
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

/**
 * Models and ledger agree (shared/ledger/models.ts): which published versions a ledger accounts
 * for, case by case, and whose files its publication entries bind; and the ledger key file (server/ledger/key.ts): JSON and PKCS#8 PEM read the
 * same key, a rotation stages the next key beside the current one in its format, and a crash
 * between the steps resolves to the key the ledger names.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex } from '../../../shared/ledger/digest.ts';
import { LedgerEntrySchema } from '../../../shared/ledger/entry.ts';
import { modelDigestProblems, unreleasedModels } from '../../../shared/ledger/models.ts';
import { verifyLedger } from '../../../shared/ledger/verify.ts';
import type { Publication } from '../../../shared/ledger/entry.ts';
import { PrivacyLedger } from '../../../server/ledger/ledger.ts';
import { MemoryLedgerStore } from '../../../server/ledger/memory.ts';
import { nextKeyFile, readKeyFile, resolveLedgerKey, stageNextKey, writeKeyFile } from '../../../server/ledger/key.ts';
import { fixedClock, roundSpend, seededKey } from './fixtures.ts';

describe('models and ledger agree', () => {
  it('accounts for the seed model and every version a release entry names with its round; names the rest', async () => {
    const store = new MemoryLedgerStore();
    const ledger = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    await ledger.recordRound({ ...roundSpend({ roundId: 1 }), modelVersionOut: 2 });
    // Round 2's release was entered, then the round failed before publishing (an over-count); round 3 published version 3.
    await ledger.recordRound({ ...roundSpend({ roundId: 2 }), modelVersionOut: 3 });
    await ledger.recordRound({ ...roundSpend({ roundId: 2, outcome: 'aborted' }) });
    await ledger.recordRound({ ...roundSpend({ roundId: 3 }), modelVersionOut: 3 });
    await ledger.recordRound({ ...roundSpend({ roundId: 4, outcome: 'aborted' }) });
    const entries = (await store.all()).map((e) => LedgerEntrySchema.parse(e));
    const agree = [
      { version: 1, roundId: null, parentVersion: null },
      { version: 2, roundId: 1, parentVersion: 1 },
      { version: 3, roundId: 3, parentVersion: 2 },
    ];
    expect(unreleasedModels(agree, entries)).toEqual([]);
    expect(unreleasedModels([...agree, { version: 4, roundId: 4, parentVersion: 3 }], entries)).toEqual([{ version: 4, reason: 'model version 4 (round 4) is published, but no ledger entry released it: its release entry was removed, or the model was stored outside a round' }]);
    expect(unreleasedModels([{ version: 3, roundId: 5, parentVersion: 2 }], entries)[0]?.reason).toBe('model version 3 (round 5) is published, but no ledger entry released it (the release entries naming version 3 are of round 2, 3): its release entry was removed, or the model was stored outside a round');
    expect(unreleasedModels([{ version: 2, roundId: null, parentVersion: null }], entries)[0]?.reason).toBe('model version 2 is published without a round: only version 1, the initial model, or a bootstrap version built from released analytics queries may be');
    expect(unreleasedModels([{ version: 1, roundId: null, parentVersion: null }], [])).toEqual([]);
  });

  it('accounts for a bootstrap version only when every round it names released an analytics query', async () => {
    const store = new MemoryLedgerStore();
    const ledger = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    const spend = roundSpend({ roundId: 1 });
    await ledger.recordRound({ ...spend, modelVersionOut: null, query: { statistic: 'category-counts', dimension: 10, bound: spend.clip, sha256: 'a'.repeat(64) } });
    await ledger.recordRound({ ...roundSpend({ roundId: 2 }), modelVersionOut: 2 });
    await ledger.recordRound({ ...roundSpend({ roundId: 3, outcome: 'aborted' }) });
    const entries = (await store.all()).map((e) => LedgerEntrySchema.parse(e));
    const seed = { version: 1, roundId: null, parentVersion: null };
    expect(unreleasedModels([seed, { version: 2, roundId: null, parentVersion: null, derivedFrom: [1] }], entries)).toEqual([]);
    // A training round's release, or an aborted round, is no released query.
    for (const from of [[2], [1, 3]]) {
      expect(unreleasedModels([seed, { version: 2, roundId: null, parentVersion: null, derivedFrom: from }], entries)[0]?.reason).toBe(`model version 2 is a bootstrap version built from analytics round(s) ${from.join(', ')}, but no ledger entry released the query of round ${from[from.length - 1]}`);
    }
    // Version 1 that names source rounds is a bootstrap version like any other.
    expect(unreleasedModels([{ ...seed, derivedFrom: [3] }], entries)).toHaveLength(1);
  });
});

describe('publication entries bind each version to its files', () => {
  const digest = (n: number) => n.toString(16).padStart(64, '0');
  const publication = (p: Partial<Publication> & { modelVersion: number }): Publication => ({ roundId: p.modelVersion === 1 ? null : p.modelVersion - 1, parentVersion: p.modelVersion === 1 ? null : p.modelVersion - 1, sha256: digest(p.modelVersion), bytes: 100, entered: 'at-commit', ...p });

  async function ledgerWithPublications(): Promise<{ store: MemoryLedgerStore; ledger: PrivacyLedger }> {
    const store = new MemoryLedgerStore();
    const ledger = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    await ledger.recordPublication(publication({ modelVersion: 1, entered: 'at-start' }));
    await ledger.recordRound({ ...roundSpend({ roundId: 1 }), modelVersionOut: 2 });
    await ledger.recordPublication(publication({ modelVersion: 2 }));
    await ledger.recordRound({ ...roundSpend({ roundId: 2 }), modelVersionOut: 3 });
    return { store, ledger };
  }

  it('verifies publications after their release entries, signed and in the tree like every entry; refuses one out of place', async () => {
    const { store, ledger } = await ledgerWithPublications();
    await ledger.recordPublication(publication({ modelVersion: 3 }));
    const entries = await store.all();
    expect(await verifyLedger(entries)).toMatchObject({ ok: true, entries: 6 });
    const edited = entries.map((e, i) => (i === 3 ? { ...(e as object), publication: { ...(e as { publication: Publication }).publication, sha256: digest(99) } } : e));
    expect(await verifyLedger(edited)).toMatchObject({ ok: false, firstBadEntry: 4, reason: 'Ed25519 signature does not verify: the entry was edited or signed by another key' });

    const cases: [string, Publication, string][] = [
      ['before its release', publication({ modelVersion: 4, roundId: 3 }), 'publication of model version 4 for round 3, but no earlier entry released that round as version 4'],
      ['for another round', publication({ modelVersion: 3, roundId: 1 }), 'publication of model version 3 for round 1, but no earlier entry released that round as version 3'],
      ['a second time', publication({ modelVersion: 2 }), 'a second publication entry for model version 2'],
      ['without a round', publication({ modelVersion: 3, roundId: null }), 'model version 3 is published without a round: only version 1, the initial model, or a bootstrap version built from released analytics queries may be'],
      ['bootstrapped from a training round', publication({ modelVersion: 3, roundId: null, parentVersion: null, entered: 'at-bootstrap', derivedFrom: [1] }), 'model version 3 is a bootstrap version built from analytics round(s) 1, but no ledger entry released the query of round 1'],
    ];
    for (const [name, bad, reason] of cases) {
      const fresh = await ledgerWithPublications();
      await fresh.ledger.recordPublication(bad);
      expect(await verifyLedger(await fresh.store.all()), name).toMatchObject({ ok: false, firstBadEntry: 6, reason });
      // A ledger holding it no longer opens.
      await expect(PrivacyLedger.open({ store: fresh.store, key: seededKey(1), software: 'portrait/test' }), name).rejects.toThrow(reason);
    }
  });

  it('checks each version\'s files against the digest its publication binds; a ledger without publications by version only', async () => {
    const { store, ledger } = await ledgerWithPublications();
    const entries = (await store.all()).map((e) => LedgerEntrySchema.parse(e));
    const stored = [
      { version: 1, roundId: null, parentVersion: null, sha256: digest(1) },
      { version: 2, roundId: 1, parentVersion: 1, sha256: digest(2) },
    ];
    expect(modelDigestProblems(stored, entries)).toEqual({ problems: [], versionOnly: [] });
    // Version 2's files swapped for others under the same number.
    expect(modelDigestProblems([stored[0]!, { ...stored[1]!, sha256: digest(7) }], entries).problems).toEqual([{ version: 2, reason: `model version 2's files have SHA-256 ${digest(7)}, but its publication entry (seq 4) binds ${digest(2)}: the files were replaced after publication` }]);
    expect(modelDigestProblems([{ ...stored[1]!, sha256: null }], entries).problems[0]?.reason).toBe("model version 2's files cannot be read, so they cannot be checked against its publication entry (seq 4)");
    expect(modelDigestProblems([{ ...stored[1]!, roundId: 5 }], entries).problems[0]?.reason).toBe('model version 2 is stored as of round 5, but its publication entry (seq 4) names round 1');
    // Version 3 committed, its publication not entered yet (a crash between the two): named until the next start enters it.
    expect(modelDigestProblems([...stored, { version: 3, roundId: 2, parentVersion: 2, sha256: digest(3) }], entries).problems).toEqual([{ version: 3, reason: 'model version 3 has no publication entry binding its digest (a coordinator stopped between the commit and the entry enters it at its next start)' }]);
    await ledger.recordPublication(publication({ modelVersion: 3 }));
    expect(modelDigestProblems([...stored, { version: 3, roundId: 2, parentVersion: 2, sha256: digest(3) }], (await store.all()).map((e) => LedgerEntrySchema.parse(e)))).toEqual({ problems: [], versionOnly: [] });
    // A ledger from before publication entries: every version by version only, whatever its files.
    const older = entries.filter((e) => e.kind !== 'publication');
    expect(modelDigestProblems([{ ...stored[1]!, sha256: digest(7) }, stored[0]!], older)).toEqual({ problems: [], versionOnly: [1, 2] });
  });
});

describe('the ledger key file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-key-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the same key from our JSON and from a PKCS#8 PEM, and refuses a mismatched or foreign key', () => {
    const key = seededKey(3);
    writeKeyFile(path.join(dir, 'k.json'), key);
    writeKeyFile(path.join(dir, 'k.pem'), key);
    expect(fs.readFileSync(path.join(dir, 'k.pem'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    for (const f of ['k.json', 'k.pem']) {
      expect(readKeyFile(path.join(dir, f))).toEqual(key);
      expect(fs.statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
    }
    // A PEM written by OpenSSL's own encoder reads as the key it holds.
    const pair = generateKeyPairSync('ed25519');
    fs.writeFileSync(path.join(dir, 'openssl.key'), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const raw = Buffer.from((pair.publicKey.export({ format: 'jwk' }) as { x: string }).x, 'base64url');
    expect(toHex(readKeyFile(path.join(dir, 'openssl.key'))?.publicKey as Uint8Array)).toBe(raw.toString('hex'));
    fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ publicKey: toHex(seededKey(4).publicKey), secretKey: toHex(key.secretKey) }));
    expect(() => readKeyFile(path.join(dir, 'bad.json'))).toThrow(/holds a secret key that does not match its public key/);
    fs.writeFileSync(path.join(dir, 'ec.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(() => readKeyFile(path.join(dir, 'ec.pem'))).toThrow(/holds a key of type ec, expected an Ed25519 private key/);
  });

  it('stages the next key beside the current one, in its format; after a crash, keeps the key the ledger names', () => {
    expect(nextKeyFile('/s/ledger-key.json')).toBe('/s/ledger-key.next.json');
    expect(nextKeyFile('/s/ledger.pem')).toBe('/s/ledger.next.pem');
    expect(nextKeyFile('/s/ledger')).toBe('/s/ledger.next');
    const file = path.join(dir, 'openssl.key');
    const current = readKeyFile(file);
    stageNextKey(file, seededKey(5));
    expect(fs.readFileSync(nextKeyFile(file), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    // Crash before the rotation entry: the staged key is dropped.
    expect(resolveLedgerKey(file, toHex(current?.publicKey as Uint8Array))).toEqual(current);
    expect(fs.existsSync(nextKeyFile(file))).toBe(false);
    // Crash after the entry, before the rename: the staged key becomes the key.
    stageNextKey(file, seededKey(5));
    expect(resolveLedgerKey(file, toHex(seededKey(5).publicKey))).toEqual(seededKey(5));
    expect(readKeyFile(file)).toEqual(seededKey(5));
    expect(() => resolveLedgerKey(path.join(dir, 'absent.json'), null, false)).toThrow(/"ledger key" expected a key file at .*absent\.json, found none/);
  });
});

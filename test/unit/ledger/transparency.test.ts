/**
 * The ledger as a transparency log (RFC 9162): signed tree heads, inclusion and consistency
 * proofs served by the coordinator's ledger, and the attacks a kept head exposes. Each attack
 * passes the chain check alone (shown first), and fails against a head kept before it:
 * truncation, a history rewritten and re-signed with the ledger's own key (the data directory's),
 * a ledger cut and regrown, a ledger forged from genesis. A bundle is signed in every field: each
 * field edited (cap, accountant, format, key, head) is refused. A ledger written before the
 * transparency log still verifies and opens.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UNSIGNED_BUNDLE_FORMAT, verifyBundle } from '../../../shared/ledger/bundle.ts';
import type { LedgerBundle } from '../../../shared/ledger/bundle.ts';
import { fromHex, toHex } from '../../../shared/ledger/digest.ts';
import { LedgerEntrySchema } from '../../../shared/ledger/entry.ts';
import type { LedgerEntry, SigningKey } from '../../../shared/ledger/entry.ts';
import { verifyConsistency, verifyInclusion } from '../../../shared/ledger/merkle.ts';
import { modelDigestProblems, unreleasedModels } from '../../../shared/ledger/models.ts';
import { ledgerTree, TREE_HEAD_FORMAT } from '../../../shared/ledger/tree-head.ts';
import type { KeptTreeHead, SignedTreeHead } from '../../../shared/ledger/tree-head.ts';
import { verifyLedger } from '../../../shared/ledger/verify.ts';
import { PrivacyLedger } from '../../../server/ledger/ledger.ts';
import { MemoryLedgerStore } from '../../../server/ledger/memory.ts';
import { fixedClock, roundSpend, seededKey } from './fixtures.ts';

const hash = (hex: string) => fromHex('hash', hex, 32);

async function openLedger(key: SigningKey = seededKey(1), store = new MemoryLedgerStore()): Promise<{ ledger: PrivacyLedger; store: MemoryLedgerStore }> {
  return { ledger: await PrivacyLedger.open({ store, key, software: 'portrait/test', clock: fixedClock() }), store };
}

async function entriesOf(store: MemoryLedgerStore): Promise<LedgerEntry[]> {
  return (await store.all()).map((e) => LedgerEntrySchema.parse(e));
}

/** Genesis and four rounds (z = 1), the head after each append kept. */
async function sampleWithHeads(): Promise<{ ledger: PrivacyLedger; store: MemoryLedgerStore; heads: SignedTreeHead[] }> {
  const { ledger, store } = await openLedger();
  const heads = [await ledger.treeHead()];
  for (const roundId of [1, 2, 3, 4]) {
    await ledger.recordRound(roundSpend({ roundId }));
    heads.push(await ledger.treeHead());
  }
  return { ledger, store, heads };
}

const since = (head: KeptTreeHead) => ({ since: { head, name: 'the tree head kept in head.json' } });

describe('the ledger as a transparency log', () => {
  it('signs tree heads over its entries, and proves every inclusion and every consistency with an earlier head', async () => {
    const { ledger, store, heads } = await sampleWithHeads();
    const entries = await entriesOf(store);
    const last = heads[4] as SignedTreeHead;
    expect(last).toMatchObject({ format: TREE_HEAD_FORMAT, genesisKey: toHex(seededKey(1).publicKey), treeSize: 5, keyId: toHex(seededKey(1).publicKey) });
    expect(last.rootHash).toBe(toHex(await (await ledgerTree(entries)).rootHash()));
    expect((await verifyLedger(entries)).rootHash).toBe(last.rootHash);
    for (const head of heads) {
      const proof = await ledger.consistency(head.treeSize);
      expect(proof.head?.rootHash).toBe(last.rootHash);
      expect(await verifyConsistency(head.treeSize, 5, hash(head.rootHash), hash(last.rootHash), proof.proof.map(hash)), `from ${head.treeSize}`).toBe(true);
      for (let seq = 1; seq <= head.treeSize; seq++) {
        const inclusion = await ledger.inclusion(seq, head.treeSize);
        expect(await verifyInclusion(hash(inclusion.leafHash), seq - 1, head.treeSize, inclusion.proof.map(hash), hash(head.rootHash)), `entry ${seq} in ${head.treeSize}`).toBe(true);
      }
    }
    // A reopened ledger rebuilds the same tree from the stored entries.
    const reopened = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test' });
    expect((await reopened.treeHead()).rootHash).toBe(last.rootHash);
  });

  it('truncation: a ledger cut at its end verifies alone, and fails against a head kept before the cut', async () => {
    const { store, heads } = await sampleWithHeads();
    const cut = (await entriesOf(store)).slice(0, 3);
    const pinned = { publicKey: toHex(seededKey(1).publicKey) };
    expect(await verifyLedger(cut, pinned)).toMatchObject({ ok: true, entries: 3 });
    expect(await verifyLedger(cut, { ...pinned, ...since(heads[4] as SignedTreeHead) })).toMatchObject({
      ok: false,
      entries: 3,
      firstBadEntry: 4,
      reason: expect.stringMatching(/^the ledger holds 3 entries, fewer than the 5 of the tree head kept in head\.json \(size 5, root [0-9a-f]{16}…, signed 2026-.*\): entries were removed from its end$/),
    });
    // The same ledger is a consistent extension of a head kept when it had 3 entries or fewer.
    for (const head of heads.slice(0, 3)) expect((await verifyLedger(cut, since(head))).ok).toBe(true);
  });

  it("rewrite with the ledger's own key: more noise recorded, re-accounted, re-signed, verifies even with the genesis key pinned, and fails against a kept head", async () => {
    const { store, heads } = await sampleWithHeads();
    const original = await entriesOf(store);
    const honest = await verifyLedger(original);
    // Whoever holds the key file writes a history of the same rounds with 5x the noise.
    const forger = await openLedger(seededKey(1));
    for (const roundId of [1, 2, 3, 4]) await forger.ledger.recordRound(roundSpend({ roundId, noiseMultiplier: 5 }));
    const rewritten = await entriesOf(forger.store);
    const pinned = { publicKey: toHex(seededKey(1).publicKey) };
    const alone = await verifyLedger(rewritten, pinned);
    expect(alone).toMatchObject({ ok: true, entries: 5 });
    expect(alone.epsilon).toBeLessThan((honest.epsilon as number) / 4);
    for (const head of heads.slice(2)) {
      expect(await verifyLedger(rewritten, { ...pinned, ...since(head) })).toMatchObject({
        ok: false,
        reason: expect.stringMatching(new RegExp(`^the ledger's first ${head.treeSize} entries hash to root [0-9a-f]{16}…, not to that of the tree head kept in head\\.json .*: the history the head covers was rewritten`)),
      });
    }
    // Cut and regrown: the tail replaced by as many new entries (and more) fails the same way.
    const kept = new MemoryLedgerStore();
    for (const e of original.slice(0, 3)) await kept.append(e);
    const regrown = await openLedger(seededKey(1), kept);
    for (const roundId of [3, 4, 5]) await regrown.ledger.recordRound(roundSpend({ roundId, noiseMultiplier: 3 }));
    const grown = await entriesOf(regrown.store);
    expect(grown.slice(0, 3)).toEqual(original.slice(0, 3));
    expect((await verifyLedger(grown, since(heads[2] as SignedTreeHead))).ok).toBe(true);
    expect(await verifyLedger(grown, since(heads[4] as SignedTreeHead))).toMatchObject({ ok: false, reason: expect.stringMatching(/first 5 entries hash to root/) });
  });

  it('an honest extension passes, key rotations included; a head signed by a key the ledger did not hold then does not', async () => {
    const { ledger, store, heads } = await sampleWithHeads();
    await ledger.rotateKey(seededKey(2), 'scheduled rotation');
    await ledger.recordRound(roundSpend({ roundId: 5 }));
    const later = await ledger.treeHead();
    expect(later.keyId).toBe(toHex(seededKey(2).publicKey));
    const entries = await entriesOf(store);
    for (const head of [...heads, later]) expect((await verifyLedger(entries, since(head))).ok, `head of ${head.treeSize}`).toBe(true);
    // An unsigned checkpoint the auditor computed itself works the same way.
    const { keyId: _k, signature: _s, ...checkpoint } = heads[3] as SignedTreeHead;
    expect((await verifyLedger(entries, since(checkpoint))).ok).toBe(true);
    expect(await verifyLedger(entries, since({ ...checkpoint, rootHash: (heads[2] as SignedTreeHead).rootHash }))).toMatchObject({ ok: false, reason: expect.stringMatching(/first 4 entries hash to root/) });
    // A kept head altered after signing, or re-signed by the wrong key, is refused.
    expect(await verifyLedger(entries, since({ ...(heads[3] as SignedTreeHead), treeSize: 2 }))).toMatchObject({ ok: false, reason: expect.stringMatching(/^the signature of the tree head kept in head\.json .* does not verify/) });
    const { signTreeHead } = await import('../../../shared/ledger/tree-head.ts');
    const { keyId: _k2, signature: _s2, ...body } = later;
    expect(await verifyLedger(entries, since(signTreeHead(body, seededKey(1))))).toMatchObject({ ok: false, reason: expect.stringMatching(/is signed by key .*, but the ledger's key after 7 entries is/) });
  });

  it('a ledger forged from genesis with another key fails against a kept head even without a pinned key', async () => {
    const { heads } = await sampleWithHeads();
    const forger = await openLedger(seededKey(9));
    for (const roundId of [1, 2, 3, 4, 5]) await forger.ledger.recordRound(roundSpend({ roundId, noiseMultiplier: 5 }));
    const forged = await entriesOf(forger.store);
    expect((await verifyLedger(forged)).ok).toBe(true);
    expect(await verifyLedger(forged, since(heads[4] as SignedTreeHead))).toMatchObject({ ok: false, firstBadEntry: 1, reason: expect.stringMatching(/is of the ledger with genesis key [0-9a-f]{64}, this ledger's genesis key is [0-9a-f]{64}: it is not the ledger the head was kept from/) });
  });

  it('reads a ledger written before the transparency log: it verifies, its tree is computed over its entries, its models are checked by version only, and a coordinator opens and extends it', async () => {
    const fixture = JSON.parse(readFileSync(new URL('./pre-transparency-ledger.json', import.meta.url), 'utf8')) as { entries: unknown[] };
    const result = await verifyLedger(fixture.entries, { publicKey: toHex(seededKey(1).publicKey) });
    expect(result).toMatchObject({ ok: true, entries: 6, currentKey: toHex(seededKey(2).publicKey) });
    const store = new MemoryLedgerStore();
    for (const e of fixture.entries) await store.append(LedgerEntrySchema.parse(e));
    const { ledger } = await openLedger(seededKey(2), store);
    const before = await ledger.treeHead();
    expect(before).toMatchObject({ treeSize: 6, rootHash: result.rootHash, genesisKey: toHex(seededKey(1).publicKey), keyId: toHex(seededKey(2).publicKey) });
    // Its model versions predate publication entries: checked by version only, whatever their files' digests.
    const parsed = fixture.entries.map((e) => LedgerEntrySchema.parse(e));
    const models = [
      { version: 1, roundId: null, parentVersion: null, sha256: 'a'.repeat(64) },
      { version: 2, roundId: 1, parentVersion: 1, sha256: 'b'.repeat(64) },
      { version: 5, roundId: 4, parentVersion: 4, sha256: 'c'.repeat(64) },
    ];
    expect(unreleasedModels(models, parsed)).toEqual([]);
    expect(modelDigestProblems(models, parsed)).toEqual({ problems: [], versionOnly: [1, 2, 5] });
    // A coordinator of today binds them at its first start, after their release entries.
    for (const m of models) await ledger.recordPublication({ modelVersion: m.version, roundId: m.roundId, parentVersion: m.parentVersion, sha256: m.sha256, bytes: 1, entered: 'at-start' });
    expect(modelDigestProblems(models, (await store.all()).map((e) => LedgerEntrySchema.parse(e)))).toEqual({ problems: [], versionOnly: [] });
    await ledger.recordRound(roundSpend({ roundId: 5 }));
    expect((await verifyLedger(await store.all(), since(before))).ok).toBe(true);
    expect((await verifyBundle(await ledger.exportBundle(), { publicKey: toHex(seededKey(1).publicKey), ...since(before) })).ok).toBe(true);
  });
});

describe('a bundle signed in every field', () => {
  async function bundle(): Promise<{ bundle: LedgerBundle; heads: SignedTreeHead[] }> {
    const store = new MemoryLedgerStore();
    const ledger = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock(), cap: { epsilon: 20, delta: 1e-5 } });
    const heads: SignedTreeHead[] = [];
    for (const roundId of [1, 2, 3]) {
      await ledger.recordRound(roundSpend({ roundId }));
      heads.push(await ledger.treeHead());
    }
    return { bundle: await ledger.exportBundle(), heads };
  }

  it('verifies as exported, against the pinned key and a kept head', async () => {
    const { bundle: b, heads } = await bundle();
    expect(b.head).toMatchObject({ treeSize: 4, genesisKey: b.publicKey });
    expect(await verifyBundle(JSON.parse(JSON.stringify(b)), { publicKey: toHex(seededKey(1).publicKey), ...since(heads[0] as SignedTreeHead) })).toMatchObject({ ok: true, entries: 4, delta: 1e-5 });
    const cut = { ...b, entries: b.entries.slice(0, 3) };
    expect(await verifyBundle(cut)).toMatchObject({ ok: false, firstBadEntry: 4, reason: expect.stringMatching(/signed tree head names 4 entries, the bundle holds 3/) });
  });

  it('refuses every field edited beside the entries: cap, accountant, format, key, head, signature', async () => {
    const { bundle: b } = await bundle();
    const edits: [string, (x: Record<string, unknown> & LedgerBundle) => void, RegExp][] = [
      ['cap raised', (x) => void (x.cap = { epsilon: 1e6, delta: 0.5 }), /bundle's signature does not verify/],
      ['cap removed', (x) => void (x.cap = null), /bundle's signature does not verify/],
      ['cap delta', (x) => void (x.cap = { epsilon: 20, delta: 1e-3 }), /bundle's signature does not verify/],
      ['accountant orders', (x) => void (x.accountant = { ...x.accountant, orders: [2, 4] }), /accountant parameters differ from the genesis entry's/],
      ['accountant method', (x) => void (x.accountant = { ...x.accountant, method: 'other' }), /accountant parameters differ/],
      ['format downgraded', (x) => void (x.format = UNSIGNED_BUNDLE_FORMAT as LedgerBundle['format']), /leaves its cap, accountant and format unsigned/],
      ['format unknown', (x) => void (x.format = 'portrait-ledger-bundle/3' as LedgerBundle['format']), /not a portrait-ledger-bundle\/2 bundle/],
      ['extra field', (x) => void (x.note = 'all fine'), /not a portrait-ledger-bundle\/2 bundle/],
      ['public key', (x) => void (x.publicKey = toHex(seededKey(9).publicKey)), /genesis key/],
      ['head timestamp', (x) => void (x.head = { ...x.head, timestamp: x.head.timestamp + 1 }), /tree head is not signed by the current ledger key/],
      ['head root', (x) => void (x.head = { ...x.head, rootHash: '0'.repeat(64) }), /do not hash to the root of the signed tree head/],
      ['signature', (x) => void (x.signature = x.signature.replace(/^./, (c) => (c === '0' ? '1' : '0'))), /bundle's signature does not verify/],
    ];
    for (const [name, edit, reason] of edits) {
      const copy = structuredClone(b) as Record<string, unknown> & LedgerBundle;
      edit(copy);
      expect(await verifyBundle(copy), name).toMatchObject({ ok: false, reason: expect.stringMatching(reason) });
    }
  });
});

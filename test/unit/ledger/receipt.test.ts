/**
 * Device receipts (shared/ledger/receipt.ts): the device's check of the receipt the coordinator's
 * ledger hands out with a SecAgg+ unmask request, and the auditor's check of a ledger against the
 * receipts devices kept. The device accepts a good receipt (pinning the key on first use) and
 * refuses one whose head is signed by another key, whose proof does not lead to the head's root,
 * that names another round, or whose entry accounts for other noise than the device was told; key
 * rotations are followed from the pinned key and never backwards. A ledger that lost the witnessed
 * entry (cut before it, the round deleted and the rest re-signed with the ledger's own key, cut
 * after it, rewritten under the head) fails naming the receipt, although its chain alone verifies.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../shared/ledger/digest.ts';
import { LedgerEntrySchema, signEntry } from '../../../shared/ledger/entry.ts';
import type { LedgerEntry, RoundEntry, SigningKey } from '../../../shared/ledger/entry.ts';
import { checkReceipts, headExtends, verifyReceipt } from '../../../shared/ledger/receipt.ts';
import type { LedgerReceipt, WitnessedSpend } from '../../../shared/ledger/receipt.ts';
import { signTreeHead } from '../../../shared/ledger/tree-head.ts';
import { verifyLedger } from '../../../shared/ledger/verify.ts';
import { PrivacyLedger } from '../../../server/ledger/ledger.ts';
import { MemoryLedgerStore } from '../../../server/ledger/memory.ts';
import { fixedClock, roundSpend, seededKey } from './fixtures.ts';

const GENESIS = toHex(seededKey(1).publicKey);

async function openLedger(key: SigningKey = seededKey(1)): Promise<{ ledger: PrivacyLedger; store: MemoryLedgerStore }> {
  const store = new MemoryLedgerStore();
  return { ledger: await PrivacyLedger.open({ store, key, software: 'portrait/test', clock: fixedClock() }), store };
}

async function entriesOf(store: MemoryLedgerStore): Promise<LedgerEntry[]> {
  return (await store.all()).map((e) => LedgerEntrySchema.parse(e));
}

/** Genesis and rounds 1..4, each release's receipt taken as the runner takes it (right after its entry). */
async function sample(rounds = [1, 2, 3, 4]): Promise<{ ledger: PrivacyLedger; store: MemoryLedgerStore; receipts: Map<number, LedgerReceipt> }> {
  const { ledger, store } = await openLedger();
  const receipts = new Map<number, LedgerReceipt>();
  for (const roundId of rounds) receipts.set(roundId, await ledger.receipt(await ledger.recordRound(roundSpend({ roundId }))));
  return { ledger, store, receipts };
}

/** What a device in round `roundId` of the sample was told about the noise. */
function told(roundId: number): WitnessedSpend {
  const s = roundSpend({ roundId });
  return { mode: s.mode, noiseMultiplier: s.noiseMultiplier, t: s.t, delta: s.delta, l2Sensitivity: s.l2Sensitivity, shareVariance: s.shareVariance, shares: s.shares, paddedDimension: s.paddedDimension };
}

function edited<T>(value: T, change: (copy: T) => void): T {
  const copy = structuredClone(value);
  change(copy);
  return copy;
}

describe('a device checks its receipt before it sends its unmask shares', () => {
  it('accepts a good receipt: pinned, or on first use (pinning the genesis key)', async () => {
    const { receipts } = await sample();
    const receipt = receipts.get(2)!;
    expect(receipt).toMatchObject({ format: 'portrait-receipt/1', roundId: 2, leafIndex: 2, head: { treeSize: 3, genesisKey: GENESIS, keyId: GENESIS }, rotations: [] });
    expect(receipt.entry.round).toMatchObject({ roundId: 2, outcome: 'released' });
    const pinned = await verifyReceipt(receipt, { roundId: 2, pinnedKeys: [GENESIS], spend: told(2) });
    expect(pinned).toMatchObject({ ok: true, keys: [GENESIS] });
    expect(await verifyReceipt(receipt, { roundId: 2, pinnedKeys: null })).toMatchObject({ ok: true, keys: [GENESIS] });
  });

  it('refuses a head signed by another key, or of another ledger', async () => {
    const { receipts } = await sample();
    const receipt = receipts.get(2)!;
    const { keyId: _k, signature: _s, ...body } = receipt.head;
    // Same ledger named, signed by a key the ledger never held.
    const foreign = { ...receipt, head: signTreeHead(body, seededKey(9)) };
    expect(await verifyReceipt(foreign, { roundId: 2, pinnedKeys: [GENESIS] })).toEqual({ ok: false, reason: expect.stringMatching(/^the tree head is signed by key [0-9a-f]{16}…, not by the ledger's key [0-9a-f]{16}…$/) });
    // A whole ledger forged under another genesis key verifies on its own, but not against the pin.
    const { ledger: other } = await openLedger(seededKey(9));
    const otherReceipt = await other.receipt(await other.recordRound(roundSpend({ roundId: 2 })));
    expect((await verifyReceipt(otherReceipt, { roundId: 2 })).ok).toBe(true);
    expect(await verifyReceipt(otherReceipt, { roundId: 2, pinnedKeys: [GENESIS] })).toEqual({ ok: false, reason: expect.stringMatching(/^the tree head is of the ledger with genesis key [0-9a-f]{16}…, not of the trusted one with genesis key [0-9a-f]{16}…$/) });
    // A head whose signature was tampered with, or whose root was edited.
    const tampered = edited(receipt, (r) => {
      r.head.signature = `${r.head.signature.slice(0, -1)}${r.head.signature.endsWith('0') ? '1' : '0'}`;
    });
    expect(await verifyReceipt(tampered, { pinnedKeys: [GENESIS] })).toEqual({ ok: false, reason: expect.stringMatching(/^the signature of the tree head \(size 3, .*\) does not verify$/) });
    const rootEdited = edited(receipt, (r) => {
      r.head.rootHash = '0'.repeat(64);
    });
    expect((await verifyReceipt(rootEdited, { pinnedKeys: [GENESIS] })).ok).toBe(false);
  });

  it('refuses a proof that does not lead to the head root', async () => {
    const { receipts } = await sample();
    const receipt = receipts.get(3)!;
    expect(receipt.inclusionProof.length).toBeGreaterThan(1);
    const refusal = /^the inclusion proof of entry 4 does not lead to the root of the tree head \(size 4, .*\) \(RFC 9162 Sec\. 2\.1\.3\.2\)$/;
    const flipped = edited(receipt, (r) => {
      r.inclusionProof[0] = `${r.inclusionProof[0]!.slice(0, -1)}${r.inclusionProof[0]!.endsWith('0') ? '1' : '0'}`;
    });
    expect(await verifyReceipt(flipped, { pinnedKeys: [GENESIS] })).toEqual({ ok: false, reason: expect.stringMatching(refusal) });
    expect(await verifyReceipt(edited(receipt, (r) => void r.inclusionProof.pop()), { pinnedKeys: [GENESIS] })).toEqual({ ok: false, reason: expect.stringMatching(refusal) });
    expect(await verifyReceipt(edited(receipt, (r) => void r.inclusionProof.reverse()), { pinnedKeys: [GENESIS] })).toEqual({ ok: false, reason: expect.stringMatching(refusal) });
    // Another entry's proof under the same head.
    const other = receipts.get(4)!;
    const swapped = { ...other, inclusionProof: receipts.get(1)!.inclusionProof };
    expect((await verifyReceipt(swapped, { pinnedKeys: [GENESIS] })).ok).toBe(false);
    // The leaf index moved: it must be the entry's own.
    expect(await verifyReceipt({ ...receipt, leafIndex: 2 }, { pinnedKeys: [GENESIS] })).toEqual({ ok: false, reason: 'leaf index 2 is not that of entry 4 (3)' });
  });

  it('refuses a receipt for another round, an aborted entry, or an entry accounting for other noise', async () => {
    const { ledger, receipts } = await sample();
    const receipt = receipts.get(2)!;
    expect(await verifyReceipt(receipt, { roundId: 3, pinnedKeys: [GENESIS] })).toEqual({ ok: false, reason: 'the receipt is for round 2, not round 3' });
    // The envelope relabelled: the signed entry still names round 2.
    expect(await verifyReceipt({ ...receipt, roundId: 3 }, { roundId: 3, pinnedKeys: [GENESIS] })).toEqual({ ok: false, reason: 'the receipt names round 3, its entry round 2' });
    // An entry edited to name round 3 no longer carries the ledger's signature, nor its leaf.
    const renamed = edited(receipt, (r) => {
      r.roundId = 3;
      r.entry.round.roundId = 3;
    });
    expect(await verifyReceipt(renamed, { roundId: 3, pinnedKeys: [GENESIS] })).toEqual({ ok: false, reason: expect.stringMatching(/^entry 3 is not signed by the ledger's key at that point/) });
    const aborted = await ledger.receipt(await ledger.recordRound(roundSpend({ roundId: 5, outcome: 'aborted' })));
    expect(await verifyReceipt(aborted, { roundId: 5, pinnedKeys: [GENESIS] })).toEqual({ ok: false, reason: 'the entry of round 5 is "aborted", not a release' });
    // The device was told of more noise than the entry accounts for: whatever differs is refused.
    const louder = { ...told(2), noiseMultiplier: 2, shareVariance: (told(2).shareVariance as number) * 4 };
    expect(await verifyReceipt(receipt, { roundId: 2, pinnedKeys: [GENESIS], spend: louder })).toEqual({ ok: false, reason: 'the entry of round 2 records noiseMultiplier 1, this device was told 2' });
    expect(await verifyReceipt({ format: 'portrait-receipt/1', roundId: 2 }, {})).toEqual({ ok: false, reason: expect.stringMatching(/^not a portrait-receipt\/1 receipt: "entry": /) });
  });

  it('follows key rotations from the pinned key, and never back to a retired key', async () => {
    const { ledger } = await sample([1]);
    const k2 = seededKey(2);
    await ledger.rotateKey(k2, 'scheduled');
    const receipt = await ledger.receipt(await ledger.recordRound(roundSpend({ roundId: 2 })));
    const K2 = toHex(k2.publicKey);
    expect(receipt.rotations).toHaveLength(1);
    expect(receipt.head.keyId).toBe(K2);
    expect(await verifyReceipt(receipt, { roundId: 2, pinnedKeys: [GENESIS] })).toMatchObject({ ok: true, keys: [GENESIS, K2] });
    expect(await verifyReceipt(receipt, { roundId: 2, pinnedKeys: [GENESIS, K2] })).toMatchObject({ ok: true });
    // A rotation left out: the head's key does not follow from the genesis key.
    expect(await verifyReceipt({ ...receipt, rotations: [] }, { roundId: 2, pinnedKeys: [GENESIS] })).toEqual({ ok: false, reason: expect.stringMatching(/^the tree head is signed by key/) });
    // A device that already follows the rotation refuses a head the retired key signed (its holder forging a fork).
    const { keyId: _k, signature: _s, ...body } = receipt.head;
    const byRetired = { ...receipt, head: signTreeHead(body, seededKey(1)), rotations: [] };
    expect(await verifyReceipt(byRetired, { roundId: 2, pinnedKeys: [GENESIS, K2] })).toEqual({ ok: false, reason: "the receipt's key rotations (0) do not extend the 1 accepted before: a retired key is signing" });
    // A rotation the old key signed to some other key (the fork), for a device that follows K2.
    const rotation = receipt.rotations[0]!;
    const { signature: _a, newKeySignature: _b, ...unsigned } = rotation;
    const fork = signEntry({ ...unsigned, newPublicKey: toHex(seededKey(3).publicKey) }, seededKey(1), seededKey(3));
    const forkHead = signTreeHead(body, seededKey(3));
    expect((await verifyReceipt({ ...receipt, head: forkHead, rotations: [fork] }, { roundId: 2, pinnedKeys: [GENESIS, K2] })).ok).toBe(false);
  });
});

describe('a ledger is held to the receipts devices kept', () => {
  it('an intact ledger agrees with every receipt', async () => {
    const { store, receipts } = await sample();
    const checks = [...receipts.entries()].map(([roundId, receipt]) => ({ receipt, name: `the receipt of round ${roundId}` }));
    const entries = await entriesOf(store);
    expect(await checkReceipts(checks, entries)).toEqual([]);
    expect(await verifyLedger(entries, { publicKey: GENESIS, receipts: checks })).toMatchObject({ ok: true, entries: 5, receipts: { checked: 4, failed: [] } });
  });

  it('cut before the witnessed entry: the chain verifies, the receipt names the missing round', async () => {
    const { store, receipts } = await sample();
    const cut = (await entriesOf(store)).slice(0, 2);
    const receipt = { receipt: receipts.get(2)!, name: 'the receipt in device.json' };
    expect(await verifyLedger(cut, { publicKey: GENESIS })).toMatchObject({ ok: true, entries: 2 });
    expect(await verifyLedger(cut, { publicKey: GENESIS, receipts: [receipt] })).toMatchObject({
      ok: false,
      firstBadEntry: 3,
      reason: expect.stringMatching(/^the ledger holds 2 entries: round 2's release entry \(entry 3\), witnessed by the receipt in device\.json \(round 2, entry 3, tree head size 3, root [0-9a-f]{16}…, signed .*\), is gone: the ledger was cut before it$/),
      receipts: { checked: 1, failed: [{ name: 'the receipt in device.json', roundId: 2 }] },
    });
  });

  it('the witnessed round deleted and every later entry re-signed with the ledger key: the chain verifies, the receipt does not', async () => {
    const { receipts } = await sample();
    // The same key and clock rebuild the history without round 2 (what a data directory holding its key allows).
    const { store: rewritten } = await sample([1, 3, 4]);
    const entries = await entriesOf(rewritten);
    expect(await verifyLedger(entries, { publicKey: GENESIS })).toMatchObject({ ok: true, entries: 4 });
    const checks = [2, 3].map((roundId) => ({ receipt: receipts.get(roundId)!, name: `the receipt of round ${roundId}` }));
    const result = await verifyLedger(entries, { publicKey: GENESIS, receipts: checks });
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/^the ledger has no entry for round 2's release witnessed by the receipt of round 2 \(round 2, entry 3, .*\): its entry 3 is another; the witnessed entry was deleted or rewritten; /);
    // Round 3's entry was re-signed in a new position: its receipt does not find it either.
    expect(result.receipts?.failed.map((f) => f.roundId)).toEqual([2, 3]);
  });

  it('the witnessed entry deleted from the middle: the chain fails too, and the receipt is named first', async () => {
    const { store, receipts } = await sample();
    const entries = await entriesOf(store);
    const holed = [...entries.slice(0, 2), ...entries.slice(3)];
    const result = await verifyLedger(holed, { publicKey: GENESIS, receipts: [{ receipt: receipts.get(2)!, name: 'the receipt in device.json' }] });
    expect(result).toMatchObject({ ok: false, firstBadEntry: 3 });
    expect(result.reason).toMatch(/^the ledger has no entry for round 2's release witnessed by the receipt in device\.json .*; the chain also fails at entry 3: expected seq 3, found 4/);
  });

  it('cut after the witnessed entry but inside its head, or rewritten under the head: named by the receipt', async () => {
    const { store, receipts, ledger } = await sample([1, 2]);
    const receipt = await ledger.receipt(await ledger.recordRound(roundSpend({ roundId: 3 })));
    // The receipt of round 2 was taken at size 3; this one at size 4. Cut to 3: round 3's entry is gone, round 2's head still holds.
    const entries = await entriesOf(store);
    const checks = [
      { receipt: receipts.get(2)!, name: 'receipt 1' },
      { receipt, name: 'receipt 2' },
    ];
    expect(await checkReceipts(checks, entries.slice(0, 3))).toEqual([{ name: 'receipt 2', roundId: 3, firstBadEntry: 4, reason: expect.stringMatching(/cut before it$/) }]);
    // Round 1's entry rewritten and re-signed with the ledger key: under both heads, so both receipts name it.
    const key = seededKey(1);
    const first = entries[1] as RoundEntry;
    const { signature: _s, ...unsigned } = first;
    const resigned = signEntry({ ...unsigned, createdAt: '2030-01-01T00:00:00.000Z' }, key);
    const rewritten = [entries[0]!, resigned, ...entries.slice(2)];
    const findings = await checkReceipts(checks, rewritten);
    expect(findings.map((f) => f.name)).toEqual(['receipt 1', 'receipt 2']);
    expect(findings[0]!.reason).toMatch(/^the ledger's first 3 entries hash to root [0-9a-f]{16}…, not to that of the tree head in receipt 1 .*: the history it covers was rewritten \(not a consistent extension, RFC 9162 Sec\. 2\.1\.4\)$/);
  });

  it('a receipt that does not verify proves nothing and is named as such', async () => {
    const { store, receipts } = await sample();
    const bad = edited(receipts.get(2)!, (r) => void r.inclusionProof.pop());
    const [finding] = await checkReceipts([{ receipt: bad, name: 'the receipt in bad.json' }], await entriesOf(store));
    expect(finding?.reason).toMatch(/^the receipt in bad\.json is not a valid receipt of this ledger \(it proves nothing about it\): the inclusion proof/);
    // Of another ledger: refused against this ledger's genesis key, even unpinned.
    const { ledger: other } = await openLedger(seededKey(9));
    const foreign = await other.receipt(await other.recordRound(roundSpend({ roundId: 2 })));
    const [otherFinding] = await checkReceipts([{ receipt: foreign, name: 'the receipt in other.json' }], await entriesOf(store));
    expect(otherFinding?.reason).toMatch(/not of the trusted one with genesis key/);
  });
});

describe('a device holds each new receipt to the head it kept (headExtends, RFC 9162 Sec. 2.1.4.2)', () => {
  async function ledgerWithRounds(rounds: number, seed = 1): Promise<PrivacyLedger> {
    const ledger = await PrivacyLedger.open({ store: new MemoryLedgerStore(), key: seededKey(seed), software: 'portrait/test', clock: fixedClock() });
    for (let i = 1; i <= rounds; i++) await ledger.recordRound(roundSpend({ roundId: i }));
    return ledger;
  }

  it('accepts a head that extends the kept one with the coordinator\'s proof, and refuses a cut, a rewrite, a missing or a wrong proof', async () => {
    const ledger = await ledgerWithRounds(2);
    const kept = await ledger.treeHead();
    for (let i = 3; i <= 5; i++) await ledger.recordRound(roundSpend({ roundId: i }));
    const { proof, head } = await ledger.consistency(kept.treeSize);
    expect(await headExtends(kept, head!, { fromSize: kept.treeSize, proof })).toBeNull();
    expect(await headExtends(kept, kept)).toBeNull();
    expect(await headExtends(head!, kept)).toMatch(/fewer than the 6 of the head this device kept: the ledger was cut/);
    expect(await headExtends(kept, head!)).toMatch(/^no consistency proof from the 3 entries/);
    expect(await headExtends(kept, head!, { fromSize: 2, proof })).toMatch(/^no consistency proof from the 3 entries/);
    const wrong = proof.map((h, i) => (i === 0 ? `${h[0] === '0' ? '1' : '0'}${h.slice(1)}` : h));
    expect(await headExtends(kept, head!, { fromSize: kept.treeSize, proof: wrong })).toMatch(/does not extend the head this device kept \(3\): it was rewritten/);
    // A ledger rewritten from the start (another history of the same length and longer): no proof from the kept head holds.
    const other = await ledgerWithRounds(5, 2);
    const otherHead = await other.treeHead();
    expect(await headExtends(kept, otherHead, { fromSize: kept.treeSize, proof: (await other.consistency(kept.treeSize)).proof })).toMatch(/it was rewritten/);
    const sameSize = await (await ledgerWithRounds(2, 3)).treeHead();
    expect(await headExtends(kept, sameSize)).toMatch(/another root: the ledger was rewritten/);
  });
});

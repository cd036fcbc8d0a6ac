/**
 * The ledger's chain, signatures and accountant: a ledger verifies, its recorded epsilons equal
 * an independent recomputation, every tamper mode (edit, delete, reorder, re-sign with another
 * key, truncate a bundle, swap the trusted key) is caught at the right entry, and key rotation
 * is itself a verified, signed entry.
 */
import { describe, expect, it } from 'vitest';
import { verifyBundle } from '../../../shared/ledger/bundle.ts';
import { toHex } from '../../../shared/ledger/digest.ts';
import { entryHash, LedgerEntrySchema, signEntry } from '../../../shared/ledger/entry.ts';
import type { LedgerEntry, SigningKey } from '../../../shared/ledger/entry.ts';
import { verifyLedger } from '../../../shared/ledger/verify.ts';
import { distributedEpsilon, rdpDistributedDiscreteGaussian } from '../../../shared/privacy/distributed.ts';
import { DEFAULT_RDP_ORDERS, epsilonFromRdp } from '../../../shared/privacy/rdp.ts';
import { PrivacyLedger } from '../../../server/ledger/ledger.ts';
import { MemoryLedgerStore } from '../../../server/ledger/memory.ts';
import { fixedClock, roundSpend, seededKey } from './fixtures.ts';

async function sampleLedger(key: SigningKey = seededKey(1)): Promise<{ ledger: PrivacyLedger; entries: LedgerEntry[] }> {
  const ledger = await PrivacyLedger.open({ store: new MemoryLedgerStore(), key, software: 'portrait/test', clock: fixedClock() });
  await ledger.recordRound(roundSpend({ roundId: 1 }));
  await ledger.recordRound(roundSpend({ roundId: 2, outcome: 'aborted', survivors: 3 }));
  await ledger.recordRound(roundSpend({ roundId: 3, q: 0.2 }));
  await ledger.recordRound(roundSpend({ roundId: 4, noiseMultiplier: 2 }));
  return { ledger, entries: (await ledger.all()).map((e) => LedgerEntrySchema.parse(e)) };
}

/** Re-signs entries from `from` on with `key`, re-linking the chain, as a forger holding `key` would. */
async function resign(entries: LedgerEntry[], from: number, key: SigningKey): Promise<LedgerEntry[]> {
  const out = entries.slice(0, from - 1);
  let prev = from > 1 ? await entryHash(out[from - 2] as LedgerEntry) : '0'.repeat(64);
  for (const e of entries.slice(from - 1)) {
    const { signature: _s, ...rest } = e;
    const unsigned = { ...rest, prevHash: prev, keyId: toHex(key.publicKey) };
    if (unsigned.kind === 'key-rotation') throw new Error('not in this fixture');
    const signed = signEntry(unsigned as Parameters<typeof signEntry>[0], key);
    out.push(signed);
    prev = await entryHash(signed);
  }
  return out;
}

describe('privacy ledger chain', () => {
  it('verifies a fresh ledger: genesis, released and aborted rounds', async () => {
    const { ledger, entries } = await sampleLedger();
    expect(entries.map((e) => e.kind)).toEqual(['genesis', 'round', 'round', 'round', 'round']);
    const result = await verifyLedger(entries);
    expect(result).toMatchObject({ ok: true, entries: 5, delta: 1e-5 });
    expect(result.epsilon).toBeGreaterThan(0);
    expect(result.epsilon).toBeCloseTo(ledger.epsilon(1e-5) as number, 12);
    expect((await ledger.verify()).ok).toBe(true);
  });

  it('records the epsilon an independent computation gives, and zero for an aborted round', async () => {
    const { entries } = await sampleLedger();
    const rounds = entries.flatMap((e) => (e.kind === 'round' ? [e.round] : []));
    const total = new Float64Array(DEFAULT_RDP_ORDERS.length);
    for (const r of rounds) {
      if (r.outcome === 'aborted') {
        expect(r.epsilonRound).toBe(0);
        expect(r.rdp?.every((v) => v === 0)).toBe(true);
        continue;
      }
      const input = { l2Sensitivity: r.l2Sensitivity as number, localVariance: r.shareVariance as number, shares: r.shares as number, dimension: r.paddedDimension as number, q: r.q as number, steps: 1, delta: r.delta };
      expect(r.epsilonRound).toBe(distributedEpsilon(input).epsilon);
      const rdp = rdpDistributedDiscreteGaussian(input);
      for (let i = 0; i < total.length; i++) total[i] = (total[i] as number) + (rdp[i] as number);
      expect(r.epsilonCumulative).toBe(epsilonFromRdp(DEFAULT_RDP_ORDERS, total, r.delta).epsilon);
    }
    // Subsampling (q = 0.2) spends less than the same round at q = 1; more noise spends less.
    const [one, , sub, quiet] = rounds;
    expect(sub?.epsilonRound).toBeLessThan(one?.epsilonRound as number);
    expect(quiet?.epsilonRound).toBeLessThan(one?.epsilonRound as number);
  });

  it('detects an edited field at that entry (the signature no longer verifies)', async () => {
    const { entries } = await sampleLedger();
    const edited = structuredClone(entries) as LedgerEntry[];
    const target = edited[3];
    if (target?.kind !== 'round') throw new Error('fixture');
    target.round.noiseMultiplier = 5;
    expect(await verifyLedger(edited)).toMatchObject({ ok: false, firstBadEntry: 4, reason: expect.stringMatching(/signature/) });
  });

  it('detects an edited epsilon re-signed by the real key, through the accountant', async () => {
    const key = seededKey(1);
    const { entries } = await sampleLedger(key);
    const edited = structuredClone(entries) as LedgerEntry[];
    const target = edited[1];
    if (target?.kind !== 'round') throw new Error('fixture');
    target.round.epsilonRound = (target.round.epsilonRound as number) / 2;
    const forged = await resign(edited, 2, key);
    expect(await verifyLedger(forged)).toMatchObject({ ok: false, firstBadEntry: 2, reason: expect.stringMatching(/epsilonRound .* differs from the recomputed/) });
  });

  it('detects a deleted entry where the gap is', async () => {
    const { entries } = await sampleLedger();
    const deleted = entries.filter((_, i) => i !== 2);
    expect(await verifyLedger(deleted)).toMatchObject({ ok: false, firstBadEntry: 3, reason: expect.stringMatching(/expected seq 3, found 4/) });
  });

  it('detects reordered entries at the first moved one', async () => {
    const { entries } = await sampleLedger();
    const swapped = [entries[0], entries[1], entries[3], entries[2], entries[4]];
    expect(await verifyLedger(swapped)).toMatchObject({ ok: false, firstBadEntry: 3 });
    // Renumbering the swapped entries does not help: the hash links break instead.
    const renumbered = swapped.map((e, i) => ({ ...e, seq: i + 1 }));
    expect(await verifyLedger(renumbered)).toMatchObject({ ok: false, firstBadEntry: 3 });
  });

  it('detects entries re-signed with another key, even with the chain re-linked', async () => {
    const { entries } = await sampleLedger();
    const forged = await resign(entries, 3, seededKey(9));
    expect(await verifyLedger(forged)).toMatchObject({ ok: false, firstBadEntry: 3, reason: expect.stringMatching(/signed by key .* ledger key at this point is/) });
    // A whole ledger forged from genesis verifies on its own, but not against the pinned key.
    const all = await resign(entries, 1, seededKey(9));
    expect((await verifyLedger(all)).ok).toBe(true);
    expect(await verifyLedger(all, { publicKey: toHex(seededKey(1).publicKey) })).toMatchObject({ ok: false, firstBadEntry: 1 });
  });

  it('reports malformed input instead of throwing', async () => {
    expect(await verifyLedger([{ kind: 'round' }])).toMatchObject({ ok: false, firstBadEntry: 1, reason: expect.stringMatching(/malformed/) });
    expect(await verifyLedger([])).toMatchObject({ ok: true, entries: 0, epsilon: null });
  });

  it('rotates the key with an entry signed by both keys; later entries need the new key', async () => {
    const old = seededKey(1);
    const next = seededKey(2);
    const store = new MemoryLedgerStore();
    const ledger = await PrivacyLedger.open({ store, key: old, software: 'portrait/test', clock: fixedClock() });
    await ledger.recordRound(roundSpend({ roundId: 1 }));
    const rotation = await ledger.rotateKey(next, 'scheduled rotation');
    expect(rotation).toMatchObject({ kind: 'key-rotation', keyId: toHex(old.publicKey), newPublicKey: toHex(next.publicKey) });
    await ledger.recordRound(roundSpend({ roundId: 2 }));
    const entries = (await store.all()).map((e) => LedgerEntrySchema.parse(e));
    expect(await verifyLedger(entries, { publicKey: toHex(old.publicKey) })).toMatchObject({ ok: true, entries: 4, currentKey: toHex(next.publicKey) });
    expect(entries[3]?.keyId).toBe(toHex(next.publicKey));
    // An entry after the rotation signed by the retired key is refused.
    const stale = await resign(entries, 4, old);
    expect(await verifyLedger(stale)).toMatchObject({ ok: false, firstBadEntry: 4 });
    // Reopening with the retired key is refused; with the new one it continues.
    await expect(PrivacyLedger.open({ store, key: old, software: 'portrait/test' })).rejects.toThrow(/current key/);
    expect((await PrivacyLedger.open({ store, key: next, software: 'portrait/test' })).entries).toBe(4);
  });

  it('reopens with the same running total: cumulative epsilon and the next entry match an uninterrupted ledger', async () => {
    const store = new MemoryLedgerStore();
    const first = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    await first.recordRound(roundSpend({ roundId: 1 }));
    await first.recordRound(roundSpend({ roundId: 2 }));
    const reopened = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    expect(reopened.epsilon(1e-5)).toBe(first.epsilon(1e-5));
    expect(reopened.epsilon(1e-5)).toBeGreaterThan(0);
    const resumed = await reopened.recordRound(roundSpend({ roundId: 3 }));
    const uninterrupted = await PrivacyLedger.open({ store: new MemoryLedgerStore(), key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    for (const roundId of [1, 2]) await uninterrupted.recordRound(roundSpend({ roundId }));
    const straight = await uninterrupted.recordRound(roundSpend({ roundId: 3 }));
    expect(resumed.round.epsilonCumulative).toBe(straight.round.epsilonCumulative);
  });

  it('refuses to open a store whose chain does not verify', async () => {
    const store = new MemoryLedgerStore();
    const { entries } = await sampleLedger();
    const edited = structuredClone(entries) as LedgerEntry[];
    (edited[2] as { createdAt: string }).createdAt = '2020-01-01T00:00:00.000Z';
    for (const e of edited) await store.append(e);
    await expect(PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test' })).rejects.toThrow(/does not verify at entry 3/);
  });
});

describe('audit bundle', () => {
  it('verifies an export and detects entries cut from the end', async () => {
    const { ledger } = await sampleLedger();
    const bundle = await ledger.exportBundle();
    expect(await verifyBundle(bundle)).toMatchObject({ ok: true, entries: 5 });
    expect(await verifyBundle(JSON.parse(JSON.stringify(bundle)), { publicKey: toHex(seededKey(1).publicKey) })).toMatchObject({ ok: true });
    const cut = { ...bundle, entries: bundle.entries.slice(0, 4) };
    expect(await verifyBundle(cut)).toMatchObject({ ok: false, firstBadEntry: 5, reason: expect.stringMatching(/signed tree head names 5 entries/) });
  });

  it('detects a bundle whose key was swapped for a forger\'s', async () => {
    const { ledger, entries } = await sampleLedger();
    const bundle = await ledger.exportBundle();
    const forged = { ...bundle, publicKey: toHex(seededKey(9).publicKey), entries: await resign(entries, 1, seededKey(9)) };
    expect(await verifyBundle(forged, { publicKey: toHex(seededKey(1).publicKey) })).toMatchObject({ ok: false, firstBadEntry: 1 });
    expect(await verifyBundle({ nope: true })).toMatchObject({ ok: false, firstBadEntry: 1 });
  });
});

describe("verification with Node's native Ed25519 (the CLI's and the coordinator's)", () => {
  it('gives the very result tweetnacl gives, on a good ledger and on a forged signature', async () => {
    const { nodeEd25519Verify } = await import('../../../server/auth/native-ed25519.ts');
    const { entries } = await sampleLedger();
    expect(await verifyLedger(entries, { verify: nodeEd25519Verify })).toEqual(await verifyLedger(entries));
    expect((await verifyLedger(entries, { verify: nodeEd25519Verify })).ok).toBe(true);
    const forged = entries.map((e, i) => (i === 2 ? { ...e, signature: e.signature.replace(/^./, (c) => (c === '0' ? '1' : '0')) } : e));
    const native = await verifyLedger(forged, { verify: nodeEd25519Verify });
    expect(native).toEqual(await verifyLedger(forged));
    expect(native).toMatchObject({ ok: false, firstBadEntry: 3 });
  });
});

/**
 * One contract for every LedgerStore (memory and SQLite): append-only in seq order, entries come
 * back exactly as signed, a wrong seq is refused; the SQLite file survives a reopen.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyLedger } from '../../../shared/ledger/verify.ts';
import { PrivacyLedger } from '../../../server/ledger/ledger.ts';
import { MemoryLedgerStore } from '../../../server/ledger/memory.ts';
import { SqliteLedgerStore } from '../../../server/ledger/sqlite.ts';
import type { LedgerStore } from '../../../server/ledger/store.ts';
import { fixedClock, roundSpend, seededKey } from './fixtures.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-ledger-'));
  dirs.push(d);
  return d;
}

const implementations: [string, () => LedgerStore][] = [
  ['memory', () => new MemoryLedgerStore()],
  ['sqlite', () => SqliteLedgerStore.inDataDir(tempDir())],
];

describe.each(implementations)('LedgerStore contract: %s', (_name, make) => {
  it('appends in seq order and returns the entries as signed', async () => {
    const store = make();
    const ledger = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    const entry = await ledger.recordRound(roundSpend({ roundId: 1 }));
    expect(await store.count()).toBe(2);
    const all = await store.all();
    expect(all[1]).toEqual(entry);
    expect((await verifyLedger(all)).ok).toBe(true);
    store.close();
  });

  it('refuses any seq but last + 1', async () => {
    const store = make();
    const ledger = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    const entry = await ledger.recordRound(roundSpend({ roundId: 1 }));
    await expect(store.append(entry)).rejects.toThrow(new RangeError('"seq" expected 3 (append-only), got 2'));
    await expect(store.append({ ...entry, seq: 4 })).rejects.toThrow(RangeError);
    expect(await store.count()).toBe(2);
    store.close();
  });
});

describe('SqliteLedgerStore', () => {
  it('keeps entries across a reopen and continues the chain', async () => {
    const dir = tempDir();
    const first = SqliteLedgerStore.inDataDir(dir);
    const ledger = await PrivacyLedger.open({ store: first, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    await ledger.recordRound(roundSpend({ roundId: 1 }));
    first.close();
    const second = SqliteLedgerStore.inDataDir(dir);
    const reopened = await PrivacyLedger.open({ store: second, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    expect(reopened.entries).toBe(2);
    await reopened.recordRound(roundSpend({ roundId: 2 }));
    expect(await verifyLedger(await second.all())).toMatchObject({ ok: true, entries: 3 });
    second.close();
  });

  it('rolls back an insert whose transaction fails before commit', async () => {
    const dir = tempDir();
    let fail = false;
    const store = SqliteLedgerStore.inDataDir(dir, () => {
      if (fail) throw new Error('crash before commit');
    });
    const ledger = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    fail = true;
    await expect(ledger.recordRound(roundSpend({ roundId: 1 }))).rejects.toThrow(/crash before commit/);
    expect(await store.count()).toBe(1);
    store.close();
  });
});

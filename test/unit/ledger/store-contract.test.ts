/**
 * One contract for every LedgerStore (memory, SQLite and PostgreSQL): append-only in seq order,
 * entries come back exactly as signed, a wrong seq is refused; the SQLite file survives a reopen.
 * PostgreSQL, which several nodes append to, also proves that of two nodes appending the same seq
 * exactly one succeeds, and that exclusive() runs one at a time across nodes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../../../shared/ledger/entry.ts';
import { verifyLedger } from '../../../shared/ledger/verify.ts';
import { PrivacyLedger } from '../../../server/ledger/ledger.ts';
import { MemoryLedgerStore } from '../../../server/ledger/memory.ts';
import { SqliteLedgerStore } from '../../../server/ledger/sqlite.ts';
import type { LedgerStore } from '../../../server/ledger/store.ts';
import { databaseForTest, postgresAvailable, storesForTest } from '../../helpers/postgres.ts';
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

const postgresUp = await postgresAvailable();

/** Every implementation's cases; PostgreSQL's run below, skipped when its server is missing (outside CI). */
function ledgerStoreContract(make: () => LedgerStore | Promise<LedgerStore>): void {
  it('appends in seq order and returns the entries as signed', async () => {
    const store = await make();
    const ledger = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    const entry = await ledger.recordRound(roundSpend({ roundId: 1 }));
    expect(await store.count()).toBe(2);
    const all = await store.all();
    expect(all[1]).toEqual(entry);
    expect((await verifyLedger(all)).ok).toBe(true);
    store.close();
  });

  it('refuses any seq but last + 1', async () => {
    const store = await make();
    const ledger = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    const entry = await ledger.recordRound(roundSpend({ roundId: 1 }));
    await expect(store.append(entry)).rejects.toThrow(new RangeError('"seq" expected 3 (append-only), got 2'));
    await expect(store.append({ ...entry, seq: 4 })).rejects.toThrow(RangeError);
    expect(await store.count()).toBe(2);
    store.close();
  });

  it('returns the entries after a seq: what other writers appended since', async () => {
    const store = await make();
    const ledger = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    const second = await ledger.recordRound(roundSpend({ roundId: 1 }));
    const third = await ledger.recordRound(roundSpend({ roundId: 2 }));
    expect(await store.since(1)).toEqual([second, third]);
    expect(await store.since(3)).toEqual([]);
    expect(await store.since(0)).toEqual(await store.all());
    store.close();
  });
}

describe.each(implementations)('LedgerStore contract: %s', (_name, make) => ledgerStoreContract(make));

describe.skipIf(!postgresUp)('LedgerStore contract: postgres', () => {
  /** Two nodes' stores on one fresh database, the first holding the genesis entry. */
  async function twoNodes(): Promise<{ a: LedgerStore; b: LedgerStore; genesis: LedgerEntry }> {
    const url = await databaseForTest();
    const [a, b] = await Promise.all([storesForTest(url), storesForTest(url)]);
    await PrivacyLedger.open({ store: a.ledger, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    return { a: a.ledger, b: b.ledger, genesis: (await a.ledger.all())[0] as LedgerEntry };
  }

  ledgerStoreContract(async () => (await storesForTest(await databaseForTest())).ledger);

  it('keeps the JSON text exactly as appended', async () => {
    const url = await databaseForTest();
    const { pool, ledger: store } = await storesForTest(url);
    const ledger = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
    const entry = await ledger.recordRound(roundSpend({ roundId: 1 }));
    expect((await pool.query<{ entry: string }>('SELECT entry FROM ledger_entries WHERE seq = 2')).rows[0]?.entry).toBe(JSON.stringify(entry));
  });

  it('lets exactly one of two nodes append the same seq', async () => {
    const { a, b, genesis } = await twoNodes();
    for (let seq = 2; seq <= 6; seq++) {
      const results = await Promise.allSettled([a.append({ ...genesis, seq }), b.append({ ...genesis, seq })]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect(results.find((r) => r.status === 'rejected')?.reason).toEqual(new RangeError(`"seq" expected ${seq + 1} (append-only), got ${seq}`));
    }
    expect(await b.count()).toBe(6);
  });

  it('runs exclusive() one at a time across nodes, and frees the lock when a run throws', async () => {
    const { a, b, genesis } = await twoNodes();
    const events: string[] = [];
    // Each run reads the head, waits, then appends the next seq: two runs at once would read the same head.
    const step = (name: string, store: LedgerStore) =>
      store.exclusive!(async () => {
        events.push(`${name} in`);
        const head = await store.count();
        await sleep(25);
        await store.append({ ...genesis, seq: head + 1 });
        events.push(`${name} out`);
      });
    await Promise.all([step('a1', a), step('b1', b), step('a2', a), step('b2', b)]);
    expect(await a.count()).toBe(5);
    expect(events).toHaveLength(8);
    for (let i = 0; i < events.length; i += 2) expect(events[i + 1]).toBe(events[i]!.replace(' in', ' out'));

    await expect(a.exclusive!(() => Promise.reject(new Error('run failed')))).rejects.toThrow('run failed');
    expect(await b.exclusive!(async () => 'the other node gets the lock')).toBe('the other node gets the lock');
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

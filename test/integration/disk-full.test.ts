/**
 * A full disk (issue 17): the coordinator neither spins nor loses a round. The real coordinator
 * (runner, REST, readiness) runs on real SQLite stores in a temp directory whose writes fail the way
 * a full disk fails them: every INSERT/UPDATE statement throws better-sqlite3's SqliteError
 * SQLITE_FULL (below the store's own error mapping), the ledger's appends throw it too, and the
 * data directory's readiness probe gets ENOSPC. While full: a round in flight is aborted but its
 * record and ledger entry wait, retried with a doubling backoff (one log line a try), /healthz
 * answers, /readyz and launches answer 503 UNAVAILABLE. Once space returns, without a restart, every
 * round reaches a final state and the ledger has each abort.
 */
import Database from 'better-sqlite3';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { createApiToken } from '../../server/auth/api-tokens.ts';
import { startCoordinator } from '../../server/coordinator.ts';
import { PrivacyLedger } from '../../server/ledger/ledger.ts';
import { SqliteLedgerStore } from '../../server/ledger/sqlite.ts';
import type { LedgerStore } from '../../server/ledger/store.ts';
import { openDatabase, SqliteApiTokenStore, SqliteModelStore, SqliteRoundStore } from '../../server/storage/sqlite.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import type { RoundRecord } from '../../shared/protocol/messages.ts';
import { api, FAST, syntheticPopulation, tempDataDir, waitFor } from './harness.ts';

/** Which storage is full now. */
const disk = { database: false, ledger: false };
const full = () => new Database.SqliteError('database or disk is full', 'SQLITE_FULL');

/** The coordinator's own database, whose writing statements fail while `disk.database` is set. */
function fillableDatabase(db: Database.Database): Database.Database {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'prepare') {
        return (sql: string) => {
          const statement = target.prepare(sql);
          if (!/^\s*(INSERT|UPDATE|DELETE)/i.test(sql)) return statement;
          return new Proxy(statement, {
            get(s, p) {
              if (p === 'run') return (...args: unknown[]) => {
                if (disk.database) throw full();
                return (s.run as (...a: unknown[]) => unknown)(...args);
              };
              const value: unknown = Reflect.get(s, p, s);
              return typeof value === 'function' ? value.bind(s) : value;
            },
          });
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** The ledger's SQLite store, whose appends fail while `disk.ledger` is set (as SqliteLedgerStore's own would). */
function fillableLedger(store: LedgerStore): LedgerStore {
  return {
    append: async (entry) => {
      if (disk.ledger) throw full();
      return store.append(entry);
    },
    all: () => store.all(),
    since: (seq) => store.since(seq),
    count: () => store.count(),
    close: () => store.close(),
  };
}

describe('disk full', () => {
  it('backs off, answers UNAVAILABLE and not ready, and once space returns finishes every round and enters each abort in the ledger without a restart', async () => {
    const dataDir = tempDataDir();
    const db = fillableDatabase(openDatabase(dataDir));
    const tokens = new SqliteApiTokenStore(db);
    const operator = (await createApiToken(tokens, 'operator', 'operator', new Date().toISOString())).token;
    const ledgerStore = SqliteLedgerStore.inDataDir(dataDir);
    const ledger = await PrivacyLedger.open({ store: fillableLedger(ledgerStore), key: nacl.sign.keyPair(), software: 'portrait/test' });
    const platform = nacl.sign.keyPair();
    const lines: string[] = [];
    const pop = await syntheticPopulation();
    const coordinator = await startCoordinator({
      rounds: new SqliteRoundStore(db),
      models: new SqliteModelStore(db, dataDir),
      tokens,
      platformPublicKey: platform.publicKey,
      ledger,
      initialModel: { config: pop.config, seed: 1 },
      allowNoDp: true,
      storageProbe: async () => {
        if (disk.database || disk.ledger) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      },
      log: (line) => lines.push(line),
    });
    const get = <T>(pathname: string) => api<T>(coordinator, operator, 'GET', pathname);
    try {
      const launched = await api<{ rounds: RoundRecord[] }>(coordinator, operator, 'POST', '/api/v1/rounds', { rounds: 2, clientsPerRound: 2, minClients: 1, ...FAST, deadlines: { checkinMs: 2_000, trainingMs: 5_000 } });
      expect(launched.status).toBe(201);
      const [first, second] = launched.body.rounds.map((r) => r.id) as [number, number];
      await waitFor(async () => (await get<RoundRecord>(`/api/v1/rounds/${first}`)).body.status === 'running', 10_000, `round ${first} running`);
      expect((await get('/readyz')).status).toBe(200);

      // The disk fills while round 1 waits at check-in: closing it (no device came) cannot be recorded.
      disk.database = true;
      disk.ledger = true;
      const linesBefore = lines.length;
      await waitFor(() => (coordinator.runner.storageFailure?.attempts ?? 0) >= 3, 30_000, 'three tries of the abort record');
      const failure = coordinator.runner.storageFailure!;
      expect(failure).toMatchObject({ what: `round ${first}: recording its abort`, reason: expect.stringContaining('SQLITE_FULL') });
      // One log line for the abort, one a try: nothing like the thousands a second of a tight loop.
      const duringFull = lines.slice(linesBefore);
      expect(duringFull.filter((l) => l.includes('failed')).length).toBeLessThanOrEqual(failure.attempts + 1);
      expect(duringFull.length).toBeLessThan(10);

      expect((await fetch(`${coordinator.url}/healthz`)).status).toBe(200);
      const ready = await get<{ ready: boolean; code: string; retrying: { what: string }; probe: { reason: string } }>('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ ready: false, code: 'UNAVAILABLE', retrying: { what: `round ${first}: recording its abort` }, probe: { reason: expect.stringContaining('ENOSPC') } });
      const refused = await api<{ code: string; message: string }>(coordinator, operator, 'POST', '/api/v1/rounds', { rounds: 1, clientsPerRound: 2, minClients: 1, ...FAST });
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('SQLITE_FULL') });
      expect((await get<RoundRecord>(`/api/v1/rounds/${first}`)).body.status).toBe('running');
      expect((await get<RoundRecord>(`/api/v1/rounds/${second}`)).body.status).toBe('pending');

      // Space returns to the database first: the record goes through, the ledger entry waits.
      disk.database = false;
      await waitFor(() => coordinator.runner.storageFailure?.what === `round ${first}: entering its abort in the ledger`, 60_000, 'the ledger entry to be the one retried');
      expect((await get<RoundRecord>(`/api/v1/rounds/${first}`)).body).toMatchObject({ status: 'aborted' });
      expect((await get('/readyz')).status).toBe(503);

      disk.ledger = false;
      await waitFor(async () => (await get<RoundRecord>(`/api/v1/rounds/${second}`)).body.status === 'aborted', 60_000, `round ${second} to finish`);
      expect(coordinator.runner.storageFailure).toBeNull();
      await waitFor(async () => (await get('/readyz')).status === 200, 10_000, 'ready again');
      // The abort is entered in the ledger right after the round's record says aborted.
      const abortsOf = async () => (await ledger.all()).map((e) => LedgerEntrySchema.parse(e)).flatMap((e) => (e.kind === 'round' ? [[e.round.roundId, e.round.outcome] as const] : []));
      await waitFor(async () => (await abortsOf()).length >= 2, 10_000, `round ${second}'s abort entry`);
      const aborts = await abortsOf();
      expect(aborts).toEqual([
        [first, 'aborted'],
        [second, 'aborted'],
      ]);
      expect(lines.some((l) => l.startsWith(`round ${first}: entering its abort in the ledger: written after`))).toBe(true);
    } finally {
      disk.database = false;
      disk.ledger = false;
      await coordinator.close();
      db.close();
      ledgerStore.close();
    }
  }, 180_000);
});

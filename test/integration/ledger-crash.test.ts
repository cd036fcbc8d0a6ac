/**
 * Crash consistency of the write-ahead ledger: a real `portrait server` child process runs a
 * local-DP round with real clients and is killed (SIGKILL) at each step: before the entry
 * (PORTRAIT_TEST_CRASH_AT=before-ledger), mid-write (mid-ledger-write: row inserted, transaction
 * not committed), between entry and release (after-ledger), and after release (killed by the
 * test once the round is committed). After each crash the ledger verifies, every published
 * model version has a released entry (never under-counts), and a restarted coordinator opens
 * the same data directory (opening re-verifies the chain) and enters the interrupted round as
 * aborted at zero spend.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { FederatedClient } from '../../client/core/client.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import type { RoundSpend } from '../../shared/ledger/entry.ts';
import { verifyLedger } from '../../shared/ledger/verify.ts';
import { issueEnrollmentToken } from '../../shared/protocol/enrollment.ts';
import type { LaunchRequest, RoundRecord } from '../../shared/protocol/messages.ts';
import { loadOrCreatePlatformKey } from '../../server/auth/platform-key.ts';
import { readApiTokens } from '../../server/embedded.ts';
import { CRASH_ENV } from '../../server/ledger/crash-seam.ts';
import type { CrashPoint } from '../../server/ledger/crash-seam.ts';
import { LEDGER_DATABASE_FILE, SqliteLedgerStore } from '../../server/ledger/sqlite.ts';
import { DATABASE_FILE } from '../../server/storage/sqlite.ts';
import { api, examplesOf, FAST, startTestCoordinator, syntheticPopulation, tempDataDir, waitFor, waitForRound } from './harness.ts';

const ROUND: LaunchRequest = { rounds: 1, clientsPerRound: 3, minClients: 3, deadlines: { checkinMs: 3_000, trainingMs: 15_000 }, train: FAST.train, privacy: { mode: 'local', clip: 0.5, noiseMultiplier: 1.5, delta: 1e-6 } };

interface Child {
  process: ChildProcess;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
const clients: FederatedClient[] = [];

afterEach(() => {
  for (const c of clients.splice(0)) c.stop();
  for (const p of children.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

async function startServer(dataDir: string, crashAt?: CrashPoint): Promise<Child> {
  const env = { ...process.env };
  delete env[CRASH_ENV];
  if (crashAt) env[CRASH_ENV] = crashAt;
  const child = spawn(process.execPath, [path.resolve('bin/portrait.js'), 'server', '--port', '0', '--data-dir', dataDir, '--dataset', 'synthetic:60', '--no-evaluation', '--backend', 'cpu', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        resolve((JSON.parse(out) as { url: string }).url);
      } catch {
        // Not the whole document yet.
      }
    });
    void exited.then(() => reject(new Error(`server exited before listening: ${err}`)));
  });
  return { process: child, url, exited };
}

async function runClients(url: string, dataDir: string, count: number): Promise<void> {
  const pop = await syntheticPopulation();
  const key = loadOrCreatePlatformKey(dataDir);
  for (const user of pop.prepared.users.train.slice(0, count)) {
    const client = new FederatedClient({ serverUrl: url, token: issueEnrollmentToken(key.secretKey, { ttlMs: 3_600_000, now: Date.now() }), examples: examplesOf(user, pop.dataset.startDay), reconnectionDelayMs: 100 });
    clients.push(client.start());
  }
  await waitFor(() => clients.every((c) => c.socket.connected), 10_000, 'clients connected');
}

async function launchOn(url: string, dataDir: string): Promise<number> {
  const tokens = readApiTokens(dataDir);
  const res = await api<{ rounds: RoundRecord[] }>({ url }, tokens?.operator, 'POST', '/api/v1/rounds', ROUND);
  expect(res.status).toBe(201);
  return res.body.rounds[0]!.id;
}

/** The ledger verifies, and every model version a round published has a released entry. */
async function checkLedger(dataDir: string): Promise<{ entries: number; released: RoundSpend[]; publishedBy: number[] }> {
  const store = new SqliteLedgerStore(path.join(dataDir, LEDGER_DATABASE_FILE));
  const raw = await store.all();
  store.close();
  const result = await verifyLedger(raw);
  expect(result, JSON.stringify(result)).toMatchObject({ ok: true });
  const released = raw.map((e) => LedgerEntrySchema.parse(e)).flatMap((e) => (e.kind === 'round' && e.round.outcome === 'released' ? [e.round] : []));
  const db = new Database(path.join(dataDir, DATABASE_FILE), { readonly: true });
  const publishedBy = (db.prepare('SELECT record FROM models').all() as { record: string }[]).map((r) => (JSON.parse(r.record) as { roundId: number | null }).roundId).filter((id): id is number => id !== null);
  db.close();
  for (const roundId of publishedBy) expect(released.map((r) => r.roundId), `model of round ${roundId} published without a ledger entry`).toContain(roundId);
  return { entries: result.entries, released, publishedBy };
}

/**
 * Restart in-process on the same directory: the coordinator opens the ledger only if it verifies,
 * and enters the round the crash interrupted as aborted at zero spend (a release entry stands).
 */
async function restartAndReopen(dataDir: string, entriesBefore: number, roundId: number, interrupted = true): Promise<void> {
  const coordinator = await startTestCoordinator(dataDir, { allowNoDp: false, evaluation: undefined });
  try {
    const verify = await api<{ ok: boolean; entries: number; epsilon: number | null }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger/verify');
    expect(verify.body).toMatchObject({ ok: true, entries: entriesBefore + (interrupted ? 1 : 0) });
    const rounds = await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/rounds');
    expect(rounds.body.rounds.find((r) => r.id === roundId)?.status).toBe(interrupted ? 'aborted' : 'committed');
    if (!interrupted) return;
    const ledger = await api<{ entries: unknown[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger');
    const last = LedgerEntrySchema.parse(ledger.body.entries.at(-1));
    expect(last.kind === 'round' && last.round).toMatchObject({ roundId, outcome: 'aborted', epsilonRound: 0 });
  } finally {
    await coordinator.close();
  }
}

describe('ledger crash consistency (real server process, SIGKILL)', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  const cases: [CrashPoint, number][] = [
    // Killed before the entry or mid-write: no entry, and nothing was released either.
    ['before-ledger', 0],
    ['mid-ledger-write', 0],
    // Killed between the entry and the release: the entry stands (over-counts), no model published.
    ['after-ledger', 1],
  ];
  for (const [point, releasedEntries] of cases) {
    it(`killed at ${point}: the ledger verifies and never under-counts`, { timeout: 60_000 }, async () => {
      const dataDir = tempDataDir();
      const server = await startServer(dataDir, point);
      await runClients(server.url, dataDir, 3);
      const roundId = await launchOn(server.url, dataDir);
      const exit = await server.exited;
      expect(exit.signal).toBe('SIGKILL');
      const state = await checkLedger(dataDir);
      expect(state.released.map((r) => r.roundId)).toEqual(releasedEntries ? [roundId] : []);
      expect(state.publishedBy).toEqual([]);
      await restartAndReopen(dataDir, state.entries, roundId);
    });
  }

  it('killed after release: the entry and the model are both there', { timeout: 60_000 }, async () => {
    const dataDir = tempDataDir();
    const server = await startServer(dataDir);
    await runClients(server.url, dataDir, 3);
    const roundId = await launchOn(server.url, dataDir);
    const tokens = readApiTokens(dataDir);
    const record = await waitForRound({ url: server.url, auditor: tokens?.auditor } as Parameters<typeof waitForRound>[0], roundId, 30_000);
    expect(record.status).toBe('committed');
    server.process.kill('SIGKILL');
    await server.exited;
    const state = await checkLedger(dataDir);
    expect(state.released.map((r) => r.roundId)).toEqual([roundId]);
    expect(state.publishedBy).toEqual([roundId]);
    expect(state.released[0]?.modelVersionOut).toBe(record.modelVersion);
    await restartAndReopen(dataDir, state.entries, roundId, false);
  });
});

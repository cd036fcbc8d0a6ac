/**
 * Shared wiring for the integration tests: a real coordinator (embedded default: SQLite file and
 * model files in a temp dir) on port 0, real socket.io-client clients holding one synthetic
 * user's data each, and REST helpers. Nothing is mocked.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';
import { FederatedClient } from '../../client/core/client.ts';
import type { ClientEvent, ClientSocket, FederatedClientOptions } from '../../client/core/client.ts';
import { dataConfig, modelConfigFor } from '../../scripts/lib/central.ts';
import { loadDataset } from '../../scripts/import/resolve.ts';
import type { Dataset, UserRecord } from '../../shared/features/dataset.ts';
import { userExamples } from '../../shared/features/examples.ts';
import { featureContext } from '../../shared/features/extract.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import type { PreparedData } from '../../shared/features/prepare.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import type { RoundEntry } from '../../shared/ledger/entry.ts';
import { issueEnrollmentToken } from '../../shared/protocol/enrollment.ts';
import type { LaunchRequest, RoundRecord } from '../../shared/protocol/messages.ts';
import { loadOrCreatePlatformKey } from '../../server/auth/platform-key.ts';
import type { Coordinator } from '../../server/coordinator.ts';
import { readApiTokens, startEmbeddedCoordinator } from '../../server/embedded.ts';
import type { EmbeddedOptions } from '../../server/embedded.ts';

export interface Population {
  dataset: Dataset;
  prepared: PreparedData;
  config: ModelConfig;
}

let population: Promise<Population> | undefined;

export function syntheticPopulation(): Promise<Population> {
  population ??= (async () => {
    const dataset = await loadDataset('synthetic:60');
    const data = dataConfig();
    const prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, false);
    return { dataset, prepared, config: modelConfigFor(prepared, data, 'mlp', false) };
  })();
  return population;
}

export function tempDataDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-it-'));
}

export type TestCoordinator = Coordinator & { dataDir: string; operator: string; auditor: string; token(ttlMs?: number, now?: number): string };

export async function startTestCoordinator(dataDir: string, options: Partial<EmbeddedOptions> = {}): Promise<TestCoordinator> {
  const pop = await syntheticPopulation();
  const coordinator = await startEmbeddedCoordinator({
    dataDir,
    initialModel: { config: pop.config, seed: 1 },
    evaluation: { users: pop.prepared.users.test, startDay: pop.dataset.startDay },
    simulationDataset: 'synthetic:60',
    // The plain-behaviour tests launch `none` rounds (FAST); privacy.test.ts turns this off.
    allowNoDp: true,
    ...options,
  });
  const tokens = readApiTokens(dataDir);
  if (!tokens) throw new Error('no API tokens were bootstrapped');
  const key = loadOrCreatePlatformKey(dataDir);
  return {
    ...coordinator,
    operator: tokens.operator,
    auditor: tokens.auditor,
    token: (ttlMs = 3_600_000, now = Date.now()) => issueEnrollmentToken(key.secretKey, { ttlMs, now }),
  };
}

export function examplesOf(user: UserRecord, startDay: number): (config: ModelConfig) => ReturnType<typeof userExamples> {
  return (config) => userExamples(user, featureContext(config.vocabulary, startDay), { windows: config.windows });
}

export interface TestClient {
  client: FederatedClient;
  events: ClientEvent[];
}

/** Starts one real FL client per training user (the first `count` users). */
export async function startClients(coordinator: TestCoordinator, count: number, extra: (i: number) => Partial<FederatedClientOptions> = () => ({})): Promise<TestClient[]> {
  const pop = await syntheticPopulation();
  const users = pop.prepared.users.train.slice(0, count);
  if (users.length < count) throw new Error(`only ${users.length} training users`);
  const clients = users.map((user, i) => {
    const events: ClientEvent[] = [];
    const client = new FederatedClient({
      serverUrl: coordinator.url,
      token: coordinator.token(),
      examples: examplesOf(user, pop.dataset.startDay),
      onEvent: (e) => events.push(e),
      reconnectionDelayMs: 100,
      ...extra(i),
    });
    return { client, events };
  });
  for (const c of clients) c.client.start();
  await waitFor(() => clients.every((c) => c.client.socket.connected), 10_000, 'clients connected');
  await waitFor(() => coordinator.sockets.connectedClients() >= count, 10_000, 'coordinator sees the clients');
  return clients;
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function api<T>(coordinator: { url: string }, token: string | undefined, method: string, pathname: string, body?: unknown): Promise<{ status: number; body: T; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${coordinator.url}${pathname}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
}

export async function launch(coordinator: TestCoordinator, request: LaunchRequest): Promise<RoundRecord[]> {
  const res = await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', request);
  if (res.status !== 201) throw new Error(`launch failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.rounds;
}

export async function round(coordinator: TestCoordinator, id: number): Promise<RoundRecord> {
  const res = await api<RoundRecord>(coordinator, coordinator.auditor, 'GET', `/api/v1/rounds/${id}`);
  if (res.status !== 200) throw new Error(`round ${id}: ${res.status}`);
  return res.body;
}

export async function waitForRound(coordinator: TestCoordinator, id: number, timeoutMs = 20_000): Promise<RoundRecord> {
  let last: RoundRecord | undefined;
  await waitFor(async () => {
    last = await round(coordinator, id);
    return last.status === 'committed' || last.status === 'aborted';
  }, timeoutMs, `round ${id} to finish`);
  return last as RoundRecord;
}

export async function waitForStage(coordinator: TestCoordinator, id: number, stage: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => coordinator.runner.current?.roundId === id && coordinator.runner.current.stage === stage, timeoutMs, `round ${id} stage ${stage}`);
}

/** A bare authenticated socket for sending hand-made (bad) messages. */
export async function rawSocket(coordinator: { url: string }, token: string | undefined): Promise<ClientSocket> {
  const socket: ClientSocket = io(coordinator.url, { auth: token === undefined ? {} : { token }, transports: ['websocket'], reconnection: false, forceNew: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => reject(err));
  });
  return socket;
}

/** The ledger's round entries of one round (its release, its abort), read as an auditor. */
export async function ledgerRounds(coordinator: TestCoordinator, roundId: number): Promise<RoundEntry['round'][]> {
  const res = await api<{ entries: unknown[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger');
  return res.body.entries
    .map((e) => LedgerEntrySchema.parse(e))
    .filter((e): e is RoundEntry => e.kind === 'round' && e.round.roundId === roundId)
    .map((e) => e.round);
}

export function stopAll(clients: readonly TestClient[]): void {
  for (const c of clients) c.client.stop();
}

/**
 * Fast rounds for tests: short check-in (closes early when all connected clients checked in),
 * without DP (`none`, allowed by startTestCoordinator) since these tests check plain behaviour.
 */
export const FAST: Pick<LaunchRequest, 'deadlines' | 'train' | 'privacy'> = {
  deadlines: { checkinMs: 3_000, trainingMs: 10_000 },
  train: { epochs: 1, batchSize: 16, learningRate: 0.05, optimizer: 'sgd' },
  privacy: { mode: 'none' },
};

/**
 * One distributed-DP round with SecAgg+ over five devices: with up to 40% dropout and no collusion
 * assumed, chooseParameters gives k = 4, t = 3 (the sum needs three survivors' unmask shares).
 */
export const SECAGG_FIVE: LaunchRequest = {
  rounds: 1,
  clientsPerRound: 5,
  minClients: 3,
  deadlines: { checkinMs: 3_000, trainingMs: 8_000 },
  train: { epochs: 1, batchSize: 16, learningRate: 0.05, optimizer: 'sgd' },
  privacy: { mode: 'distributed', clip: 0.5, noiseMultiplier: 1, delta: 1e-6, t: 3 },
  secagg: { mode: 'on', dropoutRate: 0.4, corruptFraction: 0, stageMs: 4_000 },
};

/**
 * Nothing non-finite or absurd is ever published (issue 17), against a real coordinator (port 0,
 * SQLite and the signed ledger in a temp dir) with real Socket.IO clients and one hand-driven
 * attacker socket:
 * - a `none` round where one client sends 12,623 values of 1e38 with `examples: 64` (every value
 *   finite, so it is admitted): the coordinator clips it to `aggregation.maxUpdateNorm`, commits a
 *   finite model, serves it, and the next round builds on it;
 * - a `none` round whose step would push a weight past MAX_ABS_MODEL_WEIGHT aborts before its
 *   release entry: the serving model stays and the ledger enters the round at zero spend;
 * - a local-DP round with one unclipped residue vector aborts once its sum is decoded: the model
 *   stays, and the round's epsilon stays spent in its record and the ledger (never an under-count);
 * - a noise multiplier of 1e-300 is refused at launch naming the field, with or without a cap, and
 *   the launches after it still work (it was 201, then 500 INTERNAL for every capped launch).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { ClientSocket } from '../../client/core/client.ts';
import { MAX_ABS_MODEL_WEIGHT } from '../../server/aggregation/bounds.ts';
import { randomId } from '../../shared/protocol/enrollment.ts';
import type { ErrorBody } from '../../shared/protocol/errors.ts';
import type { Ack, LaunchRequest, RoundConfigMessage, RoundRecord } from '../../shared/protocol/messages.ts';
import { encodeResidues, encodeWeights } from '../../shared/protocol/weights.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { api, ledgerRounds, FAST, launch, rawSocket, startClients, startTestCoordinator, stopAll, tempDataDir, waitFor, waitForRound } from './harness.ts';

function send(socket: ClientSocket, event: 'checkin' | 'update', payload: unknown): Promise<Ack> {
  return new Promise((resolve) => (socket.emit as (e: string, p: unknown, cb: (a: Ack) => void) => void)(event, payload, resolve));
}

/** A socket that checks in to every round and answers its config with `update(config)`; the acks it got. */
async function attacker(coordinator: TestCoordinator, update: (config: RoundConfigMessage) => Uint8Array, examples = 64): Promise<{ socket: ClientSocket; acks: string[] }> {
  const socket = await rawSocket(coordinator, coordinator.token());
  const acks: string[] = [];
  socket.on('round:open', (m) => void send(socket, 'checkin', { roundId: m.roundId, nonce: randomId() }));
  socket.on('round:config', (m) => void send(socket, 'update', { roundId: m.roundId, nonce: randomId(), examples, delta: update(m) }).then((a) => acks.push(a.ok ? 'ok' : a.error.code)));
  return { socket, acks };
}

async function servedWeights(coordinator: TestCoordinator): Promise<{ version: number; weights: Float32Array }> {
  const current = (await (await fetch(`${coordinator.url}/models/current`)).json()) as { version: number };
  const bytes = new Uint8Array(await (await fetch(`${coordinator.url}/models/${current.version}/weights.bin`)).arrayBuffer());
  return { version: current.version, weights: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) };
}

function maxAbs(values: Float32Array): number {
  let m = 0;
  for (const v of values) m = Math.max(m, Math.abs(v));
  return m;
}

describe('bounded aggregates', () => {
  let coordinator: TestCoordinator;
  let honest: TestClient[] = [];
  const round = { rounds: 1, clientsPerRound: 4, minClients: 4, ...FAST } satisfies LaunchRequest;

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir());
    honest = await startClients(coordinator, 3);
  });

  afterAll(async () => {
    stopAll(honest);
    await coordinator?.close();
  });

  it('clips an update of 1e38 everywhere in a none round: the committed model is finite, served, and the next round builds on it', async () => {
    const evil = await attacker(coordinator, (m) => encodeWeights(new Float32Array(m.parameters).fill(1e38)));
    try {
      const [r] = await launch(coordinator, round);
      const record = await waitForRound(coordinator, r!.id);
      expect(evil.acks).toEqual(['ok']);
      expect(record.status, record.reason).toBe('committed');
      const served = await servedWeights(coordinator);
      expect(served.version).toBe(record.modelVersion);
      expect(served.weights.length).toBe(coordinator.registry.parameters);
      expect(served.weights.every(Number.isFinite)).toBe(true);
      expect(maxAbs(served.weights)).toBeLessThan(100);
      expect(record.metrics?.aggregate).toMatchObject({ examples: 64 + 3 * 4, clipped: 1 });
      expect(record.metrics?.aggregate?.updateNorm).toBeLessThanOrEqual(100);
      // The next round (the attacker again among its clients) builds on it and commits.
      const [next] = await launch(coordinator, round);
      const again = await waitForRound(coordinator, next!.id);
      expect(again.status, again.reason).toBe('committed');
      expect(again.baseModelVersion).toBe(record.modelVersion);
      expect((await servedWeights(coordinator)).weights.every(Number.isFinite)).toBe(true);
    } finally {
      evil.socket.close();
    }
  });

  it('aborts a none round whose step would push a weight past the bound before its release entry; the serving model stays', async () => {
    const evil = await attacker(coordinator, (m) => {
      const spike = new Float32Array(m.parameters);
      spike[0] = 1e6;
      return encodeWeights(spike);
    });
    try {
      const before = await servedWeights(coordinator);
      const [r] = await launch(coordinator, { ...round, aggregation: { maxUpdateNorm: 1e6 } });
      const record = await waitForRound(coordinator, r!.id);
      expect(evil.acks).toEqual(['ok']);
      expect(record.status).toBe('aborted');
      expect(record.reason).toMatch(new RegExp(`the new weights reach \\|.*\\| at index 0, past the bound of ${MAX_ABS_MODEL_WEIGHT} on any model weight; nothing was committed`));
      expect(record.modelVersion).toBeNull();
      const after = await servedWeights(coordinator);
      expect(after.version).toBe(before.version);
      expect(after.weights).toEqual(before.weights);
      // Checked before the release entry: the ledger holds the round as aborted only, at zero spend.
      expect((await ledgerRounds(coordinator, r!.id)).map((e) => [e.outcome, e.epsilonRound])).toEqual([['aborted', 0]]);
    } finally {
      evil.socket.close();
    }
    await waitFor(() => coordinator.sockets.connectedClients() === 3, 5000, 'the attacker gone');
    const [next] = await launch(coordinator, { ...round, clientsPerRound: 3, minClients: 3 });
    expect((await waitForRound(coordinator, next!.id)).status).toBe('committed');
  });

  it('aborts a local-DP round holding an unclipped update once its sum is decoded; its epsilon stays spent', async () => {
    const evil = await attacker(coordinator, (m) => encodeResidues(new Uint32Array(2 ** Math.ceil(Math.log2(m.parameters))).fill(2 ** 30)), 1);
    try {
      const before = await servedWeights(coordinator);
      const [r] = await launch(coordinator, { ...round, privacy: { mode: 'local', clip: 0.5, noiseMultiplier: 1, delta: 1e-6 } });
      const record = await waitForRound(coordinator, r!.id);
      expect(evil.acks).toEqual(['ok']);
      expect(record.status).toBe('aborted');
      expect(record.reason).toMatch(/the decoded sum of 4 updates has L2 norm .*, above .*, the most 4 updates clipped to 0.5 plus the round's noise can reach: an update was not clipped as its privacy requires; nothing was committed/);
      expect((await servedWeights(coordinator)).version).toBe(before.version);
      // The sum was decoded: the round's epsilon is spent in its record and in the ledger.
      expect(record.privacy).toMatchObject({ mode: 'local', released: true });
      expect(record.privacy?.epsilonRound).toBeGreaterThan(0);
      const entries = await ledgerRounds(coordinator, r!.id);
      expect(entries.map((e) => e.outcome)).toEqual(['released', 'aborted']);
      expect(entries[0]!.epsilonRound).toBe(record.privacy?.epsilonRound);
      expect(entries[1]!.reason).toMatch(/after its release was entered: that spend stands/);
      const verify = await api<{ ok: boolean }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger/verify');
      expect(verify.body.ok).toBe(true);
    } finally {
      evil.socket.close();
    }
  });
});

describe('launch ranges on a coordinator', () => {
  const launchStatus = (coordinator: TestCoordinator, body: LaunchRequest) => api<ErrorBody & { rounds?: RoundRecord[] }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', body);
  const tiny = { rounds: 1, clientsPerRound: 4, ...FAST, privacy: { mode: 'local', noiseMultiplier: 1e-300 } } satisfies LaunchRequest;
  const sane = { ...tiny, privacy: { mode: 'local', noiseMultiplier: 1 }, epsilonCap: 1e6 } satisfies LaunchRequest;

  it.each([
    ['without a deployment cap', undefined],
    ['under a deployment cap', { epsilon: 1e6, delta: 1e-6 }],
  ])('refuses a noise multiplier of 1e-300 naming the field %s, and later launches still work', async (_name, epsilonCap) => {
    await useNodeBackend();
    const coordinator = await startTestCoordinator(tempDataDir(), epsilonCap ? { epsilonCap } : {});
    try {
      for (const body of [tiny, { ...tiny, epsilonCap: 50 }]) {
        const res = await launchStatus(coordinator, body);
        expect([res.status, res.body.code]).toEqual([400, 'INVALID_ARGUMENT']);
        expect(res.body.message).toContain('"privacy.noiseMultiplier"');
      }
      const ok = await launchStatus(coordinator, sane);
      expect(ok.status, JSON.stringify(ok.body)).toBe(201);
      const listed = await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/rounds');
      expect(listed.status).toBe(200);
      expect(listed.body.rounds).toHaveLength(1);
    } finally {
      await coordinator.close();
    }
  });
});

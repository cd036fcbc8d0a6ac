/**
 * SecAgg+ in real rounds: a coordinator on port 0 (SQLite in a temp dir), real Socket.IO clients that
 * privatise (distributed DP) and mask their residues. Checks that the unmasked sum equals the plain
 * sum mod 2^32 of the very residues the survivors masked, that every byte the coordinator receives
 * is uncorrelated with every input and masked vectors look uniform (chi-square), that a client may
 * drop at each SecAgg+ stage and the round completes or aborts naming the stage, and that replayed,
 * duplicated, late and mis-addressed SecAgg+ messages are refused with their codes while the round goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Socket as ServerSocket } from 'socket.io';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { Ack, LaunchRequest, RoundRecord } from '../../shared/protocol/messages.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { api, launch, SECAGG_FIVE, startClients, startTestCoordinator, stopAll, tempDataDir, waitFor, waitForRound } from './harness.ts';
import { blobsOf, contains, correlation } from './wire-inspect.ts';

const N = 5;
const SECAGG = { mode: 'on', dropoutRate: 0.4, corruptFraction: 0, stageMs: 4_000 } as const;
const ROUND = SECAGG_FIVE;

function sumOf(vectors: readonly Uint32Array[]): Uint32Array {
  const out = new Uint32Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < v.length; i++) out[i] = out[i]! + v[i]!;
  return out;
}

function equal(a: Uint32Array, b: Uint32Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

describe('SecAgg+ rounds over Socket.IO', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];
  /** Residues each client masked, by round and client position. */
  const residues = new Map<number, Map<number, Uint32Array>>();
  const sums = new Map<number, Uint32Array>();
  /** Every payload the coordinator received, with its event name. */
  const received: { event: string; args: unknown[] }[] = [];

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(dataDir, { allowNoDp: false });
    coordinator.runner.onSecAggSum = (roundId, sum) => sums.set(roundId, sum);
    coordinator.io.on('connection', (socket: ServerSocket) => socket.onAny((event: string, ...args: unknown[]) => received.push({ event, args })));
    clients = await startClients(coordinator, N, (i) => ({
      inspectResidues: (roundId, r) => {
        if (!residues.has(roundId)) residues.set(roundId, new Map());
        residues.get(roundId)!.set(i, r);
      },
    }));
  });

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  async function runRound(request: LaunchRequest = ROUND): Promise<RoundRecord> {
    const [r] = await launch(coordinator, request);
    return waitForRound(coordinator, r!.id, 40_000);
  }

  it('refuses secagg on without integer updates, and a config whose masked sum could wrap, naming the numbers', async () => {
    const none = await api<{ code: string; message: string }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', { ...ROUND, privacy: { mode: 'none' } });
    expect(none.status).toBe(400);
    expect(none.body.message).toMatch(/"secagg" on needs integer updates/);
    const small = await api<{ code: string; message: string }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', { ...ROUND, clientsPerRound: 2, minClients: 2, privacy: { ...ROUND.privacy, t: 2 } });
    expect(small.body.message).toMatch(/"privacy.mode" distributed needs secure aggregation, but SecAgg\+ needs clientsPerRound >= 3, got 2/);
    const wrap = await api<{ code: string; message: string }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', {
      ...ROUND,
      clientsPerRound: 2000,
      minClients: 3,
      privacy: { ...ROUND.privacy, clip: 1e5, noiseMultiplier: 1e4 },
      secagg: { ...SECAGG, dropoutRate: 0.1 },
    });
    expect(wrap.status).toBe(400);
    expect(wrap.body.message).toMatch(/"secagg" overflow: cohort n=2000 x per-client bound \d+ .* >= 2\^31 = 2147483648/);
  });

  it('unmasks exactly the plain sum of the residues, and the coordinator never receives anything correlated with an input', async () => {
    const before = received.length;
    const record = await runRound();
    expect(record.status, record.reason).toBe('committed');
    expect(record.privacy).toMatchObject({ mode: 'distributed', secagg: 'on', released: true });
    expect(record.secagg).toMatchObject({ n: N, k: 4, t: 3, survivors: N, droppedPerStage: { 'advertise-keys': 0, 'share-keys': 0, 'masked-input': 0, unmask: 0 }, abortedStage: null });
    const inputs = [...residues.get(record.id)!.values()];
    expect(inputs).toHaveLength(N);
    expect(equal(sums.get(record.id)!, sumOf(inputs))).toBe(true);

    // Privacy: every byte the coordinator received in this round.
    const payloads = received.slice(before);
    expect(payloads.some((p) => p.event === 'secagg')).toBe(true);
    const blobs = payloads.flatMap((p) => blobsOf(p.args));
    const P = inputs[0]!.length;
    const maskedVectors = blobs.filter((b) => b.length === 4 * P).map((b) => new Uint32Array(b.slice().buffer));
    expect(maskedVectors).toHaveLength(N);
    for (const x of inputs) {
      const xBytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
      for (const blob of blobs) {
        // No 16-byte window of any input appears in any payload.
        expect(contains(blob, xBytes.subarray(0, 16))).toBe(false);
        expect(contains(blob, xBytes.subarray(xBytes.length - 16))).toBe(false);
      }
      for (const y of maskedVectors) {
        expect(equal(x, y)).toBe(false);
        expect(Math.abs(correlation(x, y))).toBeLessThan(5 / Math.sqrt(P));
      }
    }
    // Masked vectors look uniform over Z_2^32: chi-square on the top byte of each word, 256 bins.
    const counts = new Array<number>(256).fill(0);
    for (const y of maskedVectors) for (const v of y) counts[v >>> 24]!++;
    const total = maskedVectors.length * P;
    const chi2 = counts.reduce((s, c) => s + (c - total / 256) ** 2 / (total / 256), 0);
    // 0.999 quantile of chi-square with 255 degrees of freedom.
    expect(chi2).toBeLessThan(330.5);
    // The plain residues themselves are far from uniform (small centred integers), so the test has power.
    const plainCounts = new Array<number>(256).fill(0);
    for (const x of inputs) for (const v of x) plainCounts[v >>> 24]!++;
    expect(plainCounts.reduce((s, c) => s + (c - total / 256) ** 2 / (total / 256), 0)).toBeGreaterThan(1000);
  }, 45_000);

  for (const stage of ['advertise-keys', 'share-keys', 'masked-input', 'unmask'] as const) {
    it(`completes when one client drops at ${stage}, unmasking the survivors' sum`, async () => {
      const victim = clients[1]!;
      // Drop once at this stage, rejoin for the next test.
      victim.client.dropOnceAt(stage, 200);
      const record = await runRound();
      expect(record.status, record.reason).toBe('committed');
      expect(record.secagg!.droppedPerStage[stage]).toBe(1);
      const survivors = stage === 'unmask' ? N : N - 1;
      expect(record.secagg!.survivors).toBe(survivors);
      const byClient = residues.get(record.id)!;
      const inSum = [...byClient.entries()].filter(([i]) => stage === 'unmask' || i !== 1).map(([, r]) => r);
      expect(inSum).toHaveLength(survivors);
      expect(equal(sums.get(record.id)!, sumOf(inSum))).toBe(true);
      await waitFor(() => victim.client.socket.connected, 10_000, 'victim reconnects');
      await waitFor(() => coordinator.sockets.connectedClients() >= N, 10_000, 'all connected');
    }, 45_000);
  }

  it('aborts naming the stage when too few masked inputs arrive, releasing nothing', async () => {
    for (const i of [0, 2, 4]) clients[i]!.client.dropOnceAt('masked-input', 200);
    const record = await runRound();
    expect(record.status).toBe('aborted');
    expect(record.reason).toMatch(/masked-input/);
    expect(record.secagg).toMatchObject({ abortedStage: 'masked-input', droppedPerStage: { 'masked-input': 3 } });
    expect(sums.has(record.id)).toBe(false);
    expect(record.privacy!.released).toBe(false);
    await waitFor(() => coordinator.sockets.connectedClients() >= N, 15_000, 'all reconnected');
  }, 45_000);

  it('refuses replayed, duplicated, late and mis-addressed SecAgg+ messages with their codes; the round goes on', async () => {
    const socket = clients[3]!.client.socket;
    const acks: Ack[] = [];
    const sent: { roundId: number; message: { type: string; from: number } & Record<string, unknown> }[] = [];
    // onAnyOutgoing sees our own re-sends too (synchronously inside emit): skip those.
    let resending = false;
    const resend = (payload: unknown) =>
      new Promise<void>((resolve) => {
        resending = true;
        try {
          (socket.emit as (e: string, p: unknown, cb: (a: Ack) => void) => void)('secagg', payload, (a) => (acks.push(a), resolve()));
        } finally {
          resending = false;
        }
      });
    const listener = (event: string, payload: unknown) => {
      if (event !== 'secagg' || resending) return;
      const p = payload as (typeof sent)[number];
      sent.push(p);
      // Right after the real message: a duplicate, a copy claiming another sender, and (at share-keys) the stale advertisement.
      setTimeout(() => {
        void resend(p);
        void resend({ ...p, message: { ...p.message, from: p.message.from === 1 ? 2 : 1 } });
        if (p.message.type === 'share-keys') void resend(sent.find((s) => s.message.type === 'advertise-keys'));
      }, 0);
    };
    const indices = new Map<number, number>();
    socket.on('round:config', (m) => m.secagg && indices.set(m.roundId, m.secagg.index));
    socket.onAnyOutgoing(listener);
    const record = await runRound();
    socket.offAnyOutgoing(listener);
    expect(record.status, record.reason).toBe('committed');
    expect(record.secagg!.survivors).toBe(N);
    const codes = acks.flatMap((a) => (a.ok ? [] : [a.error.code]));
    expect(codes).toContain('DUPLICATE_MESSAGE');
    expect(codes).toContain('MISADDRESSED');
    expect(codes).toContain('LATE_MESSAGE');
    expect(acks.every((a) => !a.ok)).toBe(true);

    // Replayed into the next round: the old envelope is a stale round, a re-wrapped one is the wrong session.
    const old = sent.find((s) => s.message.type === 'advertise-keys')!;
    const next = launch(coordinator, ROUND);
    const [r] = await next;
    await waitFor(() => coordinator.runner.current?.roundId === r!.id && coordinator.runner.current.stage === 'training', 10_000, 'next round training');
    acks.length = 0;
    await resend(old);
    await waitFor(() => indices.has(r!.id), 10_000, 'the next config');
    await resend({ roundId: r!.id, message: { ...old.message, from: indices.get(r!.id)! } });
    expect(acks.map((a) => (a.ok ? 'ok' : a.error.code))).toEqual(['STALE_ROUND', 'WRONG_ROUND']);
    const finished = await waitForRound(coordinator, r!.id, 40_000);
    expect(finished.status, finished.reason).toBe('committed');
  }, 60_000);
});

/**
 * Differential privacy in real rounds: a coordinator on port 0 (SQLite in a temp dir) and real
 * clients that clip, round and noise their updates on the device. Checks the launch validation
 * (400 naming the field, central/none refused unless enabled), the privacy block of each round
 * record against the accountant recomputed here, the noise actually present in the aggregate of
 * all-zero updates against the configured z (with SecAgg+, which distributed DP requires), the
 * refusal of distributed DP without it, and of a wrong-length integer update.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { ClientSocket } from '../../client/core/client.ts';
import { buildPrivacyConfig, roundsEpsilon, roundsRdp } from '../../shared/privacy/config.ts';
import type { PrivacyConfig } from '../../shared/privacy/config.ts';
import { DEFAULT_RDP_ORDERS, epsilonFromRdp } from '../../shared/privacy/rdp.ts';
import { randomId } from '../../shared/protocol/enrollment.ts';
import type { ErrorBody } from '../../shared/protocol/errors.ts';
import type { Ack, LaunchRequest, RoundPrivacyRecord, RoundRecord } from '../../shared/protocol/messages.ts';
import { encodeResidues } from '../../shared/protocol/weights.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { api, FAST, launch, rawSocket, startClients, startTestCoordinator, stopAll, tempDataDir, waitFor, waitForRound } from './harness.ts';

const DP_FAST = { deadlines: FAST.deadlines, train: FAST.train };

function send(socket: ClientSocket, event: 'checkin' | 'update', payload: unknown): Promise<Ack> {
  return new Promise((resolve) => (socket.emit as (e: string, p: unknown, cb: (a: Ack) => void) => void)(event, payload, resolve));
}

/** The accountant's value for one round, rebuilt from the record's parameters. */
function recompute(p: RoundPrivacyRecord, rounds: number): { epsilon: number; l2Sensitivity: number; clientVariance: number; granularity: number; config: PrivacyConfig } {
  const config = buildPrivacyConfig({
    mode: p.mode,
    clip: p.clip,
    noiseMultiplier: p.noiseMultiplier,
    minSurvivors: p.t,
    delta: p.delta,
    population: p.population,
    dimension: p.dimension as number,
    granularity: p.granularity as number,
    rotation: true,
    allowCentral: true,
  });
  return { config, epsilon: roundsEpsilon(config, rounds).epsilon, l2Sensitivity: config.l2Sensitivity, clientVariance: config.clientNoiseVariance, granularity: config.granularity };
}

async function launchStatus(coordinator: TestCoordinator, body: LaunchRequest): Promise<{ status: number; body: ErrorBody }> {
  return api<ErrorBody>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', body);
}

describe('distributed DP rounds (central and none not enabled)', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];
  let zeroDeltas = false;
  let firstRound: RoundPrivacyRecord | undefined;

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(dataDir, { allowNoDp: false });
    clients = await startClients(coordinator, 4, () => ({ privatiseUpdate: (d) => (zeroDeltas ? new Float32Array(d.length) : d), acceptPrivacyModes: ['distributed', 'local'] }));
  });

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('answers invalid privacy sections 400 naming the field, and refuses none and central', async () => {
    const base = { clientsPerRound: 4, minClients: 4, ...DP_FAST };
    const cases: [LaunchRequest['privacy'] | { mode: string }, string][] = [
      [{ clip: -1 }, '"privacy.clip"'],
      [{ noiseMultiplier: 0 }, '"privacy.noiseMultiplier"'],
      [{ delta: 1e-3 }, '"privacy.delta"'],
      [{ delta: 1e-6, population: 2_000_000 }, '"privacy.delta"'],
      [{ t: 9 }, '"privacy.t"'],
      [{ mode: 'secret' }, '"privacy.mode"'],
    ];
    for (const [privacy, field] of cases) {
      const res = await launchStatus(coordinator, { ...base, privacy } as LaunchRequest);
      expect(res.status, JSON.stringify(privacy)).toBe(400);
      expect(res.body.code).toBe('INVALID_ARGUMENT');
      expect(res.body.message).toContain(field);
    }
    for (const mode of ['none', 'central'] as const) {
      const res = await launchStatus(coordinator, { ...base, privacy: { mode } });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('PRIVACY_MODE_DISABLED');
      expect(res.body.message).toContain(mode === 'none' ? '--allow-no-dp' : '--allow-central-dp');
    }
    const rounds = await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/rounds');
    expect(rounds.body.rounds).toEqual([]);
  });

  it('commits a distributed-DP round (the default mode) whose record carries the accountant\'s epsilon', async () => {
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 3, ...DP_FAST, privacy: { clip: 0.5, noiseMultiplier: 1.5, delta: 1e-6 } });
    expect(r!.privacy).toMatchObject({ mode: 'distributed', t: 3, released: false, epsilonRound: null });
    const record = await waitForRound(coordinator, r!.id);
    expect(record.status).toBe('committed');
    expect(record.participants).toBe(4);
    const p = record.privacy as RoundPrivacyRecord;
    expect(p).toMatchObject({ mode: 'distributed', differentiallyPrivate: true, clip: 0.5, noiseMultiplier: 1.5, t: 3, delta: 1e-6, q: 1, samplingMethod: 'fixed', released: true, secagg: 'on', shares: 3 });
    // Distributed DP turns SecAgg+ on by default: the coordinator only ever held the masked sum.
    expect(record.secagg).toMatchObject({ survivors: 4 });
    expect(p.dimension).toBe(coordinator.registry.parameters);
    const again = recompute(p, 1);
    expect(p.epsilonRound).toBeGreaterThan(0);
    expect(p.epsilonRound).toBe(again.epsilon);
    expect(p.epsilonCumulative).toBe(again.epsilon);
    expect(p.l2Sensitivity).toBe(again.l2Sensitivity);
    expect(p.order).toBeGreaterThan(1);
    firstRound = p;
    // Uniform weights: each client counts once, the example counts are never used.
    expect(record.metrics?.aggregate).toMatchObject({ examples: 4, weight: 4 });
    expect(record.metrics?.aggregate?.updateNorm).toBeGreaterThan(0);
    expect(clients.every((c) => c.client.stats.refusals === 0)).toBe(true);
  });

  it('puts noise of the configured z into the aggregate of all-zero updates (distributed DP, SecAgg+ on)', async () => {
    zeroDeltas = true;
    try {
      const before = Float64Array.from(coordinator.registry.current.weights);
      const z = 2;
      const clip = 0.01;
      const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 4, deadlines: { checkinMs: 3_000, trainingMs: 8_000 }, train: FAST.train, privacy: { clip, noiseMultiplier: z, delta: 1e-6 } });
      const record = await waitForRound(coordinator, r!.id);
      expect(record.status).toBe('committed');
      expect(record.participants).toBe(4);
      expect(record.secagg).toMatchObject({ survivors: 4 });

      const p = record.privacy as RoundPrivacyRecord;
      const { clientVariance, granularity, epsilon } = recompute(p, 1);
      expect(p.epsilonRound).toBe(epsilon);
      // Cumulative: the two released rounds' RDP added at each order, then converted once.
      const total = roundsRdp(recompute(firstRound as RoundPrivacyRecord, 1).config, 1).map((v, i) => v + (roundsRdp(recompute(p, 1).config, 1)[i] as number));
      expect(p.epsilonCumulative).toBeCloseTo(epsilonFromRdp(DEFAULT_RDP_ORDERS, total, 1e-6).epsilon, 12);
      expect(p.epsilonCumulative).toBeGreaterThan(Math.max(p.epsilonRound as number, firstRound?.epsilonRound as number));
      // FedAvg with server rate 1 over n uniform clients: new − old = (decoded sum) / n.
      const n = record.participants;
      const after = coordinator.registry.current.weights;
      const d = after.length;
      let sum = 0;
      let sumSq = 0;
      for (let i = 0; i < d; i++) {
        const noise = ((after[i] as number) - (before[i] as number)) * n;
        sum += noise;
        sumSq += noise * noise;
      }
      // Each client adds N_Z(0, (zΔ₂)²/t) per (rotated) grid coordinate; the rotation is
      // orthonormal, so each decoded coordinate carries variance n·(zΔ₂)²/t·γ², ≈ (n/t)(zC)².
      const expected = n * clientVariance * granularity * granularity;
      const measured = sumSq / d;
      const tolerance = 6 * Math.sqrt(2 / d);
      expect(d).toBeGreaterThan(1000);
      expect(Math.abs(measured / expected - 1)).toBeLessThan(tolerance);
      expect(Math.abs(sum / d)).toBeLessThan(6 * Math.sqrt(expected / d));
      expect(Math.sqrt(expected)).toBeCloseTo(Math.sqrt(n / p.t) * z * clip, 3);
      console.log(`noise check: d=${d}, n=${n}, t=${p.t}, measured std ${Math.sqrt(measured).toExponential(4)}, expected ${Math.sqrt(expected).toExponential(4)} (ratio ${(measured / expected).toFixed(4)}, tolerance ±${tolerance.toFixed(3)}); epsilon round ${p.epsilonRound?.toFixed(4)}, cumulative ${p.epsilonCumulative?.toFixed(4)}`);
    } finally {
      zeroDeltas = false;
    }
  });

  it('refuses distributed DP without secure aggregation, and a wrong-length integer update in a local-DP round', async () => {
    const off = await launchStatus(coordinator, { rounds: 1, clientsPerRound: 5, minClients: 4, ...DP_FAST, privacy: { clip: 0.5, noiseMultiplier: 1, delta: 1e-6 }, secagg: 'off' });
    expect(off.status).toBe(400);
    expect(off.body.message).toMatch(/"privacy.mode" distributed needs secure aggregation, but "secagg" is off/);
    const small = await launchStatus(coordinator, { rounds: 1, clientsPerRound: 3, minClients: 2, ...DP_FAST, privacy: { clip: 0.5, noiseMultiplier: 1, delta: 1e-6 } });
    expect(small.status).toBe(400);
    expect(small.body.message).toMatch(/needs secure aggregation, but the default dropout and collusion rates admit no SecAgg\+ parameters for clientsPerRound 3/);
    const evil = await rawSocket(coordinator, coordinator.token());
    const codes: string[] = [];
    evil.on('round:open', (m) => void send(evil, 'checkin', { roundId: m.roundId, nonce: randomId() }));
    evil.on('round:config', (m) => {
      void (async () => {
        const padded = 2 ** Math.ceil(Math.log2(m.parameters));
        const update = (delta: Uint8Array) => ({ roundId: m.roundId, nonce: randomId(), examples: 1, delta });
        for (const [name, length] of [['short', padded - 1], ['long', padded + 1]] as const) {
          const ack = await send(evil, 'update', update(encodeResidues(new Uint32Array(length))));
          codes.push(`${name}:${ack.ok ? 'ok' : ack.error.code}`);
        }
        const odd = await send(evil, 'update', update(new Uint8Array(padded * 4 - 2)));
        codes.push(`odd:${odd.ok ? 'ok' : odd.error.code}`);
      })();
    });
    try {
      // Local DP: every device adds the full noise, so unmasked integer updates are allowed.
      const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 5, minClients: 4, deadlines: { checkinMs: 3_000, trainingMs: 4_000 }, train: FAST.train, privacy: { mode: 'local', clip: 0.5, noiseMultiplier: 1, delta: 1e-6 } });
      const record = await waitForRound(coordinator, r!.id);
      expect(record.status).toBe('committed');
      expect(record.participants).toBe(4);
      await waitFor(() => codes.length === 3, 5_000, 'answers to the bad updates');
      expect(codes).toEqual(['short:WEIGHTS_LENGTH', 'long:WEIGHTS_LENGTH', 'odd:WEIGHTS_LENGTH']);
    } finally {
      evil.disconnect();
    }
  });
});

describe('central and none when the coordinator enables them', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(dataDir, { allowNoDp: true, allowCentralDp: true });
    // The last client requires DP of itself and refuses `none` rounds (a dropout).
    clients = await startClients(coordinator, 3, (i) => (i === 2 ? { acceptPrivacyModes: ['distributed', 'central', 'local'] } : {}));
  });

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('runs a central round with accounted noise and a none round marked as such', async () => {
    const [central] = await launch(coordinator, { rounds: 1, clientsPerRound: 3, minClients: 2, ...DP_FAST, privacy: { mode: 'central', clip: 0.5, noiseMultiplier: 1, delta: 1e-6 } });
    const c = await waitForRound(coordinator, central!.id);
    expect(c.status).toBe('committed');
    const cp = c.privacy as RoundPrivacyRecord;
    expect(cp).toMatchObject({ mode: 'central', shares: 1, released: true, q: 1 });
    expect(cp.epsilonRound).toBe(recompute(cp, 1).epsilon);

    const [plain] = await launch(coordinator, { rounds: 1, clientsPerRound: 3, minClients: 2, ...FAST, deadlines: { checkinMs: 3_000, trainingMs: 2_500 } });
    expect(plain!.privacy).toMatchObject({ mode: 'none', differentiallyPrivate: false });
    const n = await waitForRound(coordinator, plain!.id);
    expect(n.status).toBe('committed');
    expect(n.participants).toBe(2);
    expect(n.privacy).toMatchObject({ mode: 'none', differentiallyPrivate: false, released: false, epsilonRound: null, epsilonCumulative: null, secagg: 'off' });
    const refused = clients[2]!.events.find((e) => e.type === 'privacy-refused');
    expect(refused).toMatchObject({ roundId: plain!.id, error: { code: 'PRIVACY_NOT_ACCEPTED' } });
    // The coordinator learns the refusal as a code, counted on the record; the central round had none.
    expect(n.declined).toEqual({ PRIVACY_NOT_ACCEPTED: 1 });
    expect(c.declined).toBeUndefined();
    // The none round spends nothing: the listed records show it as non-private.
    const list = await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/rounds');
    expect(list.body.rounds.map((r) => r.privacy?.mode)).toEqual(['none', 'central']);
  });
});

describe('a round every selected device refuses on its own privacy policy', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(dataDir, { allowNoDp: false });
    // Devices that take only local DP: a distributed round (noise split across devices) is refused.
    clients = await startClients(coordinator, 4, () => ({ acceptPrivacyModes: ['local'] }));
  });

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('aborts at advertise-keys without waiting out the later stages, and says the devices declined and why', async () => {
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 3, ...DP_FAST, privacy: { mode: 'distributed', clip: 0.5, noiseMultiplier: 1, delta: 1e-6 } });
    const record = await waitForRound(coordinator, r!.id);
    expect(record.status).toBe('aborted');
    expect(record.declined).toEqual({ PRIVACY_NOT_ACCEPTED: 4 });
    expect(record.reason).toMatch(/^SecAgg\+ aborted at stage "advertise-keys" \(BELOW_THRESHOLD\): stage "advertise-keys" fell short: no client answered \(all 4 dropped or declined\); declined by 4 device\(s\): 4 PRIVACY_NOT_ACCEPTED \(the device's privacy policy or its own privacy budget\)$/);
    expect(record.secagg).toMatchObject({ abortedStage: 'advertise-keys' });
    // Nothing waited for a stage deadline after training: every device had left.
    expect(record.timings['secagg.share-keysMs']).toBeUndefined();
    for (const c of clients) expect(c.events.some((e) => e.type === 'privacy-refused' && e.roundId === r!.id)).toBe(true);
  });

  it('hears from devices whose own budget is spent at check-in, so check-in closes without waiting for them', async () => {
    const spent = await startClients(coordinator, 2, () => ({ declineReason: () => 'PRIVACY_NOT_ACCEPTED' }));
    try {
      await waitFor(() => coordinator.sockets.connectedClients() === 6, 10_000, 'six devices connected');
      const checkinMs = 8_000;
      const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 3, ...DP_FAST, deadlines: { checkinMs, trainingMs: DP_FAST.deadlines!.trainingMs }, privacy: { mode: 'distributed', clip: 0.5, noiseMultiplier: 1, delta: 1e-6 } });
      const record = await waitForRound(coordinator, r!.id);
      // Two declined at check-in, never selected; the four local-only devices refused once selected.
      expect(record.declined).toEqual({ PRIVACY_NOT_ACCEPTED: 6 });
      expect(record.checkedIn).toBe(4);
      expect(record.timings.checkinMs!).toBeLessThan(checkinMs);
      for (const c of spent) {
        expect(c.events.some((e) => e.type === 'declined' && e.roundId === r!.id && e.reason === 'declined at check-in: PRIVACY_NOT_ACCEPTED')).toBe(true);
        expect(c.events.some((e) => e.type === 'checked-in' && e.roundId === r!.id)).toBe(false);
      }
    } finally {
      stopAll(spent);
    }
  });
});

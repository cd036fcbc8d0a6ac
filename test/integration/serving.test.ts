/**
 * The serving pointer, promotion and staged rollout (issue 18, part 4), against a real
 * coordinator started with promoted serving (a shop's production) and real clients:
 * - the first start pins the serving version; newly trained versions are announced for training
 *   but not served;
 * - a promotion without evidence, with an evaluation of another pair, or of a deliberately
 *   perturbed version that is worse than serving is refused with PROMOTION_REFUSED saying why,
 *   and changes nothing; a paired evaluation showing the candidate better promotes it;
 * - a rollout stages a candidate for a deterministic share of devices, announced to them, and the
 *   pointer survives a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { EvaluateSummary } from '../../shared/analytics/federated-evaluation.ts';
import type { ModelAnnouncement, RoundRecord, ServingPointer } from '../../shared/protocol/messages.ts';
import { profileModel, rolloutPosition } from '../../shared/protocol/rollout.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { api, FAST, launch, startClients, startTestCoordinator, stopAll, tempDataDir, waitForRound } from './harness.ts';

const N = 8;

describe('serving version, promotion and rollout', () => {
  let dataDir: string;
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];

  const current = async (): Promise<ModelAnnouncement> => (await (await fetch(`${coordinator.url}/models/current`)).json()) as ModelAnnouncement;
  const promote = (body: unknown) => api<{ serving?: ServingPointer; code?: string; message?: string }>(coordinator, coordinator.operator, 'POST', '/api/v1/models/promote', body);
  const train = async (extra: object = {}): Promise<RoundRecord> => {
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: N, minClients: N, ...FAST, ...extra });
    const done = await waitForRound(coordinator, (r as RoundRecord).id, 30_000);
    expect(done.status, done.reason).toBe('committed');
    return done;
  };
  const evaluate = async (versions: number[]): Promise<RoundRecord> => {
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: N, minClients: N, ...FAST, task: 'analytics', query: { statistic: 'evaluate', versions, bins: 256 } });
    const done = await waitForRound(coordinator, (r as RoundRecord).id, 30_000);
    expect(done.status, done.reason).toBe('committed');
    return done;
  };

  beforeAll(async () => {
    await useNodeBackend();
    dataDir = tempDataDir();
    coordinator = await startTestCoordinator(dataDir, { servingPolicy: 'promoted' });
    clients = await startClients(coordinator, N);
  });

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('serves the pinned version while rounds train newer ones; refuses promotions without evidence or against it', async () => {
    expect((await current()).serving?.version).toBe(1);
    await train();
    await train();
    // v3 is deliberately perturbed: local and server steps far too large blow its weights up.
    const perturbed = await train({ train: { epochs: 2, batchSize: 4, learningRate: 2, optimizer: 'sgd' }, aggregation: { serverOptimizer: 'fedavg', serverLearningRate: 30, exampleCap: 64 } });
    expect(perturbed.modelVersion).toBe(4);
    const announced = await current();
    expect(announced).toMatchObject({ version: 4, serving: { version: 1 } });

    const none = await promote({ version: 3 });
    expect({ status: none.status, code: none.body.code }).toEqual({ status: 409, code: 'PROMOTION_REFUSED' });
    expect(none.body.message).toMatch(/needs evidence: a paired federated evaluation of the serving version v1 and v3/);
    expect((await promote({ version: 3, force: true })).body.message).toMatch(/"reason"/);
    const forced = await promote({ version: 3, force: true, reason: 'trained on more rounds than v1' });
    expect(forced.status).toBe(200);
    expect(forced.body.serving).toMatchObject({ version: 3, reason: 'forced by an operator: trained on more rounds than v1' });

    const worse = await evaluate([3, 4]);
    const diff = (worse.result!.summary as EvaluateSummary).difference!;
    expect(diff).toMatchObject({ baseline: 3, candidate: 4 });
    const refused = await promote({ version: 4, evidence: worse.id });
    expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 409, code: 'PROMOTION_REFUSED' });
    expect(refused.body.message).toMatch(/interests\.microAuc of v4 − v3 = .*its lower bound is not above 0/);
    const wrongPair = await promote({ version: 2, evidence: worse.id });
    expect(wrongPair.body.message).toMatch(/did not compare the serving version v3 \(first\) with v2 \(second\): it compared v3 with v4/);
    expect((await current()).serving?.version).toBe(3);
    expect((await promote({ version: 99 })).status).toBe(404);
    expect((await api(coordinator, coordinator.auditor, 'POST', '/api/v1/models/promote', { version: 4, force: true, reason: 'x' })).status).toBe(403);
  }, 120_000);

  it('promotes on a paired evaluation whose interval lies above zero', async () => {
    await promote({ version: 4, force: true, reason: 'serve the perturbed version to test the evidence path' });
    const better = await evaluate([4, 3]);
    const d = (better.result!.summary as EvaluateSummary).difference!.heads.interests!.microAuc!;
    expect(d.interval![0], JSON.stringify(d)).toBeGreaterThan(0);
    const promoted = await promote({ version: 3, evidence: better.id });
    expect(promoted.status, JSON.stringify(promoted.body)).toBe(200);
    expect(promoted.body.serving?.reason).toMatch(/interests\.microAuc of v3 − v4 = .* \(round \d+, 8 devices\)/);
    expect((await current()).serving?.version).toBe(3);
  }, 60_000);

  it('stages a rollout for a deterministic share of devices, announced and kept across a restart', async () => {
    const res = await api<{ serving: ServingPointer }>(coordinator, coordinator.operator, 'POST', '/api/v1/models/rollout', { version: 2, fraction: 0.25 });
    expect(res.status).toBe(200);
    const announced = await current();
    expect(announced).toMatchObject({ serving: { version: 3 }, candidate: { version: 2, fraction: 0.25 } });
    const keys = Array.from({ length: 2000 }, (_, i) => `device-${i}`);
    const arms = keys.map((k) => profileModel(announced, k).version);
    const share = arms.filter((v) => v === 2).length / keys.length;
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.3);
    // The same device lands in the same arm every time.
    for (const k of keys.slice(0, 50)) expect(profileModel(announced, k).version).toBe(rolloutPosition(k, 2) < 0.25 ? 2 : 3);
    expect((await api(coordinator, coordinator.operator, 'POST', '/api/v1/models/rollout', { version: 3, fraction: 0.5 })).status).toBe(400);

    stopAll(clients);
    clients = [];
    await coordinator.close();
    coordinator = await startTestCoordinator(dataDir, { servingPolicy: 'promoted' });
    expect(await current()).toMatchObject({ version: 4, serving: { version: 3 }, candidate: { version: 2, fraction: 0.25 } });
  }, 60_000);
});

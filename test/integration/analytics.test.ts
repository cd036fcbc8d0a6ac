/**
 * Federated analytics rounds (issue 18) against a real coordinator (port 0, SQLite and the signed
 * ledger in a temp dir) and real Socket.IO clients holding one synthetic shopper's events each:
 * - a category-counts query under distributed DP + SecAgg+ commits, releases the noised sum with
 *   its noise scale (every cell within 5σ of the exact sum of the devices' contributions), names
 *   the query in its ledger entry (no model version: nothing is published), spends epsilon, and
 *   `audit verify` recomputes it;
 * - without DP (the `--allow-no-dp` baseline) the released sum equals the exact sum;
 * - a plaintext contribution of the wrong length or over its query's bound is refused with its
 *   code, and the round commits with the honest devices' sum unharmed;
 * - launches without a query, with a query on a training round, or with a malformed query are
 *   refused naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { ClientSocket } from '../../client/core/client.ts';
import { deviceContribution, planQuery } from '../../shared/analytics/queries.ts';
import type { AnalyticsQueryInput } from '../../shared/analytics/queries.ts';
import { AnalyticsQuerySchema } from '../../shared/analytics/queries.ts';
import { randomId } from '../../shared/protocol/enrollment.ts';
import type { Ack, LaunchRequest, RoundConfigMessage, RoundRecord } from '../../shared/protocol/messages.ts';
import { encodeWeights } from '../../shared/protocol/weights.ts';
import { auditCli, auditJson } from './audit-cli.ts';
import type { LedgerReport } from '../../shared/ledger/report.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { api, ledgerRounds, FAST, launch, rawSocket, SECAGG_FIVE, startClients, startTestCoordinator, stopAll, syntheticPopulation, tempDataDir, waitFor, waitForRound } from './harness.ts';

const N = 5;

function send(socket: ClientSocket, event: 'checkin' | 'update', payload: unknown): Promise<Ack> {
  return new Promise((resolve) => (socket.emit as (e: string, p: unknown, cb: (a: Ack) => void) => void)(event, payload, resolve));
}

describe('federated analytics rounds', () => {
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];
  let categories: string[] = [];
  /** The exact sum of what the N devices contribute to `query` (what the round must estimate). */
  let exactSum: (query: AnalyticsQueryInput) => Float64Array;

  beforeAll(async () => {
    await useNodeBackend();
    const pop = await syntheticPopulation();
    const users = pop.prepared.users.train.slice(0, N);
    coordinator = await startTestCoordinator(tempDataDir());
    clients = await startClients(coordinator, N, (i) => ({ analyticsEvents: () => (users[i] as (typeof users)[number]).events }));
    categories = [...pop.config.vocabulary.categories, 'not-a-category'];
    exactSum = (input) => {
      const query = AnalyticsQuerySchema.parse(input);
      const out = new Float64Array(planQuery(query).dimension);
      for (const user of users) deviceContribution(query, user.events).forEach((v, j) => (out[j] = (out[j] as number) + v));
      return out;
    };
  });

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('releases a category-counts query under distributed DP + SecAgg+ through the ledger, with its noise scale, and audit verify recomputes it', async () => {
    const query = { statistic: 'category-counts', categories, maxCategoriesPerDevice: 4 } as const;
    const modelBefore = coordinator.registry.current.record.version;
    const [launched] = await launch(coordinator, { ...SECAGG_FIVE, task: 'analytics', query, privacy: { ...SECAGG_FIVE.privacy, mode: 'distributed', noiseMultiplier: 1 } });
    const r = await waitForRound(coordinator, (launched as RoundRecord).id, 40_000);
    expect(r.status, r.reason).toBe('committed');
    expect(r.modelVersion).toBeNull();
    expect(coordinator.registry.current.record.version).toBe(modelBefore);
    const result = r.result!;
    expect(result).toMatchObject({ statistic: 'category-counts', dimension: categories.length, bound: 2 });
    expect(result.survivors).toBe(N);
    // Distributed noise: at least z·bound on the sum (t of the survivors' shares carry the target variance).
    expect(result.noiseStd).toBeGreaterThanOrEqual(2 * 0.999);
    expect(r.privacy).toMatchObject({ released: true, clip: 2, secagg: 'on' });
    expect(r.privacy?.epsilonRound).toBeGreaterThan(0);
    // The released sum is the survivors' exact sum plus noise of the stated scale.
    const exact = exactSum(query);
    expect(exact.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    result.sum.forEach((v, j) => expect(Math.abs(v - (exact[j] as number))).toBeLessThan(5 * result.noiseStd));
    if (result.summary.statistic !== 'category-counts') throw new Error('wrong summary');
    expect(result.summary.categories).toHaveLength(categories.length);
    for (const c of result.summary.categories) expect(c.count.interval![1] - c.count.interval![0]).toBeCloseTo(2 * 1.959964 * result.noiseStd, 6);

    const [entry] = await ledgerRounds(coordinator, r.id);
    expect(entry).toMatchObject({ outcome: 'released', modelVersionOut: null, clip: 2, query: { statistic: 'category-counts', dimension: categories.length, bound: 2 } });
    expect(entry?.query?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(entry?.epsilonRound).toBeCloseTo(r.privacy!.epsilonRound!, 9);
    const verified = await auditJson('verify', '--data-dir', coordinator.dataDir);
    expect(verified).toMatchObject({ code: 0, ok: true });
    // The compliance report lists the query with its spend, beside training rounds.
    const report = JSON.parse((await auditCli('report', '--data-dir', coordinator.dataDir, '--format', 'json')).stdout) as LedgerReport;
    expect(report.rounds.find((x) => x.roundId === r.id)).toMatchObject({ task: 'analytics', query: { statistic: 'category-counts', dimension: categories.length, bound: 2 }, outcome: 'released' });
    const markdown = (await auditCli('report', '--data-dir', coordinator.dataDir)).stdout;
    expect(markdown).toContain('Federated analytics queries released: 1 (1 category-counts)');
    expect(markdown).toContain(`analytics: category-counts (d=${categories.length}, bound 2)`);
  }, 60_000);

  it('without DP releases exactly the sum of the contributions (log-price moments and the spend histogram)', async () => {
    for (const query of [{ statistic: 'log-price-moments' }, { statistic: 'spend-histogram', bins: 16 }] as const) {
      const [launched] = await launch(coordinator, { rounds: 1, clientsPerRound: N, minClients: N, ...FAST, task: 'analytics', query });
      const r = await waitForRound(coordinator, (launched as RoundRecord).id, 20_000);
      expect(r.status, r.reason).toBe('committed');
      expect(r.result?.noiseStd).toBe(0);
      const exact = exactSum(query);
      r.result!.sum.forEach((v, j) => expect(v).toBeCloseTo(exact[j] as number, 5));
      if (r.result!.summary.statistic === 'log-price-moments') expect(r.result!.summary.events.value).toBeGreaterThan(0);
      if (r.result!.summary.statistic === 'spend-histogram') expect(r.result!.summary.quantiles.map((q) => q.q)).toEqual([1 / 3, 2 / 3]);
    }
  }, 60_000);

  it('refuses a plaintext contribution of the wrong length or over its bound with its code, and the round commits with the honest sum', async () => {
    const query = { statistic: 'spend-histogram', bins: 8 } as const;
    const acks: string[] = [];
    const sockets: ClientSocket[] = [];
    for (const bad of [(m: RoundConfigMessage) => new Float32Array(planQuery(AnalyticsQuerySchema.parse(m.query)).dimension + 1), () => new Float32Array(8).fill(1)]) {
      const socket = await rawSocket(coordinator, coordinator.token());
      socket.on('round:open', (m) => void send(socket, 'checkin', { roundId: m.roundId, nonce: randomId() }));
      socket.on('round:config', (m) => void send(socket, 'update', { roundId: m.roundId, nonce: randomId(), examples: 1, delta: encodeWeights(bad(m)) }).then((a) => acks.push(a.ok ? 'ok' : a.error.code)));
      sockets.push(socket);
    }
    try {
      await waitFor(() => coordinator.sockets.connectedClients() >= N + 2, 5_000, 'attackers connected');
      const [launched] = await launch(coordinator, { rounds: 1, clientsPerRound: N + 2, minClients: N, ...FAST, deadlines: { checkinMs: 3_000, trainingMs: 4_000 }, task: 'analytics', query });
      const r = await waitForRound(coordinator, (launched as RoundRecord).id, 20_000);
      expect(acks.sort()).toEqual(['CONTRIBUTION_OUT_OF_BOUNDS', 'WEIGHTS_LENGTH']);
      expect(r.status, r.reason).toBe('committed');
      expect(r.participants).toBe(N);
      const exact = exactSum(query);
      r.result!.sum.forEach((v, j) => expect(v).toBeCloseTo(exact[j] as number, 5));
    } finally {
      for (const s of sockets) s.disconnect();
    }
  }, 40_000);

  it('refuses analytics launches without a query, a query on a training round, and a malformed query, naming the field', async () => {
    const base = { rounds: 1, clientsPerRound: 3, ...FAST } satisfies LaunchRequest;
    const cases: [unknown, RegExp][] = [
      [{ ...base, task: 'analytics' }, /"query" is required/],
      [{ ...base, query: { statistic: 'log-price-moments' } }, /"query" goes only with "task" analytics/],
      [{ ...base, task: 'analytics', query: { statistic: 'category-counts', categories: [] } }, /"query.categories"/],
      [{ ...base, task: 'analytics', query: { statistic: 'category-counts', categories: ['a', 'a'] } }, /distinct/],
      [{ ...base, task: 'analytics', query: { statistic: 'no-such' } }, /"query.statistic"/],
    ];
    for (const [body, message] of cases) {
      const res = await api<{ code: string; message: string }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', body);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('INVALID_ARGUMENT');
      expect(res.body.message).toMatch(message);
    }
  });
});

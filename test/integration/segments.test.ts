/**
 * Segment reports (issue 20, part 2) against a real coordinator and real clients holding one
 * synthetic shopper's events each:
 * - without DP the released counts per (interest × propensity) cell are exactly the portraits the
 *   devices compute with the serving version (recomputed here from the same events and model),
 *   and cells below the minimum count are suppressed, without a value;
 * - under distributed DP + SecAgg+ the query commits with intervals, is in the ledger as a
 *   `segments` query, and `audit verify` recomputes it;
 * - a cohort below the minimum, a query naming its own model version, an unknown dimension, and a
 *   query the budget cannot fit are refused with their codes before anything runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { AnalyticsSummary } from '../../shared/analytics/queries.ts';
import { portraitCell } from '../../shared/analytics/segments.ts';
import { modelFromFiles } from '../../shared/model/artifacts.ts';
import { computePortrait } from '../../shared/model/portrait.ts';
import type { RoundRecord } from '../../shared/protocol/messages.ts';
import { auditJson } from './audit-cli.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { api, FAST, launch, ledgerRounds, SECAGG_FIVE, startClients, startTestCoordinator, stopAll, syntheticPopulation, tempDataDir, waitForRound } from './harness.ts';

const N = 8;
type Segments = Extract<AnalyticsSummary, { statistic: 'segments' }>;

describe('segment reports', () => {
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];
  let users: Awaited<ReturnType<typeof syntheticPopulation>>['prepared']['users']['train'];

  beforeAll(async () => {
    await useNodeBackend();
    const pop = await syntheticPopulation();
    users = pop.prepared.users.train.slice(0, N);
    coordinator = await startTestCoordinator(tempDataDir(), { minSegmentCohort: 5 });
    clients = await startClients(coordinator, N, (i) => ({ analyticsEvents: () => users[i]!.events }));
  });

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('without DP counts exactly the portraits the devices compute, suppressing cells below the minimum', async () => {
    const [launched] = await launch(coordinator, { rounds: 1, clientsPerRound: N, minClients: N, ...FAST, privacy: { mode: 'none' }, task: 'analytics', query: { statistic: 'segments', by: ['interest', 'propensity'], minCount: 2 } });
    const r = await waitForRound(coordinator, (launched as RoundRecord).id, 30_000);
    expect(r.status, r.reason).toBe('committed');
    expect(r.config.query).toMatchObject({ version: 1, categories: coordinator.registry.current.config.vocabulary.categories });
    const summary = r.result!.summary as Segments;

    const { model, config } = await modelFromFiles((await coordinator.registry.store.files(1))!);
    const expected = new Map<string, number>();
    for (const u of users) {
      const portrait = computePortrait(model, config, u.events, { historyStartDay: Math.min(...u.events.map((e) => e.day)) });
      const cell = portraitCell(['interest', 'propensity'], config.vocabulary.categories, portrait)!;
      const key = `${config.vocabulary.categories[Math.floor(cell / 3)]}/${['low', 'mid', 'high'][cell % 3]}`;
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    model.dispose();
    expect(summary.devices.value).toBe(N);
    for (const c of summary.cells) {
      const want = expected.get(c.labels.join('/')) ?? 0;
      expect(c.suppressed, c.labels.join('/')).toBe(want < 2);
      expect(c.count.value).toBe(want < 2 ? null : want);
    }
    expect(summary.cells.filter((c) => !c.suppressed).reduce((a, c) => a + (c.count.value as number), 0)).toBe([...expected.values()].filter((n) => n >= 2).reduce((a, b) => a + b, 0));
  }, 60_000);

  it('under distributed DP + SecAgg+ commits with intervals, entered in the ledger as a segments query', async () => {
    const [launched] = await launch(coordinator, { ...SECAGG_FIVE, privacy: { mode: 'distributed', noiseMultiplier: 1, delta: 1e-6, t: 3 }, task: 'analytics', query: { statistic: 'segments', by: ['propensity', 'spending'] } });
    const r = await waitForRound(coordinator, (launched as RoundRecord).id, 40_000);
    expect(r.status, r.reason).toBe('committed');
    const summary = r.result!.summary as Segments;
    expect(summary.cells).toHaveLength(9);
    for (const c of summary.cells) expect(c.suppressed ? c.count.value === null : c.count.interval !== null).toBe(true);
    const [entry] = await ledgerRounds(coordinator, r.id);
    expect(entry).toMatchObject({ outcome: 'released', modelVersionOut: null, clip: 1, query: { statistic: 'segments', dimension: 9, bound: 1 } });
    expect(await auditJson('verify', '--data-dir', coordinator.dataDir)).toMatchObject({ code: 0, ok: true });
  }, 60_000);

  it('refuses a narrow cohort, a model version in the launch, an unknown dimension and a query over the budget, running nothing', async () => {
    const base = { rounds: 1, clientsPerRound: N, ...FAST, privacy: { mode: 'distributed', noiseMultiplier: 1, delta: 1e-6 }, task: 'analytics' };
    const before = (await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/rounds')).body.rounds.length;
    const cases: [unknown, number, string, RegExp][] = [
      [{ ...base, clientsPerRound: 4, query: { statistic: 'segments', by: ['interest'] } }, 400, 'INVALID_ARGUMENT', /needs a cohort of at least 5 devices, got 4/],
      [{ ...base, query: { statistic: 'segments', by: ['interest'], version: 1 } }, 400, 'INVALID_ARGUMENT', /"query.version"/],
      [{ ...base, query: { statistic: 'segments', by: ['age'] } }, 400, 'INVALID_ARGUMENT', /"query.by.0"/],
      [{ ...base, epsilonCap: 5, privacy: { mode: 'distributed', noiseMultiplier: 0.3, delta: 1e-6 }, query: { statistic: 'segments', by: ['spending'] } }, 409, 'BUDGET_EXCEEDED', /above the launch's cap of 5/],
    ];
    for (const [body, status, code, message] of cases) {
      const res = await api<{ code: string; message: string }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', body);
      expect({ status: res.status, code: res.body.code }, res.body.message).toEqual({ status, code });
      expect(res.body.message).toMatch(message);
    }
    expect((await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/rounds')).body.rounds.length).toBe(before);
  });
});

/**
 * Federated evaluation rounds (issue 18, part 3) against a real coordinator and real clients:
 * - without DP, a paired evaluation of versions 1 and 2 decodes to the central `scoreHead` of each
 *   version on the same devices' examples: example counts, accuracy, macro-F1 and recall@5
 *   exactly, every AUC within the binning bound that the released histograms give;
 * - under distributed DP + SecAgg+ it commits with intervals, is entered in the ledger as an
 *   `evaluate` query (no model version) and spends epsilon;
 * - a version that does not exist is NOT_FOUND; blocks in a launch are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { aucBinningBounds } from '../../shared/analytics/evaluation.ts';
import type { EvaluationMetric } from '../../shared/analytics/evaluation.ts';
import { blockLayout } from '../../shared/analytics/federated-evaluation.ts';
import type { EvaluateSummary } from '../../shared/analytics/federated-evaluation.ts';
import type { EvaluateQuery } from '../../shared/analytics/queries.ts';
import { modelFromFiles } from '../../shared/model/artifacts.ts';
import { predictExamples, scoreHead } from '../../shared/model/evaluate.ts';
import { headSpecs } from '../../shared/model/spec.ts';
import type { HeadName } from '../../shared/model/spec.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import type { RoundEntry } from '../../shared/ledger/entry.ts';
import type { RoundRecord } from '../../shared/protocol/messages.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { api, examplesOf, FAST, launch, SECAGG_FIVE, startClients, startTestCoordinator, stopAll, syntheticPopulation, tempDataDir, waitForRound } from './harness.ts';

const N = 8;

describe('federated evaluation rounds', () => {
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir());
    clients = await startClients(coordinator, N);
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: N, minClients: N, ...FAST });
    expect((await waitForRound(coordinator, (r as RoundRecord).id, 30_000)).status).toBe('committed');
  }, 60_000);

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('without DP decodes to the central metrics of each version on the same devices, up to the binning bound for AUCs', async () => {
    const [launched] = await launch(coordinator, { rounds: 1, clientsPerRound: N, minClients: N, ...FAST, task: 'analytics', query: { statistic: 'evaluate', versions: [1, 2] } });
    const r = await waitForRound(coordinator, (launched as RoundRecord).id, 30_000);
    expect(r.status, r.reason).toBe('committed');
    expect(r.participants).toBe(N);
    const summary = r.result?.summary as EvaluateSummary;
    expect(summary.statistic).toBe('evaluate');
    expect(summary.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(summary.difference).toMatchObject({ baseline: 1, candidate: 2 });

    const pop = await syntheticPopulation();
    const users = pop.prepared.users.train.slice(0, N);
    const query = r.config.query as EvaluateQuery;
    let offset = 0;
    let compared = 0;
    for (const [i, version] of [1, 2].entries()) {
      const files = await coordinator.registry.store.files(version);
      const { model, config } = await modelFromFiles(files!);
      const examples = users.flatMap((u) => examplesOf(u, pop.dataset.startDay)(config));
      const rows = predictExamples(model, config, examples);
      model.dispose();
      const layout = blockLayout(query, config);
      const bounds = aucBinningBounds(layout, r.result!.sum.slice(offset, offset + layout.dimension));
      offset += layout.dimension;
      const decoded = summary.versions[i]!.heads;
      for (const spec of headSpecs(config)) {
        const central = scoreHead(spec, rows.get(spec.name)!, examples);
        const head = spec.name as HeadName;
        for (const [metric, value] of Object.entries(central) as [EvaluationMetric, number][]) {
          const federated = decoded[head]?.[metric];
          if (!Number.isFinite(value)) {
            expect(federated ?? null, `${head}.${metric}`).toBeNull();
            continue;
          }
          const bound = metric === 'auc' ? bounds[head]?.auc : metric === 'microAuc' ? bounds[head]?.microAuc : 0;
          expect(Math.abs((federated as number) - value), `v${version} ${head}.${metric}: federated ${federated} central ${value}`).toBeLessThanOrEqual((bound ?? 0) + 1e-6);
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(10);
  }, 60_000);

  it('commits under distributed DP + SecAgg+ with intervals, entered in the ledger as an evaluate query', async () => {
    const [launched] = await launch(coordinator, { ...SECAGG_FIVE, task: 'analytics', query: { statistic: 'evaluate', versions: [2] }, privacy: { mode: 'distributed', noiseMultiplier: 1, delta: 1e-6, t: 3 } });
    const r = await waitForRound(coordinator, (launched as RoundRecord).id, 40_000);
    expect(r.status, r.reason).toBe('committed');
    expect(r.result!.noiseStd).toBeGreaterThan(0);
    expect(r.privacy?.clip).toBeCloseTo(r.result!.bound, 9);
    const v = (r.result!.summary as EvaluateSummary).versions[0]!;
    expect(v.heads.interests?.examples).toEqual(expect.any(Number));
    expect(v.intervals.interests?.examples).toEqual([expect.any(Number), expect.any(Number)]);
    const ledger = await api<{ entries: unknown[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger');
    const entry = ledger.body.entries.map((e) => LedgerEntrySchema.parse(e)).find((e): e is RoundEntry => e.kind === 'round' && e.round.roundId === r.id);
    expect(entry?.round).toMatchObject({ outcome: 'released', modelVersionOut: null, query: { statistic: 'evaluate', dimension: r.result!.dimension } });
    expect(entry?.round.epsilonRound).toBeGreaterThan(0);
  }, 60_000);

  it('refuses a version that does not exist and blocks given in a launch', async () => {
    const base = { rounds: 1, clientsPerRound: 3, ...FAST, task: 'analytics' };
    const missing = await api<{ code: string; message: string }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', { ...base, query: { statistic: 'evaluate', versions: [1, 99] } });
    expect({ status: missing.status, code: missing.body.code }).toEqual({ status: 404, code: 'NOT_FOUND' });
    expect(missing.body.message).toMatch(/model version 99 does not exist/);
    const blocks = await api<{ code: string; message: string }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', { ...base, query: { statistic: 'evaluate', versions: [1], blocks: [{ version: 1, parameters: 10, dimension: 10, bound: 1 }] } });
    expect({ status: blocks.status, code: blocks.body.code }).toEqual({ status: 400, code: 'INVALID_ARGUMENT' });
  });
});

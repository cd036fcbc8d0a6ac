/**
 * Bootstrapping a model vocabulary from federated analytics (issue 18), against a real
 * coordinator (port 0, SQLite, the signed ledger) and real clients holding one synthetic shopper
 * each: three distributed-DP + SecAgg+ analytics rounds (category counts, log-price moments, the
 * spend histogram), then POST /models/bootstrap builds a version from their released results. It
 * is published in the ledger naming those rounds, `audit verify` accounts for it, the devices
 * train on it in the next round, and a restart serves it. Requests naming the wrong rounds are
 * refused with their codes, changing nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import type { PublicationEntry } from '../../shared/ledger/entry.ts';
import type { Vocabulary } from '../../shared/features/vocabulary.ts';
import type { ModelRecord, RoundRecord } from '../../shared/protocol/messages.ts';
import { auditJson } from './audit-cli.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { api, FAST, launch, SECAGG_FIVE, startClients, startTestCoordinator, stopAll, syntheticPopulation, tempDataDir, waitForRound } from './harness.ts';

const N = 5;

describe('a model vocabulary bootstrapped from analytics rounds', () => {
  let dataDir: string;
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];
  let ids: { categories: number; prices: number; spend: number };

  beforeAll(async () => {
    await useNodeBackend();
    const pop = await syntheticPopulation();
    const users = pop.prepared.users.train.slice(0, N);
    dataDir = tempDataDir();
    coordinator = await startTestCoordinator(dataDir);
    clients = await startClients(coordinator, N, (i) => ({ analyticsEvents: () => (users[i] as (typeof users)[number]).events }));
    const run = async (query: { statistic: string }): Promise<number> => {
      const [r] = await launch(coordinator, { ...SECAGG_FIVE, task: 'analytics', query: query as never, privacy: { mode: 'distributed', noiseMultiplier: 1, delta: 1e-6, t: 3 } });
      const done = await waitForRound(coordinator, (r as RoundRecord).id, 40_000);
      expect(done.status, done.reason).toBe('committed');
      return done.id;
    };
    // No list in the launch: the coordinator counts over the serving vocabulary's categories.
    ids = { categories: await run({ statistic: 'category-counts' }), prices: await run({ statistic: 'log-price-moments' }), spend: await run({ statistic: 'spend-histogram' }) };
  }, 120_000);

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('refuses rounds that do not exist, are of another statistic, or a malformed request, changing nothing', async () => {
    const before = coordinator.registry.current.record.version;
    const cases: [unknown, number, string, RegExp][] = [
      [{ rounds: { ...ids, prices: 999 } }, 404, 'NOT_FOUND', /round 999 does not exist/],
      [{ rounds: { ...ids, prices: ids.spend } }, 400, 'INVALID_ARGUMENT', /is not a log-price-moments analytics round/],
      [{ rounds: ids, topK: 0 }, 400, 'INVALID_ARGUMENT', /"topK"/],
      [{ rounds: { categories: ids.categories } }, 400, 'INVALID_ARGUMENT', /"rounds.prices"/],
    ];
    for (const [body, status, code, message] of cases) {
      const res = await api<{ code: string; message: string }>(coordinator, coordinator.operator, 'POST', '/api/v1/models/bootstrap', body);
      expect({ status: res.status, code: res.body.code }).toEqual({ status, code });
      expect(res.body.message).toMatch(message);
    }
    expect((await api(coordinator, coordinator.auditor, 'POST', '/api/v1/models/bootstrap', { rounds: ids })).status).toBe(403);
    expect(coordinator.registry.current.record.version).toBe(before);
    // Not while a round is pending or running: it would train, or was projected on, the version it replaced.
    const [pending] = await launch(coordinator, { rounds: 1, clientsPerRound: N, minClients: N, ...FAST });
    const busy = await api<{ code: string; message: string }>(coordinator, coordinator.operator, 'POST', '/api/v1/models/bootstrap', { rounds: ids });
    expect({ status: busy.status, code: busy.body.code }).toEqual({ status: 409, code: 'WRONG_STAGE' });
    expect(busy.body.message).toMatch(new RegExp(`round ${pending!.id} is (pending|running): bootstrap a new version when no round is pending or running`));
    expect((await waitForRound(coordinator, pending!.id, 30_000)).status).toBe('committed');
  });

  it('builds, publishes and serves a version from the released results; devices train on it; audit verify and a restart account for it', async () => {
    const served = coordinator.registry.current;
    const res = await api<{ model: ModelRecord; vocabulary: Vocabulary; replaced: number }>(coordinator, coordinator.operator, 'POST', '/api/v1/models/bootstrap', { rounds: ids, topK: 10, seed: 3 });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const { model, vocabulary } = res.body;
    expect(model).toMatchObject({ version: served.record.version + 1, roundId: null, parentVersion: null, derivedFrom: [ids.categories, ids.prices, ids.spend].sort((a, b) => a - b) });
    expect(res.body.replaced).toBe(served.record.version);
    expect(vocabulary.categories).toHaveLength(10);
    // The noisy top-10 is drawn from the counted categories, and the price scale is a real one.
    for (const c of vocabulary.categories) expect(served.config.vocabulary.categories).toContain(c);
    expect(vocabulary.logPriceStd).toBeGreaterThan(0);
    expect(vocabulary.spendingBounds[0]).toBeLessThanOrEqual(vocabulary.spendingBounds[1]);
    const current = (await (await fetch(`${coordinator.url}/models/current`)).json()) as { version: number };
    expect(current.version).toBe(model.version);

    const ledger = await api<{ entries: unknown[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger');
    const publication = ledger.body.entries.map((e) => LedgerEntrySchema.parse(e)).find((e): e is PublicationEntry => e.kind === 'publication' && e.publication.modelVersion === model.version);
    expect(publication?.publication).toMatchObject({ roundId: null, entered: 'at-bootstrap', derivedFrom: model.derivedFrom, sha256: model.sha256 });

    // The devices fetch the new version and train on it with its vocabulary.
    const [trained] = await launch(coordinator, { rounds: 1, clientsPerRound: N, minClients: N, ...FAST });
    const t = await waitForRound(coordinator, (trained as RoundRecord).id, 40_000);
    expect(t.status, t.reason).toBe('committed');
    expect(t.baseModelVersion).toBe(model.version);
    expect(t.metrics?.heads?.interests?.microAuc).toEqual(expect.any(Number));

    expect(await auditJson('verify', '--data-dir', dataDir)).toMatchObject({ code: 0, ok: true });
    stopAll(clients);
    clients = [];
    await coordinator.close();
    coordinator = await startTestCoordinator(dataDir);
    expect(coordinator.registry.current.record.version).toBe(t.modelVersion);
    expect(coordinator.registry.current.config.vocabulary.categories).toEqual(vocabulary.categories);
  }, 90_000);
});

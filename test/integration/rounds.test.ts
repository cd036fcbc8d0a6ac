/**
 * Complete federated rounds end to end: a real coordinator on port 0 with a SQLite file in a temp
 * dir, six real Socket.IO clients each training on one synthetic user. The global model version
 * advances, every version is served over HTTP with immutable caching, metrics on held-out users
 * are recorded and survive a restart, and no tensors leak.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { ModelRecord, RoundRecord } from '../../shared/protocol/messages.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { api, FAST, launch, startClients, startTestCoordinator, stopAll, tempDataDir, waitFor, waitForRound } from './harness.ts';

describe('federated rounds end to end', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator;
  let clients: TestClient[];

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(dataDir);
    clients = await startClients(coordinator, 6);
  });

  afterAll(async () => {
    stopAll(clients ?? []);
    await coordinator?.close();
  });

  it('runs three rounds, advancing and serving the model, with metrics that persist across a restart', async () => {
    const idle = () => clients.every((c) => !c.client.busy);
    const launched = await launch(coordinator, { rounds: 1, clientsPerRound: 5, minClients: 3, ...FAST });
    expect(launched.map((r) => r.status)).toEqual(['pending']);
    const first = await waitForRound(coordinator, launched[0]!.id);
    expect(first.status).toBe('committed');
    await waitFor(idle, 5_000, 'clients idle');
    // Each client holds at most one cached model (those never selected hold none); beyond that,
    // nothing may accumulate round over round.
    const perModel = clients.find((c) => c.client.models.current)?.client.models.current?.model.weights.length ?? 0;
    const baseline = () => tf.memory().numTensors - perModel * clients.filter((c) => c.client.models.current).length;
    const tensorsAfterFirst = baseline();
    const more = await launch(coordinator, { rounds: 2, clientsPerRound: 5, minClients: 3, ...FAST });
    const records: RoundRecord[] = [first];
    for (const r of more) records.push(await waitForRound(coordinator, r.id));
    await waitFor(idle, 5_000, 'clients idle');
    expect(perModel).toBeGreaterThan(0);
    expect(baseline()).toBe(tensorsAfterFirst);

    for (const [i, r] of records.entries()) {
      expect(r.status).toBe('committed');
      expect(r.participants).toBe(5);
      expect(r.selected).toBe(5);
      expect(r.checkedIn).toBe(6);
      expect(r.selection).toEqual({ method: 'fixed', rate: 5 / 6 });
      expect(r.baseModelVersion).toBe(i + 1);
      expect(r.modelVersion).toBe(i + 2);
      expect(r.durationMs).toBeGreaterThan(0);
      expect(r.config.clientsPerRound).toBe(5);
      // The coordinator holds a dataset's events (its held-out users): every round says it is a simulation.
      expect(r.simulation).toEqual({ dataset: 'synthetic:60' });
      expect(r.metrics?.aggregate?.updateNorm).toBeGreaterThan(0);
      const interests = r.metrics?.heads?.interests;
      expect(interests?.examples).toBeGreaterThan(0);
      expect(typeof interests?.microAuc).toBe('number');
    }
    // Each selected client trained and sent exactly once per round it was selected for.
    await waitFor(() => clients.reduce((n, c) => n + c.client.stats.updatesAccepted, 0) >= 15, 5_000, 'acknowledgements');
    expect(clients.reduce((n, c) => n + c.client.stats.updatesAccepted, 0)).toBe(15);
    expect(clients.every((c) => c.client.stats.refusals === 0)).toBe(true);

    const models = await api<{ current: number; models: ModelRecord[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/models');
    expect(models.body.current).toBe(4);
    expect(models.body.models.map((m) => m.version)).toEqual([4, 3, 2, 1]);
    const json = await fetch(`${coordinator.url}/models/4/model.json`);
    expect(json.headers.get('cache-control')).toContain('immutable');
    const modelJson = (await json.json()) as { weightsManifest: { paths: string[] }[]; userDefinedMetadata: { portrait: unknown } };
    expect(modelJson.weightsManifest[0]?.paths).toEqual(['weights.bin']);
    expect(modelJson.userDefinedMetadata.portrait).toBeTruthy();
    const weights = await fetch(`${coordinator.url}/models/4/weights.bin`);
    expect((await weights.arrayBuffer()).byteLength).toBe(coordinator.registry.parameters * 4);
    const etag = weights.headers.get('etag') as string;
    const again = await fetch(`${coordinator.url}/models/4/weights.bin`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    // Clients fetched each version once, only when stale.
    expect(clients.every((c) => c.client.models.fetches <= 3)).toBe(true);

    stopAll(clients);
    await coordinator.close();
    coordinator = await startTestCoordinator(dataDir);
    const after = await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/rounds');
    expect(after.body.rounds.map((r) => r.id).reverse()).toEqual(records.map((r) => r.id));
    expect(after.body.rounds.reverse().map((r) => r.metrics)).toEqual(records.map((r) => r.metrics));
    expect(coordinator.registry.current.record.version).toBe(4);
    clients = [];
  });
});

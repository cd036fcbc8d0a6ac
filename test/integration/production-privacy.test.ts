/**
 * Issue 18's privacy bar: a production-mode coordinator (initial vocabulary from a public
 * catalog, no held-out users, no plaintext rounds, promoted serving) runs a whole cycle with a
 * simulated fleet: bootstrap analytics rounds → a bootstrap version → a training round → a
 * paired federated evaluation → a promotion. Every byte the coordinator receives is recorded,
 * on its sockets and over HTTP, and none of it is an event, a feature vector, a label or an
 * individual contribution:
 * - devices send only `checkin` and `secagg` messages (never a plaintext `update`); every string
 *   they send is none of their events' ids or categories; their HTTP requests are body-less GETs;
 * - every masked vector neither contains nor correlates with the privatised contribution the
 *   device computed (already clipped, rounded and noised) in any round;
 * - only the operator's token sends request bodies, and those are launch, bootstrap and promotion
 *   parameters.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket as ServerSocket } from 'socket.io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { catalogVocabulary, parseCatalog } from '../../shared/features/shop-catalog.ts';
import type { LaunchRequest, RoundRecord } from '../../shared/protocol/messages.ts';
import { dataConfig, modelConfigForVocabulary } from '../../scripts/lib/central-config.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { api, launch, SECAGG_FIVE, startClients, startTestCoordinator, stopAll, syntheticPopulation, tempDataDir, waitForRound } from './harness.ts';
import { blobsOf, contains, correlation } from './wire-inspect.ts';

const N = 5;
const PRIVATE = { mode: 'distributed', noiseMultiplier: 1, delta: 1e-6, t: 3 } as const;

function stringsOf(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsOf(v, out);
  else if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array) && !(value instanceof ArrayBuffer)) for (const v of Object.values(value)) stringsOf(v, out);
  return out;
}

describe('a production cycle: what the coordinator receives', () => {
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];
  const socketPayloads: { event: string; args: unknown[] }[] = [];
  const httpRequests: { method: string; url: string; authorization: string | undefined; body: string }[] = [];
  /** The privatised (clipped, rounded, noised) vector each device masked, by round and device. */
  const residues = new Map<number, Map<number, Uint32Array>>();
  const rounds: RoundRecord[] = [];
  let deviceStrings: Set<string>;

  beforeAll(async () => {
    await useNodeBackend();
    const pop = await syntheticPopulation();
    const users = pop.prepared.users.train.slice(0, N);
    deviceStrings = new Set(users.flatMap((u) => u.events.flatMap((e) => [e.userId, e.itemId, e.category, ...(e.brand ? [e.brand] : [])])));
    // The shop's public catalog: its category list, nothing about shoppers.
    const categories = [...new Set(pop.dataset.users.flatMap((u) => u.events.map((e) => e.category)))].sort();
    const vocabulary = catalogVocabulary(parseCatalog(`category\n${categories.join('\n')}\n`, 'csv'), { topK: 20, hashBuckets: pop.config.vocabulary.hashBuckets });
    coordinator = await startTestCoordinator(tempDataDir(), {
      initialModel: { config: modelConfigForVocabulary(vocabulary, dataConfig(), 'mlp', false), seed: 1 },
      evaluation: undefined,
      simulationDataset: undefined,
      allowNoDp: false,
      servingPolicy: 'promoted',
      catalogCategories: categories,
    });
    coordinator.io.on('connection', (socket: ServerSocket) => socket.onAny((event: string, ...args: unknown[]) => socketPayloads.push({ event, args })));
    coordinator.io.httpServer.prependListener('request', (req: IncomingMessage) => {
      // Read at arrival: the API's router rewrites req.url as it routes.
      const { method = '', url = '' } = req;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => httpRequests.push({ method, url, authorization: req.headers.authorization, body: Buffer.concat(chunks).toString('utf8') }));
    });
    clients = await startClients(coordinator, N, (i) => ({
      analyticsEvents: () => (users[i] as (typeof users)[number]).events,
      inspectResidues: (roundId, r) => {
        if (!residues.has(roundId)) residues.set(roundId, new Map());
        residues.get(roundId)!.set(i, r);
      },
    }));

    const run = async (request: Partial<LaunchRequest>): Promise<RoundRecord> => {
      const [r] = await launch(coordinator, { ...SECAGG_FIVE, privacy: PRIVATE, ...request } as LaunchRequest);
      const done = await waitForRound(coordinator, (r as RoundRecord).id, 60_000);
      expect(done.status, done.reason).toBe('committed');
      rounds.push(done);
      return done;
    };
    const c = await run({ task: 'analytics', query: { statistic: 'category-counts' } });
    const p = await run({ task: 'analytics', query: { statistic: 'log-price-moments' } });
    const s = await run({ task: 'analytics', query: { statistic: 'spend-histogram' } });
    const boot = await api<{ model: { version: number } }>(coordinator, coordinator.operator, 'POST', '/api/v1/models/bootstrap', { rounds: { categories: c.id, prices: p.id, spend: s.id }, topK: 10 });
    expect(boot.status).toBe(201);
    const trained = await run({ train: SECAGG_FIVE.train });
    await run({ task: 'analytics', query: { statistic: 'evaluate', versions: [boot.body.model.version, trained.modelVersion as number] } });
    const promoted = await api(coordinator, coordinator.operator, 'POST', '/api/v1/models/promote', { version: trained.modelVersion, force: true, reason: 'production cycle test' });
    expect(promoted.status).toBe(200);
  }, 240_000);

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('ran the whole cycle: three queries, a bootstrap version, a training round, a federated evaluation, a promotion', () => {
    expect(rounds.map((r) => r.config.task === 'analytics' ? r.config.query?.statistic : 'train')).toEqual(['category-counts', 'log-price-moments', 'spend-histogram', 'train', 'evaluate']);
    expect(rounds.every((r) => r.privacy?.mode === 'distributed' && r.secagg?.survivors === N)).toBe(true);
    // A production coordinator holds no dataset: no round is marked as a simulation, none has held-out metrics.
    expect(rounds.every((r) => r.simulation === undefined && !r.metrics?.heads)).toBe(true);
    expect(residues.size).toBe(rounds.length);
  });

  it('received from devices only check-ins and SecAgg+ messages, with none of their events\' strings', () => {
    const events = new Set(socketPayloads.map((p) => p.event));
    expect([...events].sort()).toEqual(['checkin', 'secagg']);
    const leaked = socketPayloads.flatMap((p) => stringsOf(p.args)).filter((s) => deviceStrings.has(s));
    expect(leaked).toEqual([]);
  });

  it('never received a device\'s privatised contribution unmasked, nor anything correlated with it', () => {
    const blobs = socketPayloads.filter((p) => p.event === 'secagg').flatMap((p) => blobsOf(p.args));
    let masked = 0;
    for (const [, byDevice] of residues) {
      for (const x of byDevice.values()) {
        const bytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
        for (const blob of blobs) {
          expect(contains(blob, bytes.subarray(0, 16))).toBe(false);
          if (blob.length === bytes.length) {
            masked++;
            expect(Math.abs(correlation(x, new Uint32Array(Uint8Array.from(blob).buffer)))).toBeLessThan(5 / Math.sqrt(x.length));
          }
        }
      }
    }
    // Each device's masked input of each round was among the blobs checked.
    expect(masked).toBeGreaterThanOrEqual(rounds.length * N);
  });

  it('over HTTP, devices only fetched models; request bodies came only from the operator', () => {
    const withBody = httpRequests.filter((r) => r.body.length > 0);
    expect(withBody.length).toBeGreaterThan(0);
    for (const r of withBody) {
      expect(r.authorization).toBe(`Bearer ${coordinator.operator}`);
      expect(r.url).toMatch(/^\/api\/v1\/(rounds|models\/bootstrap|models\/promote)$/);
      for (const s of deviceStrings) if (s.length >= 6) expect(r.body.includes(`"${s}"`), s).toBe(false);
    }
    const others = httpRequests.filter((r) => r.authorization !== `Bearer ${coordinator.operator}` && r.authorization !== `Bearer ${coordinator.auditor}`);
    for (const r of others) expect(r.method === 'GET' || (r.url.startsWith('/socket.io/') && r.body === ''), `${r.method} ${r.url}`).toBe(true);
  });
});

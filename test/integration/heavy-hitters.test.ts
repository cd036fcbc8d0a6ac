/**
 * Starting a shop's deployment without its catalog, against a real coordinator (port 0, SQLite,
 * the signed ledger; production-like: a hash-space first model, no catalog, no held-out
 * evaluation, promoted serving) and real clients holding one synthetic shopper each:
 * - the hash-space model (no named category, no interests head) trains in a round;
 * - `portrait vocabulary discover --dp none` (the real CLI) finds exactly the category ids that at
 *   least --min-count devices hold among their most active ones;
 * - one level under distributed DP + SecAgg+ releases through the ledger with its noise, keeps
 *   what passes k sigma, and reports the epsilon it spent;
 * - `portrait model bootstrap --categories` counts over the discovered ids and builds a version
 *   whose vocabulary names them, with the interests head back, which the devices then train;
 * - a plaintext contribution of the wrong length or over the bound is refused with its code, a
 *   malformed prefix list is INVALID_ARGUMENT naming "query.prefixes", and a category-counts or
 *   segments-by-interest launch with no category to count over is refused.
 * `portrait server --production --category-hash-space N` itself is checked through the binary.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { ClientSocket } from '../../client/core/client.ts';
import { hashSpaceVocabulary, headsForVocabulary } from '../../shared/analytics/bootstrap.ts';
import { levelThreshold } from '../../shared/analytics/heavy-hitters.ts';
import { AnalyticsQuerySchema, DEFAULT_CATEGORY_ALPHABET, planQuery } from '../../shared/analytics/queries.ts';
import type { BehaviourEvent } from '../../shared/features/events.ts';
import { makeModelConfig } from '../../shared/model/spec.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';
import { randomId } from '../../shared/protocol/enrollment.ts';
import type { Ack, ModelRecord, RoundConfigMessage, RoundRecord } from '../../shared/protocol/messages.ts';
import { encodeWeights } from '../../shared/protocol/weights.ts';
import { dataConfig, modelConfigForVocabulary } from '../../scripts/lib/central-config.ts';
import type { DiscoveryDocument } from '../../scripts/cli/vocabulary.ts';
import { auditJson } from './audit-cli.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { api, FAST, launch, ledgerRounds, rawSocket, startClients, startTestCoordinator, stopAll, syntheticPopulation, tempDataDir, waitFor, waitForRound } from './harness.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/portrait.js');
const N = 12;
const MIN_COUNT = 3;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function portrait(args: string[], timeout = 240_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, maxBuffer: 1 << 26, timeout }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function json<T>(r: Run): T {
  expect(r.code, r.stderr.slice(-3000)).toBe(0);
  return JSON.parse(r.stdout) as T;
}

function send(socket: ClientSocket, event: 'checkin' | 'update', payload: unknown): Promise<Ack> {
  return new Promise((resolve) => (socket.emit as (e: string, p: unknown, cb: (a: Ack) => void) => void)(event, payload, resolve));
}

/** Devices holding each id among their 8 most active categories (ties by id), as the query ranks them. */
function heldBy(devices: readonly (readonly BehaviourEvent[])[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const events of devices) {
    const counts = new Map<string, number>();
    for (const e of events) counts.set(e.category, (counts.get(e.category) ?? 0) + 1);
    for (const [id] of [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 8)) out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

describe('a deployment started without a catalog: heavy-hitter discovery, then bootstrap', () => {
  let dataDir: string;
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];
  let devices: BehaviourEvent[][] = [];
  let work: string;
  const on = () => ['--server', coordinator.url, '--token', coordinator.operator, '--json'];
  const EVERY_DEVICE = () => ['--clients-per-round', String(N), '--min-clients', String(N), '--checkin-ms', '3000', '--training-ms', '10000'];
  const DP_SHAPE = () => ['--clients-per-round', '10', '--min-clients', '8', '--checkin-ms', '8000', '--training-ms', '30000'];

  beforeAll(async () => {
    await useNodeBackend();
    const pop = await syntheticPopulation();
    devices = pop.prepared.users.train.slice(0, N).map((u) => u.events);
    dataDir = tempDataDir();
    work = fs.mkdtempSync(path.join(path.dirname(dataDir), 'portrait-hh-'));
    // As `portrait server --production --category-hash-space 16` configures it, except that no-DP rounds are allowed here (the exact baseline).
    coordinator = await startTestCoordinator(dataDir, { initialModel: { config: hashSpaceConfig(16), seed: 1 }, evaluation: undefined, simulationDataset: undefined, servingPolicy: 'promoted' });
    clients = await startClients(coordinator, N, (i) => ({ analyticsEvents: () => devices[i] as BehaviourEvent[] }));
  }, 120_000);

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('the hash-space model has no named category and no interests head, and the devices train it', async () => {
    const config = coordinator.registry.current.config;
    expect(config.vocabulary.categories).toEqual([]);
    expect(config.vocabulary.hashBuckets).toBe(16);
    expect(config.heads).toEqual(['purchase', 'spending']);
    // A device without a training example declines a training round (not an analytics one).
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: N, minClients: N - 2, ...FAST });
    const done = await waitForRound(coordinator, (r as RoundRecord).id, 40_000);
    expect(done.status, done.reason).toBe('committed');
    expect(done.modelVersion).toBe(2);
    expect(done.metrics?.aggregate?.examples).toBeGreaterThan(0);
  }, 60_000);

  it('discovers exactly the ids held by at least --min-count devices without DP, through the CLI', async () => {
    const out = path.join(work, 'exact.json');
    const document = json<DiscoveryDocument>(await portrait(['vocabulary', 'discover', ...on(), ...EVERY_DEVICE(), '--dp', 'none', '--min-count', String(MIN_COUNT), '--levels', '8', '--out', out]));
    const truth = heldBy(devices);
    const expected = [...truth.entries()].filter(([, n]) => n >= MIN_COUNT);
    expect(expected.length).toBeGreaterThan(3);
    expect(expected.length).toBeLessThan(truth.size);
    expect(document.categories.map((c) => c.category).sort()).toEqual(expected.map(([id]) => id).sort());
    for (const c of document.categories) expect(c.count.value).toBe(truth.get(c.category));
    expect(document).toMatchObject({ kind: 'portrait-discovered-categories', stopped: 'exhausted', unfinished: [], epsilon: { sum: null, delta: null } });
    // Synthetic ids are c0..c399: 'c' first, then up to three digits, and the end cells one level later.
    expect(document.levels[0]).toMatchObject({ level: 1, prefixes: 1, dimension: DEFAULT_CATEGORY_ALPHABET.length + 1, noiseStd: 0, threshold: MIN_COUNT, kept: 1 });
    expect(document.rounds).toHaveLength(document.levels.length);
    expect(JSON.parse(fs.readFileSync(out, 'utf8'))).toEqual(document);
    for (const id of document.rounds) {
      const r = (await api<RoundRecord>(coordinator, coordinator.auditor, 'GET', `/api/v1/rounds/${id}`)).body;
      expect(r).toMatchObject({ status: 'committed', participants: N, config: { task: 'analytics', query: { statistic: 'category-prefixes' } } });
    }
  }, 240_000);

  it('releases a level under distributed DP + SecAgg+ through the ledger, keeping what passes k sigma', async () => {
    const document = json<DiscoveryDocument>(await portrait(['vocabulary', 'discover', ...on(), ...DP_SHAPE(), '--levels', '1', '--threshold-sigmas', '2']));
    const [id] = document.rounds;
    const r = (await api<RoundRecord>(coordinator, coordinator.auditor, 'GET', `/api/v1/rounds/${id}`)).body;
    expect(r.status, r.reason).toBe('committed');
    expect(r.privacy).toMatchObject({ mode: 'distributed', released: true, secagg: 'on', clip: Math.sqrt(8) });
    expect(r.secagg?.survivors).toBeGreaterThanOrEqual(8);
    const result = r.result!;
    expect(result.noiseStd).toBeGreaterThan(0);
    const level = document.levels[0]!;
    expect(level).toMatchObject({ level: 1, roundId: id, noiseStd: result.noiseStd, threshold: levelThreshold({ thresholdSigmas: 2, minCount: 1 }, result.noiseStd) });
    // What it kept is what passed in the released cells, and every survivor holds a 'c' id.
    if (result.summary.statistic !== 'category-prefixes') throw new Error('wrong summary');
    const passed = result.summary.cells.filter((c) => c.symbol !== null && (c.count.value as number) >= level.threshold).map((c) => c.extension);
    expect(level.kept).toBe(passed.length);
    expect(document.stopped).toBe(passed.length === 0 ? 'exhausted' : 'levels');
    expect(document.unfinished.sort()).toEqual(passed.sort());
    const c = result.summary.cells.find((x) => x.extension === 'c')!;
    expect(Math.abs((c.count.value as number) - result.survivors)).toBeLessThan(5 * result.noiseStd);
    expect(document.epsilon.sum).toBeCloseTo(r.privacy!.epsilonRound!, 9);
    expect(document.epsilon).toMatchObject({ deployment: r.privacy!.epsilonCumulative, delta: 1e-6 });
    const [entry] = await ledgerRounds(coordinator, id!);
    expect(entry).toMatchObject({ outcome: 'released', modelVersionOut: null, query: { statistic: 'category-prefixes', dimension: DEFAULT_CATEGORY_ALPHABET.length + 1, bound: Math.sqrt(8) } });
    expect(await auditJson('verify', '--data-dir', dataDir)).toMatchObject({ code: 0, ok: true });
  }, 240_000);

  it('bootstraps a vocabulary over the discovered ids, with the interests head, and the devices train it', async () => {
    const discovered = (JSON.parse(fs.readFileSync(path.join(work, 'exact.json'), 'utf8')) as DiscoveryDocument).categories.map((c) => c.category);
    const boot = json<{ rounds: { categories: number }; model: ModelRecord; vocabulary: { categories: string[] } }>(await portrait(['model', 'bootstrap', ...on(), ...DP_SHAPE(), '--categories', path.join(work, 'exact.json'), '--top-k', '3']));
    const counted = (await api<RoundRecord>(coordinator, coordinator.auditor, 'GET', `/api/v1/rounds/${boot.rounds.categories}`)).body;
    expect(counted.config.query).toMatchObject({ statistic: 'category-counts', categories: discovered });
    expect(boot.vocabulary.categories).toHaveLength(3);
    for (const c of boot.vocabulary.categories) expect(discovered).toContain(c);
    const config = coordinator.registry.current.config;
    expect(config.heads).toEqual(['interests', 'purchase', 'spending']);
    expect(config.vocabulary).toMatchObject({ categories: boot.vocabulary.categories, hashBuckets: 16 });
    const [trained] = await launch(coordinator, { rounds: 1, clientsPerRound: N, minClients: N - 2, ...FAST });
    const t = await waitForRound(coordinator, (trained as RoundRecord).id, 40_000);
    expect(t.status, t.reason).toBe('committed');
    expect(t.baseModelVersion).toBe(boot.model.version);
    // The ledger holds the levels, the bootstrap's rounds and its publication naming them.
    expect(await auditJson('verify', '--data-dir', dataDir)).toMatchObject({ code: 0, ok: true });
  }, 240_000);

  it('refuses a plaintext contribution of the wrong length or over its bound, a malformed prefix list, and queries with nothing to count over', async () => {
    const query = { statistic: 'category-prefixes' as const, prefixes: ['c'] };
    const dimension = planQuery(AnalyticsQuerySchema.parse(query)).dimension;
    const acks: string[] = [];
    const sockets: ClientSocket[] = [];
    for (const bad of [(m: RoundConfigMessage) => new Float32Array(planQuery(AnalyticsQuerySchema.parse(m.query)).dimension + 1), () => new Float32Array(dimension).fill(1)]) {
      const socket = await rawSocket(coordinator, coordinator.token());
      socket.on('round:open', (m) => void send(socket, 'checkin', { roundId: m.roundId, nonce: randomId() }));
      socket.on('round:config', (m) => void send(socket, 'update', { roundId: m.roundId, nonce: randomId(), examples: 1, delta: encodeWeights(bad(m)) }).then((a) => acks.push(a.ok ? 'ok' : a.error.code)));
      sockets.push(socket);
    }
    try {
      await waitFor(() => coordinator.sockets.connectedClients() >= N + 2, 5_000, 'attackers connected');
      const [launched] = await launch(coordinator, { rounds: 1, clientsPerRound: N + 2, minClients: N, ...FAST, deadlines: { checkinMs: 3_000, trainingMs: 6_000 }, task: 'analytics', query });
      const r = await waitForRound(coordinator, (launched as RoundRecord).id, 30_000);
      expect(acks.sort()).toEqual(['CONTRIBUTION_OUT_OF_BOUNDS', 'WEIGHTS_LENGTH']);
      expect(r.status, r.reason).toBe('committed');
      expect(r.participants).toBe(N);
      // The honest sum: every device holds a 'c' id, so the cells under 'c' count each device once per next digit.
      expect(r.result!.sum.every((v) => v >= 0 && v <= N)).toBe(true);
    } finally {
      for (const s of sockets) s.disconnect();
    }

    const base = { rounds: 1, clientsPerRound: 3, ...FAST, task: 'analytics' };
    const cases: [unknown, RegExp][] = [
      [{ ...base, query: { statistic: 'category-prefixes', prefixes: ['c1', 'c1'] } }, /^"query.prefixes": expected distinct prefixes/],
      [{ ...base, query: { statistic: 'category-prefixes', prefixes: ['c', 'c1'] } }, /^"query.prefixes": expected prefixes of one length/],
      [{ ...base, query: { statistic: 'category-prefixes', prefixes: ['C'] } }, /^"query.prefixes": expected prefixes of the alphabet's symbols/],
      [{ ...base, query: { statistic: 'category-prefixes', prefixes: Array.from({ length: 600 }, (_, i) => String(i).padStart(3, '0')) } }, /^"query.prefixes": expected at most 512 prefixes with an alphabet of 38 symbols/],
      [{ ...base, query: { statistic: 'category-prefixes', prefixes: 'c' } }, /^"query.prefixes": /],
    ];
    for (const [body, message] of cases) {
      const res = await api<{ code: string; message: string }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', body);
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 400, code: 'INVALID_ARGUMENT' });
      expect(res.body.message).toMatch(message);
    }

    // The bootstrap above named categories here: a fresh hash-space coordinator has none to count over.
    const fresh = await startTestCoordinator(tempDataDir(), { initialModel: { config: hashSpaceConfig(8), seed: 1 }, evaluation: undefined, simulationDataset: undefined, servingPolicy: 'promoted' });
    try {
      const refusals: [unknown, RegExp][] = [
        [{ rounds: 1, clientsPerRound: 3, ...FAST, task: 'analytics', query: { statistic: 'category-counts' } }, /^"query.categories": this coordinator has no catalog and its vocabulary names no category/],
        [{ rounds: 1, clientsPerRound: 60, ...FAST, task: 'analytics', query: { statistic: 'segments', by: ['interest'] } }, /^"query.by": the serving version 1 has no interests head/],
      ];
      for (const [body, message] of refusals) {
        const res = await api<{ code: string; message: string }>(fresh, fresh.operator, 'POST', '/api/v1/rounds', body);
        expect({ status: res.status, code: res.body.code }).toEqual({ status: 400, code: 'INVALID_ARGUMENT' });
        expect(res.body.message).toMatch(message);
      }
    } finally {
      await fresh.close();
    }
  }, 90_000);
});

/** The first model of `portrait server --category-hash-space N`. */
function hashSpaceConfig(buckets: number): ModelConfig {
  const vocabulary = hashSpaceVocabulary(buckets);
  const { sensitiveHeads: _derived, ...base } = modelConfigForVocabulary(vocabulary, dataConfig(), 'mlp', false);
  return makeModelConfig({ ...base, heads: headsForVocabulary(base.heads, vocabulary, vocabulary), vocabulary });
}

describe('portrait server --production --category-hash-space', () => {
  const work = fs.mkdtempSync(path.join(path.dirname(tempDataDir()), 'portrait-hash-space-'));
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it('starts with no catalog: a model of N hash buckets and no interests head; refuses a bad N, a second vocabulary source, and production with neither', async () => {
    const child = spawn(process.execPath, [BIN, 'server', '--port', '0', '--json', '--data-dir', path.join(work, 'data'), '--production', '--category-hash-space', '32'], { cwd: ROOT });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          try {
            const doc = JSON.parse(out) as { url: string; production: boolean };
            expect(doc.production).toBe(true);
            resolve(doc.url);
          } catch {
            // Not the whole document yet.
          }
        });
        child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${out} ${err}`)));
      });
      expect(err).toContain('no named category, 32 category hash buckets');
      expect(err).toContain('production mode: no user events on this server (vocabulary from a category hash space');
      const current = (await (await fetch(`${url}/models/current`)).json()) as { modelUrl: string };
      const modelJson = (await (await fetch(new URL(current.modelUrl, url))).json()) as { userDefinedMetadata: { portrait: { heads: string[]; vocabulary: { categories: string[]; hashBuckets: number } } } };
      expect(modelJson.userDefinedMetadata.portrait).toMatchObject({ heads: ['purchase', 'spending'], vocabulary: { categories: [], hashBuckets: 32 } });
    } finally {
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    }
    const catalog = path.join(work, 'catalog.csv');
    fs.writeFileSync(catalog, 'category\ntea\n');
    const refused = path.join(work, 'refused');
    const base = ['server', '--port', '0', '--json', '--data-dir', refused, '--production'];
    const [tooMany, both, neither, dataset] = await Promise.all([
      portrait([...base, '--category-hash-space', '65']),
      portrait([...base, '--category-hash-space', '8', '--catalog', catalog]),
      portrait(base),
      portrait([...base, '--category-hash-space', '8', '--dataset', 'synthetic:50']),
    ]);
    const error = (r: Run) => (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
    expect(error(tooMany)).toEqual({ code: 'INVALID_ARGUMENT', message: '"--category-hash-space" expected an integer in [1, 64], got 65' });
    expect(error(both)).toEqual({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('"--catalog" and "--category-hash-space" both give the initial vocabulary') });
    expect(error(neither)).toEqual({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^"--catalog" is required with --production: .*--category-hash-space N/) });
    expect(error(dataset)).toEqual({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^"--dataset" is refused with --production/) });
    expect(fs.existsSync(refused)).toBe(false);
  }, 120_000);
});

/**
 * The privacy ledger in real rounds: a coordinator on port 0 (SQLite in a temp dir) with a
 * deployment cap and real DP clients. A released round and an aborted one are entered before /
 * after the fact, signed and chained; the recorded epsilon equals the round record's accountant
 * value; the auditor's REST endpoints answer (read-only) and the launch past the cap is refused
 * with the projected epsilon before anything runs; the compliance page is served and, in a real
 * headless Chromium, shows the verify status, the round table and the chart against the cap
 * (screenshot in artifacts/ledger-compliance.png). A launch's own `epsilonCap` is held the same
 * way, and a coordinator without the ledger refuses it rather than ignore it.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { LedgerReport } from '../../shared/ledger/report.ts';
import type { LedgerBundle } from '../../shared/ledger/bundle.ts';
import { verifyBundle } from '../../shared/ledger/bundle.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import type { PublicationEntry, RoundEntry } from '../../shared/ledger/entry.ts';
import type { ErrorBody } from '../../shared/protocol/errors.ts';
import { parseLaunchRequest } from '../../shared/protocol/messages.ts';
import type { LaunchBudget, LaunchRequest, ModelRecord, RoundRecord } from '../../shared/protocol/messages.ts';
import { PrivacyLedger } from '../../server/ledger/ledger.ts';
import { MemoryLedgerStore } from '../../server/ledger/memory.ts';
import { COMPLIANCE_ENDPOINTS } from '../../server/dashboard/compliance.ts';
import { artifactPath, chromiumAvailable, launchChromium } from '../browser-harness.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import nacl from 'tweetnacl';
import { createApiToken } from '../../server/auth/api-tokens.ts';
import { startCoordinator } from '../../server/coordinator.ts';
import { MemoryApiTokenStore, MemoryModelStore, MemoryRoundStore } from '../../server/storage/memory.ts';
import { api, FAST, launch, startClients, startTestCoordinator, stopAll, syntheticPopulation, tempDataDir, waitFor, waitForRound } from './harness.ts';

const DP: Omit<LaunchRequest, 'rounds'> = { clientsPerRound: 4, minClients: 3, deadlines: FAST.deadlines, train: FAST.train, privacy: { clip: 0.5, noiseMultiplier: 1.5, delta: 1e-6 } };

describe('privacy ledger on a coordinator', () => {
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir(), { allowNoDp: false, epsilonCap: { epsilon: 40, delta: 1e-6 } });
    clients = await startClients(coordinator, 4, () => ({ acceptPrivacyModes: ['distributed'] }));
  });

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('enters a released round before release, with the round record\'s epsilon, and an aborted round at zero', async () => {
    const [r] = await launch(coordinator, { rounds: 1, ...DP });
    const record = await waitForRound(coordinator, r!.id);
    expect(record.status).toBe('committed');
    // Five clients needed, four connected: aborted at selection, nothing released.
    const [aborted] = await launch(coordinator, { rounds: 1, ...DP, clientsPerRound: 5, minClients: 5 });
    expect((await waitForRound(coordinator, aborted!.id)).status).toBe('aborted');

    const ledger = await api<{ entries: unknown[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger');
    expect(ledger.status).toBe(200);
    const entries = ledger.body.entries.map((e) => LedgerEntrySchema.parse(e));
    // The seed model's publication at first start; the round's release, then its version's publication.
    expect(entries.map((e) => e.kind)).toEqual(['genesis', 'publication', 'round', 'publication', 'round']);
    const released = (entries[2] as RoundEntry).round;
    expect(released).toMatchObject({ roundId: r!.id, outcome: 'released', mode: 'distributed', mechanism: 'distributed-discrete-gaussian', clip: 0.5, noiseMultiplier: 1.5, t: 3, delta: 1e-6, cohortSize: 4, survivors: 4, q: 1, modelVersionIn: record.baseModelVersion, modelVersionOut: record.modelVersion });
    expect(released.epsilonRound).toBe(record.privacy?.epsilonRound);
    expect(released.epsilonCumulative).toBe(record.privacy?.epsilonCumulative);
    expect((entries[4] as RoundEntry).round).toMatchObject({ roundId: aborted!.id, outcome: 'aborted', epsilonRound: 0, epsilonCumulative: released.epsilonCumulative });
    // Write-ahead: the release entry predates the round's finish.
    expect(Date.parse(entries[2]!.createdAt)).toBeLessThanOrEqual(Date.parse(record.finishedAt as string));
    // Each version is bound to the digest of its files as served: the seed model, then the round's.
    for (const [entry, version, roundId, entered] of [[entries[1], 1, null, 'at-start'], [entries[3], record.modelVersion, r!.id, 'at-commit']] as const) {
      const model = await api<ModelRecord>(coordinator, coordinator.auditor, 'GET', `/api/v1/models/${version}`);
      const served = await Promise.all(['model.json', 'weights.bin'].map(async (f) => Buffer.from(await (await fetch(`${coordinator.url}/models/${version}/${f}`)).arrayBuffer())));
      const digest = createHash('sha256').update(served[0]!).update(served[1]!).digest('hex');
      expect(model.body.sha256).toBe(digest);
      expect((entry as PublicationEntry).publication).toEqual({ modelVersion: version, roundId, parentVersion: version === 1 ? null : record.baseModelVersion, sha256: digest, bytes: model.body.bytes, entered });
    }

    const verify = await api<{ ok: boolean; entries: number; epsilon: number; delta: number }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger/verify');
    expect(verify.body).toEqual({ ok: true, entries: 5, epsilon: released.epsilonCumulative, delta: 1e-6 });
    const key = await api<{ genesis: string; current: string }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger/public-key');
    expect(key.body.genesis).toBe(entries[0]!.keyId);
    const bundle = await api<LedgerBundle>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger/bundle');
    expect(await verifyBundle(bundle.body, { publicKey: key.body.genesis })).toMatchObject({ ok: true, entries: 5 });
  });

  it('serves the report in three formats and refuses requests without a token', async () => {
    const json = await api<LedgerReport>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger/report?format=json');
    expect(json.body).toMatchObject({ cap: { epsilon: 40, delta: 1e-6 }, verify: { ok: true }, mechanisms: [expect.stringMatching(/^distributed-discrete-gaussian \(distributed/)] });
    expect(json.body.budgetLeft).toBeCloseTo(40 - (json.body.epsilonSpent as number), 12);
    expect(json.body.sensitiveHeads.sensitive).toEqual(['age', 'gender', 'career', 'stage']);
    const md = await fetch(`${coordinator.url}/api/v1/ledger/report?format=md`, { headers: { authorization: `Bearer ${coordinator.auditor}` } });
    expect(await md.text()).toMatch(/# Privacy ledger report[\s\S]*\| entry \| round \|.*\| delta \| epsilon this round \(at its delta\) \| cumulative epsilon at delta = 0\.000001 \|[\s\S]*\^ cap 40/);
    const html = await fetch(`${coordinator.url}/api/v1/ledger/report?format=html`, { headers: { authorization: `Bearer ${coordinator.auditor}` } });
    expect(await html.text()).toMatch(/<svg id="epsilon-chart"[\s\S]*class="cap"[\s\S]*class="spent"/);
    expect((await api(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger/report?format=pdf')).status).toBe(400);
    for (const p of ['/api/v1/ledger', '/api/v1/ledger/verify', '/api/v1/ledger/report', '/api/v1/ledger/public-key', '/api/v1/ledger/bundle']) {
      expect((await api(coordinator, undefined, 'GET', p)).status).toBe(401);
    }
    // Read-only: there is nothing to write under /ledger.
    expect((await api(coordinator, coordinator.operator, 'POST', '/api/v1/ledger', {})).status).toBe(404);
  });

  it('refuses a launch past the cap before anything runs, naming the projected epsilon', async () => {
    const before = (await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/rounds')).body.rounds.length;
    const res = await api<ErrorBody>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', { rounds: 200, ...DP });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('BUDGET_EXCEEDED');
    expect(res.body.message).toMatch(/^privacy budget: launching 200 round\(s\) would bring cumulative epsilon to \d+\.\d{4} at delta 0.000001, above the deployment cap of 40/);
    const projected = Number(/to (\d+\.\d+) at/.exec(res.body.message)?.[1]);
    expect(projected).toBeGreaterThan(40);
    expect((await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/rounds')).body.rounds.length).toBe(before);
  });

  it('serves the compliance page, self-contained, reading the ledger report', async () => {
    const res = await fetch(`${coordinator.url}/dashboard/compliance/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toMatch(/connect-src 'self'/);
    const html = await res.text();
    for (const endpoint of COMPLIANCE_ENDPOINTS) expect(html).toContain(endpoint);
    expect(html).toMatch(/<svg id="budget-chart"/);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it('renders the compliance page in headless Chromium: verify status, round table, chart against the cap', async () => {
    if (!chromiumAvailable()) {
      console.warn('Chromium not found: compliance page browser check not run (CI=true makes this an error)');
      return;
    }
    const context = await launchChromium();
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${coordinator.url}/dashboard/compliance/#token=${coordinator.auditor}`);
      await page.waitForSelector('#verify.ok', { timeout: 10_000 });
      expect(await page.textContent('#verify')).toMatch(/^Ledger verified: 5 signed entries/);
      const rows = await page.$$eval('#rounds tbody tr', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent ?? '')));
      expect(rows).toHaveLength(2);
      // What each round released: both are training rounds (analytics queries name their statistic here).
      expect(rows.map((r) => r[2])).toEqual(['training', 'training']);
      expect(rows[0]?.[3]).toBe('released');
      expect(rows[1]?.[3]).toMatch(/^aborted/);
      expect(rows[0]?.[11]).toBe('0.000001');
      expect(rows[1]?.[12]).toBe('0.0000');
      expect(await page.textContent('#cumulative-header')).toBe('cumulative ε at δ = 0.000001');
      expect(await page.textContent('#summary')).toMatch(/Cap: ε = 40 at δ = 0\.000001; left: \d+\.\d{4}/);
      expect(await page.$$eval('#budget-chart line.cap', (l) => l.length)).toBe(1);
      expect(await page.$$eval('#budget-chart circle', (c) => c.length)).toBe(2);
      // The spent line sits below the dashed cap line (SVG y grows downwards).
      const capY = Number(await page.getAttribute('#budget-chart line.cap', 'y1'));
      const points = ((await page.getAttribute('#budget-chart polyline.spent', 'points')) ?? '').split(' ').map((p) => Number(p.split(',')[1]));
      expect(points.every((y) => y > capY)).toBe(true);
      await page.screenshot({ path: artifactPath('ledger-compliance.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 30_000);

  it("holds a launch to its own epsilonCap: refused past it before anything runs, and kept on the rounds it lets run", async () => {
    const listed = async () => (await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/rounds')).body.rounds.length;
    const spent = (await api<{ epsilon: number }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger/verify')).body.epsilon;
    const before = await listed();
    // Well inside the deployment cap of 40, but one more round passes this launch's cap.
    const tight = Number((spent + 0.001).toFixed(4));
    const res = await api<ErrorBody>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', { rounds: 1, ...DP, epsilonCap: tight });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('BUDGET_EXCEEDED');
    expect(res.body.message).toMatch(new RegExp(`^privacy budget: launching 1 round\\(s\\) would bring cumulative epsilon to \\d+\\.\\d{4} at delta 0.000001, above the launch's cap of ${tight} \\(spent so far: ${spent.toFixed(4)}\\)$`));
    expect(await listed()).toBe(before);

    const reply = await api<{ rounds: RoundRecord[]; budget: LaunchBudget[] }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', { rounds: 1, ...DP, epsilonCap: 39 });
    expect(reply.status).toBe(201);
    // The reply carries the projection against each cap, at the same delta here.
    expect(reply.body.budget.map((b) => [b.kind, b.cap, b.spent])).toEqual([
      ['deployment', { epsilon: 40, delta: 1e-6 }, spent],
      ['launch', { epsilon: 39, delta: 1e-6 }, spent],
    ]);
    const projected = reply.body.budget[1]!.projected as number;
    expect(projected).toBeGreaterThan(spent);
    const r = reply.body.rounds[0];
    const record = await waitForRound(coordinator, r!.id);
    expect(record.status).toBe('committed');
    expect(record.config.epsilonCap).toBe(39);
    // Released as projected (fixed selection, q = 1): the projection is the spend.
    expect(record.privacy?.epsilonCumulative).toBeCloseTo(projected, 9);
  });
});

/** A real coordinator on port 0 over in-memory stores (so a test can write a round directly), with an operator token. */
async function memoryCoordinator(ledger?: PrivacyLedger, log?: (line: string) => void) {
  const pop = await syntheticPopulation();
  const tokens = new MemoryApiTokenStore();
  const { token } = await createApiToken(tokens, 'operator', 'operator', new Date().toISOString());
  const rounds = new MemoryRoundStore();
  const coordinator = await startCoordinator({ port: 0, rounds, models: new MemoryModelStore(), tokens, platformPublicKey: nacl.sign.keyPair().publicKey, initialModel: { config: pop.config, seed: 1 }, ...(ledger ? { ledger } : {}), ...(log ? { log } : {}) });
  return { coordinator, token, rounds };
}

describe('a round whose projection passes its cap by the time it would start', () => {
  beforeAll(async () => {
    await useNodeBackend();
  });

  it('is aborted before check-in opens, entered at zero spend, and the rounds behind it still run', async () => {
    const signing = nacl.sign.keyPair();
    const realLedger = await PrivacyLedger.open({ store: new MemoryLedgerStore(), key: { publicKey: signing.publicKey, secretKey: signing.secretKey }, software: 'portrait/test' });
    const logs: string[] = [];
    const { coordinator, token, rounds } = await memoryCoordinator(realLedger, (l) => logs.push(l));
    try {
      // A pending round whose own cap its first round already passes: as if the rounds before it
      // had spent more than the launch check projected (it stands in for a Poisson cohort larger
      // than clientsPerRound). Written to the store directly, since a launch would be refused.
      const { spec } = parseLaunchRequest({ clientsPerRound: 4, minClients: 3, deadlines: FAST.deadlines, train: FAST.train, privacy: DP.privacy, epsilonCap: 0.001 });
      const [doomed] = await rounds.createRounds([spec], new Date().toISOString());
      // A launch behind it wakes the runner; nobody checks in, so it aborts when check-in closes.
      const behind = await api<{ rounds: RoundRecord[] }>(coordinator, token, 'POST', '/api/v1/rounds', { rounds: 1, ...DP });
      expect(behind.status).toBe(201);
      const after = behind.body.rounds[0]!.id;
      // The abort's ledger entry follows the record's update: wait for both.
      await waitFor(async () => (await rounds.get(after))?.status === 'aborted' && realLedger.entries === 4, 20_000, 'the round behind it aborted and entered');
      const refused = (await rounds.get(doomed!.id))!;
      expect(refused).toMatchObject({ status: 'aborted', stage: 'aborted', participants: 0 });
      expect(refused.reason).toMatch(/^privacy budget: at its projection, round \d+ would bring cumulative epsilon to \d+\.\d{4} at delta 0\.000001, above the launch's cap of 0\.001; not started$/);
      expect(refused.startedAt ?? null).toBeNull();
      expect(logs.some((l) => l.startsWith(`round ${doomed!.id}: check-in open`))).toBe(false);
      // The round behind it opened check-in as usual.
      expect((await rounds.get(after))!.reason).toMatch(/too few/);
      expect(logs.some((l) => l.startsWith(`round ${after}: check-in open`))).toBe(true);
      const entries = (await realLedger.all()).map((e) => LedgerEntrySchema.parse(e));
      expect(entries.filter((e) => e.kind === 'round').map((e) => e.kind === 'round' && [e.round.roundId, e.round.outcome, e.round.epsilonRound])).toEqual([
        [doomed!.id, 'aborted', 0],
        [after, 'aborted', 0],
      ]);
    } finally {
      await coordinator.close();
    }
  }, 30_000);
});

describe('a coordinator without the privacy ledger', () => {
  beforeAll(async () => {
    await useNodeBackend();
  });

  it('refuses a launch with its own epsilonCap (INVALID_ARGUMENT), since nothing would enforce it', async () => {
    const { coordinator, token } = await memoryCoordinator();
    try {
      const res = await api<ErrorBody>(coordinator, token, 'POST', '/api/v1/rounds', { rounds: 1, ...DP, epsilonCap: 10 });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^"epsilonCap" needs the privacy ledger/) });
      expect((await api<{ rounds: RoundRecord[] }>(coordinator, token, 'GET', '/api/v1/rounds')).body.rounds).toEqual([]);
      // The same launch without the field is taken.
      expect((await api(coordinator, token, 'POST', '/api/v1/rounds', { rounds: 1, ...DP })).status).toBe(201);
    } finally {
      await coordinator.close();
    }
  });
});

/**
 * The dashboard and the compliance page as headless Chromium renders them, on real coordinators
 * with real rounds (distributed DP with SecAgg+, and without DP): without a token only the token
 * prompt shows, saying where the token is, and nothing is requested; a refused token stops the
 * polling until another is given; the ε columns show what the round records say, and a round
 * whose ε per round is large (spent, or projected while it waits) carries a warning with the
 * number; the compliance page draws the budget chart only against a cap, on an axis that covers
 * the data, and without a cap says so and gives the cumulative spend. Screenshots under
 * artifacts/dashboard/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { LedgerReport } from '../../shared/ledger/report.ts';
import type { LaunchRequest, RoundRecord } from '../../shared/protocol/messages.ts';
import type { EvaluateSummary } from '../../shared/analytics/federated-evaluation.ts';
import type { AnalyticsSummary } from '../../shared/analytics/queries.ts';
import { artifactPath, chromiumAvailable, launchChromium } from '../browser-harness.ts';
import { api, FAST, launch, startClients, startTestCoordinator, stopAll, syntheticPopulation, tempDataDir, waitFor, waitForRound } from '../integration/harness.ts';
import type { TestClient, TestCoordinator } from '../integration/harness.ts';

const run = chromiumAvailable();

/** The dashboard's threshold (server/dashboard/page.html, LARGE_EPSILON_PER_ROUND). */
const LARGE_EPSILON_PER_ROUND = 2;

const dp = (noiseMultiplier: number): Omit<LaunchRequest, 'rounds'> => ({ clientsPerRound: 4, minClients: 3, deadlines: FAST.deadlines, train: FAST.train, privacy: { clip: 0.5, noiseMultiplier, delta: 1e-6 } });

type ServedRound = RoundRecord & { projectedEpsilonRound?: number | null };

/** A page that counts its requests to the REST API, on a fake clock the test moves. */
async function openPage(context: BrowserContext, url: string): Promise<{ page: Page; apiRequests: () => number; errors: string[] }> {
  const page = await context.newPage();
  let requests = 0;
  const errors: string[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/')) requests++;
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.clock.install();
  await page.goto(url);
  return { page, apiRequests: () => requests, errors };
}

const visibleText = (page: Page) => page.evaluate(() => document.body.innerText);

describe.runIf(run)('dashboard pages in Chromium', () => {
  let coordinator: TestCoordinator;
  let context: BrowserContext;
  let clients: TestClient[] = [];

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir());
    context = await launchChromium();
  });

  afterAll(async () => {
    await context?.close();
    stopAll(clients);
    await coordinator?.close();
  });

  it('without a token shows only the prompt, saying where the token is, and requests nothing', async () => {
    for (const path of ['/dashboard/', '/dashboard/compliance/']) {
      const { page, apiRequests, errors } = await openPage(context, `${coordinator.url}${path}`);
      await page.waitForSelector('#auth', { state: 'visible' });
      await page.clock.runFor(60_000);
      expect(apiRequests()).toBe(0);
      const text = await visibleText(page);
      expect(text).toContain('This page needs a read token.');
      expect(text).toContain('api-tokens.json');
      expect(text).not.toContain('no round in flight');
      expect(text).not.toContain('Budget used against the cap');
      expect(await page.isVisible('#content')).toBe(false);
      expect(errors).toEqual([]);
      await page.close();
    }
  });

  it('after a refused token shows only the error and stops polling until another token is given', async () => {
    for (const path of ['/dashboard/', '/dashboard/compliance/']) {
      const { page, apiRequests, errors } = await openPage(context, `${coordinator.url}${path}#token=pt_not-a-real-token`);
      await page.waitForSelector('#auth-error:has-text("refused this token")');
      const afterRefusal = apiRequests();
      expect(afterRefusal).toBeGreaterThan(0);
      await page.clock.runFor(60_000);
      expect(apiRequests()).toBe(afterRefusal);
      const text = await visibleText(page);
      expect(text).toMatch(/UNAUTHENTICATED/);
      expect(text).toContain('api-tokens.json');
      expect(text).not.toContain('no round in flight');
      expect(await page.isVisible('#content')).toBe(false);
      await page.screenshot({ path: artifactPath('dashboard', `refused-token-${path.split('/').at(-2)}.png`) });

      // A good token brings the page back, and the polling with it.
      await page.fill('#token', coordinator.auditor);
      await page.click('#save');
      await page.waitForSelector('#content', { state: 'visible' });
      expect(await page.isVisible('#auth')).toBe(false);
      const resumed = apiRequests();
      await page.clock.runFor(12_000);
      expect(apiRequests()).toBeGreaterThan(resumed);
      expect(errors).toEqual([]);
      await page.close();
    }
  });

  it('shows each round\'s ε spent and cumulative as its record says, and flags a large ε per round, spent or projected', async () => {
    clients = await startClients(coordinator, 4);
    const rounds: RoundRecord[] = [];
    for (const request of [dp(8), dp(1.5)]) {
      const [r] = await launch(coordinator, { rounds: 1, ...request });
      rounds.push(await waitForRound(coordinator, r!.id, 60_000));
    }
    for (const r of rounds) expect(r).toMatchObject({ status: 'committed', privacy: { released: true } });
    const [small, large] = rounds.map((r) => r.privacy!.epsilonRound!) as [number, number];
    expect(small).toBeLessThan(LARGE_EPSILON_PER_ROUND);
    expect(large).toBeGreaterThan(LARGE_EPSILON_PER_ROUND);

    // Without a cap the compliance page draws no budget chart, says so, and gives the spend.
    const compliance = await openPage(context, `${coordinator.url}/dashboard/compliance/#token=${coordinator.auditor}`);
    await compliance.page.waitForSelector('#verify.ok');
    const report = (await api<LedgerReport>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger/report?format=json')).body;
    expect(report.cap).toBeNull();
    expect(await compliance.page.isVisible('#budget-chart')).toBe(false);
    let text = await visibleText(compliance.page);
    expect(text).not.toContain('Budget used against the cap');
    expect(text).toContain('No deployment cap configured.');
    expect(text).toContain(`Cumulative spend: ε = ${report.epsilonSpent!.toFixed(4)} at δ = ${report.delta} over 2 rounds in the ledger.`);

    // A model released without DP makes the spend unbounded, which the page says in words.
    const [none] = await launch(coordinator, { rounds: 1, ...FAST, clientsPerRound: 4, minClients: 3 });
    expect((await waitForRound(coordinator, none!.id, 60_000)).status).toBe('committed');
    await compliance.page.clock.runFor(5_000);
    await compliance.page.waitForSelector(`#no-cap-spend:has-text("unbounded, since round ${none!.id} released a model without differential privacy")`);
    text = await visibleText(compliance.page);
    expect(text).not.toContain('Budget used against the cap');
    expect(await compliance.page.isVisible('#budget-chart')).toBe(false);
    await compliance.page.screenshot({ path: artifactPath('dashboard', 'compliance-no-cap.png'), fullPage: true });
    expect(compliance.errors).toEqual([]);

    // A round that waits in check-in (the devices have left) carries the projected ε of its spec.
    stopAll(clients);
    await waitFor(() => coordinator.sockets.connectedClients() === 0, 10_000, 'the devices to leave');
    const [waiting] = await launch(coordinator, { rounds: 1, ...dp(1.5), deadlines: { checkinMs: 120_000, trainingMs: 10_000 } });
    await waitFor(() => coordinator.runner.current?.roundId === waiting!.id, 10_000, 'the round to open');

    const served = (await api<{ rounds: ServedRound[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/rounds')).body.rounds;
    const pending = served.find((r) => r.id === waiting!.id)!;
    expect(pending.privacy?.released).toBe(false);
    // The same spec as the large round: the projection is what that round spent, within the rounding of q and t.
    expect(pending.projectedEpsilonRound).toBeCloseTo(large, 1);
    expect(served.filter((r) => r.id !== waiting!.id).every((r) => r.projectedEpsilonRound === undefined)).toBe(true);

    const dashboard = await openPage(context, `${coordinator.url}/dashboard/#token=${coordinator.auditor}`);
    await dashboard.page.waitForSelector(`#rounds tr[data-round="${waiting!.id}"]`);
    const rows = await dashboard.page.$$eval('#rounds tbody tr', (trs) =>
      trs.map((tr) => ({
        id: Number((tr as HTMLElement).dataset.round),
        spent: tr.querySelector('.epsilon-round')?.firstChild?.textContent ?? '',
        cumulative: tr.querySelector('.epsilon-cumulative')?.textContent ?? '',
        badge: tr.querySelector('.large-epsilon')?.textContent ?? null,
      })),
    );
    expect(rows.map((r) => r.id).sort((a, b) => a - b)).toEqual(served.map((r) => r.id).sort((a, b) => a - b));
    for (const r of served) {
      const row = rows.find((x) => x.id === r.id)!;
      const p = r.privacy!;
      if (r.id === waiting!.id) {
        expect(row).toEqual({ id: r.id, spent: '–', cumulative: '–', badge: `ε ${pending.projectedEpsilonRound!.toFixed(1)} per round — large` });
      } else if (!p.differentiallyPrivate) {
        expect(row).toEqual({ id: r.id, spent: 'no DP', cumulative: 'unbounded', badge: null });
      } else {
        expect(row).toEqual({
          id: r.id,
          spent: p.epsilonRound!.toFixed(4),
          cumulative: p.epsilonCumulative!.toFixed(4),
          badge: p.epsilonRound! > LARGE_EPSILON_PER_ROUND ? `ε ${p.epsilonRound!.toFixed(1)} per round — large` : null,
        });
      }
    }
    expect(rows.filter((r) => r.badge !== null)).toHaveLength(2);
    // The round in flight says it too.
    expect(await dashboard.page.textContent('#flight .large-epsilon')).toBe(`ε ${pending.projectedEpsilonRound!.toFixed(1)} per round — large`);
    await dashboard.page.screenshot({ path: artifactPath('dashboard', 'rounds.png'), fullPage: true });
    expect(dashboard.errors).toEqual([]);
  }, 180_000);

});

describe.runIf(run)('federated evaluation on the dashboard in Chromium', () => {
  let coordinator: TestCoordinator;
  let context: BrowserContext;
  let clients: TestClient[] = [];

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir(), { minSegmentCohort: 3 });
    const users = (await syntheticPopulation()).prepared.users.train;
    clients = await startClients(coordinator, 4, (i) => ({ analyticsEvents: () => users[i]!.events }));
    context = await launchChromium();
  });

  afterAll(async () => {
    await context?.close();
    stopAll(clients);
    await coordinator?.close();
  });

  it('shows a federated evaluation per version with its intervals and the difference, and the serving version', async () => {
    const [trained] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 3, ...FAST });
    const t = await waitForRound(coordinator, trained!.id, 30_000);
    expect(t.status, t.reason).toBe('committed');
    const [evaluated] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 3, ...FAST, task: 'analytics', query: { statistic: 'evaluate', versions: [1, t.modelVersion!] } });
    const e = await waitForRound(coordinator, evaluated!.id, 30_000);
    expect(e.status, e.reason).toBe('committed');
    const promoted = await api(coordinator, coordinator.operator, 'POST', '/api/v1/models/promote', { version: 1, force: true, reason: 'dashboard test' });
    expect(promoted.status).toBe(200);

    const dashboard = await openPage(context, `${coordinator.url}/dashboard/#token=${coordinator.auditor}`);
    await dashboard.page.waitForSelector(`#rounds tr[data-round="${e.id}"] td.federated`);
    const cells = await dashboard.page.$$eval(`#rounds tr[data-round="${e.id}"] td`, (tds) => tds.map((td) => td.textContent ?? ''));
    expect(cells[6]).toBe('analytics: evaluate');
    const summary = e.result!.summary as EvaluateSummary;
    const micro = (v: number) => summary.versions.find((x) => x.version === v)!.heads.interests!.microAuc!.toFixed(4);
    expect(cells[9]).toContain(`v1 ${micro(1)} [`);
    expect(cells[9]).toContain(`v${t.modelVersion} ${micro(t.modelVersion!)} [`);
    expect(cells[9]).toMatch(/Δ [+-]\d\.\d{4} \[/);
    expect(await dashboard.page.textContent('#status-line')).toMatch(new RegExp(`^model v${t.modelVersion} \\(\\d+ parameters\\) · serving v1 · `));
    await dashboard.page.screenshot({ path: artifactPath('dashboard', 'federated-evaluation.png'), fullPage: true });
    expect(dashboard.errors).toEqual([]);
  }, 90_000);

  it('draws the last segment report as bars with their intervals, counting the suppressed cells', async () => {
    const [launched] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 3, ...FAST, task: 'analytics', query: { statistic: 'segments', by: ['propensity', 'spending'], minCount: 1 } });
    const r = await waitForRound(coordinator, launched!.id, 30_000);
    expect(r.status, r.reason).toBe('committed');
    const summary = r.result!.summary as Extract<AnalyticsSummary, { statistic: 'segments' }>;
    const shown = summary.cells.filter((c) => !c.suppressed);
    expect(shown.length).toBeGreaterThan(0);
    const dashboard = await openPage(context, `${coordinator.url}/dashboard/#token=${coordinator.auditor}`);
    await dashboard.page.waitForSelector('#segments-chart rect.segment');
    expect(await dashboard.page.$$eval('#segments-chart rect.segment', (els) => els.length)).toBe(Math.min(12, shown.length));
    expect(await dashboard.page.textContent('#segments-caption')).toBe(`round ${r.id}: shoppers by propensity × spending from ${r.participants} devices (noise σ 0.0 per cell, 95% intervals); ${summary.cells.length - shown.length} of 9 cells below 1 suppressed`);
    const labels = await dashboard.page.$$eval('#segments-chart text', (els) => els.map((e) => e.textContent ?? ''));
    expect(labels).toContain(shown[0]!.labels.join(' / '));
    await dashboard.page.screenshot({ path: artifactPath('dashboard', 'segments.png'), fullPage: true });
    expect(dashboard.errors).toEqual([]);
  }, 60_000);
});

describe.runIf(run)('compliance page against a deployment cap in Chromium', () => {
  let coordinator: TestCoordinator;
  let context: BrowserContext;
  let clients: TestClient[] = [];

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir(), { allowNoDp: false, epsilonCap: { epsilon: 40, delta: 1e-6 } });
    clients = await startClients(coordinator, 4);
    context = await launchChromium();
  });

  afterAll(async () => {
    await context?.close();
    stopAll(clients);
    await coordinator?.close();
  });

  it('draws the budget chart on an axis that reaches above the cap and every point', async () => {
    for (const z of [1.5, 1.5]) {
      const [r] = await launch(coordinator, { rounds: 1, ...dp(z) });
      expect((await waitForRound(coordinator, r!.id, 60_000)).status).toBe('committed');
    }
    const report = (await api<LedgerReport>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger/report?format=json')).body;
    const { page, errors } = await openPage(context, `${coordinator.url}/dashboard/compliance/#token=${coordinator.auditor}`);
    await page.waitForSelector('#budget-chart', { state: 'visible' });
    expect(await page.textContent('#budget-heading')).toBe('Budget used against the cap');
    expect(await page.isVisible('#no-cap')).toBe(false);
    const axis = await page.$$eval('#budget-chart text', (ts) => ts.map((t) => t.textContent ?? '').find((s) => /^ε \d/.test(s)) ?? '');
    const top = Number(axis.slice(2));
    const values = [report.cap!.epsilon, ...report.rounds.map((r) => r.epsilonCumulative!)];
    expect(values.every((v) => Number.isFinite(v))).toBe(true);
    expect(top).toBeGreaterThanOrEqual(Math.max(...values));
    // Every point and the cap line lie inside the plot (SVG y grows downwards from the top edge).
    const ys = await page.$$eval('#budget-chart circle.spent, #budget-chart line.cap', (els) => els.map((e) => Number(e.getAttribute('cy') ?? e.getAttribute('y1'))));
    expect(ys).toHaveLength(report.rounds.length + 1);
    for (const y of ys) expect(y).toBeGreaterThan(0);
    await page.screenshot({ path: artifactPath('dashboard', 'compliance-cap.png'), fullPage: true });
    expect(errors).toEqual([]);
  }, 120_000);
});

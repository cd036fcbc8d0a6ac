/**
 * The dashboard's pages served by a real coordinator (port 0, SQLite in a temp dir): fetched over
 * HTTP, self-contained (no external script, style or CDN), with a strict CSP, one look and header
 * for both, and reading the REST endpoints they chart from, which answer the page's read token;
 * a round still to release carries its projected epsilon per round in the REST answer. How the
 * pages render is checked in Chromium (test/browser/dashboard.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { RoundRecord } from '../../shared/protocol/messages.ts';
import { COMPLIANCE_ENDPOINTS } from '../../server/dashboard/compliance.ts';
import { DASHBOARD_ENDPOINTS, DASHBOARD_PAGES } from '../../server/dashboard/index.ts';
import type { TestCoordinator } from './harness.ts';
import { api, FAST, launch, startTestCoordinator, tempDataDir, waitFor } from './harness.ts';

describe('dashboard page', () => {
  let coordinator: TestCoordinator;

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir());
  });

  afterAll(async () => {
    await coordinator?.close();
  });

  it('is served by the coordinator and reads the REST endpoints it charts', async () => {
    for (const pathname of ['/dashboard/', '/dashboard']) {
      const res = await fetch(`${coordinator.url}${pathname}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('content-security-policy')).toMatch(/connect-src 'self'/);
      const html = await res.text();
      expect(html).toMatch(/<svg id="chart"/);
      for (const endpoint of DASHBOARD_ENDPOINTS) expect(html).toContain(endpoint);
      expect(html).toMatch(/authorization: 'Bearer '/);
      // The ε columns and the large-ε warning read the round records' privacy section.
      for (const field of ['privacy', 'epsilonRound', 'epsilonCumulative', 'projectedEpsilonRound']) expect(html).toContain(field);
      // Self-contained: no external scripts, styles or fonts.
      expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    }
    // The endpoints the page polls answer an auditor token and refuse a missing one.
    for (const endpoint of DASHBOARD_ENDPOINTS) {
      expect((await api(coordinator, coordinator.auditor, 'GET', endpoint)).status).toBe(200);
      expect((await api(coordinator, undefined, 'GET', endpoint)).status).toBe(401);
    }
  });

  it('gives the dashboard and the compliance page one look and one header', async () => {
    const pages = await Promise.all(
      Object.values(DASHBOARD_PAGES).map(async (p) => {
        const res = await fetch(`${coordinator.url}${p.path}`);
        expect(res.status).toBe(200);
        return res.text();
      }),
    );
    const [rounds, compliance] = pages as [string, string];
    for (const endpoint of COMPLIANCE_ENDPOINTS) expect(compliance).toContain(endpoint);
    const first = (html: string, re: RegExp) => re.exec(html)?.[0] ?? '';
    const theme = /<style>\n\/\* The one look[\s\S]*?<\/style>/;
    expect(first(rounds, theme)).not.toBe('');
    expect(first(compliance, theme)).toBe(first(rounds, theme));
    // The same header, each page marked as the current one in it.
    const header = /<header class="top">[\s\S]*?<\/header>/;
    expect(first(compliance, header).replace(/ aria-current="page"/, '')).toBe(first(rounds, header).replace(/ aria-current="page"/, ''));
    expect(first(rounds, header)).toContain(`<a href="${DASHBOARD_PAGES.rounds.path}" aria-current="page">`);
    expect(first(compliance, header)).toContain(`<a href="${DASHBOARD_PAGES.compliance.path}" aria-current="page">`);
    // One token prompt, saying where the token is; every shared part filled in.
    for (const html of pages) {
      expect(html).toContain('api-tokens.json');
      expect(html).not.toContain('<!-- portrait:');
    }
  });

  it('serves a round still to release with its projected epsilon per round, and a round without DP with none', async () => {
    // No device is connected: the first round waits in check-in, the others stay pending.
    const [waiting, pending, plain] = [
      ...(await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 3, deadlines: { checkinMs: 60_000, trainingMs: 10_000 }, privacy: { clip: 0.5, noiseMultiplier: 1.5, delta: 1e-6 } })),
      ...(await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 3, privacy: { clip: 0.5, noiseMultiplier: 8, delta: 1e-6 } })),
      ...(await launch(coordinator, { rounds: 1, ...FAST, clientsPerRound: 4 })),
    ];
    await waitFor(() => coordinator.runner.current?.roundId === waiting!.id, 10_000, 'the first round to open');
    const served = (await api<{ rounds: (RoundRecord & { projectedEpsilonRound?: number | null })[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/rounds')).body.rounds;
    const byId = (id: number) => served.find((r) => r.id === id)!;
    expect(byId(waiting!.id)).toMatchObject({ status: 'running', live: { stage: 'checkin' } });
    expect(byId(waiting!.id).projectedEpsilonRound).toBeGreaterThan(2);
    expect(byId(pending!.id).projectedEpsilonRound).toBeLessThan(2);
    expect(byId(pending!.id).projectedEpsilonRound).toBeGreaterThan(0);
    expect(byId(plain!.id).projectedEpsilonRound).toBeNull();
    const one = (await api<RoundRecord & { projectedEpsilonRound?: number | null }>(coordinator, coordinator.auditor, 'GET', `/api/v1/rounds/${waiting!.id}`)).body;
    expect(one.projectedEpsilonRound).toBe(byId(waiting!.id).projectedEpsilonRound);
  });
});

/**
 * The dashboard page served by a real coordinator (port 0, SQLite in a temp dir): fetched over
 * HTTP, self-contained (no external script, style or CDN), with a strict CSP, and reading the REST
 * endpoints it charts from, which answer the page's read token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { DASHBOARD_ENDPOINTS } from '../../server/dashboard/index.ts';
import type { TestCoordinator } from './harness.ts';
import { api, startTestCoordinator, tempDataDir } from './harness.ts';

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
      // Self-contained: no external scripts, styles or fonts.
      expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    }
    // The endpoints the page polls answer an auditor token and refuse a missing one.
    for (const endpoint of DASHBOARD_ENDPOINTS) {
      expect((await api(coordinator, coordinator.auditor, 'GET', endpoint)).status).toBe(200);
      expect((await api(coordinator, undefined, 'GET', endpoint)).status).toBe(401);
    }
  });
});

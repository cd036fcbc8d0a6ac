/**
 * The ML team's dashboard, served by the coordinator at /dashboard/: one static page (HTML with
 * inline JS and SVG, nothing fetched from elsewhere) that polls the REST API with a read token
 * for the round in flight and its stage, and charts each committed round's held-out metrics.
 */
import fs from 'node:fs';
import express from 'express';

/** The REST endpoints the page reads; a test checks the page references each. */
export const DASHBOARD_ENDPOINTS = ['/api/v1/status', '/api/v1/rounds'] as const;

const PAGE = new URL('./page.html', import.meta.url);
const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

/** One self-contained HTML page under a strict CSP (inline script and style only, API calls to this origin). */
export function staticPageRouter(page: URL): express.Router {
  const html = fs.readFileSync(page, 'utf8');
  const router = express.Router({ strict: true });
  router.get('/', (_req, res) => {
    res.set({ 'Content-Security-Policy': CSP, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' });
    res.type('html').send(html);
  });
  return router;
}

export function dashboardRouter(): express.Router {
  return staticPageRouter(PAGE);
}

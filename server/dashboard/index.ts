/**
 * The ML team's dashboard, served by the coordinator at /dashboard/: one static page (HTML with
 * inline JS and SVG, nothing fetched from elsewhere) that polls the REST API with a read token
 * for the round in flight and its stage, and charts each committed round's held-out metrics and
 * lists each round's privacy spend. Its pages (this one, the compliance page) share one look,
 * header and token handling: theme.css, the header below and session.js are inlined into each.
 */
import fs from 'node:fs';
import express from 'express';

/** The REST endpoints the page reads; a test checks the page references each. */
export const DASHBOARD_ENDPOINTS = ['/api/v1/status', '/api/v1/rounds'] as const;

/** The dashboard's pages, in the order the shared header lists them. */
export const DASHBOARD_PAGES = {
  rounds: { path: '/dashboard/', label: 'Federated rounds', file: new URL('./page.html', import.meta.url) },
  compliance: { path: '/dashboard/compliance/', label: 'Privacy compliance', file: new URL('./compliance.html', import.meta.url) },
} as const;
export type DashboardPage = keyof typeof DASHBOARD_PAGES;

const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

/** The header every page opens with: the pages, a status line, the token prompt and the problem line (both hidden until needed). */
function header(current: DashboardPage): string {
  const links = Object.entries(DASHBOARD_PAGES).map(([key, p]) => `<a href="${p.path}"${key === current ? ' aria-current="page"' : ''}>${p.label}</a>`);
  return `<header class="top"><span class="brand">Portrait</span><nav>${links.join('')}</nav><span id="status-line" class="muted">connecting…</span></header>
<div class="page">
<div id="auth" class="card" hidden>
  <p id="auth-error" class="bad"></p>
  <label>Read token (auditor or operator): <input id="token" type="password" autocomplete="off"></label>
  <button id="save" type="button">Use token</button>
  <p class="muted">Where to find it: <code>api-tokens.json</code> in the coordinator's data directory (<code>./data</code> by default),
  which <code>portrait server</code> writes at its first start; its <code>auditor</code> token only reads. <code>portrait demo</code> prints a
  link to this page that carries the token after <code>#token=</code>. The token stays in this browser (local storage).</p>
</div>
<p id="problem" class="card bad" hidden></p>
</div>`;
}

/**
 * A page with the shared parts filled in: `<!-- portrait:theme -->` (in the head), `<!-- portrait:header -->`
 * (first in the body) and `<!-- portrait:session -->` (before the page's own script).
 */
export function renderDashboardPage(current: DashboardPage): string {
  const read = (name: string) => fs.readFileSync(new URL(name, import.meta.url), 'utf8');
  const parts: Record<string, string> = {
    theme: `<style>\n${read('./theme.css')}</style>`,
    header: header(current),
    session: `<script>\n${read('./session.js')}</script>`,
  };
  let html = fs.readFileSync(DASHBOARD_PAGES[current].file, 'utf8');
  for (const [name, text] of Object.entries(parts)) {
    const marker = `<!-- portrait:${name} -->`;
    if (!html.includes(marker)) throw new Error(`${DASHBOARD_PAGES[current].file.pathname} lacks ${marker}`);
    html = html.replace(marker, () => text);
  }
  return html;
}

/** One self-contained HTML page under a strict CSP (inline script and style only, API calls to this origin). */
export function staticPageRouter(html: string): express.Router {
  const router = express.Router({ strict: true });
  router.get('/', (_req, res) => {
    res.set({ 'Content-Security-Policy': CSP, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' });
    res.type('html').send(html);
  });
  return router;
}

export function dashboardRouter(): express.Router {
  return staticPageRouter(renderDashboardPage('rounds'));
}

/**
 * The auditor's read-only REST view of the ledger under /api/v1/ledger (any read token):
 * `GET /` the entries, `/verify` the verification result, `/report?format=json[&chart=svg]|md|html|svg` (svg: the budget chart alone; chart=svg adds it to the JSON as `chartSvg`),
 * `/public-key`, and `/bundle` the signed export that `portrait audit verify` checks offline.
 */
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { buildReport, epsilonChartSvg, renderHtml, renderMarkdown } from '../../shared/ledger/report.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import { authenticate, requireRole } from '../auth/api-tokens.ts';
import type { ApiTokenStore } from '../storage/stores.ts';
import type { PrivacyLedger } from './ledger.ts';

export interface LedgerRoutesOptions {
  ledger: PrivacyLedger;
  tokens: ApiTokenStore;
  /** Heads of the current model (the report lists which sensitive ones are on). */
  modelHeads: () => readonly string[];
  clock: () => number;
}

const REPORT_FORMATS = ['json', 'md', 'html'] as const;

export async function ledgerReport(options: LedgerRoutesOptions): Promise<ReturnType<typeof buildReport>> {
  const entries = await options.ledger.all();
  const verify = await options.ledger.verify();
  return buildReport(entries, verify, { cap: options.ledger.cap, enabledHeads: options.modelHeads(), generatedAt: new Date(options.clock()).toISOString() });
}

export function ledgerRouter(options: LedgerRoutesOptions): express.Router {
  const router = express.Router();
  const read = (handler: (req: Request, res: Response) => Promise<void>) => async (req: Request, res: Response, next: NextFunction) => {
    try {
      requireRole(await authenticate(options.tokens, req.get('authorization')), 'read');
      await handler(req, res);
    } catch (err) {
      next(err);
    }
  };
  router.get('/', read(async (_req, res) => {
    res.json({ entries: await options.ledger.all() });
  }));
  router.get('/verify', read(async (_req, res) => {
    const { headHash: _h, currentKey: _k, ...result } = await options.ledger.verify();
    res.json(result);
  }));
  router.get('/public-key', read(async (_req, res) => {
    const entries = await options.ledger.all();
    const genesis = entries[0] as { keyId?: string } | undefined;
    res.json({ algorithm: 'Ed25519', encoding: 'hex', genesis: genesis?.keyId ?? null, current: options.ledger.publicKey });
  }));
  router.get('/bundle', read(async (_req, res) => {
    res.json(await options.ledger.exportBundle());
  }));
  router.get('/report', read(async (req, res) => {
    const format = req.query.format ?? 'json';
    if (typeof format !== 'string' || !(REPORT_FORMATS as readonly string[]).includes(format)) throw new ProtocolError('INVALID_ARGUMENT', `"format" expected one of ${REPORT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
    const report = await ledgerReport(options);
    // The compliance page takes the table and the chart from one verification (`chart=svg`).
    if (format === 'json') res.json(req.query.chart === 'svg' ? { ...report, chartSvg: epsilonChartSvg(report, 'budget-chart') } : report);
    else if (format === 'md') res.type('text/markdown').send(renderMarkdown(report));
    else res.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'").type('html').send(renderHtml(report));
  }));
  return router;
}

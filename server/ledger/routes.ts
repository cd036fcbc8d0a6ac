/**
 * The auditor's read-only REST view of the ledger under /api/v1/ledger (any read token):
 * `GET /` the entries, `/verify` the verification result, `/report?format=json[&chart=svg]|md|html|svg` (svg: the budget chart alone; chart=svg adds it to the JSON as `chartSvg`),
 * `/public-key`, `/bundle` the signed export that `portrait audit verify` checks offline, and the
 * transparency log's `/head` (the signed tree head to keep, RFC 9162 Sec. 4.10),
 * `/consistency?first=M[&second=N]` (Sec. 2.1.4) and `/inclusion?seq=S[&treeSize=N]` (Sec. 2.1.3),
 * modelled on CT's get-sth, get-sth-consistency and get-proof-by-hash (Sec. 5.2-5.4; an entry is
 * named by its seq here, not its hash).
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

/** A tree size or entry number from the query: digits only, at least `min`; undefined when absent and optional. */
function querySize(req: Request, name: string, min: number, required: true): number;
function querySize(req: Request, name: string, min: number, required: false): number | undefined;
function querySize(req: Request, name: string, min: number, required: boolean): number | undefined {
  const raw = req.query[name];
  if (raw === undefined && !required) return undefined;
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw) || Number(raw) < min) throw new ProtocolError('INVALID_ARGUMENT', `"${name}" expected an integer >= ${min}, got ${JSON.stringify(raw ?? null)}`);
  return Number(raw);
}

/** A size past the ledger's end is the caller's mistake: INVALID_ARGUMENT with the tree's own message. */
async function sized<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof RangeError) throw new ProtocolError('INVALID_ARGUMENT', err.message);
    throw err;
  }
}

/**
 * The report, with the signed tree head of the very entries it covers: both read in one turn of
 * the ledger's queue, the entries verified after it, so the compliance page's polling never holds
 * up a round's write-ahead release entry for a whole verification.
 */
export async function ledgerReport(options: LedgerRoutesOptions): Promise<ReturnType<typeof buildReport>> {
  const { entries, head } = await options.ledger.exclusive(async () => ({ entries: await options.ledger.all(), head: await options.ledger.signHead() }));
  const verify = await options.ledger.verify(entries);
  return buildReport(entries, verify, { cap: options.ledger.cap, enabledHeads: options.modelHeads(), generatedAt: new Date(options.clock()).toISOString(), head });
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
    const { headHash: _h, currentKey: _k, rootHash: _r, ...result } = await options.ledger.verify();
    res.json(result);
  }));
  router.get('/head', read(async (_req, res) => {
    res.json(await options.ledger.treeHead());
  }));
  router.get('/consistency', read(async (req, res) => {
    const first = querySize(req, 'first', 0, true);
    const second = querySize(req, 'second', 0, false);
    res.json(await sized(() => options.ledger.consistency(first, second)));
  }));
  router.get('/inclusion', read(async (req, res) => {
    const seq = querySize(req, 'seq', 1, true);
    const treeSize = querySize(req, 'treeSize', 1, false);
    res.json(await sized(() => options.ledger.inclusion(seq, treeSize)));
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

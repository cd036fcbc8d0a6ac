/**
 * The compliance report, for readers who are not engineers: what was spent per round and in
 * total, what is left of the cap, which mechanisms ran, which model heads are sensitive, and a
 * chart of cumulative epsilon against the cap (an inline SVG in HTML, a text bar chart in
 * Markdown). Built from entries that `verifyLedger` has already checked; pure, so the
 * dashboard, the REST API and the CLI share it.
 */
import { SENSITIVE_HEADS } from '../model/spec.ts';
import { RdpTotal, spendRdp } from './accountant.ts';
import type { BudgetCap } from './bundle.ts';
import { LedgerEntrySchema } from './entry.ts';
import { isSignedTreeHead } from './tree-head.ts';
import type { KeptTreeHead } from './tree-head.ts';
import type { VerifyResult } from './verify.ts';

export interface ReportRound {
  seq: number;
  roundId: number;
  outcome: 'released' | 'aborted';
  reason: string | null;
  /** What the round released: a model update, or an analytics query's sum (which statistic, its contribution bound and length). */
  task: 'training' | 'analytics';
  query: { statistic: string; dimension: number; bound: number } | null;
  mode: string;
  mechanism: string;
  /** The DP parameters; null for a round without DP (mode none), where they mean nothing. */
  clip: number | null;
  noiseMultiplier: number | null;
  q: number | null;
  t: number | null;
  cohortSize: number;
  survivors: number;
  delta: number;
  epsilonRound: number | null;
  /** At the report's delta, over every entry up to this one; null when unbounded. */
  epsilonCumulative: number | null;
  createdAt: string;
}

export interface LedgerReport {
  generatedAt: string;
  verify: Pick<VerifyResult, 'ok' | 'entries' | 'firstBadEntry' | 'reason'>;
  publicKey: string | null;
  cap: BudgetCap | null;
  delta: number | null;
  epsilonSpent: number | null;
  budgetLeft: number | null;
  mechanisms: string[];
  sensitiveHeads: { sensitive: string[]; enabled: string[] | null };
  keyRotations: number;
  rounds: ReportRound[];
  /** The transparency log's head to keep for a later `audit verify --since` (tree-head.ts); null when the ledger does not verify. */
  head: KeptTreeHead | null;
}

/**
 * `entries` should be the verified prefix (the report says when verification failed): a failure
 * at an entry cuts the figures before it; one that names no entry (a kept head contradicted, a
 * model without its release) leaves every entry, which verified, in them.
 */
export function buildReport(entries: readonly unknown[], verify: VerifyResult, options: { cap: BudgetCap | null; enabledHeads?: readonly string[] | null; generatedAt: string; head?: KeptTreeHead | null }): LedgerReport {
  const parsed = entries.slice(0, verify.ok || verify.firstBadEntry === undefined ? entries.length : verify.firstBadEntry - 1).map((e) => LedgerEntrySchema.parse(e));
  const genesis = parsed[0];
  const total = new RdpTotal(genesis?.kind === 'genesis' ? genesis.accountant.orders : undefined);
  const delta = options.cap?.delta ?? verify.delta;
  const rounds: ReportRound[] = [];
  const mechanisms = new Set<string>();
  let keyRotations = 0;
  for (const entry of parsed) {
    if (entry.kind === 'key-rotation') keyRotations++;
    if (entry.kind !== 'round') continue;
    const r = entry.round;
    const dp = r.mode !== 'none';
    total.add(spendRdp(r, total.orders));
    if (r.outcome === 'released') mechanisms.add(`${r.mechanism} (${r.mode}${r.secagg === 'on' ? ', secure aggregation' : ''})`);
    rounds.push({
      seq: entry.seq,
      roundId: r.roundId,
      outcome: r.outcome,
      reason: r.reason,
      task: r.query ? 'analytics' : 'training',
      query: r.query ? { statistic: r.query.statistic, dimension: r.query.dimension, bound: r.query.bound } : null,
      mode: r.mode,
      mechanism: r.mechanism,
      clip: dp ? r.clip : null,
      noiseMultiplier: dp ? r.noiseMultiplier : null,
      q: dp ? r.q : null,
      t: dp ? r.t : null,
      cohortSize: r.cohortSize,
      survivors: r.survivors,
      delta: r.delta,
      epsilonRound: r.epsilonRound,
      epsilonCumulative: delta !== null && delta > 0 ? (total.epsilon(delta)?.epsilon ?? null) : null,
      createdAt: entry.createdAt,
    });
  }
  const spent = delta !== null && delta > 0 ? (total.epsilon(delta)?.epsilon ?? null) : null;
  return {
    generatedAt: options.generatedAt,
    verify: { ok: verify.ok, entries: verify.entries, ...(verify.firstBadEntry !== undefined ? { firstBadEntry: verify.firstBadEntry } : {}), ...(verify.reason !== undefined ? { reason: verify.reason } : {}) },
    publicKey: genesis?.keyId ?? null,
    cap: options.cap,
    delta,
    epsilonSpent: spent,
    budgetLeft: options.cap && spent !== null ? Math.max(0, options.cap.epsilon - spent) : null,
    mechanisms: [...mechanisms],
    sensitiveHeads: { sensitive: [...SENSITIVE_HEADS], enabled: options.enabledHeads ? options.enabledHeads.filter((h) => (SENSITIVE_HEADS as readonly string[]).includes(h)) : null },
    keyRotations,
    rounds,
    head: verify.ok ? (options.head ?? null) : null,
  };
}

const fmt = (v: number | null, digits = 4): string => (v === null ? 'unbounded' : v.toFixed(digits));

/** A round's own epsilon is at its own delta; the cumulative column is at the report's (the cap's, else the last round's). */
function cumulativeHeader(r: LedgerReport, epsilon: string, delta: string): string {
  return r.delta === null ? `cumulative ${epsilon}` : `cumulative ${epsilon} at ${delta} = ${r.delta}`;
}

function summaryLines(r: LedgerReport): string[] {
  const lines = [
    r.verify.ok
      ? `The ledger verifies: ${r.verify.entries} signed entries, hash chain intact, every epsilon recomputed and matching.`
      : r.verify.firstBadEntry === undefined
        ? `WARNING: the ledger does NOT verify: ${r.verify.reason}.`
        : `WARNING: the ledger does NOT verify. First bad entry: ${r.verify.firstBadEntry} (${r.verify.reason}). Figures below cover only the entries before it.`,
    `Privacy spent so far: epsilon = ${fmt(r.epsilonSpent)} at delta = ${r.delta ?? 'n/a'}.`,
    r.cap ? `Deployment cap: epsilon = ${r.cap.epsilon} at delta = ${r.cap.delta}; left: ${fmt(r.budgetLeft)}.` : 'No deployment cap is configured.',
    `Rounds recorded: ${r.rounds.length} (${r.rounds.filter((x) => x.outcome === 'released' && x.task === 'training').length} released a model update, ${r.rounds.filter((x) => x.outcome === 'released' && x.task === 'analytics').length} released an analytics query, ${r.rounds.filter((x) => x.outcome === 'aborted').length} aborted without spending).`,
    analyticsLine(r),
    `Mechanisms used: ${r.mechanisms.length > 0 ? r.mechanisms.join('; ') : 'none yet'}.`,
    `Sensitive model heads (age, gender, career, life stage are inferred personal traits): ${r.sensitiveHeads.sensitive.join(', ')}; enabled in the current model: ${r.sensitiveHeads.enabled === null ? 'unknown here' : r.sensitiveHeads.enabled.length > 0 ? r.sensitiveHeads.enabled.join(', ') : 'none'}.`,
    `Ledger key rotations: ${r.keyRotations}. Genesis public key: ${r.publicKey ?? 'n/a'}.`,
  ];
  if (r.head) lines.push(headLine(r.head));
  return lines;
}

/** Analytics queries are spent from the same budget as training: say which ran and what they spent. */
function analyticsLine(r: LedgerReport): string {
  const queries = r.rounds.filter((x) => x.task === 'analytics' && x.outcome === 'released');
  if (queries.length === 0) return 'Federated analytics queries released: none.';
  const byStatistic = new Map<string, number>();
  for (const x of queries) byStatistic.set(x.query?.statistic ?? '?', (byStatistic.get(x.query?.statistic ?? '?') ?? 0) + 1);
  const own = queries.reduce((a, x) => (a === null || x.epsilonRound === null ? null : a + x.epsilonRound), 0 as number | null);
  return `Federated analytics queries released: ${queries.length} (${[...byStatistic].map(([k, n]) => `${n} ${k}`).join(', ')}), counted in the cumulative epsilon like training rounds; their own epsilons sum to ${fmt(own)} (an upper bound on their share).`;
}

/** What a round released, for the tables. */
function taskLabel(x: ReportRound): string {
  return x.query ? `analytics: ${x.query.statistic} (d=${x.query.dimension}, bound ${Number(x.query.bound.toPrecision(4))})` : 'training';
}

/** The head to keep, in words: with it, a later audit proves the ledger was only appended to. */
function headLine(head: KeptTreeHead): string {
  const by = isSignedTreeHead(head) ? `signed by ${head.keyId} at ${new Date(head.timestamp).toISOString()}` : `computed from these entries at ${new Date(head.timestamp).toISOString()}`;
  return `Tree head to keep (transparency log, RFC 9162): size ${head.treeSize}, root hash ${head.rootHash}, ${by}. Keep it (audit verify --save-head FILE) and check later ledgers with audit verify --since FILE: a ledger cut or rewritten since then fails.`;
}

/** The chart's heading: "against the cap" only when there is one. */
function chartHeading(r: LedgerReport): string {
  return r.cap ? 'Cumulative epsilon against the cap' : 'Cumulative epsilon (no deployment cap configured)';
}

export function renderMarkdown(r: LedgerReport): string {
  const out = ['# Privacy ledger report', '', `Generated ${r.generatedAt}.`, '', ...summaryLines(r).map((l) => `- ${l}`), '', '## Rounds', ''];
  out.push(`| entry | round | released | outcome | mode | clip | noise z | q | t | cohort | survivors | delta | epsilon this round (at its delta) | ${cumulativeHeader(r, 'epsilon', 'delta')} |`);
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const x of r.rounds) out.push(`| ${x.seq} | ${x.roundId} | ${taskLabel(x)} | ${x.outcome}${x.reason ? ` (${x.reason.replaceAll('|', '/')})` : ''} | ${x.mode} | ${x.clip ?? '-'} | ${x.noiseMultiplier ?? '-'} | ${x.q ?? '-'} | ${x.t ?? '-'} | ${x.cohortSize} | ${x.survivors} | ${x.delta || '-'} | ${fmt(x.epsilonRound)} | ${fmt(x.epsilonCumulative)} |`);
  out.push('', `## ${chartHeading(r)}`, '', '```');
  const scale = Math.max(r.cap?.epsilon ?? 0, ...r.rounds.map((x) => x.epsilonCumulative ?? 0), 1e-9);
  const width = 50;
  const capAt = r.cap ? Math.round((r.cap.epsilon / scale) * width) : -1;
  for (const x of r.rounds) {
    const n = x.epsilonCumulative === null ? width : Math.round((x.epsilonCumulative / scale) * width);
    const bar = Array.from({ length: width + 1 }, (_, i) => (i === capAt ? '|' : i < n ? '#' : ' ')).join('');
    out.push(`round ${String(x.roundId).padStart(4)} ${bar} ${fmt(x.epsilonCumulative)}`);
  }
  if (r.cap) out.push(`${' '.repeat(11)}${' '.repeat(Math.max(0, capAt))}^ cap ${r.cap.epsilon}`);
  out.push('```', '');
  if (r.head) out.push('## Tree head to keep', '', '```json', JSON.stringify(r.head, null, 2), '```', '');
  return out.join('\n');
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * An inline SVG line chart of cumulative epsilon per round with the cap as a dashed line. Rounds
 * after a release without DP have no finite epsilon: they are drawn as red marks along the top
 * edge, labelled unbounded, never as a value (the scale comes from the finite points and the cap).
 */
export function epsilonChartSvg(r: LedgerReport, id = 'epsilon-chart'): string {
  const w = 640;
  const h = 240;
  const pad = 40;
  const points = r.rounds.map((x) => x.epsilonCumulative);
  const finite = points.filter((v): v is number => v !== null && Number.isFinite(v));
  const highest = Math.max(r.cap?.epsilon ?? 0, ...finite);
  const top = (highest > 0 ? highest : 1) * 1.1;
  const xAt = (i: number) => pad + (points.length <= 1 ? 0 : (i / (points.length - 1)) * (w - 2 * pad));
  const yAt = (v: number) => h - pad - (v / top) * (h - 2 * pad);
  const path = points.flatMap((v, i) => (v === null ? [] : [`${xAt(i).toFixed(1)},${yAt(v).toFixed(1)}`])).join(' ');
  const parts = [
    `<svg id="${id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="cumulative epsilon per round against the cap">`,
    `<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#555"/><line x1="${pad}" y1="${pad / 2}" x2="${pad}" y2="${h - pad}" stroke="#555"/>`,
    `<text x="${pad}" y="${h - 10}" font-size="12">rounds (${r.rounds.length})</text>`,
  ];
  // The axis is labelled only by values it draws: with no finite point and no cap there is no scale
  // to read (an all-unbounded ledger once read "ε 1.10" beside a round that spent 11.69).
  if (finite.length > 0 || r.cap) parts.push(`<text x="4" y="${pad / 2 + 4}" font-size="12">ε ${top.toFixed(2)}</text><text x="${pad - 14}" y="${h - pad + 4}" font-size="12">0</text>`);
  else parts.push(`<text class="no-scale" x="${pad + 8}" y="${h / 2}" font-size="12">no finite cumulative epsilon to draw</text>`);
  if (r.cap) parts.push(`<line class="cap" x1="${pad}" y1="${yAt(r.cap.epsilon).toFixed(1)}" x2="${w - pad}" y2="${yAt(r.cap.epsilon).toFixed(1)}" stroke="#c00" stroke-dasharray="6 4"/><text x="${w - pad - 90}" y="${(yAt(r.cap.epsilon) - 4).toFixed(1)}" font-size="12" fill="#c00">cap ε = ${r.cap.epsilon}</text>`);
  if (finite.length > 0) parts.push(`<polyline class="spent" fill="none" stroke="#06c" stroke-width="2" points="${path}"/>`);
  points.forEach((v, i) => {
    if (v !== null) parts.push(`<circle class="spent" cx="${xAt(i).toFixed(1)}" cy="${yAt(v).toFixed(1)}" r="3" fill="#06c"/>`);
  });
  const firstUnbounded = points.indexOf(null);
  if (firstUnbounded >= 0) {
    points.forEach((v, i) => {
      if (v === null) parts.push(`<rect class="unbounded" x="${(xAt(i) - 3).toFixed(1)}" y="${(pad / 2 - 3).toFixed(1)}" width="6" height="6" fill="#c00"/>`);
    });
    parts.push(`<text class="unbounded" x="${pad + 8}" y="${pad / 2 + 16}" font-size="12" fill="#c00">unbounded from round ${r.rounds[firstUnbounded]!.roundId}: a model was released without DP</text>`);
  }
  parts.push('</svg>');
  return parts.join('');
}

export function renderHtml(r: LedgerReport): string {
  const rows = r.rounds
    .map((x) => `<tr><td>${x.seq}</td><td>${x.roundId}</td><td>${escapeHtml(taskLabel(x))}</td><td>${escapeHtml(x.outcome + (x.reason ? ` (${x.reason})` : ''))}</td><td>${escapeHtml(x.mode)}</td><td>${x.clip ?? '-'}</td><td>${x.noiseMultiplier ?? '-'}</td><td>${x.q ?? '-'}</td><td>${x.t ?? '-'}</td><td>${x.cohortSize}</td><td>${x.survivors}</td><td>${x.delta || '-'}</td><td>${fmt(x.epsilonRound)}</td><td>${fmt(x.epsilonCumulative)}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Privacy ledger report</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}.bad{color:#c00;font-weight:bold}</style></head>
<body><h1>Privacy ledger report</h1><p>Generated ${escapeHtml(r.generatedAt)}.</p>
<ul>${summaryLines(r).map((l, i) => `<li${i === 0 && !r.verify.ok ? ' class="bad"' : ''}>${escapeHtml(l)}</li>`).join('')}</ul>
<h2>${escapeHtml(chartHeading(r))}</h2>${epsilonChartSvg(r)}
<h2>Rounds</h2><table><thead><tr><th>entry</th><th>round</th><th>released</th><th>outcome</th><th>mode</th><th>clip</th><th>noise z</th><th>q</th><th>t</th><th>cohort</th><th>survivors</th><th>δ</th><th>ε this round (at its δ)</th><th>${escapeHtml(cumulativeHeader(r, 'ε', 'δ'))}</th></tr></thead>
<tbody>
${rows}
</tbody></table>${r.head ? `\n<h2>Tree head to keep</h2><pre id="tree-head">${escapeHtml(JSON.stringify(r.head, null, 2))}</pre>` : ''}</body></html>
`;
}

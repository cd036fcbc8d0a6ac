/**
 * The budget chart (`audit report --format html`, the compliance page): finite cumulative epsilon
 * is a line against the cap; rounds after a release without DP are marked unbounded, never drawn
 * as a value, and the scale comes from the finite points.
 */
import { describe, expect, it } from 'vitest';
import { PrivacyLedger } from '../../../server/ledger/ledger.ts';
import { MemoryLedgerStore } from '../../../server/ledger/memory.ts';
import { buildReport, epsilonChartSvg, renderHtml, renderMarkdown } from '../../../shared/ledger/report.ts';
import { verifyLedger } from '../../../shared/ledger/verify.ts';
import { fixedClock, roundSpend, seededKey } from './fixtures.ts';

async function chartOf(spends: ReturnType<typeof roundSpend>[]) {
  const store = new MemoryLedgerStore();
  const ledger = await PrivacyLedger.open({ store, key: seededKey(1), software: 'portrait/test', clock: fixedClock() });
  for (const s of spends) await ledger.recordRound(s);
  const entries = await store.all();
  const report = buildReport(entries, await verifyLedger(entries), { cap: null, generatedAt: '2026-11-27T00:00:00.000Z' });
  return { report, svg: epsilonChartSvg(report) };
}

const noDp = (roundId: number) => ({ ...roundSpend({ roundId }), mode: 'none' as const, mechanism: 'none' as const, noiseMultiplier: 0, l2Sensitivity: null, shareVariance: null, shares: null, paddedDimension: null, q: null });

describe('epsilon chart', () => {
  it('draws released DP rounds as a line with a point per round', async () => {
    const { report, svg } = await chartOf([roundSpend({ roundId: 1 }), roundSpend({ roundId: 2 })]);
    expect(report.rounds.map((r) => r.epsilonCumulative)).toEqual([expect.any(Number), expect.any(Number)]);
    expect(svg.match(/<circle class="spent"/g)).toHaveLength(2);
    expect(svg).not.toContain('unbounded');
    const top = Number(/ε (\d+\.\d+)<\/text>/.exec(svg)![1]);
    expect(top).toBeCloseTo((report.rounds[1]!.epsilonCumulative as number) * 1.1, 2);
  });

  it('marks rounds after a release without DP as unbounded instead of plotting them as 0', async () => {
    const { report, svg } = await chartOf([roundSpend({ roundId: 1 }), noDp(2), roundSpend({ roundId: 3 })]);
    expect(report.rounds.map((r) => r.epsilonCumulative)).toEqual([expect.any(Number), null, null]);
    // A round without DP has no DP parameters to show.
    expect(report.rounds[1]).toMatchObject({ mode: 'none', clip: null, noiseMultiplier: null, q: null, t: null });
    expect(report.rounds[0]).toMatchObject({ mode: 'distributed', clip: 1, noiseMultiplier: 1, t: 5 });
    expect(svg.match(/<rect class="unbounded"/g)).toHaveLength(2);
    expect(svg).toContain('unbounded from round 2: a model was released without DP');
    expect(svg.match(/<circle class="spent"/g)).toHaveLength(1);
    // Nothing but the finite round sets the scale.
    expect(Number(/ε (\d+\.\d+)<\/text>/.exec(svg)![1])).toBeCloseTo((report.rounds[0]!.epsilonCumulative as number) * 1.1, 2);
  });

  it('never labels an all-unbounded ledger with a scale it does not draw (it read "ε 1.10")', async () => {
    const { svg } = await chartOf([noDp(1)]);
    expect(svg).not.toMatch(/ε \d/);
    expect(svg).toContain('no finite cumulative epsilon to draw');
    expect(svg).toContain('unbounded from round 1');
  });

  it('heads the chart "against the cap" only when a cap is configured', async () => {
    const { report } = await chartOf([roundSpend({ roundId: 1 })]);
    expect(renderHtml(report)).toContain('<h2>Cumulative epsilon (no deployment cap configured)</h2>');
    expect(renderMarkdown(report)).toContain('## Cumulative epsilon (no deployment cap configured)');
    const capped = { ...report, cap: { epsilon: 8, delta: 1e-6 } };
    expect(renderHtml(capped)).toContain('<h2>Cumulative epsilon against the cap</h2>');
    expect(epsilonChartSvg(capped)).toContain('cap ε = 8');
  });
});

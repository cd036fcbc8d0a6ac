/**
 * The `category-prefixes` query (shared/analytics/queries.ts), one level of heavy-hitter discovery:
 * its cells checked against a slow reference that counts devices per cell from their top ids
 * directly, its bound held by every device of a seeded population and attained, the refusals of
 * malformed prefix lists and alphabets naming the field, and its decoding.
 */
import { describe, expect, it } from 'vitest';
import { AnalyticsQuerySchema, decodeQuery, DEFAULT_CATEGORY_ALPHABET, deviceContribution, MAX_QUERY_CATEGORIES, planQuery } from '../../../shared/analytics/queries.ts';
import type { CategoryPrefixesQuery } from '../../../shared/analytics/queries.ts';
import type { BehaviourEvent } from '../../../shared/features/events.ts';
import { SeededRandom } from '../../../shared/features/seeded-random.ts';
import { describeIssues } from '../../../shared/protocol/messages.ts';

const parse = (input: Record<string, unknown>): CategoryPrefixesQuery => AnalyticsQuerySchema.parse({ statistic: 'category-prefixes', ...input }) as CategoryPrefixesQuery;
const norm = (v: Float32Array): number => Math.sqrt(v.reduce((a, x) => a + x * x, 0));

function events(counts: Record<string, number>): BehaviourEvent[] {
  return Object.entries(counts).flatMap(([category, n]) => Array.from({ length: n }, (_, k) => ({ userId: 'u', day: 20_000 + k, type: 'view' as const, itemId: `i${k}`, category })));
}

/** Slow reference: per (prefix, symbol-or-end) the 0/1 of one device, from its top-m ids by count (ties by id). */
function referenceCells(query: CategoryPrefixesQuery, device: readonly BehaviourEvent[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of device) counts.set(e.category, (counts.get(e.category) ?? 0) + 1);
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, query.maxCategoriesPerDevice).map(([id]) => id);
  const out = new Map<string, number>();
  for (const p of query.prefixes) {
    for (const s of [...Array.from(query.alphabet), '$']) {
      const hit = top.some((id) => (s === '$' ? id === p : id.startsWith(p + s)));
      if (hit) out.set(`${p}|${s}`, 1);
    }
  }
  return out;
}

function cellsOf(query: CategoryPrefixesQuery, contribution: Float32Array): Map<string, number> {
  const symbols = [...Array.from(query.alphabet), '$'];
  const out = new Map<string, number>();
  contribution.forEach((v, i) => {
    if (v !== 0) out.set(`${query.prefixes[Math.floor(i / symbols.length)]}|${symbols[i % symbols.length]}`, v);
  });
  return out;
}

describe('category-prefixes query', () => {
  it('has one cell per prefix and symbol plus an end cell, and bound sqrt(maxCategoriesPerDevice)', () => {
    const query = parse({ prefixes: ['c1', 'c2'], maxCategoriesPerDevice: 5 });
    expect(query.alphabet).toBe(DEFAULT_CATEGORY_ALPHABET);
    expect(planQuery(query)).toEqual({ statistic: 'category-prefixes', dimension: 2 * (DEFAULT_CATEGORY_ALPHABET.length + 1), bound: Math.sqrt(5) });
    expect(planQuery(parse({ prefixes: [''] }))).toMatchObject({ dimension: 39, bound: Math.sqrt(8) });
  });

  it('marks the cell of each of the device\'s top ids once: the next symbol, the end cell, nothing for a foreign symbol or another prefix', () => {
    const query = parse({ prefixes: ['c1', 'c2'], alphabet: 'c0123456789', maxCategoriesPerDevice: 6 });
    // c10 and c11 are under c1 (two cells), c12x twice in one cell, c2 ends at its prefix, c1A has a
    // symbol outside the alphabet, d1 is under no prefix, and c3 is the 7th id (not counted).
    const device = events({ c10: 9, c11: 8, c123: 7, c124: 6, c2: 5, c1A: 4, d1: 3, c3: 1 });
    const cells = cellsOf(query, deviceContribution(query, device));
    expect(Object.fromEntries(cells)).toEqual({ 'c1|0': 1, 'c1|1': 1, 'c1|2': 1, 'c2|$': 1 });
    expect(cells).toEqual(referenceCells(query, device));
    // The first level: every id counts under '' by its first symbol; '' never ends an id.
    const first = parse({ prefixes: [''], alphabet: 'cd' });
    expect(Object.fromEntries(cellsOf(first, deviceContribution(first, device)))).toEqual({ '|c': 1, '|d': 1 });
  });

  it('handles symbols beyond one UTF-16 unit as one symbol', () => {
    const e = '\u{1F600}';
    const query = parse({ prefixes: [`a${e}`, 'bb'], alphabet: `ab${e}` });
    const cells = cellsOf(query, deviceContribution(query, events({ [`a${e}b`]: 2, [`a${e}`]: 1, [`bb${e}`]: 1 })));
    expect(Object.fromEntries(cells)).toEqual({ [`a${e}|b`]: 1, [`a${e}|$`]: 1, [`bb|${e}`]: 1 });
  });

  it('matches the slow reference and stays within its bound on a seeded population, attaining it', () => {
    const random = new SeededRandom(11);
    const ids = Array.from({ length: 60 }, (_, i) => (i % 7 === 0 ? `${i}` : i % 11 === 0 ? `X${i}` : `c${i}`));
    const population = Array.from({ length: 300 }, () => {
      const mine: Record<string, number> = {};
      for (let k = 1 + random.int(60); k > 0; k--) {
        const id = ids[Math.floor(random.next() ** 2 * ids.length)] as string;
        mine[id] = (mine[id] ?? 0) + 1;
      }
      return events(mine);
    });
    for (const input of [{ prefixes: [''] }, { prefixes: ['c', '1', '2', '3'] }, { prefixes: ['c1', 'c2', 'c3', '14', '21'], maxCategoriesPerDevice: 3 }]) {
      const query = parse(input);
      const { dimension, bound } = planQuery(query);
      let largest = 0;
      for (const device of population) {
        const c = deviceContribution(query, device);
        expect(c).toHaveLength(dimension);
        expect(c.every((v) => v === 0 || v === 1)).toBe(true);
        expect(cellsOf(query, c)).toEqual(referenceCells(query, device));
        largest = Math.max(largest, norm(c));
      }
      expect(largest).toBeLessThanOrEqual(bound * (1 + 1e-6));
      expect(largest).toBeGreaterThan(0.5 * bound);
    }
  });

  it('refuses a malformed prefix list or alphabet, naming the field', () => {
    const cells = DEFAULT_CATEGORY_ALPHABET.length + 1;
    const most = Math.floor(MAX_QUERY_CATEGORIES / cells);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ prefixes: [] }, /^"prefixes": /],
      [{ prefixes: ['a', 'a'] }, /^"prefixes": expected distinct prefixes/],
      [{ prefixes: ['a', 'ab'] }, /^"prefixes": expected prefixes of one length/],
      [{ prefixes: ['aB'] }, /^"prefixes": expected prefixes of the alphabet's symbols, got "aB"/],
      [{ prefixes: Array.from({ length: most + 1 }, (_, i) => i.toString(36).padStart(3, '0')) }, new RegExp(`^"prefixes": expected at most ${most} prefixes with an alphabet of 38 symbols`)],
      [{ prefixes: [''], alphabet: 'aba' }, /^"alphabet": expected distinct symbols/],
      [{ prefixes: [''], alphabet: '' }, /^"alphabet": /],
      [{ prefixes: [''], maxCategoriesPerDevice: 0 }, /^"maxCategoriesPerDevice": /],
      [{ prefixes: [''], extra: 1 }, /^"\(root\)"|extra/],
    ];
    for (const [input, message] of cases) {
      const parsed = AnalyticsQuerySchema.safeParse({ statistic: 'category-prefixes', ...input });
      expect(parsed.success, JSON.stringify(input).slice(0, 80)).toBe(false);
      if (!parsed.success) expect(describeIssues(parsed.error)).toMatch(message);
    }
    // The largest list that fits is accepted.
    expect(AnalyticsQuerySchema.safeParse({ statistic: 'category-prefixes', prefixes: Array.from({ length: most }, (_, i) => i.toString(36).padStart(3, '0')) }).success).toBe(true);
  });

  it('decodes a sum into per-cell counts with ± 1.96 σ intervals, largest first', () => {
    const query = parse({ prefixes: ['x', 'y'], alphabet: 'xy' });
    // Cells: x|x x|y x|$ y|x y|y y|$
    const sum = [3, 0, 7, -1, 2, 5];
    const exact = decodeQuery(query, sum, 0);
    if (exact.statistic !== 'category-prefixes') throw new Error('wrong statistic');
    expect(exact.cells.map((c) => [c.prefix, c.symbol, c.extension, c.count.value])).toEqual([
      ['x', null, 'x', 7],
      ['y', null, 'y', 5],
      ['x', 'x', 'xx', 3],
      ['y', 'y', 'yy', 2],
      ['x', 'y', 'xy', 0],
      ['y', 'x', 'yx', -1],
    ]);
    expect(exact.cells[0]?.count.interval).toEqual([7, 7]);
    const noisy = decodeQuery(query, sum, 2, { top: 2 });
    if (noisy.statistic !== 'category-prefixes') throw new Error('wrong statistic');
    expect(noisy.cells).toHaveLength(2);
    expect(noisy.cells[0]?.count.interval?.[0]).toBeCloseTo(7 - 1.959964 * 2, 9);
    expect(noisy.cells[0]?.count.interval?.[1]).toBeCloseTo(7 + 1.959964 * 2, 9);
    expect(() => decodeQuery(query, [1, 2], 0)).toThrow(/"sum" expected 6 values for category-prefixes, got 2/);
  });
});

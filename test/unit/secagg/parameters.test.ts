/** Parameter choice (Bell et al. 2020 bounds as documented), overrides refused by field, overflow headroom, the neighbour graph. */
import { describe, expect, it } from 'vitest';
import { buildNeighbourGraph, neighboursOf, seededPermutation } from '../../../shared/secagg/graph.ts';
import { binomialUpperTail, checkOverflowHeadroom, chooseParameters, minimumDegree } from '../../../shared/secagg/parameters.ts';
import { seededRandom } from './helpers.ts';

/** Direct product-form binomial tail for small cases, as a reference. */
function referenceTail(k: number, q: number, x: number): number {
  let total = 0;
  for (let i = x; i <= k; i++) {
    let choose = 1;
    for (let j = 0; j < i; j++) choose = (choose * (k - j)) / (j + 1);
    total += choose * q ** i * (1 - q) ** (k - i);
  }
  return total;
}

describe('chooseParameters', () => {
  it('binomial tail matches a direct sum', () => {
    for (const [k, q, x] of [[10, 0.1, 3], [30, 0.3, 12], [50, 0.05, 1], [8, 0.5, 8]] as const) {
      expect(binomialUpperTail(k, q, x)).toBeCloseTo(referenceTail(k, q, x), 12);
    }
  });

  it('small cohorts use the complete graph with the worst-case threshold', () => {
    expect(chooseParameters({ n: 3, dropoutRate: 0.3, corruptFraction: 0 })).toMatchObject({ k: 2, t: 2, completeGraph: true });
    // C = ceil(0.1 * 10) = 1 colluder: t = floor((10 + 1) / 2) + 1 = 6; D = 3 dropouts leave 7 >= 6.
    expect(chooseParameters({ n: 10, dropoutRate: 0.3, corruptFraction: 0.1 })).toMatchObject({ k: 9, t: 6 });
    expect(() => chooseParameters({ n: 10, dropoutRate: 0.5, corruptFraction: 0.1 })).toThrow(/"dropoutRate"/);
  });

  it('large cohorts get a degree that grows with log n and satisfies every bound it documents', () => {
    let previous = 0;
    for (const n of [100, 1_000, 10_000, 100_000]) {
      const p = chooseParameters({ n, dropoutRate: 0.1, corruptFraction: 0.05 });
      expect(p.completeGraph).toBe(false);
      expect(p.k % 2).toBe(0);
      expect(p.k).toBeGreaterThanOrEqual(previous);
      // Logarithmic growth: each tenfold increase of n adds a bounded number of neighbours.
      if (previous > 0) expect(p.k - previous).toBeLessThanOrEqual(16);
      const m = p.k + 1;
      expect(2 * p.t).toBeGreaterThan(m);
      expect(n * binomialUpperTail(p.k, 0.05, 2 * p.t - m)).toBeLessThanOrEqual(2 ** -40);
      expect(n * binomialUpperTail(p.k, 0.1, p.k - p.t + 1)).toBeLessThanOrEqual(2 ** -20);
      expect(Math.log2(n) + p.k * Math.log2(0.15)).toBeLessThanOrEqual(-40);
      previous = p.k;
    }
    expect(previous).toBeLessThan(200);
  });

  it('accepts a safe override and refuses unsafe ones, naming the field', () => {
    const chosen = chooseParameters({ n: 1000, dropoutRate: 0.1, corruptFraction: 0.05 });
    expect(chooseParameters({ n: 1000, dropoutRate: 0.1, corruptFraction: 0.05, k: chosen.k + 10 })).toMatchObject({ k: chosen.k + 10, overridden: true });
    expect(() => chooseParameters({ n: 1000, dropoutRate: 0.1, corruptFraction: 0.05, k: 4 })).toThrow(/^"k" = 4/);
    expect(() => chooseParameters({ n: 1000, dropoutRate: 0.1, corruptFraction: 0.05, k: chosen.k, t: chosen.t - 1 })).toThrow(/^"t" = /);
    expect(() => chooseParameters({ n: 1000, dropoutRate: 0.1, corruptFraction: 0.05, k: chosen.k, t: chosen.k + 1 })).toThrow(/^"t" = /);
    expect(() => chooseParameters({ n: 1001, dropoutRate: 0.1, corruptFraction: 0.05, k: 101 })).toThrow(/"k" must be even/);
    expect(() => chooseParameters({ n: 10, dropoutRate: 0.1, corruptFraction: 0, k: 9, t: 5 })).toThrow(/^"t" = 5/);
    expect(() => chooseParameters({ n: 10, dropoutRate: 1.2, corruptFraction: 0 })).toThrow(/"dropoutRate"/);
    expect(() => chooseParameters({ n: 10, dropoutRate: 0.1, corruptFraction: 0.6 })).toThrow(/"corruptFraction"/);
    expect(() => chooseParameters({ n: 2, dropoutRate: 0.1, corruptFraction: 0 })).toThrow(/"n"/);
  });

  it('never picks a ring: the degree is at least log2 n even with no risk', () => {
    const p = chooseParameters({ n: 100_000, dropoutRate: 0, corruptFraction: 0 });
    expect(p.k).toBe(minimumDegree(100_000));
    expect(p.k).toBeGreaterThanOrEqual(17);
  });
});

describe('overflow headroom', () => {
  it('returns the numbers when n * B < 2^31', () => {
    expect(checkOverflowHeadroom(1000, 2_000_000)).toMatchObject({ maxAbsSum: 2e9, limit: 2 ** 31 });
    expect(checkOverflowHeadroom(1000, 2_000_000).headroomBits).toBeCloseTo(Math.log2(2 ** 31 / 2e9), 12);
  });
  it('refuses a config that could wrap, with the numbers', () => {
    expect(() => checkOverflowHeadroom(1000, 2_147_484)).toThrow(/"bound" 2147484 times cohort n=1000 is 2147484000, not below 2\^31 = 2147483648/);
  });
});

describe('random Harary neighbour graph', () => {
  it.each([[10, 9], [100, 8], [100, 7], [31, 6], [1000, 14]])('n=%i, k=%i: k-regular, symmetric, irreflexive, deterministic from the seed', (n, k) => {
    const seed = seededRandom(`graph-${n}-${k}`)(new Uint8Array(32));
    const graph = buildNeighbourGraph(seed, n, k);
    const again = buildNeighbourGraph(seed, n, k);
    for (let u = 1; u <= n; u++) {
      const list = graph.neighbours(u);
      expect(list).toHaveLength(k);
      expect(new Set(list).size).toBe(k);
      expect(list).not.toContain(u);
      for (const v of list) expect(graph.isNeighbour(v, u)).toBe(true);
      expect(again.neighbours(u)).toEqual(list);
    }
  });

  it('different seeds give different graphs; the permutation is a permutation', () => {
    const random = seededRandom('graph-seeds');
    const a = buildNeighbourGraph(random(new Uint8Array(32)), 200, 8);
    const b = buildNeighbourGraph(random(new Uint8Array(32)), 200, 8);
    expect(Array.from({ length: 200 }, (_, i) => a.neighbours(i + 1).join()).join('|')).not.toBe(Array.from({ length: 200 }, (_, i) => b.neighbours(i + 1).join()).join('|'));
    const perm = seededPermutation(random(new Uint8Array(32)), 500);
    expect([...perm].sort((x, y) => x - y)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
  });

  it('is not a ring in index order: neighbours of 1 are spread over the cohort', () => {
    const graph = buildNeighbourGraph(seededRandom('spread')(new Uint8Array(32)), 1000, 10);
    expect(Math.max(...graph.neighbours(1))).toBeGreaterThan(100);
  });
});

describe("a client's own view of the graph", () => {
  it.each([[10, 9], [11, 4], [100, 7], [1000, 114]])('n=%i, k=%i: neighboursOf equals the whole graph\'s list for every client', (n, k) => {
    const seed = seededRandom(`own-view-${n}-${k}`)(new Uint8Array(32));
    const graph = buildNeighbourGraph(seed, n, k);
    for (let index = 1; index <= n; index += Math.max(1, Math.floor(n / 50))) expect(neighboursOf(seed, n, k, index)).toEqual(graph.neighbours(index));
    expect(() => neighboursOf(seed, n, k, n + 1)).toThrow(/"index"/);
  });
});

/**
 * Heavy-hitter discovery of category ids (shared/analytics/heavy-hitters.ts), driven level by level
 * with releases computed here from a seeded population: without noise it finds exactly the ids
 * that at least `minCount` devices hold among their most active categories (ids that are prefixes
 * of others, ids with a foreign symbol, ids longer than the level limit included); the cap keeps
 * the largest counts; the threshold follows the noise; a release that is not this level's is
 * refused; with noise at 3σ it invents no id.
 */
import { describe, expect, it } from 'vitest';
import { advanceDiscovery, discoveredCategories, discoveryEpsilon, levelQuery, levelThreshold, startDiscovery } from '../../../shared/analytics/heavy-hitters.ts';
import type { DiscoveryOptions, DiscoveryState } from '../../../shared/analytics/heavy-hitters.ts';
import { decodeQuery, deviceContribution, planQuery } from '../../../shared/analytics/queries.ts';
import type { BehaviourEvent } from '../../../shared/features/events.ts';
import { SeededRandom } from '../../../shared/features/seeded-random.ts';

function events(ids: readonly string[]): BehaviourEvent[] {
  // The first id is the most active: ranks by event count are the list order.
  return ids.flatMap((category, rank) => Array.from({ length: ids.length - rank }, (_, k) => ({ userId: 'u', day: 20_000 + k, type: 'view' as const, itemId: `i${k}`, category })));
}

/** Devices holding each id among their top `m` (the true count discovery estimates). */
function trueCounts(population: readonly BehaviourEvent[][], m: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const device of population) {
    const counts = new Map<string, number>();
    for (const e of device) counts.set(e.category, (counts.get(e.category) ?? 0) + 1);
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, m);
    for (const [id] of top) out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

/** Runs discovery to the end, each level released as the exact sum plus Gaussian noise of std `noiseStd`. */
function discover(population: readonly BehaviourEvent[][], options: Partial<DiscoveryOptions>, noiseStd = 0, seed = 1): DiscoveryState {
  const random = new SeededRandom(seed);
  let state = startDiscovery(options);
  while (state.stopped === null) {
    const query = levelQuery(state);
    const sum = new Float64Array(planQuery(query).dimension);
    for (const device of population) deviceContribution(query, device).forEach((v, j) => (sum[j] = (sum[j] as number) + v));
    for (let j = 0; j < sum.length; j++) sum[j] = (sum[j] as number) + noiseStd * random.normal();
    state = advanceDiscovery(state, { summary: decodeQuery(query, sum, noiseStd), noiseStd, roundId: state.levels.length + 1, epsilon: noiseStd > 0 ? 0.5 : null });
  }
  return state;
}

/** A Zipf-like population over ids of 1 to 4 symbols, some prefixes of others, some with a capital. */
function population(size: number, seed: number): BehaviourEvent[][] {
  const random = new SeededRandom(seed);
  const ids = ['1', '12', '123', '1234', '2', 'ab', 'abc', 'b-1', 'c_9', 'Zed', 'zed', 'q', 'qq', 'qqq', 'x7', 'x70', 'y', '9', '99', 'k2'];
  return Array.from({ length: size }, () => {
    const mine = new Set<string>();
    for (let k = 1 + random.int(6); k > 0; k--) mine.add(ids[Math.floor(random.next() ** 2.5 * ids.length)] as string);
    return events([...mine]);
  });
}

describe('heavy-hitter discovery', () => {
  const devices = population(400, 3);

  it('without noise finds exactly the ids held by at least minCount devices', () => {
    const truth = trueCounts(devices, 8);
    const sizes: number[] = [];
    for (const minCount of [1, 30, 60]) {
      const state = discover(devices, { minCount, thresholdSigmas: 3, levels: 6 });
      expect(state.stopped).toBe('exhausted');
      const expected = [...truth.entries()].filter(([id, n]) => n >= minCount && id === id.toLowerCase()).map(([id]) => id).sort();
      const found = discoveredCategories(state);
      sizes.push(expected.length);
      expect(found.map((c) => c.category).sort()).toEqual(expected);
      for (const c of found) expect(c.count.value).toBe(truth.get(c.category));
      // Largest first, each found at the level after its last symbol.
      expect(found.map((c) => c.count.value)).toEqual([...found.map((c) => c.count.value)].sort((a, b) => (b as number) - (a as number)));
      for (const c of found) expect(c.level).toBe(c.category.length + 1);
    }
    // The thresholds cut (30 between ids held by exactly 30 and by 27 devices): fewer ids at each, none of the lists empty.
    expect(sizes[2]).toBeGreaterThan(0);
    expect(sizes[0]).toBeGreaterThan(sizes[1] as number);
    expect(sizes[1]).toBeGreaterThan(sizes[2] as number);
    // 'Zed' has a symbol outside the default alphabet: it contributes nothing from its first symbol.
    expect(truth.get('Zed')).toBeGreaterThan(0);
  });

  it('stops at the level limit with the open prefixes, and keeps only the largest counts under the cap', () => {
    const limited = discover(devices, { minCount: 1, levels: 3 });
    expect(limited.stopped).toBe('levels');
    expect(limited.levels).toHaveLength(3);
    expect(discoveredCategories(limited).every((c) => c.category.length <= 2)).toBe(true);
    expect(limited.unfinished).toContain('123');
    expect(limited.unfinished.every((p) => p.length === 3)).toBe(true);

    const capped = discover(devices, { minCount: 1, maxCandidates: 2, levels: 6 });
    const first = capped.levels[0];
    // Level 1 sees first symbols 1 2 a b c z q x y 9 k: 11 pass, 2 go on.
    expect(first).toMatchObject({ level: 1, prefixes: 1, dimension: 39, kept: 2, dropped: 9, found: 0, threshold: 1 });
    const truth = trueCounts(devices, 8);
    const byFirst = new Map<string, number>();
    for (const device of devices) {
      const top = new Set([...new Set(device.map((e) => e.category))].slice(0, 8).map((id) => id[0] as string));
      for (const s of top) byFirst.set(s, (byFirst.get(s) ?? 0) + 1);
    }
    const largest = [...byFirst.entries()].filter(([s]) => s !== 'Z').sort((a, b) => b[1] - a[1]).slice(0, 2).map(([s]) => s).sort();
    expect(capped.levels[1]?.prefixes).toBe(2);
    expect([...new Set(discoveredCategories(capped).map((c) => c.category[0]))].sort()).toEqual(largest);
    expect(truth.size).toBeGreaterThan(10);
  });

  it('sets the threshold from the released noise, and under noise at 3 sigma invents no id', () => {
    expect(levelThreshold({ thresholdSigmas: 3, minCount: 1 }, 12.8)).toBeCloseTo(38.4, 9);
    expect(levelThreshold({ thresholdSigmas: 3, minCount: 50 }, 12.8)).toBe(50);
    expect(levelThreshold({ thresholdSigmas: 3, minCount: 1 }, 0)).toBe(1);
    const truth = trueCounts(devices, 8);
    for (let seed = 1; seed <= 5; seed++) {
      const state = discover(devices, { thresholdSigmas: 3, levels: 6 }, 4, seed);
      const found = discoveredCategories(state);
      for (const c of found) expect(truth.get(c.category), c.category).toBeGreaterThan(0);
      // Every id far above the threshold is found.
      for (const [id, n] of truth) if (n >= 3 * 4 + 5 * 4 && id === id.toLowerCase()) expect(found.map((c) => c.category)).toContain(id);
      expect(state.levels.every((l) => l.threshold === 12)).toBe(true);
      expect(discoveryEpsilon(state)).toBeCloseTo(0.5 * state.levels.length, 9);
    }
    expect(discoveryEpsilon(discover(devices, { levels: 2 }))).toBeNull();
  });

  it('refuses bad options, a release that is not this level\'s, and a stopped state', () => {
    expect(() => startDiscovery({ maxCandidates: 600 })).toThrow(/"maxCandidates" expected an integer in \[1, 512\]/);
    expect(() => startDiscovery({ levels: 0 })).toThrow(/"levels"/);
    expect(() => startDiscovery({ thresholdSigmas: -1 })).toThrow(/"thresholdSigmas"/);
    expect(() => startDiscovery({ alphabet: 'aa' })).toThrow(/"alphabet" expected distinct symbols/);
    const state = startDiscovery({ alphabet: 'ab' });
    const wrong = decodeQuery({ statistic: 'category-prefixes', prefixes: ['a'], alphabet: 'ab', maxCategoriesPerDevice: 8 }, [0, 0, 0], 0);
    expect(() => advanceDiscovery(state, { summary: wrong, noiseStd: 0 })).toThrow(/"release.summary" expected the 3 cells of this level's 1 prefixes/);
    const other = decodeQuery({ statistic: 'spend-histogram', bins: 2, maxLogPrice: 1 }, [0, 0], 0);
    expect(() => advanceDiscovery(state, { summary: other, noiseStd: 0 })).toThrow(/expected a category-prefixes result, got spend-histogram/);
    const empty = decodeQuery(levelQuery(state), [0, 0, 0], 0);
    const done = advanceDiscovery(state, { summary: empty, noiseStd: 0 });
    expect(done).toMatchObject({ stopped: 'exhausted', candidates: [], found: [] });
    expect(() => levelQuery(done)).toThrow(/discovery has stopped/);
  });
});

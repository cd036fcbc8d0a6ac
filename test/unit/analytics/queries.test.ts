/**
 * Federated analytics queries (shared/analytics/queries.ts): every device contribution stays
 * within its query's bound (the round's clip), the decoded numbers equal the central computation
 * on noise-free sums, and the 95 % intervals of noised releases cover the noise-free value in
 * about 95 % of seeded draws.
 */
import { describe, expect, it } from 'vitest';
import { AnalyticsQuerySchema, decodeQuery, deviceContribution, histogramQuantile, planQuery } from '../../../shared/analytics/queries.ts';
import type { AnalyticsQuery, AnalyticsQueryInput } from '../../../shared/analytics/queries.ts';
import type { BehaviourEvent, EventType } from '../../../shared/features/events.ts';
import { SeededRandom } from '../../../shared/features/seeded-random.ts';
import { logPrice } from '../../../shared/features/vocabulary.ts';

const CATEGORIES = Array.from({ length: 30 }, (_, i) => `c${i}`);
const TYPES: EventType[] = ['view', 'click', 'favourite', 'cart', 'buy'];

/** A seeded shopper: a few to a few hundred events over a skewed set of categories, some priced. */
function shopper(random: SeededRandom, index: number): BehaviourEvent[] {
  const n = 1 + random.int(random.chance(0.2) ? 400 : 40);
  return Array.from({ length: n }, (_, k) => {
    const e: BehaviourEvent = { userId: `u${index}`, day: 20_000 + random.int(90), type: TYPES[random.int(TYPES.length)] as EventType, itemId: `i${k}`, category: `c${Math.floor(random.next() ** 2 * 35)}` };
    if (random.chance(0.7)) e.price = Math.exp(random.normal() * 1.5 + 4);
    return e;
  });
}

const parse = (input: AnalyticsQueryInput): AnalyticsQuery => AnalyticsQuerySchema.parse(input);
const norm = (v: Float32Array): number => Math.sqrt(v.reduce((a, x) => a + x * x, 0));

const QUERIES: AnalyticsQueryInput[] = [
  { statistic: 'category-counts', categories: CATEGORIES },
  { statistic: 'category-counts', categories: CATEGORIES, maxCategoriesPerDevice: 3, maxEventsPerCategory: 5 },
  { statistic: 'log-price-moments', maxEventsPerDevice: 8 },
  { statistic: 'spend-histogram', bins: 32 },
];

describe('analytics queries', () => {
  const random = new SeededRandom(7);
  const population = Array.from({ length: 400 }, (_, i) => shopper(random, i));

  it('keeps every device contribution within its query bound, at the query dimension', () => {
    for (const input of QUERIES) {
      const query = parse(input);
      const { dimension, bound } = planQuery(query);
      let largest = 0;
      for (const events of population) {
        const c = deviceContribution(query, events);
        expect(c).toHaveLength(dimension);
        expect(c.every((v) => v >= 0)).toBe(true);
        largest = Math.max(largest, norm(c));
      }
      expect(largest).toBeLessThanOrEqual(bound * (1 + 1e-6));
      // The bound is attained by some device (it is not loose by construction).
      expect(largest).toBeGreaterThan(0.5 * bound);
    }
  });

  it('decodes noise-free sums into the central numbers', () => {
    const sum = (query: AnalyticsQuery) => {
      const out = new Float64Array(planQuery(query).dimension);
      for (const events of population) deviceContribution(query, events).forEach((v, j) => (out[j] = (out[j] as number) + v));
      return out;
    };
    // Category counts with one event per category: the number of shoppers active in each category.
    const counts = parse(QUERIES[0] as AnalyticsQueryInput);
    const decoded = decodeQuery(counts, sum(counts), 0);
    if (decoded.statistic !== 'category-counts') throw new Error('wrong statistic');
    const c0 = population.filter((events) => {
      const mine = new Map<string, number>();
      for (const e of events) mine.set(e.category, (mine.get(e.category) ?? 0) + 1);
      const top = [...mine.entries()].filter(([c]) => CATEGORIES.includes(c)).sort((a, b) => b[1] - a[1] || Number(a[0].slice(1)) - Number(b[0].slice(1))).slice(0, 8);
      return top.some(([c]) => c === 'c0');
    }).length;
    expect(decoded.categories.find((c) => c.category === 'c0')?.count.value).toBeCloseTo(c0, 3);
    expect(decoded.categories.map((c) => c.count.value)).toEqual([...decoded.categories.map((c) => c.count.value)].sort((a, b) => (b as number) - (a as number)));
    expect(decoded.categories.reduce((a, c) => a + (c.share.value as number), 0)).toBeCloseTo(1, 6);

    // Log-price moments over each device's most recent 8 priced events.
    const moments = parse(QUERIES[2] as AnalyticsQueryInput);
    const m = decodeQuery(moments, sum(moments), 0);
    if (m.statistic !== 'log-price-moments') throw new Error('wrong statistic');
    const xs = population.flatMap((events) =>
      events
        .filter((e) => e.price !== undefined)
        .sort((a, b) => b.day - a.day)
        .slice(0, 8)
        .map((e) => logPrice(e.price as number)),
    );
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
    expect(m.events.value).toBeCloseTo(xs.length, 2);
    expect(m.mean.value).toBeCloseTo(mean, 4);
    expect(m.std.value).toBeCloseTo(std, 3);

    // Spend histogram: quantiles of the buyers' mean log price, up to the bin width.
    const spend = parse(QUERIES[3] as AnalyticsQueryInput);
    const h = decodeQuery(spend, sum(spend), 0);
    if (h.statistic !== 'spend-histogram') throw new Error('wrong statistic');
    const means = population
      .map((events) => events.filter((e) => e.type === 'buy' && e.price !== undefined).map((e) => logPrice(e.price as number)))
      .filter((b) => b.length > 0)
      .map((b) => b.reduce((a, x) => a + x, 0) / b.length)
      .sort((a, b) => a - b);
    expect(h.buyers.value).toBe(means.length);
    const width = (spend.statistic === 'spend-histogram' ? spend.maxLogPrice / spend.bins : 0) as number;
    for (const { q, logPrice: estimate } of h.quantiles) expect(Math.abs((estimate.value as number) - (means[Math.floor(q * (means.length - 1))] as number))).toBeLessThanOrEqual(width + 1e-9);
  });

  it('gives 95 % intervals that cover the noise-free value in at least 90 % of 100 seeded releases', () => {
    const query = parse({ statistic: 'log-price-moments', maxEventsPerDevice: 8 });
    const exact = new Float64Array(3);
    for (const events of population) deviceContribution(query, events).forEach((v, j) => (exact[j] = (exact[j] as number) + v));
    const truth = decodeQuery(query, exact, 0);
    if (truth.statistic !== 'log-price-moments') throw new Error('wrong statistic');
    const noise = new SeededRandom(11);
    const noiseStd = 3;
    let covered = { mean: 0, std: 0, events: 0 };
    for (let seed = 1; seed <= 100; seed++) {
      const released = exact.map((v) => v + noiseStd * noise.normal());
      const d = decodeQuery(query, released, noiseStd, { seed });
      if (d.statistic !== 'log-price-moments') throw new Error('wrong statistic');
      const inside = (e: { interval: [number, number] | null }, v: number | null) => (e.interval && v !== null && e.interval[0] <= v && v <= e.interval[1] ? 1 : 0);
      covered = { mean: covered.mean + inside(d.mean, truth.mean.value), std: covered.std + inside(d.std, truth.std.value), events: covered.events + inside(d.events, truth.events.value) };
    }
    expect(covered.mean).toBeGreaterThanOrEqual(90);
    expect(covered.std).toBeGreaterThanOrEqual(90);
    expect(covered.events).toBeGreaterThanOrEqual(90);
  });

  it('reads quantiles from noisy histograms, negative cells counting as zero', () => {
    expect(histogramQuantile([0, 10, 0, 10], 0.5, 4)).toBeCloseTo(2, 9);
    expect(histogramQuantile([-5, 10, -3, 10], 0.25, 4)).toBeCloseTo(1.5, 9);
    expect(histogramQuantile([-1, -2], 0.5, 4)).toBeNaN();
  });

  it('refuses malformed queries and sums naming the field', () => {
    expect(() => parse({ statistic: 'category-counts', categories: [] })).toThrow(/categories/);
    expect(() => parse({ statistic: 'category-counts', categories: ['a', 'a'] })).toThrow(/distinct/);
    expect(() => parse({ statistic: 'spend-histogram', bins: 1 } as AnalyticsQueryInput)).toThrow(/bins/);
    const query = parse({ statistic: 'spend-histogram', bins: 4 });
    expect(() => decodeQuery(query, [1, 2, 3], 0)).toThrow(/"sum" expected 4 values/);
    expect(() => decodeQuery(query, [1, 2, 3, 4], -1)).toThrow(/"noiseStd"/);
  });
});

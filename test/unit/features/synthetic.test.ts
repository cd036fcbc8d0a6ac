/**
 * The synthetic population: determinism, schema validity, config checks, Tianchi-like statistics
 * with the latent profile visible in behaviour, and streaming in flat memory.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { dayFromDate, parseEvent } from '../../../shared/features/events.ts';
import { ProfileLabelsSchema } from '../../../shared/features/labels.ts';
import { SeededRandom } from '../../../shared/features/seeded-random.ts';
import {
  generateSyntheticPopulation,
  generateSyntheticUsers,
  resolveSyntheticConfig,
  syntheticDataset,
} from '../../../shared/features/synthetic.ts';
import type { SyntheticConfig, SyntheticUser } from '../../../shared/features/synthetic.ts';

describe('SeededRandom', () => {
  it('matches the reference xoshiro128** (Blackman & Vigna, xoshiro128starstar.c) from state 1,2,3,4', () => {
    // Produced by the reference next() compiled with gcc, state {1, 2, 3, 4}, first 8 outputs.
    const expected = [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849];
    const rng = SeededRandom.fromState([1, 2, 3, 4]);
    expect(expected.map(() => rng.nextUint32())).toEqual(expected);
  });

  it('gives distinct streams for neighbouring keys and uniform-looking floats', () => {
    const a = new SeededRandom(7, 0);
    const b = new SeededRandom(7, 1);
    const c = new SeededRandom(8, 0);
    const firsts = [a, b, c].map((r) => r.nextUint32());
    expect(new Set(firsts).size).toBe(3);
    const xs = Array.from({ length: 10_000 }, () => a.next());
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.reduce((s, x) => s + x, 0) / xs.length).toBeCloseTo(0.5, 1);
  });

  it('rejects keys outside uint32', () => {
    expect(() => new SeededRandom(-1)).toThrow(RangeError);
    expect(() => new SeededRandom(1, 2 ** 32)).toThrow(/"b"/);
  });
});

describe('config', () => {
  it('fills in the Tianchi-shaped defaults', () => {
    expect(resolveSyntheticConfig({ users: 5, seed: 1 })).toEqual({
      users: 5,
      seed: 1,
      days: 10,
      startDay: dayFromDate('20190610'),
      categories: 400,
    });
  });

  it.each<[Partial<SyntheticConfig>, ErrorConstructor, RegExp]>([
    [{ users: 0 }, RangeError, /"users" expected an integer in 1\.\.1000000, got 0/],
    [{ users: 1_000_001 }, RangeError, /"users"/],
    [{ users: 2.5 }, RangeError, /"users"/],
    [{ users: Number.NaN }, RangeError, /"users"/],
    [{ users: '10' as unknown as number }, TypeError, /"users" expected a number, got string/],
    [{ seed: -1 }, RangeError, /"seed"/],
    [{ seed: 2 ** 32 }, RangeError, /"seed"/],
    [{ days: 0 }, RangeError, /"days"/],
    [{ startDay: -1 }, RangeError, /"startDay"/],
    [{ categories: 5 }, RangeError, /"categories"/],
  ])('rejects %o', (override, errorType, message) => {
    const config = { users: 10, seed: 1, ...override };
    // Checked when the generator is created, not on its first next().
    expect(() => generateSyntheticUsers(config)).toThrow(errorType);
    expect(() => generateSyntheticUsers(config)).toThrow(message);
    expect(() => syntheticDataset(config)).toThrow(message);
  });

  it('rejects a missing config object', () => {
    expect(() => resolveSyntheticConfig(null as unknown as SyntheticConfig)).toThrow(TypeError);
  });
});

describe('determinism', () => {
  it('gives byte-identical output for the same seed', () => {
    const a = JSON.stringify([...generateSyntheticUsers({ users: 200, seed: 11 })]);
    const b = JSON.stringify([...generateSyntheticUsers({ users: 200, seed: 11 })]);
    expect(a).toBe(b);
  });

  it('generates user i the same whether 10 or 1000 users are asked for', () => {
    const ten = [...generateSyntheticUsers({ users: 10, seed: 3 })];
    const thousand = [...generateSyntheticUsers({ users: 1000, seed: 3 })];
    expect(thousand.slice(0, 10)).toEqual(ten);
    expect(ten.map((u) => u.userId)).toEqual(Array.from({ length: 10 }, (_, i) => `s3-${i}`));
  });

  it('gives a different population for a different seed', () => {
    const a = [...generateSyntheticUsers({ users: 50, seed: 1 })];
    const b = [...generateSyntheticUsers({ users: 50, seed: 2 })];
    const items = (u: (typeof a)[number]): string => u.events.map((e) => e.itemId).join();
    expect(a.filter((u, i) => items(u) === items(b[i])).length).toBeLessThan(3);
    expect(b[0].userId).toBe('s2-0');
  });
});

describe('schema', () => {
  const config = { users: 300, seed: 5, days: 10, categories: 400 };
  const users = [...generateSyntheticUsers(config)];
  const startDay = resolveSyntheticConfig(config).startDay;

  it('emits only events that parseEvent accepts unchanged, sorted by day inside the window', () => {
    const problems: string[] = [];
    let events = 0;
    for (const user of users) {
      if (user.events.length === 0) problems.push(`${user.userId}: no events`);
      user.events.forEach((e, j) => {
        const cat = /^c(\d+)$/.exec(e.category);
        const bad = [
          JSON.stringify(parseEvent(e)) !== JSON.stringify(e) && 'changed by parseEvent',
          e.userId !== user.userId && 'userId',
          (e.day < startDay || e.day >= startDay + 10) && 'day outside window',
          j > 0 && e.day < user.events[j - 1].day && 'not sorted',
          !['click', 'favourite', 'cart', 'buy'].includes(e.type) && 'type',
          (cat === null || Number(cat[1]) >= 400) && 'category',
          cat !== null && !e.itemId.startsWith(`i${cat[1]}-`) && 'itemId',
          !(e.price !== undefined && e.price > 0) && 'price',
        ].filter(Boolean);
        if (bad.length > 0) problems.push(`${user.userId}#${j}: ${bad.join(', ')} in ${JSON.stringify(e)}`);
        events++;
      });
      expect(ProfileLabelsSchema.parse(user.labels)).toEqual(user.labels);
    }
    expect(problems.slice(0, 5)).toEqual([]);
    expect(events).toBeGreaterThan(300 * 20);
  });

  it('keeps a stable catalogue: an item has one category, price and brand everywhere', () => {
    const seen = new Map<string, string>();
    let branded = 0;
    for (const user of [...users, ...generateSyntheticUsers({ users: 300, seed: 6 })]) {
      for (const e of user.events) {
        const key = `${e.category}|${e.price}|${e.brand ?? ''}`;
        expect(seen.get(e.itemId) ?? key).toBe(key);
        seen.set(e.itemId, key);
        if (e.brand !== undefined) branded++;
      }
    }
    expect(branded).toBeGreaterThan(0);
  });

  it('honours days, startDay and categories', () => {
    const start = dayFromDate('20200101');
    for (const user of generateSyntheticUsers({ users: 50, seed: 9, days: 3, startDay: start, categories: 20 })) {
      for (const e of user.events) {
        expect(e.day - start).toBeGreaterThanOrEqual(0);
        expect(e.day - start).toBeLessThan(3);
        expect(Number(e.category.slice(1))).toBeLessThan(20);
      }
    }
  });

  it('collects a small population into a Dataset with a complete cleaning report', () => {
    const dataset = syntheticDataset({ users: 40, seed: 5 });
    const events = dataset.users.reduce((n, u) => n + u.events.length, 0);
    expect(dataset.name).toBe('synthetic:40');
    expect(dataset.startDay).toBe(startDay);
    expect(dataset.days).toBe(10);
    expect(dataset.users).toEqual(users.slice(0, 40));
    expect(dataset.cleaning).toEqual({ rowsRead: events, eventsKept: events, dropped: {}, repaired: {} });
  });
});

describe('statistics (seed 20190610, 2,000 users)', () => {
  const users = [...generateSyntheticPopulation({ users: 2000, seed: 20190610 })];
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  };
  const startDay = dayFromDate('20190610');
  /** Categories a user touched on days [from, to) of the window. */
  const categoriesOf = (u: SyntheticUser, from = 0, to = Infinity): Set<string> =>
    new Set(
      u.record.events.filter((e) => e.day - startDay >= from && e.day - startDay < to).map((e) => e.category),
    );

  /** Total variation between the category mixes of two groups, each user counting each category once. */
  const categoryDistance = (a: SyntheticUser[], b: SyntheticUser[]): number => {
    const mix = (group: SyntheticUser[]): Map<string, number> => {
      const counts = new Map<string, number>();
      let total = 0;
      for (const u of group) {
        for (const c of categoriesOf(u)) {
          counts.set(c, (counts.get(c) ?? 0) + 1);
          total++;
        }
      }
      for (const [c, n] of counts) counts.set(c, n / total);
      return counts;
    };
    const pa = mix(a);
    const pb = mix(b);
    let sum = 0;
    for (const c of new Set([...pa.keys(), ...pb.keys()])) sum += Math.abs((pa.get(c) ?? 0) - (pb.get(c) ?? 0));
    return sum / 2;
  };
  const halves = (group: SyntheticUser[]): [SyntheticUser[], SyntheticUser[]] => [
    group.filter((_, i) => i % 2 === 0),
    group.filter((_, i) => i % 2 === 1),
  ];

  it('has Tianchi-like activity: mean ~58 events, heavy tail within 1..500', () => {
    const counts = users.map((u) => u.record.events.length);
    const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
    expect(mean).toBeGreaterThan(40);
    expect(mean).toBeLessThan(80);
    expect(median(counts)).toBeGreaterThan(25);
    expect(median(counts)).toBeLessThan(50);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...counts)).toBeLessThanOrEqual(500);
    expect(counts.filter((n) => n <= 3).length).toBeGreaterThan(0);
    expect(counts.filter((n) => n >= 200).length).toBeGreaterThan(10);
    expect(users.every((u) => u.profile.activity === u.record.events.length)).toBe(true);
  });

  it('touches a median of about 6 categories per user over a skewed catalogue', () => {
    const perUser = median(users.map((u) => categoriesOf(u).size));
    expect(perUser).toBeGreaterThanOrEqual(4);
    expect(perUser).toBeLessThanOrEqual(9);
    const popularity = new Map<string, number>();
    let total = 0;
    for (const u of users) {
      for (const e of u.record.events) {
        popularity.set(e.category, (popularity.get(e.category) ?? 0) + 1);
        total++;
      }
    }
    const sorted = [...popularity.values()].sort((a, b) => b - a);
    const share = (k: number): number => sorted.slice(0, k).reduce((a, b) => a + b, 0) / total;
    expect(popularity.size).toBeGreaterThan(200);
    expect(share(10)).toBeGreaterThan(0.3); // Tianchi: 0.55
    expect(share(40)).toBeGreaterThan(0.6); // Tianchi: 0.80
  });

  it('has a click-heavy funnel like Tianchi (68% click, 18% cart, 8% buy, 6.5% favourite)', () => {
    const types = new Map<string, number>();
    let total = 0;
    for (const u of users) {
      for (const e of u.record.events) {
        types.set(e.type, (types.get(e.type) ?? 0) + 1);
        total++;
      }
    }
    const rate = (t: string): number => (types.get(t) ?? 0) / total;
    expect(rate('click')).toBeGreaterThan(0.55);
    expect(rate('click')).toBeLessThan(0.8);
    expect(rate('cart')).toBeGreaterThan(0.1);
    expect(rate('buy')).toBeGreaterThan(0.03);
    expect(rate('buy')).toBeLessThan(0.15);
    expect(rate('favourite')).toBeGreaterThan(0.03);
  });

  it('has higher-tier spenders buy pricier items', () => {
    const byTier = [0, 1, 2].map((tier) =>
      users
        .filter((u) => u.profile.spendingTier === tier)
        .flatMap((u) => u.record.events.filter((e) => e.type === 'buy').map((e) => e.price ?? 0)),
    );
    for (const prices of byTier) expect(prices.length).toBeGreaterThan(500);
    const [low, mid, high] = byTier.map(median);
    expect(mid).toBeGreaterThan(low * 1.15);
    expect(high).toBeGreaterThan(mid * 1.15);
  });

  it('keeps interests: most of a user’s day 7-9 categories were already seen in days 0-6', () => {
    const overlaps: number[] = [];
    for (const u of users) {
      const early = categoriesOf(u, 0, 7);
      const late = categoriesOf(u, 7, 10);
      if (early.size === 0 || late.size === 0) continue;
      overlaps.push([...late].filter((c) => early.has(c)).length / late.size);
    }
    expect(overlaps.length).toBeGreaterThan(1000);
    const mean = overlaps.reduce((a, b) => a + b, 0) / overlaps.length;
    expect(mean).toBeGreaterThan(0.45); // Tianchi: 0.58
    expect(mean).toBeLessThan(0.9); // drift: not trivially predictable
  });

  it('makes age, gender and the parent stage visible in category preferences', () => {
    const age = (a: number): SyntheticUser[] => users.filter((u) => u.profile.age === a);
    const noise = Math.max(categoryDistance(...halves(age(1))), categoryDistance(...halves(age(2))));
    expect(categoryDistance(age(1), age(3))).toBeGreaterThan(2 * noise);
    expect(categoryDistance(age(2), age(3))).toBeGreaterThan(noise);

    const men = users.filter((u) => u.profile.gender === 1);
    const women = users.filter((u) => u.profile.gender === 0);
    expect(categoryDistance(men, women)).toBeGreaterThan(1.8 * categoryDistance(...halves(women)));

    const parents = users.filter((u) => u.profile.stages.includes(7));
    const others = users.filter((u) => !u.profile.stages.includes(7));
    expect(categoryDistance(parents, others)).toBeGreaterThan(1.3 * categoryDistance(...halves(others)));
  });

  it('labels most users, with about 10% missing career like Tianchi', () => {
    const missing = (field: 'age' | 'gender' | 'career' | 'stage'): number =>
      users.filter((u) => u.record.labels[field] === undefined).length / users.length;
    expect(missing('career')).toBeGreaterThan(0.06);
    expect(missing('career')).toBeLessThan(0.14);
    for (const field of ['age', 'gender', 'stage'] as const) expect(missing(field)).toBeLessThan(0.05);
    const women = users.filter((u) => u.record.labels.gender === 0).length / users.length;
    expect(women).toBeGreaterThan(0.65); // Tianchi: 76% gender 0
    for (const u of users) {
      if (u.record.labels.age !== undefined) expect(u.record.labels.age).toBe(u.profile.age);
      if (u.record.labels.stage !== undefined) expect(u.record.labels.stage).toEqual(u.profile.stages);
    }
  });
});

describe('streaming', () => {
  it('generates lazily: the first users of a 1,000,000-user population come at once', () => {
    const started = performance.now();
    const stream = generateSyntheticUsers({ users: 1_000_000, seed: 1 });
    for (let i = 0; i < 5; i++) expect(stream.next().value?.userId).toBe(`s1-${i}`);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('iterates 100,000 users with flat heap', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const heap = (): number => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    let users = 0;
    let events = 0;
    // A first pass fills the item-id cache, which is part of the (bounded) catalogue.
    for (const u of generateSyntheticUsers({ users: 5_000, seed: 99 })) events += u.events.length;
    const before = heap();
    let peak = before;
    const started = performance.now();
    for (const u of generateSyntheticUsers({ users: 100_000, seed: 99 })) {
      users++;
      events += u.events.length;
      if (users % 25_000 === 0) peak = Math.max(peak, heap());
    }
    const seconds = (performance.now() - started) / 1000;
    expect(users).toBe(100_000);
    expect(events).toBeGreaterThan(100_000 * 40);
    // Holding them would take hundreds of MB; streaming stays within the catalogue's few MB.
    expect(peak - before).toBeLessThan(16 * 1024 * 1024);
    expect(seconds).toBeLessThan(30);
  });
});

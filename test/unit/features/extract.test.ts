import { describe, expect, it } from 'vitest';
import type { BehaviourEvent, EventType } from '../../../shared/features/events.ts';
import type { UserRecord } from '../../../shared/features/dataset.ts';
import { buildExamples } from '../../../shared/features/examples.ts';
import { extractFeatures, extractLabels, extractSequence, featureContext, featureNames, featureSize, historyBefore, interestSlots, SEQUENCE_EVENT_CHANNELS } from '../../../shared/features/extract.ts';
import { DEFAULT_SPLIT, splitOf, splitUsers } from '../../../shared/features/split.ts';
import { buildVocabulary, hashString, spendingTier } from '../../../shared/features/vocabulary.ts';
import type { Vocabulary } from '../../../shared/features/vocabulary.ts';
import { describeWindows, validateWindows } from '../../../shared/features/windows.ts';

const START = 18_057; // 2019-06-10

function ev(day: number, type: EventType, category: string, price?: number, itemId = `${category}-item`): BehaviourEvent {
  const e: BehaviourEvent = { userId: 'u1', day: START + day, type, itemId, category };
  if (price !== undefined) e.price = price;
  return e;
}

const vocab: Vocabulary = {
  categories: ['a', 'b', 'c'],
  hashBuckets: 2,
  popularity: [0.5, 0.3, 0.1],
  logPriceMean: Math.log1p(10),
  logPriceStd: 1,
  spendingBounds: [Math.log1p(5), Math.log1p(50)],
};

// Four events before the cut on day 4, two after it.
const events = [ev(0, 'click', 'a', 9), ev(1, 'click', 'a', 9, 'a-2'), ev(3, 'cart', 'b', 99), ev(3, 'buy', 'zzz', 9), ev(4, 'buy', 'c', 60), ev(5, 'click', 'a')];
const value = (features: Float32Array, name: string) => features[featureNames(vocab).indexOf(name)] as number;

describe('extractFeatures', () => {
  const ctx = featureContext(vocab, START);
  const cut = START + 4;
  const f = extractFeatures(historyBefore(events, cut), cut, ctx);

  it('has the documented size and names', () => {
    expect(f.length).toBe(featureSize(vocab));
    expect(featureNames(vocab)).toHaveLength(featureSize(vocab));
  });

  it('counts behaviour by type, recency and activity by hand', () => {
    expect(value(f, 'logCountClick')).toBeCloseTo(Math.log1p(2), 6);
    expect(value(f, 'logCountCart')).toBeCloseTo(Math.log1p(1), 6);
    expect(value(f, 'logCountBuy')).toBeCloseTo(Math.log1p(1), 6);
    expect(value(f, 'logCountView')).toBe(0);
    expect(value(f, 'logCountAll')).toBeCloseTo(Math.log1p(4), 6);
    expect(value(f, 'activeDayShare')).toBeCloseTo(3 / 4, 6); // days 0, 1, 3 of a 4-day history
    expect(value(f, 'daysSinceLastEvent')).toBeCloseTo(1 / 4, 6); // last event day 3, cut day 4
    expect(value(f, 'daysSinceLastBuy')).toBeCloseTo(1 / 4, 6);
    expect(value(f, 'logCountLastDay')).toBeCloseTo(Math.log1p(2), 6);
    expect(value(f, 'logCountLast3Days')).toBeCloseTo(Math.log1p(3), 6); // days 1, 3, 3
    expect(value(f, 'logDistinctCategories')).toBeCloseTo(Math.log1p(3), 6);
    expect(value(f, 'logDistinctItems')).toBeCloseTo(Math.log1p(4), 6);
  });

  it('spreads interest over vocabulary slots and hashes the rest into buckets', () => {
    expect(value(f, 'share:cat:a')).toBeCloseTo(2 / 4, 6);
    expect(value(f, 'share:cat:b')).toBeCloseTo(1 / 4, 6);
    expect(value(f, 'share:cat:c')).toBe(0);
    const bucket = hashString('zzz') % 2;
    expect(value(f, `share:bucket:${bucket}`)).toBeCloseTo(1 / 4, 6);
    let shareSum = 0;
    let decayedSum = 0;
    for (const name of featureNames(vocab)) {
      if (name.startsWith('share:')) shareSum += value(f, name);
      if (name.startsWith('decayedShare:')) decayedSum += value(f, name);
    }
    expect(shareSum).toBeCloseTo(1, 6);
    expect(decayedSum).toBeCloseTo(1, 6);
    // Recent, strong events weigh more in the decayed share than in the plain one.
    expect(value(f, 'decayedShare:cat:b')).toBeGreaterThan(value(f, 'share:cat:b'));
  });

  it('summarises prices of viewed and bought items', () => {
    const logs = [9, 9, 99, 9].map((p) => Math.log1p(p));
    const mean = logs.reduce((a, b) => a + b) / logs.length;
    expect(value(f, 'meanLogPrice')).toBeCloseTo(mean - Math.log1p(10), 5);
    expect(value(f, 'maxLogPrice')).toBeCloseTo(Math.log1p(99) - Math.log1p(10), 5);
    expect(value(f, 'meanLogPriceBought')).toBeCloseTo(Math.log1p(9) - Math.log1p(10), 5);
    expect(value(f, 'hasBought')).toBe(1);
    expect(value(f, 'meanLogPriceIntent')).toBeCloseTo(Math.log1p(99) - Math.log1p(10), 5);
  });

  it('never looks at events on or after the cut day', () => {
    const withFuture = extractFeatures(events.filter((e) => e.day < cut), cut, ctx);
    expect(Array.from(f)).toEqual(Array.from(withFuture));
    expect(historyBefore(events, cut).every((e) => e.day < cut)).toBe(true);
  });

  it('gives an all-zero interest block and neutral recency for an empty history', () => {
    const empty = extractFeatures([], cut, ctx);
    expect(value(empty, 'daysSinceLastEvent')).toBe(1);
    expect(value(empty, 'share:cat:a')).toBe(0);
  });
});

describe('extractLabels', () => {
  const ctx = featureContext(vocab, START);
  it('derives interests, purchase and spending tier from the label window', () => {
    const future = events.filter((e) => e.day >= START + 4 && e.day < START + 7);
    const labels = extractLabels(future, { age: 2, stage: [0, 3] }, ctx);
    expect(Array.from(labels.interests)).toEqual([1, 0, 1]);
    expect(labels.purchase).toBe(1);
    expect(labels.spending).toBe(spendingTier(vocab, Math.log1p(60)));
    expect(labels.spending).toBe(2);
    expect(labels.age).toBe(2);
    expect(labels.gender).toBeUndefined();
    expect(Array.from(labels.stage ?? [])).toEqual([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  });
  it('leaves spending unknown when nothing was bought', () => {
    const labels = extractLabels([ev(5, 'click', 'a')], {}, ctx);
    expect(labels.purchase).toBe(0);
    expect(labels.spending).toBeUndefined();
  });
});

describe('extractSequence', () => {
  it('left-pads the last N events with one-hot categories and event channels', () => {
    const ctx = featureContext(vocab, START);
    const seq = extractSequence(historyBefore(events, START + 4), START + 4, 6, ctx);
    const slots = interestSlots(vocab);
    expect(seq.categories).toHaveLength(6 * slots);
    expect(seq.events).toHaveLength(6 * SEQUENCE_EVENT_CHANNELS);
    // Steps 0-1 are padding; step 2 is the first click on 'a' (slot 0).
    expect(Array.from(seq.categories.subarray(0, 2 * slots)).every((v) => v === 0)).toBe(true);
    expect(seq.categories[2 * slots]).toBe(1);
    expect(seq.events[2 * SEQUENCE_EVENT_CHANNELS + 1]).toBe(1); // click is EVENT_TYPES[1]
    expect(seq.categories[4 * slots + 1]).toBe(1); // cart on 'b'
  });
});

describe('windows, vocabulary and split', () => {
  it('describes every window in calendar dates and refuses windows past the data', () => {
    const w = { cutOffsets: [4, 7], horizonDays: 3 };
    expect(describeWindows(w, START)).toEqual([
      { cut: '2019-06-14', history: ['2019-06-10', '2019-06-13'], labels: ['2019-06-14', '2019-06-16'] },
      { cut: '2019-06-17', history: ['2019-06-10', '2019-06-16'], labels: ['2019-06-17', '2019-06-19'] },
    ]);
    expect(() => validateWindows({ cutOffsets: [8], horizonDays: 3 }, 10)).toThrow(/cutOffsets/);
  });

  it('builds the vocabulary from the given users by activity', () => {
    const users: UserRecord[] = [{ userId: 'u1', events, labels: {} }];
    const v = buildVocabulary(users, { topK: 2, hashBuckets: 4, windows: { cutOffsets: [4], horizonDays: 3 }, startDay: START });
    expect(v.categories).toEqual(['a', 'b']); // a: 3 events; b, c, zzz: 1 each, ties broken by name
    expect(v.popularity[0]).toBeCloseTo(3 / 6, 6);
  });

  it('makes one example per cut day with history, and none without', () => {
    const users: UserRecord[] = [
      { userId: 'u1', events, labels: {} },
      { userId: 'late', events: [{ ...ev(6, 'click', 'a'), userId: 'late' }], labels: {} },
    ];
    const examples = buildExamples(users, featureContext(vocab, START), { windows: { cutOffsets: [4, 5, 6, 7], horizonDays: 3 } });
    expect(examples.filter((e) => e.userId === 'u1')).toHaveLength(4);
    expect(examples.filter((e) => e.userId === 'late').map((e) => e.cutDay - START)).toEqual([7]);
  });

  it('splits users deterministically and disjointly in roughly the configured shares', () => {
    const users = Array.from({ length: 5000 }, (_, i) => ({ userId: `user-${i}` }));
    const split = splitUsers(users, DEFAULT_SPLIT);
    const ids = (xs: { userId: string }[]) => new Set(xs.map((x) => x.userId));
    const [train, validation, test] = [ids(split.train), ids(split.validation), ids(split.test)];
    expect(train.size + validation.size + test.size).toBe(5000);
    for (const id of test) expect(train.has(id) || validation.has(id)).toBe(false);
    for (const id of validation) expect(train.has(id)).toBe(false);
    expect(test.size / 5000).toBeGreaterThan(0.17);
    expect(test.size / 5000).toBeLessThan(0.23);
    expect(splitOf('user-42', DEFAULT_SPLIT)).toBe(splitOf('user-42', { ...DEFAULT_SPLIT }));
    const other = splitUsers(users, { ...DEFAULT_SPLIT, seed: 99 });
    expect(other.test.map((u) => u.userId)).not.toEqual(split.test.map((u) => u.userId));
  });
});

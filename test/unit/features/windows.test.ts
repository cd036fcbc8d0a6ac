import { describe, expect, it } from 'vitest';
import type { UserRecord } from '../../../shared/features/dataset.ts';
import { exampleReadiness } from '../../../shared/features/device-windows.ts';
import type { BehaviourEvent } from '../../../shared/features/events.ts';
import { userExamples } from '../../../shared/features/examples.ts';
import { featureContext } from '../../../shared/features/extract.ts';
import type { Vocabulary } from '../../../shared/features/vocabulary.ts';
import { chooseWindows, coverageWarning, DEFAULT_WINDOWS, describeWindows, examplesPerUser, rollingWindows, sampleCuts, summarizeWindows, windowCoverage } from '../../../shared/features/windows.ts';

const START = 18_057; // 2019-06-10
const vocab: Vocabulary = { categories: ['a'], hashBuckets: 2, popularity: [1], logPriceMean: 0, logPriceStd: 1, spendingBounds: [1, 2] };
const buy = (day: number, userId = 'u1'): BehaviourEvent => ({ userId, day: START + day, type: 'buy', itemId: 'i', category: 'a', price: 10 });

describe('rolling windows', () => {
  it('cuts from the first day with historyDays before it, every cutEveryDays, while cut + horizon fits', () => {
    const w = rollingWindows({ historyDays: 28, horizonDays: 7, cutEveryDays: 7 }, 365);
    expect(w.cutOffsets[0]).toBe(28);
    expect(w.cutOffsets.at(-1)).toBe(357);
    expect(w.cutOffsets).toHaveLength(48);
    expect(w.cutOffsets.every((c, i) => i === 0 || c - w.cutOffsets[i - 1]! === 7)).toBe(true);
    expect(describeWindows(w, START)[1]).toEqual({ cut: '2019-07-15', history: ['2019-06-17', '2019-07-14'], labels: ['2019-07-15', '2019-07-21'] });
    // Exactly fitting data has one cut.
    expect(rollingWindows({ historyDays: 3, horizonDays: 2, cutEveryDays: 1 }, 5).cutOffsets).toEqual([3]);
  });

  it('reads only historyDays before each cut and skips cuts with no history there', () => {
    const w = rollingWindows({ historyDays: 7, horizonDays: 3, cutEveryDays: 7 }, 40);
    expect(w.cutOffsets).toEqual([7, 14, 21, 28, 35]);
    const user: UserRecord = { userId: 'u1', events: [buy(2), buy(20)], labels: {} };
    const examples = userExamples(user, featureContext(vocab, START), { windows: w });
    // Day 2 is in the history of cut 7 only; day 20 in that of cut 21 only.
    expect(examples.map((e) => e.cutDay - START)).toEqual([7, 21]);
    expect(examples[0]!.labels.purchase).toBe(0);
  });

  it('caps the examples per user with a seeded, evenly spread sample', () => {
    const cuts = Array.from({ length: 48 }, (_, i) => i);
    const picked = sampleCuts(cuts, 8, 'user-7');
    expect(picked).toHaveLength(8);
    expect(sampleCuts(cuts, 8, 'user-7')).toEqual(picked);
    // One pick in each stretch of 6 cuts.
    picked.forEach((c, k) => expect(Math.floor(c / 6)).toBe(k));
    const others = new Set(Array.from({ length: 20 }, (_, i) => sampleCuts(cuts, 8, `u${i}`)[0]));
    expect(others.size).toBeGreaterThan(1);
    expect(sampleCuts([1, 2, 3], 8, 'x')).toEqual([1, 2, 3]);
    expect(sampleCuts([1, 2, 3], undefined, 'x')).toEqual([1, 2, 3]);

    const w = rollingWindows({ historyDays: 7, horizonDays: 1, cutEveryDays: 1, maxCutsPerUser: 3 }, 60);
    const user: UserRecord = { userId: 'u1', events: Array.from({ length: 60 }, (_, d) => buy(d)), labels: {} };
    const examples = userExamples(user, featureContext(vocab, START), { windows: w });
    expect(examples).toHaveLength(3);
    expect(examplesPerUser(w)).toBe(3);
    expect(examplesPerUser(DEFAULT_WINDOWS)).toBe(4);
  });

  it('refuses bad windows with the flag in the message', () => {
    expect(() => rollingWindows({ historyDays: 28, horizonDays: 0, cutEveryDays: 7 }, 365)).toThrow(/"--horizon-days" expected an integer >= 1/);
    expect(() => rollingWindows({ historyDays: 28, horizonDays: 7, cutEveryDays: 0 }, 365)).toThrow(/"--cut-every"/);
    expect(() => rollingWindows({ historyDays: 360, horizonDays: 7, cutEveryDays: 7 }, 365)).toThrow(/"--history-days" 360 plus "--horizon-days" 7 is longer than the data's 365 days/);
    expect(() => chooseWindows(365, { horizonDays: 0 })).toThrow(RangeError);
    // A file whose timestamps are all equal spans one day: no window fits, and it says which flags set them.
    expect(() => chooseWindows(1)).toThrow(/spans 1 day, fewer than the 10 the default windows need; set "--history-days" and "--horizon-days"/);
    expect(() => chooseWindows(1, { historyDays: 1, horizonDays: 1 })).toThrow(/"--history-days" 1 plus "--horizon-days" 1 is longer than the data's 1 days/);
  });
});

describe('default windows from the data span', () => {
  it('keeps the fixed Tianchi layout up to two weeks', () => {
    expect(chooseWindows(10)).toBe(DEFAULT_WINDOWS);
    expect(chooseWindows(14)).toBe(DEFAULT_WINDOWS);
  });

  it('rolls windows over the whole span of longer data, overridable field by field', () => {
    for (const days of [15, 30, 55, 56, 90, 365, 730]) {
      const w = chooseWindows(days);
      expect(w.historyDays, `${days}`).toBeDefined();
      const first = w.cutOffsets[0]! - w.historyDays!;
      const end = w.cutOffsets.at(-1)! + w.horizonDays;
      expect(first, `${days}`).toBe(0);
      // The last label window ends less than one cut step before the data does.
      expect(days - end, `${days}`).toBeLessThan(w.cutEveryDays!);
    }
    expect(chooseWindows(365)).toMatchObject({ historyDays: 28, horizonDays: 7, cutEveryDays: 7, maxCutsPerUser: 8 });
    expect(chooseWindows(365, { horizonDays: 14, cutEveryDays: 14 })).toMatchObject({ historyDays: 28, horizonDays: 14, cutEveryDays: 14 });
    // A flag on short data rolls the windows too.
    expect(chooseWindows(10, { horizonDays: 2 })).toMatchObject({ horizonDays: 2, historyDays: 5, cutOffsets: [5, 6, 7, 8] });
  });

  it('counts the events outside every window and warns under half', () => {
    const fixedDays = Array.from({ length: 365 }, (_, d) => d);
    const tenDay = windowCoverage(DEFAULT_WINDOWS, fixedDays);
    expect(tenDay).toEqual({ events: 365, outside: 355, usedShare: 10 / 365 });
    expect(coverageWarning(tenDay, summarizeWindows(DEFAULT_WINDOWS, START))).toMatch(/^WARNING: the windows read only 2\.7% of the events \(355 of 365 fall outside/);
    const rolling = windowCoverage(chooseWindows(365), fixedDays);
    expect(rolling.outside).toBe(1);
    expect(coverageWarning(rolling, '')).toBeNull();
    expect(summarizeWindows(chooseWindows(365), START)).toBe('48 rolling cuts every 7 day(s) from 2019-07-08 to 2020-06-01 (history 28 days, labels 7 days, at most 8 per user), covering 2019-06-10..2020-06-07');
  });
});

describe('rolling windows on a device', () => {
  const TODAY = 20_000;
  const config = chooseWindows(365);

  it('says exactly why a device with events on its last two days has no example yet, and when it will', () => {
    const r = exampleReadiness([TODAY - 1, TODAY], config, TODAY);
    expect(r.examples).toBe(0);
    expect(r.waitingFor).toMatch(/needs events from 7 to 363 days ago; you have events on 2 days \(yesterday and today\)/);
    // The last cut is 6 days before today; yesterday's events are history of the cut after it, in 6 days.
    expect(r.readyDay).toBe(TODAY + 6);
    expect(exampleReadiness([TODAY - 1, TODAY], config, r.readyDay!).examples).toBe(1);
  });

  it('gives a device with a few weeks of events examples, at most the cap', () => {
    expect(exampleReadiness([TODAY - 10, TODAY - 9], config, TODAY).examples).toBe(1);
    const everyDay = Array.from({ length: 365 }, (_, d) => TODAY - d);
    expect(exampleReadiness(everyDay, config, TODAY).examples).toBe(8);
  });
});

describe('rolling windows on a synthetic population of another span', () => {
  it('reads most of a 90-day population and says so; the 10-day default reads all of a 10-day one', async () => {
    const { loadDataset } = await import('../../../scripts/import/resolve.ts');
    const { prepareData, DEFAULT_DATA_CONFIG } = await import('../../../shared/features/prepare.ts');
    const { DEFAULT_SPLIT } = await import('../../../shared/features/split.ts');
    const long = await loadDataset('synthetic:60:7:90');
    expect(long.days).toBe(90);
    const prepared = prepareData(long.users, long.startDay, long.days, { ...DEFAULT_DATA_CONFIG, split: DEFAULT_SPLIT, windows: chooseWindows(long.days) }, false);
    expect(prepared.windows).toHaveLength(8);
    expect(prepared.coverage.usedShare).toBeGreaterThan(0.9);
    expect(prepared.warnings).toEqual([]);
    const short = await loadDataset('synthetic:60');
    const fixed = prepareData(short.users, short.startDay, short.days, { ...DEFAULT_DATA_CONFIG, split: DEFAULT_SPLIT, windows: chooseWindows(short.days) }, false);
    expect(fixed.coverage).toMatchObject({ outside: 0, usedShare: 1 });
    await expect(loadDataset('synthetic:60:7:400')).rejects.toThrow(/DAYS an integer in 1\.\.366, got "400"/);
  });
});

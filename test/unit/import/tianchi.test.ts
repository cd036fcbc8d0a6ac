/** The Tianchi importer on the cut-down fixture (counts from its README), on hand-made lines, and on the real sample. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dayFromDate } from '../../../shared/features/events.ts';
import type { Dataset, UserRecord } from '../../../shared/features/dataset.ts';
import { TianchiDatasetBuilder, labelsFromTianchiUserRow, loadTianchi, tianchiDatasetFromLines } from '../../../scripts/import/tianchi.ts';

const FIXTURE_DIR = fileURLToPath(new URL('../../fixtures/tianchi-mini', import.meta.url));
const REAL_DIR = fileURLToPath(new URL('../../../../shared/data/tianchi-ecomm', import.meta.url));

function userOf(dataset: Dataset, userId: string): UserRecord {
  const user = dataset.users.find((u) => u.userId === userId);
  if (!user) throw new Error(`no user ${userId} in the dataset`);
  return user;
}

function countBy<T>(values: readonly T[], key: (value: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[key(v)] = (counts[key(v)] ?? 0) + 1;
  return counts;
}

describe('loadTianchi on test/fixtures/tianchi-mini', async () => {
  const dataset = await loadTianchi(FIXTURE_DIR);

  it('counts every dropped and repaired row exactly (see the fixture README)', () => {
    expect(dataset.cleaning).toEqual({
      rowsRead: 361,
      eventsKept: 327,
      dropped: { malformed: 1, exactDuplicate: 32, unknownItem: 1 },
      repaired: { nonPositivePrice: 1, userWithoutLabels: 1 },
    });
    const dropped = Object.values(dataset.cleaning.dropped).reduce((a, b) => a + b, 0);
    expect(dataset.cleaning.eventsKept + dropped).toBe(dataset.cleaning.rowsRead);
    expect(dataset.users.reduce((n, u) => n + u.events.length, 0)).toBe(327);
  });

  it('has 21 users sorted by id, each with sorted events', () => {
    expect(dataset.name).toBe('tianchi');
    expect(dataset.users).toHaveLength(21);
    const ids = dataset.users.map((u) => u.userId);
    expect(ids).toEqual([...ids].sort());
    expect(ids[0]).toBe('100050712');
    expect(ids.at(-1)).toBe('999999997');
    for (const user of dataset.users) {
      const days = user.events.map((e) => e.day);
      expect(days).toEqual([...days].sort((a, b) => a - b));
      expect(user.events.every((e) => e.userId === user.userId)).toBe(true);
    }
    expect(userOf(dataset, '10332491').events).toHaveLength(30);
    expect(userOf(dataset, '100050712').events).toHaveLength(6);
  });

  it('maps YYYYMMDD dates to UTC days and spans 2019-06-10..19', () => {
    expect(dataset.startDay).toBe(dayFromDate('20190610'));
    expect(dataset.startDay).toBe(Date.UTC(2019, 5, 10) / 86_400_000);
    expect(dataset.days).toBe(10);
    const orphan = userOf(dataset, '999999997');
    expect(orphan.events.map((e) => [e.day, e.type])).toEqual([
      [dayFromDate('20190614'), 'click'],
      [dayFromDate('20190615'), 'buy'],
    ]);
  });

  it('maps event types 1-4 to click, favourite, cart, buy', () => {
    const all = dataset.users.flatMap((u) => u.events);
    expect(countBy(all, (e) => e.type)).toEqual({ click: 221, favourite: 36, cart: 41, buy: 29 });
  });

  it('joins item features and repairs the price-0 item by removing its price', () => {
    const events = userOf(dataset, '100050712').events;
    const zeroPrice = events.filter((e) => e.itemId === '999999998');
    expect(zeroPrice).toEqual([{ userId: '100050712', day: dayFromDate('20190613'), type: 'cart', itemId: '999999998', category: '50002833' }]);
    const clicked = events.find((e) => e.itemId === '852477776');
    expect(clicked).toMatchObject({ category: '50004862', price: 11.25 });
    expect(clicked).not.toHaveProperty('brand');
    expect(events.some((e) => e.itemId === '999999999')).toBe(false);
  });

  it('maps user features to canonical labels', () => {
    expect(userOf(dataset, '12321589').labels).toEqual({});
    expect(userOf(dataset, '999999997').labels).toEqual({});
    expect(userOf(dataset, '118454117').labels).toEqual({ gender: 0, age: 0, stage: [0] });
    expect(userOf(dataset, '1044636').labels).toEqual({ gender: 0, age: 2, career: 1 });
    expect(userOf(dataset, '114788170').labels).toEqual({ gender: 1, age: 4, career: 9, stage: [0, 1, 3, 4, 5] });
    expect(userOf(dataset, '62226564').labels).toEqual({ gender: 0, age: 0, career: 8, stage: [1, 6] });
    expect(userOf(dataset, '132977361').labels).toEqual({ gender: 1, age: 4, stage: [0, 3] });
    expect(userOf(dataset, '100050712').labels).toEqual({ gender: 0, age: 1, career: 1, stage: [0, 1, 3, 4, 5, 7] });
  });
});

describe('labelsFromTianchiUserRow', () => {
  it('maps every age level to its band', () => {
    const bands = Array.from({ length: 10 }, (_, level) => labelsFromTianchiUserRow(['u', '0', String(level), '-1', '-1', '0', '-1']).labels.age);
    expect(bands).toEqual([0, 0, 0, 1, 2, 3, 4, 4, 4, 4]);
  });

  it('maps career 1..10 to 0..9 and stage lists to sorted, deduplicated indices', () => {
    expect(labelsFromTianchiUserRow(['u', '1', '4', '3', '1', '5000', '1,6,4']).labels).toEqual({ gender: 1, age: 2, career: 0, stage: [0, 3, 5] });
    expect(labelsFromTianchiUserRow(['u', '0', '4', '3', '10', '5000', '10,3,3']).labels).toEqual({ gender: 0, age: 2, career: 9, stage: [2, 9] });
  });

  it('treats -1 and empty as unknown without counting them', () => {
    expect(labelsFromTianchiUserRow(['u', '-1', '-1', '-1', '-1', '-1', '-1'])).toEqual({ labels: {}, invalid: 0 });
    expect(labelsFromTianchiUserRow(['u', '', '', '', '', '', ''])).toEqual({ labels: {}, invalid: 0 });
  });

  it('leaves out and counts values outside their domain', () => {
    expect(labelsFromTianchiUserRow(['u', '2', '10', '-1', '0', '1', '1,11'])).toEqual({ labels: {}, invalid: 4 });
    expect(labelsFromTianchiUserRow(['u', 'x', '4.5', '-1', '11', '1', '1,,2'])).toEqual({ labels: {}, invalid: 4 });
  });
});

describe('tianchiDatasetFromLines', () => {
  const items = [
    'i1\t33\t500\t0\t10.5',
    'i2\t33\t501\t77\t', // missing price
    'i3\t33\t502\t0\t-3', // non-positive price
    'i4\t33\t503\t0\t2000000', // absurd price
    'i5\t33\t504\t0\tfree', // price not a number
    'i1\t33\t999\t0\t1', // duplicate item id: the first row wins
    'i6\t33\t505', // bad item row
    'i7\t33\t\t0\t1', // empty cate_id: bad item row
  ];
  const users = [
    'u1\t1\t6\t-1\t3\t100\t2,2,1\r', // CRLF line
    'u1\t0\t3\t-1\t3\t100\t1', // duplicate user row
    'u3\t0\t3\t-1\t3\t100\t1', // user without events
    'u4\t0\t3', // bad user row
    'u5\t7\t3\t-1\t3\t100\t1', // gender 7 invalid
  ];
  const events = [
    'u1\ti1\t4\t20190612',
    'u1\ti1\t1\t20190610',
    'u1\ti1\t2\t20190610',
    'u1\ti1\t4\t20190612', // exact duplicate
    'u1\ti1\t4\t20190612\r', // the same line with CRLF: also a duplicate
    'u1\ti2\t3\t20190611',
    'u2\ti3\t1\t20190611',
    'u2\ti4\t1\t20190611',
    'u2\ti5\t1\t20190611',
    'u2\ti9\t1\t20190611', // unknown item
    'u2\ti6\t1\t20190611', // its item row was bad: unknown item
    'u2\ti1\t5\t20190611', // type 5: malformed
    'u2\ti1\t1\t20190632', // no such date: malformed
    'u2\ti1\t1\t2019-06-11', // malformed
    'u2\ti1\t1\t20190611\textra', // 5 fields: malformed
    '\ti1\t1\t20190611', // empty user: malformed
    '', // blank: not a row
    'u5\ti1\t1\t20190619',
  ];
  const dataset = tianchiDatasetFromLines({ items, users, events });

  it('counts each reason', () => {
    expect(dataset.cleaning).toEqual({
      rowsRead: 17,
      eventsKept: 8,
      dropped: {
        badItemRow: 2,
        duplicateItemRow: 1,
        badLabelRow: 1,
        duplicateLabelRow: 1,
        exactDuplicate: 2,
        unknownItem: 2,
        malformed: 5,
        labelRowWithoutEvents: 1,
      },
      repaired: { invalidLabelValue: 1, missingPrice: 2, nonPositivePrice: 1, absurdPrice: 1, userWithoutLabels: 1 },
    });
  });

  it('joins item features and removes unusable prices', () => {
    const byItem = new Map(dataset.users.flatMap((u) => u.events).map((e) => [e.itemId, e]));
    expect(byItem.get('i1')).toMatchObject({ category: '500', price: 10.5 });
    expect(byItem.get('i1')).not.toHaveProperty('brand');
    expect(byItem.get('i2')).toEqual({ userId: 'u1', day: dayFromDate('20190611'), type: 'cart', itemId: 'i2', category: '501', brand: '77' });
    for (const itemId of ['i3', 'i4', 'i5']) expect(byItem.get(itemId)).not.toHaveProperty('price');
  });

  it('sorts users and their events, keeping the file order on the same day', () => {
    expect(dataset.users.map((u) => u.userId)).toEqual(['u1', 'u2', 'u5']);
    expect(dataset.users[0]?.events.map((e) => `${e.day - dataset.startDay}:${e.type}`)).toEqual(['0:click', '0:favourite', '1:cart', '2:buy']);
    expect(dataset.users[0]?.labels).toEqual({ gender: 1, age: 4, career: 2, stage: [0, 1] });
    expect(dataset.users[1]?.labels).toEqual({});
    expect(dataset.users[2]?.labels).toEqual({ age: 1, career: 2, stage: [0] });
    expect(dataset.startDay).toBe(dayFromDate('20190610'));
    expect(dataset.days).toBe(10);
  });

  it('is empty, with zero days, without events', () => {
    expect(tianchiDatasetFromLines({ items, users: [], events: [] })).toMatchObject({ users: [], startDay: 0, days: 0 });
  });

  it('refuses item or user lines after event lines', () => {
    const builder = new TianchiDatasetBuilder();
    builder.addEventLine('u1\ti1\t1\t20190610');
    expect(() => builder.addItemLine('i1\t33\t500\t0\t1')).toThrow(/addItemLine/);
    expect(() => builder.addUserLine('u1\t1\t6\t-1\t3\t100\t1')).toThrow(/addUserLine/);
  });

  it('rejects a missing directory, naming it', async () => {
    await expect(loadTianchi(`${FIXTURE_DIR}-missing`)).rejects.toMatchObject({ code: 'NOT_FOUND', message: `no such directory: ${path.resolve(`${FIXTURE_DIR}-missing`)}` });
  });
});

// The real sample lives in ../shared beside the checkout. CI has no ../shared, and a CI run must
// not report a silently skipped test, so under CI=true this test is not registered at all; on a
// developer machine it runs whenever the sample is there.
const runOnRealSample = process.env.CI !== 'true' && existsSync(REAL_DIR);
if (runOnRealSample) {
  describe('loadTianchi on the real sample (../shared/data/tianchi-ecomm)', () => {
    it('reproduces the published facts, quickly', async () => {
      const started = performance.now();
      const dataset = await loadTianchi(REAL_DIR);
      const elapsedMs = performance.now() - started;
      expect(elapsedMs).toBeLessThan(5000);
      expect(dataset.users).toHaveLength(1476);
      expect(dataset.cleaning).toEqual({
        rowsRead: 85_213,
        eventsKept: 85_213 - 4_270,
        dropped: { exactDuplicate: 4_270, labelRowWithoutEvents: 24 },
        repaired: {},
      });
      expect(dataset.startDay).toBe(dayFromDate('20190610'));
      expect(dataset.days).toBe(10);
      // README: gender 0 = 1,112, 1 = 357; age level 4 = 670, 3 = 432, 5 = 239 (bands 2, 1, 3).
      expect(countBy(dataset.users, (u) => String(u.labels.gender))).toMatchObject({ '0': 1112, '1': 357 });
      expect(countBy(dataset.users, (u) => String(u.labels.age))).toMatchObject({ '2': 670, '1': 432, '3': 239 });
    });
  });
}

/** The generic events-file importer on small JSONL and CSV files written to a temp dir, with exact cleaning counts. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { dayFromDate } from '../../../shared/features/events.ts';
import { describeDroppedRows, loadEventsFile, splitCsvLine } from '../../../scripts/import/events-file.ts';
import { loadDataset } from '../../../scripts/import/resolve.ts';
import { loadEventsArg } from '../../../scripts/cli/inputs.ts';

let dir = '';
const file = (name: string): string => join(dir, name);
const jsonl = (rows: readonly unknown[]): string => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n');

const D13 = dayFromDate('20190613');
const D14 = dayFromDate('20190614');
const D15 = dayFromDate('20190615');
const D16 = dayFromDate('20190616');
const TS_0612_0800 = Date.UTC(2019, 5, 12, 8);

const OK = { userId: 'u1', day: D13, type: 'click', itemId: 'i1', category: 'c1' };
/** One row per drop reason after the first, kept row; the comment is its line number. */
const REASON_ROWS: readonly unknown[] = [
  OK, // 1: kept
  { day: D13, type: 'click', itemId: 'i1', category: 'c1' }, // 2
  { ...OK, userId: 'x'.repeat(129) }, // 3
  { ...OK, userId: 1.5 }, // 4
  { ...OK, userId: 2 ** 60 }, // 5: not a safe integer, so not the id that was written
  { userId: 'u1', day: D13, itemId: 'i1', category: 'c1' }, // 6
  { ...OK, type: 'stare' }, // 7
  { userId: 'u1', day: D13, type: 'click', category: 'c1' }, // 8
  { ...OK, itemId: {} }, // 9
  { userId: 'u1', day: D13, type: 'click', itemId: 'i1' }, // 10
  { ...OK, category: '' }, // 11
  { ...OK, brand: true }, // 12
  { userId: 'u1', type: 'click', itemId: 'i1', category: 'c1' }, // 13
  { ...OK, day: 20190615 }, // 14: YYYYMMDD as a number is not a day index
  { ...OK, day: '2019-02-30' }, // 15
  { ...OK, day: 'yesterday' }, // 16
  { ...OK, day: -1 }, // 17
  { userId: 'u1', ts: -1, type: 'click', itemId: 'i1', category: 'c1' }, // 18
  { userId: 'u1', ts: '2019-06-15', type: 'click', itemId: 'i1', category: 'c1' }, // 19: a date alone is not an instant
  { ...OK, day: '2019-06-15T10:20:00' }, // 20
  { ...OK, ts: TS_0612_0800 }, // 21: day 06-13, ts 06-12
  { ...OK, day: '2019-06-15T10:20:00Z', ts: '2019-06-15T10:21:00Z' }, // 22: two instants
  { ...OK, price: '-3' }, // 23
  { ...OK, price: 'free' }, // 24
  { ...OK, colour: 'red' }, // 25
  'nope', // 26
  OK, // 27
  { ...OK, userId: null }, // 28: null is absent
  { ...OK, day: 1.5 }, // 29
  { ...OK, day: '15/06/2019' }, // 30: the sixth badDay, past the five lines kept
  { ...OK, day: '1969-12-31' }, // 31: before the epoch
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portrait-events-file-'));
  await writeFile(
    file('events.jsonl'),
    jsonl([
      { userId: 'u2', day: D13, type: 'click', itemId: 'i1', category: 'c1', price: 10 },
      { userId: 'u1', ts: TS_0612_0800, type: 'buy', itemId: 'i2', category: 'c2', brand: 'b', price: 2_000_000 }, // absurd price
      { userId: 'u1', day: D13, type: 'cart', itemId: 'i1', category: 'c1', price: 0 }, // price 0
      { category: 'c1', itemId: 'i1', type: 'click', day: D13, userId: 'u2', price: 10 }, // same event, keys reordered: duplicate
      '',
      'not json', // malformed
      '[1,2]', // malformed: not an object
      { userId: 'u3', day: D13 + 1, type: 'stare', itemId: 'i1', category: 'c1' }, // malformed type
      { userId: 'u3', type: 'click', itemId: 'i1', category: 'c1' }, // malformed: neither ts nor day
      { userId: 'u3', day: D13 + 1, type: 'click', itemId: 'i1', category: 'c1', colour: 'red' }, // malformed: unknown field
      { userId: 'u3', day: D13 + 1, type: 'click', itemId: 'i1', category: 'c1', price: -1 }, // malformed: negative price
      { userId: 'u3', day: D13 + 2, type: 'view', itemId: 'i3', category: 'c3' },
    ]) + '\n',
  );
  await writeFile(
    file('labels.jsonl'),
    jsonl([
      { userId: 'u1', age: 2, gender: 1, stage: [5, 0, 5] },
      { userId: 'u2', career: 9 },
      { userId: 'u2', career: 1 }, // duplicate: the first wins
      { userId: 'u9', age: 1 }, // no events
      { userId: 'u4', age: 7 }, // bad: age out of range
      { age: 1 }, // bad: no userId
      { userId: 'u4', height: 3 }, // bad: unknown field
      'broken', // bad: not JSON
    ]),
  );
  // CRLF line ends and a BOM, as spreadsheets write them; columns in any order.
  const csvLines = [
    '\uFEFFtype,userId,itemId,category,day,ts,brand,price',
    'click,u1,i1,"c,1",18060,,,12.5',
    `buy,u1,i2,c2,,${Date.UTC(2019, 5, 12)},b7,`,
    'click,u1,i1,"c,1",18060,,,12.5', // duplicate
    'cart,u2,i3,c3,18061,,,abc', // malformed: price not a number
    'cart,u2,i3,c3,18061,,', // malformed: 7 cells
    'cart,u2,"i3,c3,18061,,,1', // malformed: unterminated quote
    'cart,u2,i3,c3,18061.5,,,1', // malformed: day not an integer
    'cart,,i3,c3,18061,,,1', // malformed: empty userId
    'favourite,u2,i3,c3,18061,,,5000000', // absurd price
    '"buy","u2","i4","c4",18062,,,"0"', // quoted cells; price 0
    '',
  ];
  await writeFile(file('events.csv'), csvLines.join('\r\n'));
  await writeFile(
    file('labels.csv'),
    ['userId,age,gender,career,stage', 'u1,3,0,,0|5|3|5', 'u2,,,,', 'u3,9,,,', 'u4,1,1,1,1|x', 'u1,1,1,1,'].join('\n'),
  );
  await writeFile(file('no-day.csv'), 'userId,type,itemId,category\nu1,click,i1,c1\n');
  await writeFile(file('extra-column.csv'), 'userId,day,type,itemId,category,colour\nu1,1,click,i1,c1,red\n');
  await writeFile(file('empty.jsonl'), '\n\n');
  await writeFile(file('reasons.jsonl'), jsonl(REASON_ROWS));
  await writeFile(
    file('iso.jsonl'),
    jsonl([
      { userId: 1, day: '2019-06-15', type: 'Click', itemId: 42, category: 7, price: '12.5', brand: null },
      { userId: 1, day: '2019-06-15T10:20:00Z', type: 'favorite', itemId: 'i2', category: 'c2' },
      { userId: '1', ts: '2019-06-15T23:30:00.57-02:00', type: 'buy', itemId: 42, category: 7, brand: 9 },
      { userId: 2, day: D13, ts: Date.UTC(2019, 5, 13, 12), type: 'view', itemId: 'i3', category: 'c3' },
      { userId: 2, day: '2019-06-14', ts: '2019-06-14T08:00:00+0000', type: 'view', itemId: 'i3', category: 'c3' },
    ]),
  );
  await writeFile(file('iso-labels.jsonl'), jsonl([{ userId: 1, age: 2 }, { userId: '2', gender: 0 }]));
  await writeFile(
    file('iso.csv'),
    [
      'userId,day,ts,type,itemId,category,price',
      '7,2019-06-15,,view,100,3,9.99',
      '7,,2019-06-15T10:20:00+08:00,cart,100,3,',
      '7,2019-06-16,2019-06-16T01:00:00Z,buy,100,3," 10 "',
      '8,18060,,click,a,b,',
    ].join('\n'),
  );
  await writeFile(file('all-dropped.jsonl'), jsonl([{ ...OK, day: '15/06/2019' }, { ...OK, day: '16/06/2019' }, { ...OK, userId: undefined }, 'not json']));
  await writeFile(file('all-dropped.csv'), ['userId,day,type,itemId,category', 'u1,20190615,click,i1,c1', 'u1,2019-06-15,clicked,i1,c1'].join('\n'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadEventsFile (JSONL with a JSONL labels file)', () => {
  it('drops, repairs and counts each bad row', async () => {
    const dataset = await loadEventsFile(file('events.jsonl'), { labelsPath: file('labels.jsonl') });
    expect(dataset.cleaning).toEqual({
      rowsRead: 11,
      eventsKept: 4,
      dropped: { exactDuplicate: 1, badJson: 2, unknownType: 1, missingTime: 1, unknownField: 1, badPrice: 1, badLabelRow: 4, duplicateLabelRow: 1, labelRowWithoutEvents: 1 },
      droppedLines: { exactDuplicate: [4], badJson: [6, 7], unknownType: [8], missingTime: [9], unknownField: [10], badPrice: [11], badLabelRow: [5, 6, 7, 8], duplicateLabelRow: [3], labelRowWithoutEvents: [4] },
      repaired: { absurdPrice: 1, nonPositivePrice: 1, userWithoutLabels: 1 },
    });
  });

  it('builds sorted users with sorted, normalised events and canonical labels', async () => {
    const dataset = await loadEventsFile(file('events.jsonl'), { labelsPath: file('labels.jsonl') });
    expect(dataset.name).toBe('events');
    expect(dataset.users.map((u) => u.userId)).toEqual(['u1', 'u2', 'u3']);
    const [u1, u2, u3] = dataset.users;
    expect(u1?.events).toEqual([
      { userId: 'u1', day: D13 - 1, ts: TS_0612_0800, type: 'buy', itemId: 'i2', category: 'c2', brand: 'b' },
      { userId: 'u1', day: D13, type: 'cart', itemId: 'i1', category: 'c1' },
    ]);
    expect(u1?.labels).toEqual({ age: 2, gender: 1, stage: [0, 5] });
    expect(u2?.events).toEqual([{ userId: 'u2', day: D13, type: 'click', itemId: 'i1', category: 'c1', price: 10 }]);
    expect(u2?.labels).toEqual({ career: 9 });
    expect(u3?.labels).toEqual({});
    expect(dataset.startDay).toBe(D13 - 1);
    expect(dataset.days).toBe(4);
  });

  it('without a labels file, gives every user empty labels and counts no label rows', async () => {
    const dataset = await loadEventsFile(file('events.jsonl'), { name: 'mine' });
    expect(dataset.name).toBe('mine');
    expect(dataset.users.every((u) => Object.keys(u.labels).length === 0)).toBe(true);
    expect(dataset.cleaning.dropped).toEqual({ exactDuplicate: 1, badJson: 2, unknownType: 1, missingTime: 1, unknownField: 1, badPrice: 1 });
    expect(dataset.cleaning.repaired).toEqual({ absurdPrice: 1, nonPositivePrice: 1 });
  });

  it('loads a file with no rows as an empty dataset', async () => {
    const dataset = await loadEventsFile(file('empty.jsonl'));
    expect(dataset).toMatchObject({ name: 'empty', startDay: 0, days: 0, users: [], cleaning: { rowsRead: 0, eventsKept: 0 } });
  });
});

describe('loadEventsFile (CSV with a CSV labels file)', () => {
  it('drops, repairs and counts each bad row', async () => {
    const dataset = await loadEventsFile(file('events.csv'), { labelsPath: file('labels.csv') });
    expect(dataset.cleaning).toEqual({
      rowsRead: 10,
      eventsKept: 4,
      dropped: { exactDuplicate: 1, badPrice: 1, badCsvRow: 2, badDay: 1, missingUserId: 1, badLabelRow: 2, duplicateLabelRow: 1 },
      droppedLines: { exactDuplicate: [4], badPrice: [5], badCsvRow: [6, 7], badDay: [8], missingUserId: [9], badLabelRow: [4, 5], duplicateLabelRow: [6] },
      repaired: { absurdPrice: 1, nonPositivePrice: 1 },
    });
  });

  it('parses quoted cells and numbers, leaves empty cells absent', async () => {
    const dataset = await loadEventsFile(file('events.csv'), { labelsPath: file('labels.csv') });
    const [u1, u2] = dataset.users;
    expect(dataset.users).toHaveLength(2);
    expect(u1?.events).toEqual([
      { userId: 'u1', day: dayFromDate('20190612'), ts: Date.UTC(2019, 5, 12), type: 'buy', itemId: 'i2', category: 'c2', brand: 'b7' },
      { userId: 'u1', day: 18060, type: 'click', itemId: 'i1', category: 'c,1', price: 12.5 },
    ]);
    expect(u2?.events).toEqual([
      { userId: 'u2', day: 18061, type: 'favourite', itemId: 'i3', category: 'c3' },
      { userId: 'u2', day: 18062, type: 'buy', itemId: 'i4', category: 'c4' },
    ]);
    expect(u1?.labels).toEqual({ age: 3, gender: 0, stage: [0, 3, 5] });
    expect(u2?.labels).toEqual({});
  });

  it('rejects a header that lacks ts/day or names an unknown column', async () => {
    await expect(loadEventsFile(file('no-day.csv'))).rejects.toThrow(/ts or day/);
    await expect(loadEventsFile(file('extra-column.csv'))).rejects.toThrow(/unknown column\(s\) colour/);
    await expect(loadEventsFile(file('events.csv'), { labelsPath: file('events.csv') })).rejects.toThrow(/"labelsPath".*unknown column/);
  });
});

describe('loadEventsFile drop reasons', () => {
  it('counts each dropped row under its reason, with its first five line numbers', async () => {
    const { cleaning, users } = await loadEventsFile(file('reasons.jsonl'));
    expect(cleaning.rowsRead).toBe(31);
    expect(cleaning.eventsKept).toBe(1);
    expect(users.map((u) => u.userId)).toEqual(['u1']);
    expect(cleaning.dropped).toEqual({
      missingUserId: 2,
      badUserId: 3,
      missingType: 1,
      unknownType: 1,
      missingItemId: 1,
      badItemId: 1,
      missingCategory: 1,
      badCategory: 1,
      badBrand: 1,
      missingTime: 1,
      badDay: 7,
      badTs: 2,
      timestampWithoutZone: 1,
      timeConflict: 2,
      badPrice: 2,
      unknownField: 1,
      badJson: 1,
      exactDuplicate: 1,
    });
    expect(cleaning.droppedLines).toEqual({
      missingUserId: [2, 28],
      badUserId: [3, 4, 5],
      missingType: [6],
      unknownType: [7],
      missingItemId: [8],
      badItemId: [9],
      missingCategory: [10],
      badCategory: [11],
      badBrand: [12],
      missingTime: [13],
      badDay: [14, 15, 16, 17, 29],
      badTs: [18, 19],
      timestampWithoutZone: [20],
      timeConflict: [21, 22],
      badPrice: [23, 24],
      unknownField: [25],
      badJson: [26],
      exactDuplicate: [27],
    });
  });

  it('describes each reason with its count, lines and meaning, marking the labels file', async () => {
    const reasons = describeDroppedRows((await loadEventsFile(file('reasons.jsonl'))).cleaning);
    expect(reasons).toContain('badDay: 7 (lines 14, 15, 16, 17, 29, ...): day is not a day index (whole days since 1970-01-01), an ISO date (2019-06-15) or an ISO timestamp (2019-06-15T10:20:00Z)');
    expect(reasons).toContain('unknownType: 1 (line 7): type is not one of view, click, favourite, cart, buy');
    const withLabels = describeDroppedRows((await loadEventsFile(file('events.jsonl'), { labelsPath: file('labels.jsonl') })).cleaning);
    expect(withLabels).toContain('labelRowWithoutEvents: 1 (line 4 of the labels file): a labels row whose user has no kept event');
  });

  it('fails a file whose every row is dropped, naming the reasons and their lines', async () => {
    const error = await loadEventsFile(file('all-dropped.jsonl')).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toBe(
      [
        `"path" ${path.resolve(file('all-dropped.jsonl'))}: all 4 rows were dropped, none kept:`,
        `  badDay: 2 (lines 1, 2): ${'day is not a day index (whole days since 1970-01-01), an ISO date (2019-06-15) or an ISO timestamp (2019-06-15T10:20:00Z)'}`,
        '  missingUserId: 1 (line 3): no userId',
        '  badJson: 1 (line 4): the line is not a JSON object',
      ].join('\n'),
    );
    await expect(loadDataset(`events:${file('all-dropped.jsonl')}`)).rejects.toThrow(/all 4 rows were dropped/);
    await expect(loadEventsFile(file('all-dropped.csv'))).rejects.toThrow(/all 2 rows were dropped, none kept:\n {2}badDay: 1 \(line 2\): .*\n {2}unknownType: 1 \(line 3\)/);
  });

  it("the CLI's loader warns on stderr with the counts and lines", async () => {
    const stderr: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr.push(String(chunk));
      return true;
    });
    try {
      await loadEventsArg(file('reasons.jsonl'));
      await loadEventsArg(file('iso.jsonl'));
    } finally {
      spy.mockRestore();
    }
    expect(stderr).toHaveLength(1);
    expect(stderr[0]).toMatch(/^warning: "events" reasons: 31 event rows read, 1 kept; dropped rows by reason:\n {2}missingUserId: 2 \(lines 2, 28\): no userId\n/);
    expect(stderr[0]).toMatch(/\n {2}exactDuplicate: 1 \(line 27\): the same event as an earlier row\n$/);
  });
});

describe('loadEventsFile reads rows as people write them', () => {
  it('takes ISO dates and timestamps, numeric ids, quoted prices and either spelling of favourite from JSONL', async () => {
    const dataset = await loadEventsFile(file('iso.jsonl'), { labelsPath: file('iso-labels.jsonl') });
    expect(dataset.cleaning).toEqual({ rowsRead: 5, eventsKept: 5, dropped: {}, repaired: {} });
    expect(dataset.users.map((u) => u.labels)).toEqual([{ age: 2 }, { gender: 0 }]);
    expect(dataset.users.map((u) => u.userId)).toEqual(['1', '2']);
    const [one, two] = dataset.users;
    expect(one?.events).toEqual([
      { userId: '1', day: D15, type: 'click', itemId: '42', category: '7', price: 12.5 },
      { userId: '1', day: D15, ts: Date.UTC(2019, 5, 15, 10, 20), type: 'favourite', itemId: 'i2', category: 'c2' },
      // 23:30 at UTC-2 is 01:30 the next UTC day.
      { userId: '1', day: D16, ts: Date.UTC(2019, 5, 16, 1, 30, 0, 570), type: 'buy', itemId: '42', category: '7', brand: '9' },
    ]);
    expect(two?.events).toEqual([
      { userId: '2', day: D13, ts: Date.UTC(2019, 5, 13, 12), type: 'view', itemId: 'i3', category: 'c3' },
      { userId: '2', day: D14, ts: Date.UTC(2019, 5, 14, 8), type: 'view', itemId: 'i3', category: 'c3' },
    ]);
    expect(dataset.startDay).toBe(D13);
    expect(dataset.days).toBe(4);
  });

  it('takes ISO dates and timestamps from CSV, beside day indices', async () => {
    const dataset = await loadEventsFile(file('iso.csv'));
    expect(dataset.cleaning).toEqual({ rowsRead: 4, eventsKept: 4, dropped: {}, repaired: {} });
    const [seven, eight] = dataset.users;
    expect(seven?.events).toEqual([
      { userId: '7', day: D15, type: 'view', itemId: '100', category: '3', price: 9.99 },
      { userId: '7', day: D15, ts: Date.UTC(2019, 5, 15, 2, 20), type: 'cart', itemId: '100', category: '3' },
      { userId: '7', day: D16, ts: Date.UTC(2019, 5, 16, 1), type: 'buy', itemId: '100', category: '3', price: 10 },
    ]);
    expect(eight?.events).toEqual([{ userId: '8', day: 18060, type: 'click', itemId: 'a', category: 'b' }]);
  });
});

describe('loadEventsFile arguments', () => {
  it('names the argument with an unsupported extension', async () => {
    await expect(loadEventsFile(file('events.txt'))).rejects.toThrow(RangeError);
    await expect(loadEventsFile(file('events.txt'))).rejects.toThrow(/"path" expected a \.jsonl, \.ndjson or \.csv file/);
    await expect(loadEventsFile(file('events.jsonl'), { labelsPath: file('labels.tsv') })).rejects.toThrow(/"labelsPath"/);
  });

  it('rejects a missing file', async () => {
    await expect(loadEventsFile(file('missing.jsonl'))).rejects.toMatchObject({ code: 'NOT_FOUND', message: `no such file: ${path.resolve(file('missing.jsonl'))}` });
  });
});

describe('splitCsvLine', () => {
  it('splits plain and quoted cells', () => {
    expect(splitCsvLine('a,b,,c')).toEqual(['a', 'b', '', 'c']);
    expect(splitCsvLine('a,')).toEqual(['a', '']);
    expect(splitCsvLine('"a,b","say ""hi""",c')).toEqual(['a,b', 'say "hi"', 'c']);
    expect(splitCsvLine('""')).toEqual(['']);
  });

  it('returns undefined for bad quoting', () => {
    expect(splitCsvLine('"a')).toBeUndefined();
    expect(splitCsvLine('"a"b,c')).toBeUndefined();
    expect(splitCsvLine('a"b,c')).toBeUndefined();
  });
});

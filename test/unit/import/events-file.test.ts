/** The generic events-file importer on small JSONL and CSV files written to a temp dir, with exact cleaning counts. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayFromDate } from '../../../shared/features/events.ts';
import { loadEventsFile, splitCsvLine } from '../../../scripts/import/events-file.ts';

let dir = '';
const file = (name: string): string => join(dir, name);
const jsonl = (rows: readonly unknown[]): string => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n');

const D13 = dayFromDate('20190613');
const TS_0612_0800 = Date.UTC(2019, 5, 12, 8);

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
      dropped: { malformed: 6, exactDuplicate: 1, badLabelRow: 4, duplicateLabelRow: 1, labelRowWithoutEvents: 1 },
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
    expect(dataset.cleaning.dropped).toEqual({ malformed: 6, exactDuplicate: 1 });
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
      dropped: { malformed: 5, exactDuplicate: 1, badLabelRow: 2, duplicateLabelRow: 1 },
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

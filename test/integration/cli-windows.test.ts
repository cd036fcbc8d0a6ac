import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const bin = path.resolve('bin/portrait.js');
const DAY_MS = 86_400_000;
const FIRST = Date.UTC(2023, 0, 1);

/** A year of sparse, purchase-only events: 400 users, 2-12 purchases each at real timestamps, each user leaning to 3 of 20 categories. */
function writeYearOfPurchases(file: string): number {
  let state = 12345;
  const rand = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const rows: string[] = [];
  for (let u = 0; u < 400; u++) {
    const liked = [0, 1, 2].map(() => Math.floor(rand() * 20));
    const n = 2 + Math.floor(rand() * 11);
    for (let k = 0; k < n; k++) {
      const category = rand() < 0.8 ? liked[Math.floor(rand() * 3)]! : Math.floor(rand() * 20);
      const ts = new Date(FIRST + Math.floor(rand() * 365 * DAY_MS)).toISOString();
      rows.push(JSON.stringify({ userId: `u${u}`, ts, type: 'buy', itemId: `i${category}-${Math.floor(rand() * 30)}`, category: `c${category}`, price: Math.round(5 + rand() * 200) }));
    }
  }
  // Pin both ends of the year so the span is exactly 365 days.
  rows.push(JSON.stringify({ userId: 'u0', ts: new Date(FIRST).toISOString(), type: 'buy', itemId: 'i0-0', category: 'c0', price: 10 }));
  rows.push(JSON.stringify({ userId: 'u1', ts: new Date(FIRST + 364 * DAY_MS + 3_600_000).toISOString(), type: 'buy', itemId: 'i1-0', category: 'c1', price: 10 }));
  fs.writeFileSync(file, `${rows.join('\n')}\n`);
  return rows.length;
}

async function portrait(args: string[]): Promise<{ json: Record<string, unknown>; stderr: string }> {
  const { stdout, stderr } = await run(process.execPath, [bin, ...args], { maxBuffer: 1 << 24 });
  return { json: JSON.parse(stdout) as Record<string, unknown>, stderr };
}

async function refused(args: string[]): Promise<{ code: string; message: string }> {
  const failed = (await run(process.execPath, [bin, ...args]).catch((e: { stdout: string; code: number }) => e)) as { stdout: string; code: number };
  expect(failed.code).toBe(1);
  return (JSON.parse(failed.stdout) as { error: { code: string; message: string } }).error;
}

interface Coverage {
  events: number;
  outside: number;
  usedShare: number;
}

describe('train-central windows from the data (real CLI processes)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-windows-'));
  const year = path.join(dir, 'year.jsonl');
  const rows = writeYearOfPurchases(year);

  it('reads events from the whole span of a year of sparse purchases', async () => {
    const { json, stderr } = await portrait(['train-central', '--dataset', `events:${year}`, '--epochs', '1', '--json']);
    const windows = json.windows as { cut: string; history: [string, string]; labels: [string, string] }[];
    expect(windows.length).toBe(48);
    expect(windows[0]!.history[0]).toBe('2023-01-01');
    // The last label window ends within one cut step (7 days) of the data's last day.
    expect(windows.at(-1)!.labels[1]).toBe('2023-12-30');
    expect(json.windowSummary).toMatch(/^48 rolling cuts every 7 day\(s\) .* covering 2023-01-01\.\.2023-12-30$/);
    const coverage = json.coverage as Coverage;
    expect(coverage.events).toBe(rows);
    expect(coverage.usedShare).toBeGreaterThan(0.98);
    expect(json.warnings).toEqual([]);
    expect(stderr).not.toMatch(/WARNING/);
    // Examples come from every season: the train split has several per user, at most 8.
    const split = json.split as { users: Record<string, number>; examples: Record<string, number> };
    expect(split.examples.train).toBeGreaterThan(2 * split.users.train!);
    expect(split.examples.train).toBeLessThanOrEqual(8 * split.users.train!);
  });

  it('says loudly when the windows read under half of the events', async () => {
    const { json, stderr } = await portrait(['train-central', '--dataset', `events:${year}`, '--history-days', '7', '--cut-every', '60', '--epochs', '1', '--json']);
    expect((json.coverage as Coverage).usedShare).toBeLessThan(0.5);
    expect((json.warnings as string[])[0]).toMatch(/^WARNING: the windows read only \d+\.\d% of the events/);
    expect(stderr).toMatch(/WARNING: the windows read only/);
  });

  it('refuses windows that do not fit, naming the flag, and writes nothing', async () => {
    const out = path.join(dir, 'never');
    expect(await refused(['train-central', '--dataset', `events:${year}`, '--horizon-days', '0', '--out', out, '--json'])).toEqual({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/"--horizon-days" expected an integer >= 1, got 0/) });
    expect((await refused(['train-central', '--dataset', `events:${year}`, '--history-days', '400', '--out', out, '--json'])).message).toMatch(/spans 365 days: "--history-days" 400 plus "--horizon-days" 7 is longer than the data's 365 days/);
    const flat = path.join(dir, 'flat.jsonl');
    fs.writeFileSync(flat, ['a', 'b', 'c'].map((u) => JSON.stringify({ userId: u, ts: '2023-05-05T10:00:00Z', type: 'buy', itemId: 'i', category: 'c', price: 3 })).join('\n'));
    const error = await refused(['train-central', '--dataset', `events:${flat}`, '--out', out, '--json']);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/spans 1 day \(every event is on the same day\).*"--history-days" and "--horizon-days"/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

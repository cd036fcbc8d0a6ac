/**
 * docs/benchmarks.md keeps one section per benchmark: a run replaces the section with its key (in
 * place, the others and any text outside them untouched), a new key is added after the last
 * section, and the index follows. Checked on a temp file through writeBenchmark, and on the real
 * page, which must parse and be its own fixed point.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { benchmarkKey, benchmarkSections, BENCHMARKS_FILE, headingAnchor, renderBenchmarkSection, replaceBenchmarkSection, writeBenchmark } from '../../../scripts/bench/report.ts';
import type { BenchmarkRun } from '../../../scripts/bench/report.ts';

const run = (key: string, title: string, value: number): BenchmarkRun => ({ key, title, tfjsBackend: 'n/a', table: `| x |\n| --- |\n| ${value} |`, notes: `note ${value}` });

describe('writeBenchmark', () => {
  let dir: string;
  let file: string;
  const write = (r: BenchmarkRun, minute: number) => writeBenchmark(r, { file, now: new Date(Date.UTC(2026, 11, 5, 10, minute)), command: `npx tsx scripts/bench/${r.key}.ts` });

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-bench-'));
    file = path.join(dir, 'benchmarks.md');
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });

  afterEach(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts the page, then replaces a benchmark\'s section in place on its next run', () => {
    write(run('alpha', 'Alpha throughput', 1), 0);
    write(run('beta/n=10', 'Beta cost (n 10)', 2), 1);
    // Text outside the sections is the page's own and stays.
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('# Benchmarks\n', '# Benchmarks\n\nA hand-written remark.\n') + '\nTrailing words.\n');
    write(run('alpha', 'Alpha throughput', 3), 2);

    const doc = fs.readFileSync(file, 'utf8');
    expect(benchmarkSections(doc).map((s) => [s.key, s.title, s.run])).toEqual([
      ['alpha', 'Alpha throughput', '2026-12-05 10:02 UTC'],
      ['beta/n=10', 'Beta cost (n 10)', '2026-12-05 10:01 UTC'],
    ]);
    expect(doc).not.toContain('| 1 |');
    expect(doc).not.toContain('note 1');
    expect(doc.match(/^## Alpha throughput$/gm)).toHaveLength(1);
    expect(doc).toContain('| 3 |');
    expect(doc).toContain('| 2 |');
    expect(doc).toContain('A hand-written remark.');
    expect(doc).toContain('Trailing words.');
    expect(doc).toContain('Command: `npx tsx scripts/bench/alpha.ts`');
    // The index lists each section once, linked to its heading, with its last run, before the first section.
    expect(doc).toContain('| [Alpha throughput](#alpha-throughput) | 2026-12-05 10:02 UTC |\n| [Beta cost (n 10)](#beta-cost-n-10) | 2026-12-05 10:01 UTC |');
    expect(doc.indexOf('[Alpha throughput]')).toBeLessThan(doc.indexOf('<!-- benchmark: alpha -->'));
    expect(doc.indexOf('<!-- benchmark: alpha -->')).toBeLessThan(doc.indexOf('<!-- benchmark: beta/n=10 -->'));
    expect(process.stdout.write).toHaveBeenCalledWith('| x |\n| --- |\n| 3 |\n');
  });

  it('adds a new key after the last section and leaves the others as they were', () => {
    write(run('alpha', 'Alpha throughput', 1), 0);
    const before = fs.readFileSync(file, 'utf8');
    const alpha = benchmarkSections(before)[0]!;
    write(run('gamma', 'Gamma latency', 4), 5);
    const after = fs.readFileSync(file, 'utf8');
    const [first, second] = benchmarkSections(after);
    expect(after.slice(first!.start, first!.end)).toBe(before.slice(alpha.start, alpha.end));
    expect(second).toMatchObject({ key: 'gamma', title: 'Gamma latency', run: '2026-12-05 10:05 UTC' });
  });

  it('refuses a title whose anchor another key already has, a bad key, and a section without its end marker', () => {
    write(run('alpha', 'Alpha throughput', 1), 0);
    expect(() => write(run('alpha-2', 'Alpha: throughput', 2), 1)).toThrow(/"title" "Alpha: throughput" has the anchor of section "alpha"/);
    expect(() => write(run('Alpha Two', 'Alpha two', 2), 1)).toThrow(RangeError);
    const broken = fs.readFileSync(file, 'utf8').replace('<!-- end benchmark: alpha -->', '');
    expect(() => replaceBenchmarkSection(broken, renderBenchmarkSection(run('alpha', 'Alpha throughput', 2), { date: new Date(0), machine: 'm', command: 'c' }))).toThrow(/"alpha" has no "<!-- end benchmark: alpha -->"/);
  });
});

describe('benchmark keys and anchors', () => {
  it('makes keys from parts and anchors as GitHub does', () => {
    expect(benchmarkKey('privacy-utility', 'synthetic:100000', 'epsilons=4,none')).toBe('privacy-utility/synthetic:100000/epsilons=4,none');
    expect(benchmarkKey('model-quality', 'My Events', 'listwise')).toBe('model-quality/my-events/listwise');
    expect(headingAnchor('SecAgg+ cost (n 1,000; P 10,000; dropout 30%)')).toBe('secagg-cost-n-1000-p-10000-dropout-30');
    expect(headingAnchor('Privacy-utility (synthetic:100000): ε 4, none')).toBe('privacy-utility-synthetic100000-ε-4-none');
    expect(headingAnchor('Concurrent idle Socket.IO connections on one coordinator')).toBe('concurrent-idle-socketio-connections-on-one-coordinator');
  });
});

describe(BENCHMARKS_FILE, () => {
  it('is one section per key, each with its run date, and rebuilding any section or the index changes nothing', () => {
    const doc = fs.readFileSync(BENCHMARKS_FILE, 'utf8');
    const sections = benchmarkSections(doc);
    expect(sections.length).toBeGreaterThan(10);
    for (const s of sections) expect(s.run, s.key).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d( and \d\d:\d\d)? UTC$/);
    expect(new Set(sections.map((s) => headingAnchor(s.title))).size).toBe(sections.length);
    // Nothing outside a section but the preamble and the index: no run left over from the old log.
    expect(doc.slice(0, sections[0]!.start).match(/^## /gm)).toBeNull();
    for (const s of sections) expect(replaceBenchmarkSection(doc, doc.slice(s.start, s.end))).toBe(doc);
  });
});

/**
 * Shared by every benchmark: the machine description, and docs/benchmarks.md, which holds the
 * latest run of each benchmark. A run replaces its benchmark's section, found by a stable key, and
 * the index at the top is rebuilt, so the page reads as today's numbers; earlier runs stay in the
 * file's git history (STYLE.md 15).
 *
 * A section is delimited by `<!-- benchmark: KEY -->` and `<!-- end benchmark: KEY -->`; its
 * heading is the benchmark's title without a date, so a link to its anchor survives reruns. A
 * section written by hand (a run on another machine) carries the same markers and a `Run:` line.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const BENCHMARKS_FILE = 'docs/benchmarks.md';

export interface BenchmarkRun {
  /**
   * Stable name of the benchmark, or of one distinct experiment of it, from the options that
   * define what is measured (`secagg-cost/n=1000/p=1000000/dropout=0.3`), never from a budget or a
   * repetition count: a run replaces the section with the same key.
   */
  key: string;
  /** The section's heading, without a date; unique in the file (its anchor). */
  title: string;
  tfjsBackend: string;
  table: string;
  notes?: string;
}

export interface RunContext {
  date: Date;
  machine: string;
  command: string;
}

const KEY = /^[a-z0-9][a-z0-9.,:=/+_-]*$/;
const INDEX_START = '<!-- benchmark index -->';
const INDEX_END = '<!-- end benchmark index -->';
const PREAMBLE = [
  '# Benchmarks',
  '',
  'The latest run of each benchmark, with its date, machine and exact command. A script under',
  '`scripts/bench/` replaces its own section when it runs again (`scripts/bench/report.ts`); earlier',
  'runs, including those other pages cite by date, are in this file\'s git history',
  '(`git log -p -- docs/benchmarks.md`).',
  '',
].join('\n');

const startMarker = (key: string) => `<!-- benchmark: ${key} -->`;
const endMarker = (key: string) => `<!-- end benchmark: ${key} -->`;

export function machineLine(tfjsBackend: string): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  return `${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, tfjs backend ${tfjsBackend}`;
}

export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A key from its parts (a benchmark's name, then what defines the experiment), each made safe and joined with `/`. */
export function benchmarkKey(...parts: (string | number)[]): string {
  return parts.map((p) => String(p).toLowerCase().replace(/[^a-z0-9.,:=+_-]+/g, '-')).join('/');
}

/** The anchor GitHub gives a heading: lower case, punctuation and symbols dropped, spaces as hyphens. */
export function headingAnchor(title: string): string {
  return title
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

export function formatRunDate(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** One benchmark's section, markers included. */
export function renderBenchmarkSection(run: BenchmarkRun, context: RunContext): string {
  checkRun(run);
  return [
    startMarker(run.key),
    `## ${run.title}`,
    '',
    `Run: ${formatRunDate(context.date)}`,
    `Machine: ${context.machine}`,
    `Command: \`${context.command}\``,
    '',
    run.table,
    ...(run.notes ? ['', run.notes] : []),
    endMarker(run.key),
  ].join('\n');
}

interface Section {
  key: string;
  title: string;
  run: string;
  start: number;
  end: number;
}

/** The sections of `doc` in order; throws on a marker without its end or a key used twice. */
export function benchmarkSections(doc: string): Section[] {
  const sections: Section[] = [];
  const starts = /^<!-- benchmark: (\S+) -->$/gm;
  for (let m = starts.exec(doc); m !== null; m = starts.exec(doc)) {
    const key = m[1] as string;
    const closing = endMarker(key);
    const endAt = doc.indexOf(closing, m.index);
    if (endAt < 0) throw new RangeError(`benchmark section "${key}" has no "${closing}"`);
    if (sections.some((s) => s.key === key)) throw new RangeError(`benchmark section "${key}" appears twice`);
    const body = doc.slice(m.index, endAt);
    sections.push({
      key,
      title: /^## (.+)$/m.exec(body)?.[1]?.trim() ?? key,
      run: /^Run: (.+)$/m.exec(body)?.[1]?.trim() ?? '',
      start: m.index,
      end: endAt + closing.length,
    });
    starts.lastIndex = endAt + closing.length;
  }
  return sections;
}

/** The index at the top: each section's title as a link to it, with its last run. */
export function renderIndex(sections: readonly Pick<Section, 'title' | 'run'>[]): string {
  return [INDEX_START, '| benchmark | last run |', '| --- | --- |', ...sections.map((s) => `| [${s.title}](#${headingAnchor(s.title)}) | ${s.run} |`), INDEX_END].join('\n');
}

/**
 * `doc` with `section` (from renderBenchmarkSection) in place of the section with the same key, or
 * after the last section when there is none yet, and the index rebuilt. Pure: the tested core of
 * writeBenchmark. An empty `doc` starts the file.
 */
export function replaceBenchmarkSection(doc: string, section: string): string {
  const [incoming] = benchmarkSections(section);
  if (!incoming) throw new RangeError('"section" expected one benchmark section with its markers');
  let text = doc.trim() === '' ? `${PREAMBLE}\n${INDEX_START}\n${INDEX_END}\n` : doc;
  const sections = benchmarkSections(text);
  const clash = sections.find((s) => s.key !== incoming.key && headingAnchor(s.title) === headingAnchor(incoming.title));
  if (clash) throw new RangeError(`"title" ${JSON.stringify(incoming.title)} has the anchor of section "${clash.key}"'s; give each experiment its own title`);
  const current = sections.find((s) => s.key === incoming.key);
  const last = sections.at(-1);
  if (current) text = text.slice(0, current.start) + section + text.slice(current.end);
  else if (last) text = `${text.slice(0, last.end)}\n\n${section}${text.slice(last.end)}`;
  else text = `${text.trimEnd()}\n\n${section}\n`;
  const indexAt = text.indexOf(INDEX_START);
  const indexEnd = text.indexOf(INDEX_END);
  if (indexAt < 0 || indexEnd < indexAt) throw new RangeError(`${BENCHMARKS_FILE} lacks "${INDEX_START}" … "${INDEX_END}"`);
  return text.slice(0, indexAt) + renderIndex(benchmarkSections(text)) + text.slice(indexEnd + INDEX_END.length);
}

function checkRun(run: BenchmarkRun): void {
  if (!KEY.test(run.key)) throw new RangeError(`"key" expected lower-case letters, digits and . , : = / + _ -, got ${JSON.stringify(run.key)}`);
  if (run.title.trim() === '' || run.title.includes('\n')) throw new RangeError(`"title" expected one non-empty line, got ${JSON.stringify(run.title)}`);
}

/** The command that ran this process, as a reader would type it. */
export function commandLine(): string {
  return `npx tsx ${path.relative(process.cwd(), process.argv[1] ?? '')} ${process.argv.slice(2).join(' ')}`.trim();
}

/**
 * Writes `run` as its benchmark's section of docs/benchmarks.md (replacing the previous run's),
 * and prints the table on stdout.
 */
export function writeBenchmark(run: BenchmarkRun, options: { file?: string; now?: Date; command?: string } = {}): void {
  const file = path.resolve(options.file ?? BENCHMARKS_FILE);
  const section = renderBenchmarkSection(run, { date: options.now ?? new Date(), machine: machineLine(run.tfjsBackend), command: options.command ?? commandLine() });
  const doc = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const next = replaceBenchmarkSection(doc, section);
  // Whole or not at all: a bench interrupted mid-write must not leave half a page.
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, next);
  fs.renameSync(temp, file);
  process.stdout.write(`${run.table}\n`);
}

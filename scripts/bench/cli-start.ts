/**
 * How long the `portrait` CLI takes to start and answer, as a user runs it: `node bin/portrait.js`
 * (the compiled build in build/cli/) for `--version`, `--help`, `privacy epsilon` and `audit verify`
 * on a 100-entry ledger, beside the same commands of the CLI at --baseline (default 3b3d79b, the
 * last one that ran the TypeScript sources through tsx and loaded tfjs for every command),
 * extracted with `git archive` into a temporary folder. The ledger is written by the
 * coordinator's own code (server/ledger: genesis and 99 signed distributed-DP round entries) into
 * a temporary data directory. Runs are interleaved so machine load hits every command alike; the
 * table reports the median of --runs (default 5) against the targets and replaces its section of
 * docs/benchmarks.md unless --no-append.
 * Usage: npx tsx scripts/bench/cli-start.ts [--runs 5] [--baseline 3b3d79b] [--no-append]   (npm run bench:cli)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDataDirLedger } from '../../server/ledger/data-dir.ts';
import { roundSpend } from '../../test/unit/ledger/fixtures.ts';
import { buildCli } from '../build-cli.ts';
import { flag, numberOption, option } from './args.ts';
import { markdownTable, writeBenchmark } from './report.ts';

const runs = numberOption('--runs', 5);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`"--runs" expected an integer >= 1, got ${runs}`);
const baselineRev = option('--baseline') ?? '3b3d79b';
if (!/^[0-9a-zA-Z._/-]+$/.test(baselineRev)) throw new TypeError(`"--baseline" expected a git revision, got ${baselineRev}`);
const LEDGER_ENTRIES = 100;

interface Case {
  label: string;
  args: string[];
  /** Seconds the median must stay under; null where there is none. */
  targetS: number | null;
  /** Checks the command's stdout, so a fast failure is never timed as a start. */
  check: (stdout: string) => void;
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-bench-cli-'));
const baselineDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-bench-cli-baseline-'));
try {
  const { ledger, store } = await openDataDirLedger(dataDir, { env: {} });
  for (let roundId = 1; ledger.entries < LEDGER_ENTRIES; roundId++) await ledger.recordRound(roundSpend({ roundId }));
  store.close();

  const cases: Case[] = [
    { label: 'portrait --version', args: ['--version'], targetS: 0.5, check: (out) => expectThat(/^\d+\.\d+\.\d+\n$/.test(out), `a version, got ${out}`) },
    { label: 'portrait --help', args: ['--help'], targetS: null, check: (out) => expectThat(out.startsWith('Usage: portrait'), 'the usage') },
    {
      label: 'portrait privacy epsilon --q 0.01 --noise-multiplier 1.0 --steps 1000 --delta 1e-5 --json',
      args: ['privacy', 'epsilon', '--q', '0.01', '--noise-multiplier', '1.0', '--steps', '1000', '--delta', '1e-5', '--json'],
      targetS: 1.5,
      check: (out) => expectThat(typeof (JSON.parse(out) as { epsilon?: unknown }).epsilon === 'number', `an epsilon, got ${out}`),
    },
    {
      label: `portrait audit verify (${LEDGER_ENTRIES}-entry ledger)`,
      args: ['audit', 'verify', '--data-dir', dataDir, '--json'],
      targetS: 2,
      check: (out) => {
        const result = JSON.parse(out) as { ok?: boolean; entries?: number };
        expectThat(result.ok === true && result.entries === LEDGER_ENTRIES, `ok with ${LEDGER_ENTRIES} entries, got ${out}`);
      },
    },
  ];

  // The CLI's sources at the baseline, run against this checkout's node_modules.
  const archive = path.join(baselineDir, 'cli.tar');
  execFileSync('git', ['archive', '--format=tar', '-o', archive, baselineRev, 'bin', 'scripts', 'shared', 'server', 'client', 'package.json']);
  execFileSync('tar', ['-xf', archive, '-C', baselineDir]);
  fs.symlinkSync(path.resolve('node_modules'), path.join(baselineDir, 'node_modules'));
  // The compiled build must be fresh, or the first run would time a rebuild.
  await buildCli();
  const starts = { now: [path.resolve('bin/portrait.js')], baseline: [path.join(baselineDir, 'bin', 'portrait.js')] };
  const times = new Map(cases.map((c) => [c.label, { now: [] as number[], baseline: [] as number[] }]));
  const [loadBefore] = os.loadavg();
  for (let run = 0; run < runs; run++) {
    for (const c of cases) {
      for (const how of ['now', 'baseline'] as const) {
        const started = performance.now();
        const result = spawnSync(process.execPath, [...starts[how], ...c.args], { encoding: 'utf8' });
        const seconds = (performance.now() - started) / 1000;
        if (result.status !== 0) throw new Error(`${c.label} (${how}) exited ${result.status}: ${result.stderr}`);
        c.check(result.stdout);
        times.get(c.label)?.[how].push(seconds);
      }
    }
  }

  const rows = cases.map((c) => {
    const t = times.get(c.label) ?? { now: [], baseline: [] };
    const now = median(t.now);
    const verdict = c.targetS === null ? '-' : now < c.targetS ? 'pass' : 'FAIL';
    return [`\`${c.label}\``, now.toFixed(2), `${Math.min(...t.now).toFixed(2)}-${Math.max(...t.now).toFixed(2)}`, median(t.baseline).toFixed(2), c.targetS === null ? '-' : `< ${c.targetS}`, verdict];
  });
  const table = markdownTable(['command', 'now, s (median)', 'now, s (range)', `at ${baselineRev}, s (median)`, 'target, s', 'result'], rows);
  const notes = `Wall-clock seconds from spawning \`node bin/portrait.js …\` to its exit, ${runs} interleaved runs each. "now": the compiled CLI of scripts/build-cli.ts (fresh, so no rebuild is timed), where none of these commands loads tfjs. "at ${baselineRev}": the CLI as it was there, its TypeScript run through tsx (with tsx's transform cache warm after the first run) and tfjs loaded at every start. The ledger: genesis and ${LEDGER_ENTRIES - 1} signed distributed-DP round entries written by server/ledger into a temporary data directory; verify checks every hash chain link and Ed25519 signature (Node's native Ed25519 since 8e33379; tweetnacl's ~9 ms each was most of its time before) and recomputes every epsilon. Load average when the run started: ${loadBefore?.toFixed(1)} (other work shares this machine).`;
  if (flag('--no-append')) process.stdout.write(`${table}\n\n${notes}\n`);
  else writeBenchmark({ key: 'cli-start', title: 'CLI start', tfjsBackend: 'n/a (none of these loads tfjs)', table, notes });
} finally {
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(baselineDir, { recursive: true, force: true });
}

function expectThat(ok: boolean, what: string): void {
  if (!ok) throw new Error(`expected ${what}`);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

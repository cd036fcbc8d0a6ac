/**
 * Does the demo's private training learn? Runs `portrait demo --rounds R --exit --json` (the real
 * CLI: embedded coordinator, simulated fleet, distributed DP with SecAgg+ under the deployment
 * cap) --runs times and tabulates, per run, the untrained model's held-out interests micro-AUC
 * (round 0), the last round's, their difference, the epsilon spent and the wall time. The noise
 * and the Poisson cohorts come from crypto.getRandomValues, so runs differ; the table says how
 * often the last round beats round 0 (issue 21's bar for `npm start -- --rounds 3`).
 * Usage: npx tsx scripts/bench/demo-private.ts [--runs 3] [--rounds 3] [--no-write]   (npm run bench:demo)
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { flag, numberOption } from './args.ts';
import { markdownTable, writeBenchmark } from './report.ts';

const runs = numberOption('--runs', 3);
const rounds = numberOption('--rounds', 3);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`"--runs" expected an integer >= 1, got ${runs}`);
if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`"--rounds" expected an integer >= 1, got ${rounds}`);

interface DemoJson {
  initial: { metrics: { heads: { interests?: { microAuc?: number | null } } } };
  rounds: { id: number; status: string; reason?: string; privacy?: { mode: string; epsilonCumulative: number | null } | null; metrics?: { heads?: { interests?: { microAuc?: number | null } } } }[];
  privacy: { epsilonCumulative: number | null; plan: { noiseMultiplier: number; epsilonUnamplified: number } };
}

const bin = path.resolve('bin/portrait.js');
const rows: (string | number)[][] = [];
const aborts: string[] = [];
let better = 0;
let backend = 'wasm';
for (let run = 1; run <= runs; run++) {
  const started = performance.now();
  const result = spawnSync(process.execPath, [bin, 'demo', '--rounds', String(rounds), '--exit', '--json', '--port', '0'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0) throw new Error(`demo run ${run} exited ${result.status}: ${result.stderr}`);
  backend = /^tfjs backend: (\S+)/m.exec(result.stderr)?.[1] ?? backend;
  const demo = JSON.parse(result.stdout) as DemoJson;
  const before = demo.initial.metrics.heads.interests?.microAuc ?? Number.NaN;
  const last = demo.rounds.at(-1);
  const after = last?.metrics?.heads?.interests?.microAuc ?? Number.NaN;
  const allPrivate = demo.rounds.every((r) => r.status === 'committed' && r.privacy?.mode === 'distributed');
  if (after > before) better++;
  for (const r of demo.rounds) if (r.status === 'aborted') aborts.push(`run ${run}, round ${r.id}: ${r.reason ?? 'no reason'}`);
  rows.push([
    run,
    allPrivate ? `${demo.rounds.length} of ${rounds}, all distributed DP` : demo.rounds.map((r) => `${r.status}/${r.privacy?.mode ?? 'none'}`).join(', '),
    demo.privacy.plan.noiseMultiplier,
    before.toFixed(4),
    after.toFixed(4),
    (after - before >= 0 ? '+' : '') + (after - before).toFixed(4),
    demo.privacy.epsilonCumulative === null ? 'unbounded' : demo.privacy.epsilonCumulative.toFixed(2),
    demo.privacy.plan.epsilonUnamplified.toFixed(2),
    seconds.toFixed(0),
  ]);
  process.stderr.write(`run ${run}: interests micro-AUC ${before.toFixed(4)} -> ${after.toFixed(4)} in ${seconds.toFixed(0)} s\n`);
}

const table = markdownTable(['run', 'rounds committed', 'noise multiplier z', 'interests micro-AUC, round 0', `round ${rounds}`, 'difference', 'cumulative ε (δ 1e-6)', 'ε against the coordinator (q = 1)', 'seconds'], rows);
const notes =
  `The last round beat round 0 in ${better} of ${runs} runs. Each run is \`node bin/portrait.js demo --rounds ${rounds} --exit --json --port 0\` at its defaults ` +
  '(synthetic population of 5,000, about 3,400 devices, Poisson q = 140 / devices, clip 0.1, FedAdam lr 0.1, a 16-8 trunk; docs/privacy.md "The demo\'s private rounds"), ' +
  'each from a fresh temporary data directory; held-out users are the same in every run (the population is seeded), the noise and the cohorts are not. ' +
  'Seconds include generating the population, starting the fleet and scoring every round.' +
  (aborts.length > 0 ? ` Aborted rounds: ${aborts.join('; ')}.` : '');
if (flag('--no-write')) process.stdout.write(`${table}\n\n${notes}\n`);
else writeBenchmark({ key: `demo-private/rounds=${rounds}`, title: `The demo's private rounds learn (${rounds} rounds)`, tfjsBackend: backend, table, notes });

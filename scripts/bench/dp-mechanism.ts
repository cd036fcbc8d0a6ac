/**
 * Cost of the on-device privatisation (Kairouz, Liu, Steinke 2021, Alg. 1: clip → rotate →
 * conditional randomised rounding → exact discrete Gaussian of Canonne, Kamath, Steinke 2020,
 * Alg. 1-3 → mod 2^32) on the real portrait model's dimension, before and after a change, in one
 * process: the "before" is shared/privacy as committed at --baseline (extracted with `git show`
 * into a temporary folder and imported from there), the "after" is the working tree. Runs are
 * interleaved so machine load hits both alike; the table reports medians and their ratio, and
 * replaces its section of docs/benchmarks.md unless --no-append.
 * Usage: npx tsx scripts/bench/dp-mechanism.ts [--baseline f75cdb2] [--users 2000] [--reps 20]
 *        [--clip 0.1] [--z 0.667] [--t 601] [--no-append]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_DATA_CONFIG, prepareData } from '../../shared/features/prepare.ts';
import { DEFAULT_SPLIT } from '../../shared/features/split.ts';
import { DEFAULT_WINDOWS } from '../../shared/features/windows.ts';
import { buildModel } from '../../shared/model/build.ts';
import { parameterCount } from '../../shared/model/weights.ts';
import * as current from '../../shared/privacy/index.ts';
import { loadDataset } from '../import/resolve.ts';
import { modelConfigFor } from '../lib/central.ts';
import { markdownTable, writeBenchmark } from './report.ts';

type PrivacyModule = typeof current;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const baselineRev = arg('baseline', 'f75cdb2');
const users = Number(arg('users', '2000'));
const reps = Number(arg('reps', '20'));
const clip = Number(arg('clip', '0.1'));
const noiseMultiplier = Number(arg('z', '0.667'));
const minSurvivors = Number(arg('t', '601'));
if (!/^[0-9a-zA-Z._/-]+$/.test(baselineRev)) throw new TypeError(`"--baseline" expected a git revision, got ${baselineRev}`);
for (const [name, value] of [['users', users], ['reps', reps], ['t', minSurvivors]] as const) {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`"--${name}" expected an integer >= 1, got ${value}`);
}

/** shared/privacy at `rev`, written to a temporary folder (it imports nothing outside itself). */
async function loadBaseline(rev: string): Promise<PrivacyModule> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dp-baseline-'));
  const files = execFileSync('git', ['ls-tree', '--name-only', rev, 'shared/privacy/'], { encoding: 'utf8' }).split('\n').filter((f) => f.endsWith('.ts'));
  for (const file of files) fs.writeFileSync(path.join(dir, path.basename(file)), execFileSync('git', ['show', `${rev}:${file}`]));
  try {
    return (await import(pathToFileURL(path.join(dir, 'index.ts')).href)) as PrivacyModule;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// The real model: the portrait MLP over a synthetic population's vocabulary, as in the privacy-utility runs.
const dataset = await loadDataset(`synthetic:${users}`);
const data = { windows: DEFAULT_WINDOWS, split: DEFAULT_SPLIT, ...DEFAULT_DATA_CONFIG };
const prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, false);
const model = buildModel(modelConfigFor(prepared, data, 'mlp', false), 1);
const dimension = parameterCount(model);
model.dispose();

const baseline = await loadBaseline(baselineRev);
const random = current.cryptoRandomSource();
const privacy = current.buildPrivacyConfig({
  mode: 'distributed',
  clip,
  noiseMultiplier,
  minSurvivors,
  delta: 1e-6,
  population: 67_961,
  dimension,
  samplingRate: 0.01,
  poissonSampling: true,
  expectedClients: Math.round(minSurvivors * 1.13),
});
const signs = current.randomSigns(privacy.paddedDimension, random);
// A device delta of norm ~0.2 (twice the clip, as measured in the 100k runs), from crypto bytes.
const bytes = random(new Uint8Array(dimension * 4));
const update = Float32Array.from(new Uint32Array(bytes.buffer), (w) => (w / 2 ** 32 - 0.5) * ((0.2 * Math.sqrt(12)) / Math.sqrt(dimension)));
const scaled = new Float64Array(privacy.paddedDimension);
current.clipToNorm(update, clip).clipped.forEach((v, i) => (scaled[i] = v / privacy.granularity));
const rotated = current.rotate(scaled, signs);

type Step = (m: PrivacyModule) => void;
const steps: [string, Step][] = [
  ['privatiseUpdate (whole pipeline)', (m) => m.privatiseUpdate(update, privacy, signs, random)],
  ['clip', (m) => m.clipToNorm(update, clip)],
  ['rotate (Walsh–Hadamard)', (m) => m.rotate(scaled, signs)],
  ['conditional randomised rounding', (m) => m.conditionalRandomizedRound(rotated, privacy.l2Sensitivity, new m.RandomStream(random))],
  [`discrete Gaussian noise (σ = ${Math.sqrt(privacy.clientNoiseVariance).toFixed(0)})`, (m) => new m.DiscreteGaussianSampler(privacy.clientNoiseVariance, new m.RandomStream(random)).sampleVector(privacy.paddedDimension)],
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Median milliseconds per call of `step` on each module, interleaved call by call after a warm-up. */
function measure(step: Step): { before: number; after: number } {
  for (let i = 0; i < 3; i++) {
    step(baseline);
    step(current);
  }
  const before: number[] = [];
  const after: number[] = [];
  for (let i = 0; i < reps; i++) {
    let start = performance.now();
    step(baseline);
    before.push(performance.now() - start);
    start = performance.now();
    step(current);
    after.push(performance.now() - start);
  }
  return { before: median(before), after: median(after) };
}

const rows: (string | number)[][] = [];
for (const [name, step] of steps) {
  const { before, after } = measure(step);
  rows.push([name, before.toFixed(2), after.toFixed(2), `${(before / after).toFixed(1)}×`]);
  process.stderr.write(`${name}: ${before.toFixed(2)} ms → ${after.toFixed(2)} ms\n`);
}
// Per-sample cost of the exact sampler across the tested range of σ.
for (const sigma of [1, 30, 1000, 10_000]) {
  const n = 20_000;
  const { before, after } = measure((m) => new m.DiscreteGaussianSampler(sigma * sigma + 0.1, new m.RandomStream(random)).sampleVector(n));
  rows.push([`discrete Gaussian, σ² = ${sigma}² + 0.1, µs per sample`, ((before * 1000) / n).toFixed(2), ((after * 1000) / n).toFixed(2), `${(before / after).toFixed(1)}×`]);
}

const table = markdownTable([`step (d = ${dimension}, padded ${privacy.paddedDimension})`, `before (${baselineRev}) ms`, 'after (working tree) ms', 'speed-up'], rows);
const notes = [
  `Distributed mode at C = ${clip}, z = ${noiseMultiplier}, t = ${minSurvivors} (the 100k privacy-utility ε = 4 setting): per-device σ² = ${privacy.clientNoiseVariance.toFixed(1)}, Δ₂ = ${privacy.l2Sensitivity.toFixed(1)}, γ = ${privacy.granularity.toExponential(3)}; bytes from crypto.getRandomValues.`,
  `Medians of ${reps} interleaved calls per side after 3 warm-up calls each; "before" is shared/privacy at ${baselineRev}, imported from a git-show copy in the same process. The σ² rows add 0.1 so σ² is not an integer (rounded up to a multiple of 2^-32, the general case).`,
].join('\n');
if (process.argv.includes('--no-append')) process.stdout.write(`${table}\n${notes}\n`);
else writeBenchmark({ key: 'dp-mechanism', title: 'DP mechanism on the device: privatiseUpdate before and after', tfjsBackend: 'none (pure TypeScript)', table, notes });

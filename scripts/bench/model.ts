/**
 * Training throughput (examples/s) and per-user inference latency for both architectures on the
 * backend that loads here, side by side in one run on the same synthetic examples; or, with
 * `--quality DATASET`, the interests head against the own-history heuristic over seeds (issue 2):
 * each seed, each seed gated-blended with the heuristic (gate fitted on validation users), the seed
 * ensemble, and the ensemble blended with the heuristic (weight chosen on validation users), with a
 * paired bootstrap CI over test users for the recall@5 difference.
 * Usage: npx tsx scripts/bench/model.ts [--users N] [--epochs E]
 *        npx tsx scripts/bench/model.ts --quality tianchi:DIR [--seeds 3] [--own-history-prior] [--ranking listwise|lambda|both]
 */
import * as tf from '@tensorflow/tfjs';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import { syntheticDataset } from '../../shared/features/synthetic.ts';
import { SeededRandom } from '../../shared/features/seeded-random.ts';
import { buildModel } from '../../shared/model/build.ts';
import { ownHistoryScores, predictExamples } from '../../shared/model/evaluate.ts';
import { microAuc } from '../../shared/model/metrics.ts';
import { computePortrait } from '../../shared/model/portrait.ts';
import { INTERESTS_RANKINGS, trainModel } from '../../shared/model/train.ts';
import type { InterestsRanking } from '../../shared/model/train.ts';
import { parameterCount } from '../../shared/model/weights.ts';
import type { Example } from '../../shared/features/examples.ts';
import { historyBefore } from '../../shared/features/extract.ts';
import { loadDataset } from '../import/resolve.ts';
import { dataConfig, DEFAULT_CENTRAL, modelConfigFor, trainCentral } from '../lib/central.ts';
import { benchmarkKey, markdownTable, writeBenchmark } from './report.ts';

function textFlag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const qualityIndex = process.argv.indexOf('--quality');
if (qualityIndex >= 0) {
  const ranking = textFlag('ranking', 'listwise');
  if (!(INTERESTS_RANKINGS as readonly string[]).includes(ranking)) throw new RangeError(`"--ranking" expected one of ${INTERESTS_RANKINGS.join(', ')}, got ${ranking}`);
  await runInterestsQuality(process.argv[qualityIndex + 1] ?? 'tianchi:../shared/data/tianchi-ecomm', flag('seeds', 3), {
    ownHistoryPrior: process.argv.includes('--own-history-prior'),
    interestsRanking: ranking as InterestsRanking,
  });
  process.exit(0);
}

const users = flag('users', 2000);
const epochs = flag('epochs', 2);
const backend = await useNodeBackend();
const dataset = syntheticDataset({ users, seed: 11 });
const data = dataConfig();
const prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, true);
const rows: (string | number)[][] = [];
for (const arch of ['mlp', 'gru'] as const) {
  const config = modelConfigFor(prepared, data, arch, false);
  const model = buildModel(config, 1);
  const examples = prepared.examples.train;
  const started = performance.now();
  await trainModel(model, config, examples, { epochs, batchSize: 64, learningRate: 0.003, optimizer: 'adam', shuffleSeed: 1 });
  const trainSeconds = (performance.now() - started) / 1000;
  const latencies: number[] = [];
  for (const user of prepared.users.test.slice(0, 100)) {
    const t = performance.now();
    computePortrait(model, config, user.events);
    latencies.push(performance.now() - t);
  }
  latencies.sort((a, b) => a - b);
  const pct = (q: number) => (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN).toFixed(2);
  rows.push([arch, parameterCount(model), examples.length, epochs, Math.round((examples.length * epochs) / trainSeconds), pct(0.5), pct(0.95)]);
  model.dispose();
}
const table = markdownTable(['model', 'parameters', 'train examples', 'epochs', 'train examples/s', 'portrait p50 ms', 'portrait p95 ms'], rows);
writeBenchmark({
  key: 'model-throughput',
  title: 'Model training throughput and on-device portrait latency',
  tfjsBackend: `${backend.name} (${tf.getBackend()})`,
  table,
  notes: `Synthetic population of ${users} users (seed 11), batch 64, Adam. Portrait latency: features + one forward pass for one user, 100 test users. Ratio GRU/MLP training throughput: ${((rows[1]?.[4] as number) / (rows[0]?.[4] as number)).toFixed(3)}.`,
});

/** recall@5 of one example (hits in the top 5 / positives), or null without positives. */
function recallAt5Of(row: Float32Array, truth: Float32Array): number | null {
  let positives = 0;
  for (const t of truth) if (t > 0.5) positives++;
  if (positives === 0) return null;
  const top = Array.from({ length: row.length }, (_, j) => j)
    .sort((a, b) => (row[b] as number) - (row[a] as number) || a - b)
    .slice(0, 5);
  return top.filter((j) => (truth[j] as number) > 0.5).length / positives;
}

interface InterestsEval {
  microAuc: number;
  recallAt5: number;
  perExample: (number | null)[];
}

function evaluateRows(rows: readonly Float32Array[], examples: readonly Example[]): InterestsEval {
  const truths = examples.map((e) => e.labels.interests);
  const perExample = rows.map((r, i) => recallAt5Of(r, truths[i] as Float32Array));
  const counted = perExample.filter((v): v is number => v !== null);
  return { microAuc: microAuc(rows, truths), recallAt5: counted.reduce((a, b) => a + b, 0) / counted.length, perExample };
}

/** 95% paired bootstrap interval of mean recall@5 (a − b), resampling test users (their examples move together). */
function pairedBootstrap(a: InterestsEval, b: InterestsEval, examples: readonly Example[], resamples = 2000): [number, number] {
  const byUser = new Map<string, number[]>();
  examples.forEach((e, i) => {
    if (a.perExample[i] === null) return;
    const list = byUser.get(e.userId);
    if (list) list.push(i);
    else byUser.set(e.userId, [i]);
  });
  const groups = [...byUser.values()];
  const rng = new SeededRandom(2026);
  const diffs: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    let n = 0;
    for (let k = 0; k < groups.length; k++) {
      for (const i of groups[Math.floor(rng.next() * groups.length)] as number[]) {
        sum += (a.perExample[i] as number) - (b.perExample[i] as number);
        n++;
      }
    }
    diffs.push(sum / n);
  }
  diffs.sort((x, y) => x - y);
  return [diffs[Math.floor(0.025 * resamples)] as number, diffs[Math.floor(0.975 * resamples)] as number];
}

// Function declarations (hoisted): the --quality branch runs before the module body below it.
function meanRows(runs: readonly Float32Array[][]): Float32Array[] {
  return (runs[0] as Float32Array[]).map((row, i) => row.map((_, j) => runs.reduce((s, run) => s + ((run[i] as Float32Array)[j] as number), 0) / runs.length));
}

function blendRows(model: readonly Float32Array[], heuristic: readonly Float32Array[], w: number): Float32Array[] {
  return model.map((row, i) => row.map((v, j) => (1 - w) * v + w * ((heuristic[i] as Float32Array)[j] as number)));
}

/**
 * Gated blend (measured, not shipped): w = sigmoid(b + a·log1p(events) + c·activeDayShare), both
 * read from the example's own behaviour features, so a device could compute it.
 */
type Gate = readonly [number, number, number];
function gateGrid(): Gate[] {
  const grid: Gate[] = [];
  for (const b of [-8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6]) for (const a of [-2, -1, -0.5, 0, 0.5, 1, 2]) for (const c of [-4, -2, 0, 2, 4]) grid.push([b, a, c]);
  return grid;
}

function gatedRows(model: readonly Float32Array[], heuristic: readonly Float32Array[], examples: readonly Example[], gate: Gate): Float32Array[] {
  return model.map((row, i) => {
    const f = (examples[i] as Example).features;
    const w = 1 / (1 + Math.exp(-(gate[0] + gate[1] * (f[5] as number) + gate[2] * (f[6] as number))));
    return row.map((v, j) => (1 - w) * v + w * ((heuristic[i] as Float32Array)[j] as number));
  });
}

function fitGate(model: readonly Float32Array[], heuristic: readonly Float32Array[], examples: readonly Example[]): Gate {
  let best = -Infinity;
  let gate: Gate = [0, 0, 0];
  for (const g of gateGrid()) {
    const e = evaluateRows(gatedRows(model, heuristic, examples, g), examples);
    if (e.microAuc + e.recallAt5 > best) {
      best = e.microAuc + e.recallAt5;
      gate = g;
    }
  }
  return gate;
}

async function runInterestsQuality(spec: string, seeds: number, variant: { ownHistoryPrior: boolean; interestsRanking: InterestsRanking }): Promise<void> {
  const backendName = (await useNodeBackend()).name;
  const dataset = await loadDataset(spec);
  const validationRuns: Float32Array[][] = [];
  const testRuns: Float32Array[][] = [];
  const rows: (string | number)[][] = [];
  let prepared: Awaited<ReturnType<typeof trainCentral>>['prepared'] | undefined;
  let config: Awaited<ReturnType<typeof trainCentral>>['config'] | undefined;
  let beta = 1;
  for (let seed = 1; seed <= seeds; seed++) {
    const run = await trainCentral(dataset, { ...DEFAULT_CENTRAL, ...variant, seed });
    ({ prepared, config } = run);
    beta = run.result.ownHistoryBeta;
    validationRuns.push(predictExamples(run.model, run.config, run.prepared.examples.validation).get('interests') ?? []);
    testRuns.push(predictExamples(run.model, run.config, run.prepared.examples.test).get('interests') ?? []);
    run.model.dispose();
    process.stderr.write(`seed ${seed}: best epoch ${run.result.training.bestEpoch}\n`);
  }
  if (!prepared || !config) throw new RangeError(`"seeds" expected at least 1, got ${seeds}`);
  const vocabulary = config.vocabulary;
  const eventsOf = new Map([...prepared.users.validation, ...prepared.users.test].map((u) => [u.userId, u.events]));
  const heuristicRows = (examples: readonly Example[]) => examples.map((e) => ownHistoryScores(vocabulary, historyBefore(eventsOf.get(e.userId) ?? [], e.cutDay), beta));
  const { validation, test } = prepared.examples;
  const heuristic = evaluateRows(heuristicRows(test), test);
  const ensembleValidation = meanRows(validationRuns);
  const heuristicValidation = heuristicRows(validation);
  // The blend weight is chosen on validation users only (micro-AUC + recall@5, as model selection).
  let bestW = 0;
  let best = -Infinity;
  for (const w of [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]) {
    const e = evaluateRows(blendRows(ensembleValidation, heuristicValidation, w), validation);
    if (e.microAuc + e.recallAt5 > best) {
      best = e.microAuc + e.recallAt5;
      bestW = w;
    }
  }
  const ensemble = meanRows(testRuns);
  const heuristicTest = heuristicRows(test);
  const gated = validationRuns.map((v, i): [string, Float32Array[]] => {
    const gate = fitGate(v, heuristicValidation, validation);
    return [`model, seed ${i + 1}, gated blend (b, a, c) = (${gate.join(', ')}) fitted on validation`, gatedRows(testRuns[i] as Float32Array[], heuristicTest, test, gate)];
  });
  const candidates: [string, Float32Array[]][] = [
    ...testRuns.map((r, i): [string, Float32Array[]] => [`model, seed ${i + 1}`, r]),
    ...gated,
    [`model, mean of ${seeds} seeds' predictions`, ensemble],
    [`seed ensemble blended with the heuristic (w = ${bestW}, chosen on validation)`, blendRows(ensemble, heuristicRows(test), bestW)],
  ];
  for (const [name, r] of candidates) {
    const e = evaluateRows(r, test);
    const [lo, hi] = pairedBootstrap(e, heuristic, test);
    rows.push([name, e.microAuc.toFixed(4), e.recallAt5.toFixed(4), (e.recallAt5 - heuristic.recallAt5).toFixed(4), `[${lo.toFixed(4)}, ${hi.toFixed(4)}]`]);
  }
  rows.push([`own history + popularity (β ${beta}, chosen on validation)`, heuristic.microAuc.toFixed(4), heuristic.recallAt5.toFixed(4), '-', '-']);
  // One section per dataset and model variant: the variants are distinct experiments (docs/model.md).
  const variantWords = [variant.interestsRanking === 'listwise' ? null : `${variant.interestsRanking} ranking loss`, variant.ownHistoryPrior ? 'scorer residual over own history' : null].filter((w) => w !== null);
  writeBenchmark({
    key: benchmarkKey('model-quality', dataset.name, `${variant.interestsRanking}${variant.ownHistoryPrior ? '+own-history-prior' : ''}`),
    title: `Interests head vs own-history heuristic over seeds (${[dataset.name, ...variantWords].join('; ')})`,
    tfjsBackend: backendName,
    table: markdownTable(['scorer', 'interests micro-AUC', 'recall@5', 'recall@5 − heuristic', '95% CI (paired bootstrap over test users)'], rows),
    notes: `trainCentral defaults (MLP, ${DEFAULT_CENTRAL.epochs} epochs, best epoch on validation) with interests ranking loss ${variant.interestsRanking}${variant.ownHistoryPrior ? ' and the scorer as a residual over the own-history score' : ''}, seeds 1-${seeds}; ${test.length} test examples of ${prepared.users.test.length} users. The blend is (1 − w)·p_model + w·(own-history score), both computed on the device from its own events.`,
  });
}

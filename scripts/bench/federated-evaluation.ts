/**
 * Issue 18's bar for federated evaluation under DP: "with DP at the default query budget its
 * interval is reported and covers the central value in >= 90 % of 50 seeded repetitions". The
 * default query budget is the demo's evaluation round (planEvaluationRound in scripts/cli/demo.ts:
 * Poisson q = min(1, 3K/N) over the fleet, one example per device, 16 bins, distributed DP with the
 * noise multiplier for which the round alone spends DEMO_EVALUATION_EPSILON at the demo's delta).
 *
 * One cohort is drawn as the coordinator would (each fleet device kept with probability q), each
 * device's contribution is computed once, as the device computes it (userExamples with the
 * version's vocabulary and windows, predictExamples, evaluateContribution), and then, per seeded
 * repetition, every device privatises it with the round's PrivacyConfig (privatiseUpdate: clip to
 * the query's bound, rotate, conditional rounding, discrete Gaussian share, mod 2^32; Kairouz,
 * Liu, Steinke 2021, Alg. 1), the residues are summed mod 2^32 (what SecAgg+ unmasks), and the
 * server decodes (decodeAggregate, then decodeEvaluate with releasedNoiseStd, as a committed round
 * does). The central value is what the same examples give without noise: the noise-free sum of
 * the same contributions, decoded (its AUCs are binned; scoreHead's exact ones are shown beside it);
 * for a macro average (a head's AUC over several units, macro-F1), over the units the release
 * averages (its averagedUnits, shared/analytics/evaluation.ts), which is what it estimates.
 * A second set of repetitions draws a fresh cohort each time and checks the released interval
 * against the fleet's value (every fleet device's contribution, decoded without noise): the
 * sampling half of the interval is for that.
 *
 * The repetitions' randomness is seeded (xoshiro128** through SeededRandom) so a run can be
 * reproduced; devices use crypto.getRandomValues in production.
 * Usage: npx tsx scripts/bench/federated-evaluation.ts [--users 5000] [--clients-per-round 140]
 *        [--repetitions 50] [--seed 1] [--train-epochs 0 (the untrained v1; N: trained centrally)]
 *        [--replicates 400 (the noise-only decode's)] [--delta 1e-6] [--no-resample] [--no-append]
 *        [--bins B (instead of the demo query's 16)] [--epsilon E (the round's, instead of the demo's 1; recalibrates z)]
 *        (npm run bench:federated-evaluation)
 */
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { decodeEvaluation } from '../../shared/analytics/evaluation.ts';
import type { DecodedEvaluation, EvaluationLayout, EvaluationMetric } from '../../shared/analytics/evaluation.ts';
import { blockLayout, decodeEvaluate, evaluateContribution, evaluationBlock } from '../../shared/analytics/federated-evaluation.ts';
import { planQuery } from '../../shared/analytics/queries.ts';
import type { EvaluateQuery } from '../../shared/analytics/queries.ts';
import type { Example } from '../../shared/features/examples.ts';
import { userExamples } from '../../shared/features/examples.ts';
import { featureContext } from '../../shared/features/extract.ts';
import { SeededRandom } from '../../shared/features/seeded-random.ts';
import { buildModel } from '../../shared/model/build.ts';
import { predictExamples, scoreHead } from '../../shared/model/evaluate.ts';
import { headSpecs } from '../../shared/model/spec.ts';
import type { HeadName } from '../../shared/model/spec.ts';
import { trainModel } from '../../shared/model/train.ts';
import { parameterCount } from '../../shared/model/weights.ts';
import { calibrateNoise } from '../../shared/privacy/calibrate.ts';
import { buildPrivacyConfig, releasedNoiseStd, roundsEpsilon } from '../../shared/privacy/config.ts';
import type { PrivacyConfig } from '../../shared/privacy/config.ts';
import { decodeAggregate, privatiseUpdate } from '../../shared/privacy/mechanism.ts';
import { addModular } from '../../shared/privacy/modular.ts';
import { randomSigns } from '../../shared/privacy/rotation.ts';
import { parseLaunchRequest } from '../../shared/protocol/messages.ts';
import type { PrivacySpec } from '../../shared/protocol/messages.ts';
import { privacyInput } from '../../shared/protocol/privacy.ts';
import { planEvaluationRound } from '../cli/demo.ts';
import { DEMO_HIDDEN_UNITS } from '../cli/demo.ts';
import { fleetUsers, prepareFleetData } from '../cli/simulate.ts';
import { loadDataset } from '../import/resolve.ts';
import { dataConfig, modelConfigFor } from '../lib/central-config.ts';
import { flag, numberOption } from './args.ts';
import { benchmarkKey, markdownTable, writeBenchmark } from './report.ts';
import { seededSource } from './seeded-source.ts';

const users = numberOption('--users', 5000);
const clientsPerRound = numberOption('--clients-per-round', 140);
const repetitions = numberOption('--repetitions', 50);
const seed = numberOption('--seed', 1);
const trainEpochs = numberOption('--train-epochs', 0);
const replicates = numberOption('--replicates', 400);
const delta = numberOption('--delta', 1e-6);
const resample = !flag('--no-resample');
const binsOverride = numberOption('--bins', 0);
const epsilonOverride = numberOption('--epsilon', 0);
if (!(epsilonOverride >= 0) || !Number.isFinite(epsilonOverride)) throw new RangeError(`"--epsilon" expected a number > 0, got ${epsilonOverride}`);
if (binsOverride !== 0 && (!Number.isInteger(binsOverride) || binsOverride < 2)) throw new RangeError(`"--bins" expected an integer >= 2, got ${binsOverride}`);
for (const [name, value, min] of [['--users', users, 20], ['--clients-per-round', clientsPerRound, 3], ['--repetitions', repetitions, 1], ['--seed', seed, 0], ['--train-epochs', trainEpochs, 0], ['--replicates', replicates, 20]] as const) {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`"${name}" expected an integer >= ${min}, got ${value}`);
}
if (repetitions > 65_535) throw new RangeError(`"--repetitions" expected at most 65535, got ${repetitions}`);
const log = (line: string) => process.stderr.write(`${line}\n`);
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;

/** Bar of issue 18: the interval is reported and covers the central value in at least this share of repetitions. */
const COVERAGE_BAR = 0.9;

/** Streams of the repetitions, each from its own SeededRandom key (a: seed and purpose, b: repetition, and device). */
const STREAM = { cohort: 1, fixed: { signs: 2, device: 3 }, fresh: { signs: 4, device: 5 } } as const;


// The fleet, model and round exactly as `portrait demo` sets them up.
const backend = (await useNodeBackend()).name;
const dataset = await loadDataset(`synthetic:${users}`);
const prepared = prepareFleetData(dataset);
const fleet = fleetUsers(prepared, new Set(prepared.examples.train.map((e) => e.userId)).size);
const config = modelConfigFor(prepared, dataConfig(), 'mlp', false, DEMO_HIDDEN_UNITS);
const model = buildModel(config, 1);
if (trainEpochs > 0) {
  // Central training of the demo's model (Adam, as scripts/lib/central.ts trains the baseline), so
  // the metrics are a trained model's rather than the untrained v1's.
  await trainModel(model, config, prepared.examples.train, { epochs: trainEpochs, batchSize: 64, learningRate: 0.003, optimizer: 'adam', shuffleSeed: seed, onEpoch: (epoch, loss) => log(`train epoch ${epoch + 1}/${trainEpochs}: loss ${loss.toFixed(4)} (${elapsed()})`) });
}

const demoPlan = planEvaluationRound({ population: fleet.length, clientsPerRound, delta, version: 1 });
/** --epsilon: the noise multiplier for which the round alone spends it, calibrated as planEvaluationRound does for the demo's. */
function recalibrated(plan: typeof demoPlan, epsilon: number): typeof demoPlan {
  const spec = plan.privacy as PrivacySpec;
  const rate = plan.samplingRate as number;
  const config = (noiseMultiplier: number) =>
    buildPrivacyConfig({ mode: 'distributed', clip: 1, noiseMultiplier, minSurvivors: spec.t as number, delta, population: fleet.length, dimension: 2048, samplingRate: rate, poissonSampling: rate < 1, expectedClients: plan.clientsPerRound, rotation: true });
  const noiseMultiplier = Math.ceil(calibrateNoise(epsilon, (z) => roundsEpsilon(config(z), 1), 1e-4).noiseMultiplier * 100) / 100;
  return { ...plan, privacy: { ...spec, noiseMultiplier } };
}
const plan = epsilonOverride > 0 ? recalibrated(demoPlan, epsilonOverride) : demoPlan;
const { spec } = parseLaunchRequest({ ...plan, rounds: 1 });
const launched: EvaluateQuery = binsOverride > 0 ? { ...(spec.query as EvaluateQuery), bins: binsOverride } : (spec.query as EvaluateQuery);
// The coordinator fills in the version's block at launch, and the query's bound becomes the round's clip (server/http.ts).
const query: EvaluateQuery = { ...launched, blocks: [evaluationBlock(launched, 1, parameterCount(model), config)] };
const { dimension, bound } = planQuery(query);
const privacy: PrivacySpec = { ...(spec.privacy as PrivacySpec), clip: bound };
const layout = blockLayout(query, config);
const q = spec.samplingRate as number;
const roundConfig = (cohort: number): PrivacyConfig => buildPrivacyConfig(privacyInput(privacy, dimension, { method: 'poisson', rate: q }, cohort, { allowCentral: false, allowNone: false }));
// A device's stream key is repetition * 2^16 + its index.
if (fleet.length > 65_536) throw new RangeError(`"--users" gives ${fleet.length} devices; at most 65536 are supported`);
log(`fleet ${fleet.length} devices; evaluation round: q ${q.toFixed(4)}, t ${privacy.t}, z ${privacy.noiseMultiplier}, ${dimension} cells, bound ${bound.toFixed(3)} (${elapsed()})`);

// Every fleet device's contribution, computed once, as the device computes it (client/core/client.ts scoreVersions).
const context = featureContext(config.vocabulary, dataset.startDay);
const deviceExamples = fleet.map((user) => userExamples(user, context, { windows: config.windows }));
const flat = deviceExamples.flat();
const predicted = predictExamples(model, config, flat);
model.dispose();
const contributions: Float32Array[] = [];
/** Each device's scored example (its last, the one examplesPerDevice 1 counts) and its rows, for scoreHead on the same examples; null for a device with none (it contributes zeros). */
const scoredLast: ({ example: Example; rows: Map<HeadName, Float32Array> } | null)[] = [];
let at = 0;
for (const examples of deviceExamples) {
  const rows = new Map<HeadName, Float32Array[]>([...predicted].map(([head, all]) => [head, all.slice(at, at + examples.length)]));
  contributions.push(evaluateContribution(query, [{ config, rows, examples }]));
  const last = examples.at(-1);
  scoredLast.push(last ? { example: last, rows: new Map([...rows].map(([head, all]) => [head, all.at(-1) as Float32Array])) } : null);
  at += examples.length;
}
log(`contributions of ${fleet.length} devices (${flat.length} examples scored) (${elapsed()})`);

function poissonCohort(key: number): number[] {
  const rng = new SeededRandom((seed * 16 + STREAM.cohort) >>> 0, key);
  return fleet.flatMap((_, i) => (rng.chance(q) ? [i] : []));
}

function exactSum(cohort: readonly number[]): Float64Array {
  const sum = new Float64Array(dimension);
  for (const i of cohort) {
    const c = contributions[i] as Float32Array;
    for (let j = 0; j < dimension; j++) sum[j] = (sum[j] as number) + (c[j] as number);
  }
  return sum;
}

/** One round through the real mechanism: every device privatises, the residues are summed mod 2^32, the server decodes. */
function releasedSum(cohort: readonly number[], dp: PrivacyConfig, streams: { signs: number; device: number }, repetition: number): Float32Array {
  const signs = randomSigns(dp.paddedDimension, seededSource(seed, streams.signs, repetition));
  const sum = new Uint32Array(dp.paddedDimension);
  for (const i of cohort) addModular(sum, privatiseUpdate(contributions[i] as Float32Array, dp, signs, seededSource(seed, streams.device, repetition * 65_536 + i)));
  return decodeAggregate(sum, dp, signs);
}

type Values = DecodedEvaluation['heads'];
const metricsOf = (decoded: DecodedEvaluation) => layout.heads.flatMap((h) => (Object.keys(decoded.heads[h.spec.name] ?? {}) as EvaluationMetric[]).map((metric) => ({ head: h.spec.name, metric })));
const valueOf = (values: Values, head: HeadName, metric: EvaluationMetric): number | null => values[head]?.[metric] ?? null;
/** The noise-free value of `exact` (a sum without noise) that a release estimates: its macro averages over the release's units. */
const centralFor = (exact: ArrayLike<number>, release: DecodedEvaluation, at: EvaluationLayout) => decodeEvaluation(at, exact, 0, { sampling: false, averageOver: release.averagedUnits }).heads;
/** A macro average: what decodeEvaluation averages over its averagedUnits. */
const isMacro = (head: HeadName, metric: EvaluationMetric) => metric === 'macroF1' || (metric === 'auc' && (layout.heads.find((h) => h.spec.name === head)?.units ?? 1) > 1);

/** Per head and metric over the repetitions: released values, interval widths, how often the interval was reported and covered the target. */
class Tally {
  private readonly cells = new Map<string, { values: number[]; widths: number[]; targets: number[]; units: number[]; covered: number; nulls: number }>();
  add(head: HeadName, metric: EvaluationMetric, decoded: DecodedEvaluation, target: number | null): void {
    const key = `${head}/${metric}`;
    const cell = this.cells.get(key) ?? { values: [], widths: [], targets: [], units: [], covered: 0, nulls: 0 };
    this.cells.set(key, cell);
    const value = valueOf(decoded.heads, head, metric);
    const interval = decoded.intervals[head]?.[metric] ?? null;
    if (value === null || interval === null) {
      cell.nulls++;
      return;
    }
    cell.values.push(value);
    cell.widths.push(interval[1] - interval[0]);
    if (target !== null) cell.targets.push(target);
    const averaged = decoded.averagedUnits[head];
    if (isMacro(head, metric) && averaged) cell.units.push((metric === 'macroF1' ? averaged.macroF1 : averaged.auc)?.length ?? 0);
    if (target !== null && interval[0] <= target && target <= interval[1]) cell.covered++;
  }
  get(head: HeadName, metric: EvaluationMetric) {
    const cell = this.cells.get(`${head}/${metric}`) ?? { values: [], widths: [], targets: [], units: [], covered: 0, nulls: 0 };
    const mean = (xs: number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
    return { value: mean(cell.values), width: mean(cell.widths), target: mean(cell.targets), units: cell.units.length === 0 ? null : { min: Math.min(...cell.units), max: Math.max(...cell.units) }, covered: cell.covered, nulls: cell.nulls };
  }
}

// Part 1: one cohort; each repetition runs the mechanism on it afresh.
const cohort = poissonCohort(0);
const dp = roundConfig(cohort.length);
const noiseStd = releasedNoiseStd(dp, cohort.length);
const epsilon = roundsEpsilon(dp, 1).epsilon;
const cohortSum = exactSum(cohort);
const central = decodeEvaluation(layout, cohortSum, 0, { sampling: false });
/**
 * Which units a release can average: decodeEvaluation counts a unit's positives (negatives) as
 * present above 2σ in its count cell (PRESENCE_Z), pooled micro-AUC totals above 2σ·sqrt(units).
 * Per head: the cohort's positives per unit and how many units clear that threshold.
 */
// shared/analytics/evaluation.ts's PRESENCE_Z (not exported), restated to explain the table.
const PRESENCE_Z = 2;
const unitThreshold = PRESENCE_Z * noiseStd;
const presence = layout.heads.map((h) => {
  const positives = Array.from({ length: h.units }, (_, u) => cohortSum[h.positiveCounts + u] as number);
  const negatives = Array.from({ length: h.units }, (_, u) => cohortSum[h.negativeCounts + u] as number);
  const clear = positives.filter((p, u) => p > unitThreshold && (negatives[u] as number) > unitThreshold).length;
  const withPositive = positives.filter((p) => p > 0).length;
  const pooled = positives.reduce((a, b) => a + b, 0);
  const sorted = [...positives].sort((a, b) => b - a);
  const range = h.units === 1 ? `${sorted[0]}` : `${sorted.at(-1)}-${sorted[0]} (median ${sorted[Math.floor(h.units / 2)]})`;
  const micro = h.spec.kind === 'multilabel' ? `; pooled ${pooled} positives against ${(PRESENCE_Z * noiseStd * Math.sqrt(h.units)).toFixed(0)} for micro-AUC` : '';
  return `${h.spec.name}: ${range} positives per unit, ${clear} of ${withPositive} with a positive clear it${micro}`;
});
const cohortScored = cohort.flatMap((i) => scoredLast[i] ?? []);
const scored = Object.fromEntries(headSpecs(config).map((s) => [s.name, scoreHead(s, cohortScored.map((d) => d.rows.get(s.name) as Float32Array), cohortScored.map((d) => d.example))])) as Partial<Record<HeadName, Record<string, number>>>;
log(`cohort ${cohort.length} devices; per-device sigma^2 ${dp.clientNoiseVariance.toFixed(1)} grid units, granularity ${dp.granularity.toExponential(3)}; released noise std ${noiseStd.toFixed(3)} per cell; epsilon ${epsilon.toFixed(3)} (${elapsed()})`);
const released = new Tally();
const noiseOnly = new Tally();
/** The noise the mechanism actually added, released minus exact, over every cell of every repetition: checks releasedNoiseStd. */
let noiseSquares = 0;
const mechanismStarted = performance.now();
for (let r = 0; r < repetitions; r++) {
  const sum = releasedSum(cohort, dp, STREAM.fixed, r);
  for (let j = 0; j < dimension; j++) noiseSquares += ((sum[j] as number) - (cohortSum[j] as number)) ** 2;
  // As a committed round decodes it: intervals for the noise and the sampling of examples.
  const decoded = decodeEvaluate(query, [config], sum, noiseStd).versions[0] as DecodedEvaluation;
  // The noise alone (sampling: false): the interval for the metric on these examples.
  const withoutSampling = decodeEvaluation(layout, sum, noiseStd, { sampling: false, replicates });
  const releasedTarget = centralFor(cohortSum, decoded, layout);
  const noiseOnlyTarget = centralFor(cohortSum, withoutSampling, layout);
  for (const { head, metric } of metricsOf(central)) {
    released.add(head, metric, decoded, valueOf(releasedTarget, head, metric));
    noiseOnly.add(head, metric, withoutSampling, valueOf(noiseOnlyTarget, head, metric));
  }
  if ((r + 1) % 10 === 0) log(`fixed cohort: ${r + 1}/${repetitions} repetitions (${elapsed()})`);
}
const mechanismSeconds = (performance.now() - mechanismStarted) / 1000;

// Part 2: a fresh Poisson cohort each repetition, checked against the fleet's value.
const fleetSum = exactSum(fleet.map((_, i) => i));
const fleetValue = decodeEvaluation(layout, fleetSum, 0, { sampling: false });
const fresh = new Tally();
let freshDevices = 0;
if (resample) {
  for (let r = 0; r < repetitions; r++) {
    const drawn = poissonCohort(r + 1);
    freshDevices += drawn.length;
    const drawnConfig = roundConfig(drawn.length);
    const decoded = decodeEvaluate(query, [config], releasedSum(drawn, drawnConfig, STREAM.fresh, r), releasedNoiseStd(drawnConfig, drawn.length)).versions[0] as DecodedEvaluation;
    const target = centralFor(fleetSum, decoded, layout);
    // A cohort's example count is about q times the fleet's, not an estimate of it: counts are left out here.
    for (const { head, metric } of metricsOf(fleetValue)) if (metric !== 'examples') fresh.add(head, metric, decoded, valueOf(target, head, metric));
    if ((r + 1) % 10 === 0) log(`fresh cohorts: ${r + 1}/${repetitions} repetitions (${elapsed()})`);
  }
}

const fmt = (x: number | null | undefined, digits = 4) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(digits));
const share = (k: number) => `${k}/${repetitions}`;
/** Covered of all repetitions, then of those where the interval was reported. */
const coverage = (t: { covered: number; nulls: number }) => `${share(t.covered)} (${t.covered}/${repetitions - t.nulls} reported)`;
/** The mean target of the reported releases, and for a macro average how many units they averaged. */
const targetCell = (t: ReturnType<Tally['get']>, digits: number) => `${fmt(t.target, digits)}${t.units ? ` (${t.units.min === t.units.max ? t.units.min : `${t.units.min}-${t.units.max}`} units)` : ''}`;
let failing: string[] = [];
const rows = metricsOf(central).map(({ head, metric }) => {
  const digits = metric === 'examples' ? 1 : 4;
  const target = valueOf(central.heads, head, metric);
  const a = released.get(head, metric);
  const b = noiseOnly.get(head, metric);
  const c = fresh.get(head, metric);
  if (target !== null && a.covered < COVERAGE_BAR * repetitions) failing = [...failing, `${head} ${metric} (null in ${a.nulls}, reported but missing in ${repetitions - a.nulls - a.covered})`];
  const exact = scored[head]?.[metric];
  return [
    head,
    metric,
    fmt(target, digits),
    fmt(exact !== undefined && Number.isFinite(exact) ? exact : null, digits),
    targetCell(a, digits),
    fmt(a.value, digits),
    fmt(a.width, digits),
    `**${coverage(a)}**`,
    share(a.nulls),
    fmt(b.width, digits),
    coverage(b),
    ...(resample ? (metric === 'examples' ? ['-', '-', '-', '-'] : [fmt(valueOf(fleetValue.heads, head, metric), digits), fmt(c.width, digits), coverage(c), share(c.nulls)]) : []),
  ];
});
const header = [
  'head',
  'metric',
  'central (noise-free, binned, scoreHead\'s units)',
  'scoreHead (exact)',
  'target: central over the release\'s units (mean)',
  'mean released',
  'released interval: mean width',
  'covers target',
  'null',
  'noise-only interval: mean width',
  'covers target',
  ...(resample ? ['fleet value (scoreHead\'s units)', 'fresh cohorts: mean width', 'covers fleet value over the release\'s units', 'null'] : []),
];
const table = markdownTable(header, rows);
const totalSeconds = (performance.now() - started) / 1000;
const barMet = failing.length === 0;
const budget = binsOverride > 0 || epsilonOverride > 0 ? `the demo's evaluation round (planEvaluationRound, scripts/cli/demo.ts) with ${[binsOverride > 0 ? `${binsOverride} bins` : '', epsilonOverride > 0 ? `ε = ${epsilonOverride} for the round` : ''].filter(Boolean).join(' and ')} instead of the demo's` : "the demo's evaluation round (planEvaluationRound, scripts/cli/demo.ts)";
/** Metrics whose released interval is as wide as half their range: reported and covering, but saying little. */
const uninformative = metricsOf(central).filter(({ head, metric }) => metric !== 'examples' && released.get(head, metric).width >= 0.5).map(({ head, metric }) => `${head} ${metric} (${fmt(released.get(head, metric).width, 2)})`);
const notes = [
  `**Bar (issue 18): ${barMet ? 'met' : 'not met'}**: the released interval is reported and covers the target (the central value; for a macro average, over the units the release averages) in at least ${Math.round(COVERAGE_BAR * 100)} % of ${repetitions} repetitions for ${barMet ? 'every metric' : `every metric but ${failing.join(', ')}`}. ` +
    (uninformative.length > 0 ? `Reported is not informative: the mean released interval spans half of [0, 1] or more for ${uninformative.join(', ')}.` : 'Every mean released interval is narrower than half of [0, 1].'),
  `The query budget is ${budget} on its fleet: synthetic:${users}, ${fleet.length} devices (training users with examples), K = ${clientsPerRound}, ` +
    `Poisson q = ${q.toFixed(4)}, one example per device (its last), ${layout.bins} bins, ${dimension} cells (padded ${dp.paddedDimension}; ${layout.cellsPerExample} cells per example, a positive or negative count cell per unit among them), clip = the query's bound ${bound.toFixed(3)}, ` +
    `distributed DP with t = ${privacy.t}, z = ${privacy.noiseMultiplier}, δ = ${delta}: ε = ${epsilon.toFixed(3)} for the round (roundsEpsilon, amplified by the Poisson sampling).`,
  `Model: the demo's config (MLP ${DEMO_HIDDEN_UNITS.join('-')}, seed 1), ${trainEpochs > 0 ? `trained centrally for ${trainEpochs} epochs (Adam lr 0.003, batch 64) on the fleet's examples, so the devices score examples it was trained on` : 'untrained: the demo\'s v1, which its few private rounds barely move (docs/benchmarks.md, the demo\'s private rounds), so close to the version the demo evaluates'}; backend ${backend}.`,
  `Fixed cohort: ${cohort.length} devices (seed ${seed}); per device a discrete Gaussian share of σ² = ${dp.clientNoiseVariance.toFixed(1)} grid units (γ = ${dp.granularity.toExponential(3)}), released noise std ${noiseStd.toFixed(3)} per cell (releasedNoiseStd; measured over the ${repetitions} released sums: ${Math.sqrt(noiseSquares / (repetitions * dimension)).toFixed(3)}). ` +
    `Each of the ${repetitions} repetitions runs privatiseUpdate on every device with its own seeded stream, sums mod 2^32, decodeAggregate, then decodeEvaluate (the released interval: DP noise and sampling of examples, 400 bootstrap replicates, its default) ` +
    `and decodeEvaluation with sampling: false (noise only, ${replicates} replicates). "Central": the same devices' contributions summed without noise and decoded; "scoreHead (exact)": the central metrics on the same ${cohort.length} examples, whose AUCs differ from the binned ones by the binning (aucBinningBounds). ` +
    `"Target": what a release estimates, the central value, except that a macro average (a head's AUC over several units, macro-F1) is over the units that release averages (its averagedUnits: those whose count cells are above the noise), decoded from the same noise-free sum with averageOver; the column shows its mean over the reported releases and the range of their unit counts. ` +
    `"Covers" counts repetitions where the interval was reported (not null) and contains the target; "null": the released metric was null (its totals were not above the noise); means are over the repetitions where it was reported.`,
  ...(resample
    ? [
        `Fresh cohorts: each repetition draws a new Poisson cohort (mean ${(freshDevices / repetitions).toFixed(0)} devices) and its own PrivacyConfig; the target is the fleet value over the release's units, every fleet device's last example decoded without noise, which the sampling half of the released interval is for ` +
          `(the cohort is a Poisson sample of the fleet, so examples are not exactly independent draws: the finite-population correction sqrt(1 − q) = ${Math.sqrt(1 - q).toFixed(3)} makes the interval slightly wide).`,
      ]
    : []),
  `Presence: a unit enters a macro AUC when its positives and negatives each exceed 2σ = ${unitThreshold.toFixed(0)} in their count cells (PRESENCE_Z in shared/analytics/evaluation.ts); in the fixed cohort, ${presence.join('; ')}.`,
  `Runtime: ${totalSeconds.toFixed(0)} s in all; the fixed cohort's ${repetitions} rounds (${cohort.length} privatiseUpdate calls each, and two decodes) took ${mechanismSeconds.toFixed(0)} s. Randomness is seeded (SeededRandom) for reproducibility; devices draw from crypto.getRandomValues.`,
].join('\n');

const budgetKey = [...(binsOverride > 0 ? [`bins=${binsOverride}`] : []), ...(epsilonOverride > 0 ? [`epsilon=${epsilonOverride}`] : [])];
const budgetTitle = [...(binsOverride > 0 ? [`${binsOverride} bins`] : []), ...(epsilonOverride > 0 ? [`ε ${epsilonOverride}`] : [])].map((part) => `, ${part}`).join('');
if (flag('--no-append')) process.stdout.write(`${table}\n\n${notes}\n`);
else {
  writeBenchmark({
    key: benchmarkKey('federated-evaluation', `synthetic:${users}`, `k=${clientsPerRound}`, trainEpochs > 0 ? `trained=${trainEpochs}` : 'untrained', ...budgetKey),
    title: `Federated evaluation under DP: interval coverage at ${budgetKey.length > 0 ? 'another' : "the demo's"} query budget (synthetic:${users}, K ${clientsPerRound}${budgetTitle}, ${trainEpochs > 0 ? `model trained ${trainEpochs} epochs` : 'untrained model'})`,
    tfjsBackend: backend,
    table,
    notes,
  });
  process.stdout.write(`\n${notes}\n`);
}

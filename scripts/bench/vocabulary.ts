/**
 * Issue 18's bar "vocabulary from DP analytics": on a synthetic population, the model vocabulary
 * built from three released analytics queries (shared/analytics/bootstrap.ts) against the one
 * `buildVocabulary` computes from the training users' raw events, and a centrally trained model
 * with each. Every training user is one device of one round per query (q = 1, all selected,
 * t = all devices), and the release is the real rounds' distributed discrete Gaussian mechanism
 * run in process (privatiseUpdate per device, modular sum, decodeAggregate; Kairouz, Liu, Steinke
 * 2021, Alg. 1-2), with z calibrated by the ledger's accountant (roundsEpsilon) so that one query
 * spends the target epsilon at delta. The noise comes from crypto.getRandomValues, so runs differ;
 * the table gives the median and the extremes over --runs independent releases.
 * Usage: npx tsx scripts/bench/vocabulary.ts [--users 5000] [--epsilon 1] [--delta 1e-6] [--runs 20]
 *        [--caps 8x1,8x4,16x1] [--train-runs 3 (0: no training)] [--epochs 30] [--no-write]
 *        (npm run bench:vocabulary)
 * --caps lists category-counts variants as maxCategoriesPerDevice x maxEventsPerCategory; the
 * first is the one whose vocabulary is trained and held to the bar, the others are measured for
 * their overlap only. A model is trained with the raw vocabulary and with each of the first
 * --train-runs runs' DP vocabularies (about a minute each on 2 cores).
 */
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { vocabularyFromAnalytics } from '../../shared/analytics/bootstrap.ts';
import type { BootstrapReport } from '../../shared/analytics/bootstrap.ts';
import { AnalyticsQuerySchema, decodeQuery, DEFAULT_MAX_LOG_PRICE, deviceContribution, planQuery } from '../../shared/analytics/queries.ts';
import type { AnalyticsQuery, AnalyticsQueryInput } from '../../shared/analytics/queries.ts';
import type { PreparedData } from '../../shared/features/prepare.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import type { Vocabulary } from '../../shared/features/vocabulary.ts';
import { buildModel } from '../../shared/model/build.ts';
import type { Metrics } from '../../shared/model/evaluate.ts';
import { predictExamples, scoreModel } from '../../shared/model/evaluate.ts';
import { microAuc } from '../../shared/model/metrics.ts';
import { trainModel } from '../../shared/model/train.ts';
import { flattenWeights, setFlatWeights } from '../../shared/model/weights.ts';
import type { AnalyticsResult } from '../../shared/protocol/messages.ts';
import { calibrateNoise } from '../../shared/privacy/calibrate.ts';
import { buildPrivacyConfig, releasedNoiseStd, roundsEpsilon } from '../../shared/privacy/config.ts';
import type { PrivacyConfig } from '../../shared/privacy/config.ts';
import { decodeAggregate, privatiseUpdate } from '../../shared/privacy/mechanism.ts';
import { addModular } from '../../shared/privacy/modular.ts';
import { cryptoRandomSource } from '../../shared/privacy/random.ts';
import { randomSigns } from '../../shared/privacy/rotation.ts';
import { loadDataset } from '../import/resolve.ts';
import { dataConfig, DEFAULT_CENTRAL, modelConfigForVocabulary } from '../lib/central-config.ts';
import { flag, numberOption, option } from './args.ts';
import { benchmarkKey, markdownTable, writeBenchmark } from './report.ts';

const users = numberOption('--users', 5000);
const epsilon = numberOption('--epsilon', 1);
const delta = numberOption('--delta', 1e-6);
const runs = numberOption('--runs', 20);
const epochs = numberOption('--epochs', DEFAULT_CENTRAL.epochs);
const trainRuns = Math.min(runs, numberOption('--train-runs', 3));
const capsText = option('--caps') ?? '8x1,8x4,16x1';
if (!Number.isInteger(users) || users < 10) throw new RangeError(`"--users" expected an integer >= 10, got ${users}`);
if (!(epsilon > 0)) throw new RangeError(`"--epsilon" expected a number > 0, got ${epsilon}`);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`"--runs" expected an integer >= 1, got ${runs}`);
if (!Number.isInteger(epochs) || epochs < 1) throw new RangeError(`"--epochs" expected an integer >= 1, got ${epochs}`);
if (!Number.isInteger(trainRuns) || trainRuns < 0) throw new RangeError(`"--train-runs" expected an integer >= 0, got ${trainRuns}`);

interface Caps {
  maxCategoriesPerDevice: number;
  maxEventsPerCategory: number;
}
const capsList: Caps[] = capsText.split(',').map((item) => {
  const m = /^(\d+)x(\d+)$/.exec(item.trim());
  if (!m) throw new RangeError(`"--caps" expected comma-separated MxE (maxCategoriesPerDevice x maxEventsPerCategory), got ${JSON.stringify(item)}`);
  return { maxCategoriesPerDevice: Number(m[1]), maxEventsPerCategory: Number(m[2]) };
});
const capsName = (c: Caps) => `${c.maxCategoriesPerDevice}x${c.maxEventsPerCategory}`;
const log = (line: string) => process.stderr.write(`${line}\n`);
const started = performance.now();

const backend = trainRuns > 0 ? (await useNodeBackend()).name : 'none';
const spec = `synthetic:${users}`;
const dataset = await loadDataset(spec);
const data = dataConfig();
const raw = prepareData(dataset.users, dataset.startDay, dataset.days, data, false);
const devices = raw.users.train;
const rawVocabulary = raw.vocabulary;
// The catalogue a coordinator would fill into the query: every category of the population's events, sorted.
const catalog = [...new Set(dataset.users.flatMap((u) => u.events.map((e) => e.category)))].sort();
log(`${spec}: ${devices.length} training users (devices), catalogue of ${catalog.length} categories, raw top-${data.topK}`);

// ---------------------------------------------------------------------------------------------
// The release: one round per query, every device selected, t = all of them (no dropouts).

interface Release {
  result: AnalyticsResult;
  epsilon: number;
}

function privacyConfigFor(dimension: number, bound: number, noiseMultiplier: number): PrivacyConfig {
  // As the coordinator builds it (shared/protocol/privacy.ts privacyInput): fixed selection, so q = 1.
  return buildPrivacyConfig({
    mode: 'distributed',
    clip: bound,
    noiseMultiplier,
    minSurvivors: devices.length,
    delta,
    population: devices.length,
    dimension,
    samplingRate: 1,
    poissonSampling: false,
    expectedClients: devices.length,
    rotation: true,
  });
}

/** The smallest z (to 1e-6 relative) whose single round spends at most `epsilon` by the ledger's accountant. */
function calibratedConfig(query: AnalyticsQuery): PrivacyConfig {
  const { dimension, bound } = planQuery(query);
  const { noiseMultiplier } = calibrateNoise(epsilon, (z) => roundsEpsilon(privacyConfigFor(dimension, bound, z), 1), 1e-6);
  return privacyConfigFor(dimension, bound, noiseMultiplier);
}

const random = cryptoRandomSource();

function release(query: AnalyticsQuery, config: PrivacyConfig, seed: number): Release {
  const signs = randomSigns(config.paddedDimension, random);
  const sum = new Uint32Array(config.paddedDimension);
  for (const device of devices) addModular(sum, privatiseUpdate(deviceContribution(query, device.events), config, signs, random));
  const decoded = decodeAggregate(sum, config, signs);
  const noiseStd = releasedNoiseStd(config, devices.length);
  const summary = decodeQuery(query, decoded, noiseStd, { seed });
  return { result: { ...planQuery(query), survivors: devices.length, noiseStd, sum: Array.from(decoded), summary }, epsilon: roundsEpsilon(config, 1).epsilon };
}

/** The exact (noiseless) sum of the devices' contributions: what the release estimates. */
function exactSum(query: AnalyticsQuery): Float64Array {
  const sum = new Float64Array(planQuery(query).dimension);
  for (const device of devices) {
    const c = deviceContribution(query, device.events);
    for (let i = 0; i < c.length; i++) sum[i] = (sum[i] as number) + (c[i] as number);
  }
  return sum;
}

const parse = (input: AnalyticsQueryInput): AnalyticsQuery => AnalyticsQuerySchema.parse(input);
const countQueries = capsList.map((caps) => parse({ statistic: 'category-counts', categories: catalog, ...caps }));
const pricesQuery = parse({ statistic: 'log-price-moments' });
const spendQuery = parse({ statistic: 'spend-histogram' });
const countConfigs = countQueries.map(calibratedConfig);
const pricesConfig = calibratedConfig(pricesQuery);
const spendConfig = calibratedConfig(spendQuery);

const rawTop = new Set(rawVocabulary.categories);
const overlapWithRaw = (categories: readonly string[]) => categories.filter((c) => rawTop.has(c)).length;
const topOf = (sum: Float64Array, k: number): string[] =>
  [...sum.keys()]
    .sort((a, b) => (sum[b] as number) - (sum[a] as number) || a - b)
    .slice(0, k)
    .map((i) => catalog[i] as string);
const exactCounts = countQueries.map(exactSum);
const exactTops = exactCounts.map((sum) => topOf(sum, data.topK));

// The raw ranking over all categories (events of the training users), to say where the misses sit.
const rawEventCounts = new Map<string, number>();
for (const device of devices) for (const e of device.events) rawEventCounts.set(e.category, (rawEventCounts.get(e.category) ?? 0) + 1);
const rawEvents = [...rawEventCounts.values()].reduce((a, b) => a + b, 0);
const rawRanking = [...rawEventCounts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
const rawRank = new Map(rawRanking.map(([c], i) => [c, i + 1]));
const missedRanks = (categories: readonly string[]) => rawVocabulary.categories.filter((c) => !categories.includes(c)).map((c) => rawRank.get(c) as number);

interface RunResult {
  vocabulary: Vocabulary;
  report: BootstrapReport;
  /** Overlap with the raw top-K of each caps variant's DP top-K. */
  overlaps: number[];
  /** Overlap of each variant's DP top-K with its own noiseless top-K: the noise's share of the misses. */
  noiseOverlaps: number[];
  /** Raw ranks of the raw top-K categories the trained variant's DP vocabulary misses. */
  missed: number[];
  epsilons: number[];
  fallbacks: string[];
}

const runResults: RunResult[] = [];
for (let run = 1; run <= runs; run++) {
  const runStarted = performance.now();
  const counts = countQueries.map((q, i) => release(q, countConfigs[i] as PrivacyConfig, run));
  const prices = release(pricesQuery, pricesConfig, run);
  const spend = release(spendQuery, spendConfig, run);
  const built = counts.map((c) => vocabularyFromAnalytics({ categories: c.result, prices: prices.result, spend: spend.result }, { topK: data.topK, hashBuckets: data.hashBuckets, fallback: rawVocabulary }));
  const { vocabulary, report } = built[0] as ReturnType<typeof vocabularyFromAnalytics>;
  const fallbacks = [report.logPriceMean.fallback ? 'log-price mean' : '', report.logPriceStd.fallback ? 'log-price std' : '', ...report.spendingBounds.map((b, i) => (b.fallback ? `spending bound ${i + 1}` : ''))].filter(Boolean);
  const result: RunResult = {
    vocabulary,
    report,
    overlaps: built.map((b) => overlapWithRaw(b.vocabulary.categories)),
    noiseOverlaps: built.map((b, i) => b.vocabulary.categories.filter((c) => (exactTops[i] as string[]).includes(c)).length),
    missed: missedRanks(vocabulary.categories),
    epsilons: [...counts, prices, spend].map((r) => r.epsilon),
    fallbacks,
  };
  runResults.push(result);
  log(`run ${run}: top-${data.topK} overlap ${capsList.map((c, i) => `${capsName(c)} ${result.overlaps[i]}`).join(', ')}; fallbacks: ${fallbacks.length === 0 ? 'none' : fallbacks.join(', ')} (${((performance.now() - runStarted) / 1000).toFixed(1)} s)`);
}
const releaseSeconds = (performance.now() - started) / 1000;

// ---------------------------------------------------------------------------------------------
// Central training with a given vocabulary: scripts/lib/central.ts's trainCentral (same options,
// same model selection on validation users), except that the vocabulary is given, not rebuilt.

interface Trained {
  interests: Metrics;
  bestEpoch: number;
  seconds: number;
  categories: string[];
  /** The interests head's scores and labels on the test examples (the same examples, in the same order, for every vocabulary). */
  testScores: Float32Array[];
  testLabels: Float32Array[];
}

async function trainWith(vocabulary: Vocabulary): Promise<Trained> {
  const t0 = performance.now();
  const prepared: PreparedData = prepareData(dataset.users, dataset.startDay, dataset.days, data, false, vocabulary);
  const config = modelConfigForVocabulary(vocabulary, data, DEFAULT_CENTRAL.architecture, DEFAULT_CENTRAL.sensitiveHeads);
  const model = buildModel(config, DEFAULT_CENTRAL.seed, { ownHistoryPrior: false });
  let best = { score: -Infinity, epoch: 0, weights: flattenWeights(model) };
  await trainModel(model, config, prepared.examples.train, {
    epochs,
    batchSize: DEFAULT_CENTRAL.batchSize,
    learningRate: DEFAULT_CENTRAL.learningRate,
    optimizer: 'adam',
    shuffleSeed: DEFAULT_CENTRAL.seed,
    interestsRanking: 'listwise',
    onEpoch: (epoch) => {
      const validation = scoreModel(model, config, prepared.examples.validation).interests;
      const score = (validation?.microAuc ?? 0) + (validation?.recallAt5 ?? 0);
      if (score > best.score) best = { score, epoch: epoch + 1, weights: flattenWeights(model) };
    },
  });
  setFlatWeights(model, best.weights);
  const test = prepared.examples.test;
  const interests = scoreModel(model, config, test).interests;
  const testScores = predictExamples(model, config, test).get('interests');
  model.dispose();
  if (!interests || !testScores) throw new Error('the model has no interests head');
  return { interests, bestEpoch: best.epoch, seconds: (performance.now() - t0) / 1000, categories: vocabulary.categories, testScores, testLabels: test.map((e) => e.labels.interests) };
}

const describe = (t: Trained) => `interests micro-AUC ${t.interests.microAuc?.toFixed(4)} recall@5 ${t.interests.recallAt5?.toFixed(4)} (best epoch ${t.bestEpoch}, ${t.seconds.toFixed(0)} s)`;
let rawModel: Trained | null = null;
const dpModels: Trained[] = [];
if (trainRuns > 0) {
  rawModel = await trainWith(rawVocabulary);
  log(`raw vocabulary: ${describe(rawModel)}`);
  for (const [i, r] of runResults.slice(0, trainRuns).entries()) {
    dpModels.push(await trainWith(r.vocabulary));
    log(`run ${i + 1} DP vocabulary: ${describe(dpModels[i] as Trained)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The table: one row per quantity; raw data, the same query without noise, and the DP runs.

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
const fixed = (digits: number) => (v: number) => v.toFixed(digits);
const signed = (digits: number) => (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;
const rows: (string | number)[][] = [];
function row(quantity: string, rawValue: string, noiseless: string, values: readonly number[], format: (v: number) => string, bar = '', met = ''): void {
  rows.push([quantity, rawValue, noiseless, format(median(values)), format(Math.min(...values)), format(Math.max(...values)), bar, met]);
}
const ofRuns = (ok: number, n: number) => (ok === n ? `yes, ${ok} of ${n}` : `**no**: ${ok} of ${n}`);

const [mainCaps] = capsList as [Caps];
const mainOverlaps = runResults.map((r) => r.overlaps[0] as number);
const aucDifferences = dpModels.map((t) => (t.interests.microAuc ?? Number.NaN) - (rawModel?.interests.microAuc ?? Number.NaN));
/**
 * Each model's interests micro-AUC counts its own vocabulary's categories as labels. On the
 * categories both vocabularies hold, the two models are scored on the same (example, category)
 * pairs with the same labels: the like-for-like comparison.
 */
function sharedMicroAuc(a: Trained, b: Trained): [number, number] {
  const columnsOf = (t: Trained) => new Map(t.categories.map((c, i) => [c, i]));
  const aColumns = columnsOf(a);
  const bColumns = columnsOf(b);
  const shared = a.categories.filter((c) => bColumns.has(c));
  const pick = (rows: readonly Float32Array[], columns: Map<string, number>) => rows.map((row) => Float32Array.from(shared, (c) => row[columns.get(c) as number] as number));
  const labels = pick(a.testLabels, aColumns);
  const otherLabels = pick(b.testLabels, bColumns);
  if (labels.length !== otherLabels.length || labels.some((row, i) => row.some((v, j) => v !== (otherLabels[i] as Float32Array)[j]))) throw new Error('the two vocabularies\' test examples disagree on a shared category\'s labels');
  return [microAuc(pick(a.testScores, aColumns), labels), microAuc(pick(b.testScores, bColumns), labels)];
}
const sharedDifferences = rawModel ? dpModels.map((t) => sharedMicroAuc(rawModel as Trained, t)).map(([r, d]) => d - r) : [];
capsList.forEach((caps, i) => {
  const overlaps = runResults.map((r) => r.overlaps[i] as number);
  const met = overlaps.filter((o) => o >= 45).length;
  row(`top-${data.topK} ∩ raw top-${data.topK}, caps ${capsName(caps)}${i === 0 ? ' (trained)' : ''}`, String(data.topK), String(overlapWithRaw(exactTops[i] as string[])), overlaps, String, i === 0 ? '≥ 45' : '', i === 0 ? ofRuns(met, runs) : `${met} of ${runs} ≥ 45`);
});
capsList.forEach((caps, i) => row(`DP top-${data.topK} ∩ its noiseless top-${data.topK}, caps ${capsName(caps)}`, '', String(data.topK), runResults.map((r) => r.noiseOverlaps[i] as number), String));
if (rawModel) {
  const rawAuc = rawModel.interests.microAuc ?? Number.NaN;
  const rawRecall = rawModel.interests.recallAt5 ?? Number.NaN;
  row(`interests micro-AUC, test users (DP: runs 1-${trainRuns})`, rawAuc.toFixed(4), '', dpModels.map((t) => t.interests.microAuc ?? Number.NaN), fixed(4));
  row('… DP − raw', '', '', aucDifferences, signed(4), '\\|·\\| ≤ 0.005', `${ofRuns(aucDifferences.filter((d) => Math.abs(d) <= 0.005).length, trainRuns)}; ${aucDifferences.filter((d) => d >= -0.005).length} of ${trainRuns} ≥ −0.005`);
  row('… DP − raw on the categories both vocabularies hold', '', '', sharedDifferences, signed(4), '', `${sharedDifferences.filter((d) => d >= -0.005).length} of ${trainRuns} ≥ −0.005`);
  row(`interests recall@5, test users (DP: runs 1-${trainRuns})`, rawRecall.toFixed(4), '', dpModels.map((t) => t.interests.recallAt5 ?? Number.NaN), fixed(4));
  row('… DP − raw', '', '', dpModels.map((t) => (t.interests.recallAt5 ?? Number.NaN) - rawRecall), signed(4));
}
// The price queries decoded from their exact sums: what the noise is added to.
const exactPrices = decodeQuery(pricesQuery, exactSum(pricesQuery), 0);
const exactSpend = decodeQuery(spendQuery, exactSum(spendQuery), 0);
const valueText = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toFixed(3));
if (exactPrices.statistic !== 'log-price-moments' || exactSpend.statistic !== 'spend-histogram') throw new Error('unexpected summaries');
row('log-price mean', rawVocabulary.logPriceMean.toFixed(3), valueText(exactPrices.mean.value), runResults.map((r) => r.vocabulary.logPriceMean), fixed(3));
// As released, before the fallback: a noisy variance at or below 0 releases std 0 and the vocabulary takes the fallback's.
row('log-price std, as released (0: fallback used)', rawVocabulary.logPriceStd.toFixed(3), valueText(exactPrices.std.value), runResults.map((r) => r.report.logPriceStd.value ?? 0), fixed(3));
row('spending bound 1 (mean log-price of buys)', rawVocabulary.spendingBounds[0].toFixed(3), valueText(exactSpend.quantiles[0]?.logPrice.value), runResults.map((r) => r.vocabulary.spendingBounds[0]), fixed(3));
row('spending bound 2', rawVocabulary.spendingBounds[1].toFixed(3), valueText(exactSpend.quantiles[1]?.logPrice.value), runResults.map((r) => r.vocabulary.spendingBounds[1]), fixed(3));
const sumOf = (v: readonly number[]) => v.reduce((a, b) => a + b, 0);
row(`Σ popularity of the ${data.topK} categories`, sumOf(rawVocabulary.popularity).toFixed(3), '', runResults.map((r) => sumOf(r.vocabulary.popularity)), fixed(3));
const queryNames = [...capsList.map((c) => `category-counts ${capsName(c)}`), 'log-price-moments', 'spend-histogram'];
const configs = [...countConfigs, pricesConfig, spendConfig];
queryNames.forEach((name, i) => {
  const c = configs[i] as PrivacyConfig;
  const spent = runResults.map((r) => r.epsilons[i] as number);
  row(`ε of one ${name} round (z ${c.noiseMultiplier.toFixed(3)}, bound ${c.clip.toFixed(3)}, noise std ${releasedNoiseStd(c, devices.length).toFixed(2)})`, '', '', spent, fixed(3), `≤ ${epsilon}`, ofRuns(spent.filter((e) => e <= epsilon).length, runs));
});
const table = markdownTable(['quantity', 'raw data', 'same query, no noise', `DP: median of ${runs}`, 'min', 'max', 'bar', 'met (runs)'], rows);

// ---------------------------------------------------------------------------------------------
// Why a category is missed: where the raw top-K's boundary sits in the capped counts, against the noise.

const mainExact = exactCounts[0] as Float64Array;
const mainOrder = [...mainExact.keys()].sort((a, b) => (mainExact[b] as number) - (mainExact[a] as number) || a - b);
const countAt = (rank: number) => mainExact[mainOrder[rank - 1] as number] as number;
const mainNoise = releasedNoiseStd(countConfigs[0] as PrivacyConfig, devices.length);
const capMissed = missedRanks(exactTops[0] as string[]);
const gapAt = (variant: number): number => {
  const sum = exactCounts[variant] as Float64Array;
  const sorted = [...sum].sort((a, b) => b - a);
  return (sorted[44] as number) - (sorted[54] as number);
};
// The noise on the released Σx² cell, in variance units: noiseStd · m · B² over the priced events counted.
const priceVarianceNoise = (releasedNoiseStd(pricesConfig, devices.length) * (pricesQuery as Extract<AnalyticsQuery, { statistic: 'log-price-moments' }>).maxEventsPerDevice * (pricesQuery as Extract<AnalyticsQuery, { statistic: 'log-price-moments' }>).maxLogPrice ** 2) / (exactPrices.events.value ?? Number.NaN);
const allMissed = runResults.flatMap((r) => r.missed);
const missedShare = (ranks: readonly number[]) => sumOf(ranks.map((rank) => rawRanking[rank - 1]?.[1] ?? 0)) / rawEvents;
const fallbackRuns = runResults.filter((r) => r.fallbacks.length > 0).length;
const fallbackFields = [...new Set(runResults.flatMap((r) => r.fallbacks))].map((field) => `${field} in ${runResults.filter((r) => r.fallbacks.includes(field)).length}`);
const spentTogether = (configs.slice(capsList.length) as PrivacyConfig[]).reduce((a, c) => a + roundsEpsilon(c, 1).epsilon, roundsEpsilon(countConfigs[0] as PrivacyConfig, 1).epsilon);
const seconds = (performance.now() - started) / 1000;
const notes = [
  `${spec} (population seed 7): the ${devices.length} training users of the seeded split are the devices, and the raw vocabulary is \`buildVocabulary\` over their events (as \`prepareData\` builds it, top-${data.topK} by events). ` +
    `Each query is one round of the real mechanism in process: every device selected (fixed selection, so the accountant takes q = 1), t = ${devices.length} (no dropouts), distributed discrete Gaussian with rotation and conditional rounding, residues summed mod 2^32 and decoded, noise std from \`releasedNoiseStd\`, numbers from \`decodeQuery\`, the vocabulary from \`vocabularyFromAnalytics\` with the raw vocabulary as fallback ` +
    `(a fallback was used in ${fallbackRuns} of ${runs} runs${fallbackFields.length === 0 ? '' : `: ${fallbackFields.join(', ')}`}; here the fallback is the raw vocabulary, in a deployment the serving one). The noise comes from crypto.getRandomValues, so each run is an independent release. ` +
    `z is calibrated per query (\`calibrateNoise\` on \`roundsEpsilon\`, the ledger's accountant) so that one round spends at most ε = ${epsilon} at δ = ${delta.toExponential()} (population ${devices.length}, δ < 1/population); ` +
    `the three queries of one vocabulary spend ${spentTogether.toFixed(2)} together by basic composition. ` +
    `The category list is the catalogue: the ${catalog.length} categories that occur in the population's events, sorted. Log-price moments and the spend histogram run at their defaults (a device's 16 most recent priced events; 64 bins over [0, log1p(1e6)]).`,
  `Caps MxE: a device counts its M most active categories, at most E events each; 8x1, the query's default and the recommended setting, counts the shoppers active in a category. ` +
    `The first row's variant is the one trained and held to the bar; the others are measured for the overlap only. ` +
    `Two things separate the DP top-${data.topK} from the raw one. The caps: raw counts events, heavy shoppers included, the capped query counts shoppers, so even without noise it swaps ${capMissed.length} categories (raw ranks ${capMissed.join(', ')} drop out for caps ${capsName(mainCaps)}; "same query, no noise" column). ` +
    `The noise: for caps ${capsName(mainCaps)} the noiseless capped counts at ranks 45, 50, 51 and 55 are ${[45, 50, 51, 55].map(countAt).join(', ')}, against a released noise std of ${mainNoise.toFixed(1)} per category at ε = ${epsilon}, so categories within a few noise std of rank 50 trade places at random ("its noiseless top-${data.topK}" rows). ` +
    `Other caps trade one for the other: the noise std grows with the bound E·sqrt(M) while the counts spread apart, and the count gap between noiseless ranks 45 and 55 is ${capsList.map((c, i) => `${(gapAt(i) / releasedNoiseStd(countConfigs[i] as PrivacyConfig, devices.length)).toFixed(2)} noise std for ${capsName(c)}`).join(', ')}; ` +
    `the mean overlap over the runs is ${capsList.map((c, i) => `${(sumOf(runResults.map((r) => r.overlaps[i] as number)) / runs).toFixed(1)} for ${capsName(c)}`).join(', ')}. ` +
    `Over all runs the raw top-${data.topK} categories the DP vocabulary missed had raw ranks ${allMissed.length === 0 ? '-' : `${Math.min(...allMissed)}-${Math.max(...allMissed)} (median ${median(allMissed)})`}; each of them holds about ${allMissed.length === 0 ? '-' : ((100 * missedShare(allMissed)) / allMissed.length).toFixed(2)} % of the raw events, and it falls into a hash bucket instead of its own slot.`,
  `The log-price std is the noisiest number: it is sqrt(E[x²] - E[x]²) from released sums, and the query scales x by its maxLogPrice, log1p(1e6) = ${DEFAULT_MAX_LOG_PRICE.toFixed(1)}, far above the prices' own range, so the noise on Σx² over the ${Math.round(exactPrices.events.value ?? 0)} priced events counted gives the variance a noise std of about ${priceVarianceNoise.toFixed(2)}, against a variance of ${(rawVocabulary.logPriceStd ** 2).toFixed(2)} ` +
    `(a query with a tighter maxLogPrice would cut it by the square of the ratio; not measured here). ` +
    `The spending bounds differ from the raw ones even without noise because \`buildVocabulary\` takes tertiles of per-window mean prices of buys in the label windows, the query a device's mean over all its buys. Σ popularity differs because the DP shares are of capped counts (shoppers), the raw ones of events.`,
  `Verdict for caps ${capsName(mainCaps)}: the overlap bar ${median(mainOverlaps) >= 45 ? 'holds' : 'fails'} for the median release (${median(mainOverlaps)}) and holds in ${mainOverlaps.filter((o) => o >= 45).length} of ${runs} releases (worst ${Math.min(...mainOverlaps)})${Math.min(...mainOverlaps) >= 45 ? '' : ': a single release at ε = 1 misses it now and then'}.` +
    (rawModel
      ? ` The micro-AUC bar holds in ${aucDifferences.filter((d) => Math.abs(d) <= 0.005).length} of ${trainRuns} trained runs (largest |DP − raw| ${Math.max(...aucDifferences.map(Math.abs)).toFixed(4)}). ` +
        `The two models are scored on different label sets (each vocabulary's own categories), so a DP model scoring higher is no evidence that its vocabulary is better: on the categories both hold, DP − raw is ${sharedDifferences.map(signed(4)).join(', ')}.`
      : ''),
  rawModel
    ? `Training: scripts/lib/central.ts's defaults (MLP 64-32, ${epochs} epochs, batch ${DEFAULT_CENTRAL.batchSize}, Adam ${DEFAULT_CENTRAL.learningRate}, seed ${DEFAULT_CENTRAL.seed}, the epoch with the best validation micro-AUC + recall@5 kept), once with the raw vocabulary and once with each of the first ${trainRuns} runs' DP vocabularies (caps ${capsName(mainCaps)}); ` +
      `each model is scored on the same ${raw.split.users.test} test users with features built from its own vocabulary, so the interests labels are each vocabulary's own ${data.topK} categories (a category out of the vocabulary is no label and only a hashed feature). ` +
      'The row "on the categories both vocabularies hold" scores both models on the same (example, category) pairs.'
    : 'No training (--train-runs 0).',
  `The run took ${seconds.toFixed(0)} s: ${releaseSeconds.toFixed(0)} s for data and the ${runs} × ${capsList.length + 2} releases, the rest training.`,
].join('\n\n');

if (flag('--no-write')) process.stdout.write(`${table}\n\n${notes}\n`);
else writeBenchmark({ key: benchmarkKey('vocabulary-from-analytics', spec, `epsilon=${epsilon}`), title: `Vocabulary from DP analytics (${spec}, ε = ${epsilon} per query)`, tfjsBackend: backend, table, notes });

/**
 * Starting without a catalog: federated heavy-hitter discovery of the category ids
 * (shared/analytics/heavy-hitters.ts, after TrieHH, Zhu et al. AISTATS 2020, Sec. 3) on a synthetic
 * population, then the bootstrap's category-counts round over the discovered ids. Every training
 * user is one device; each level is one round with every device selected (q = 1, t = all), its
 * release the real rounds' distributed discrete Gaussian mechanism run in process (privatiseUpdate
 * per device, modular sum, decodeAggregate; Kairouz, Liu, Steinke 2021, Alg. 1-2), with z
 * calibrated by the ledger's accountant so that one level spends the target epsilon at delta, as
 * scripts/bench/vocabulary.ts does for the catalog's path. The devices' and the rounds' randomness
 * comes from seeded streams (scripts/bench/seeded-source.ts), so a run can be repeated; the table
 * gives the median and the extremes over --runs independent releases.
 * Usage: npx tsx scripts/bench/heavy-hitters.ts [--users 5000] [--epsilon 1] [--delta 1e-6] [--runs 6]
 *        [--threshold-sigmas 3] [--max-candidates 200] [--levels 8] [--top 50] [--no-write]
 *        (npm run bench:heavy-hitters)
 */
import { advanceDiscovery, discoveredCategories, levelQuery, startDiscovery } from '../../shared/analytics/heavy-hitters.ts';
import type { DiscoveryLevel, DiscoveryState } from '../../shared/analytics/heavy-hitters.ts';
import { AnalyticsQuerySchema, decodeQuery, deviceContribution, planQuery } from '../../shared/analytics/queries.ts';
import type { AnalyticsQuery, AnalyticsSummary } from '../../shared/analytics/queries.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import { calibrateNoise } from '../../shared/privacy/calibrate.ts';
import { buildPrivacyConfig, releasedNoiseStd, roundsEpsilon, roundsRdp } from '../../shared/privacy/config.ts';
import type { PrivacyConfig } from '../../shared/privacy/config.ts';
import { decodeAggregate, privatiseUpdate } from '../../shared/privacy/mechanism.ts';
import { addModular } from '../../shared/privacy/modular.ts';
import { DEFAULT_RDP_ORDERS, epsilonFromRdp, logErfc } from '../../shared/privacy/rdp.ts';
import { randomSigns } from '../../shared/privacy/rotation.ts';
import { loadDataset } from '../import/resolve.ts';
import { dataConfig } from '../lib/central-config.ts';
import { flag, numberOption } from './args.ts';
import { benchmarkKey, markdownTable, writeBenchmark } from './report.ts';
import { seededSource } from './seeded-source.ts';

const users = numberOption('--users', 5000);
const epsilon = numberOption('--epsilon', 1);
const delta = numberOption('--delta', 1e-6);
const runs = numberOption('--runs', 6);
const thresholdSigmas = numberOption('--threshold-sigmas', 3);
const maxCandidates = numberOption('--max-candidates', 200);
const levels = numberOption('--levels', 8);
const top = numberOption('--top', 50);
if (!Number.isInteger(users) || users < 10) throw new RangeError(`"--users" expected an integer >= 10, got ${users}`);
if (!(epsilon > 0)) throw new RangeError(`"--epsilon" expected a number > 0, got ${epsilon}`);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`"--runs" expected an integer >= 1, got ${runs}`);
if (!Number.isInteger(top) || top < 1) throw new RangeError(`"--top" expected an integer >= 1, got ${top}`);
const log = (line: string) => process.stderr.write(`${line}\n`);
const started = performance.now();

const spec = `synthetic:${users}`;
const dataset = await loadDataset(spec);
const data = dataConfig({ topK: top });
const raw = prepareData(dataset.users, dataset.startDay, dataset.days, data, false);
const devices = raw.users.train;
const rawTop = raw.vocabulary.categories;
const catalog = [...new Set(dataset.users.flatMap((u) => u.events.map((e) => e.category)))].sort();
const catalogSize = catalog.length;

/** Devices holding each id among their 8 most active categories (ties by id): what an id's end cell counts. */
const held = new Map<string, number>();
for (const device of devices) {
  const counts = new Map<string, number>();
  for (const e of device.events) counts.set(e.category, (counts.get(e.category) ?? 0) + 1);
  for (const [id] of [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 8)) held.set(id, (held.get(id) ?? 0) + 1);
}
log(`${spec}: ${devices.length} training users (devices), ${catalogSize} categories in the events (ids unknown to the server), raw top-${top}`);

// ---------------------------------------------------------------------------------------------
// One release, as a round with every device selected and no dropout makes it.

function privacyConfigFor(dimension: number, bound: number, noiseMultiplier: number): PrivacyConfig {
  return buildPrivacyConfig({ mode: 'distributed', clip: bound, noiseMultiplier, minSurvivors: devices.length, delta, population: devices.length, dimension, samplingRate: 1, poissonSampling: false, expectedClients: devices.length, rotation: true });
}

/** The smallest z (to 1e-6 relative) whose single round spends at most `epsilon` by the ledger's accountant. */
function calibratedConfig(query: AnalyticsQuery): PrivacyConfig {
  const { dimension, bound } = planQuery(query);
  const { noiseMultiplier } = calibrateNoise(epsilon, (z) => roundsEpsilon(privacyConfigFor(dimension, bound, z), 1), 1e-6);
  return privacyConfigFor(dimension, bound, noiseMultiplier);
}

interface Release {
  summary: AnalyticsSummary;
  noiseStd: number;
  config: PrivacyConfig;
}

function release(query: AnalyticsQuery, seed: number): Release {
  const config = calibratedConfig(query);
  const server = seededSource(seed, 1, 0);
  const signs = randomSigns(config.paddedDimension, server);
  const sum = new Uint32Array(config.paddedDimension);
  devices.forEach((device, i) => addModular(sum, privatiseUpdate(deviceContribution(query, device.events), config, signs, seededSource(seed, 2, i))));
  const noiseStd = releasedNoiseStd(config, devices.length);
  return { summary: decodeQuery(query, decodeAggregate(sum, config, signs), noiseStd, { seed }), noiseStd, config };
}

interface RunResult {
  state: DiscoveryState;
  configs: PrivacyConfig[];
  discovered: string[];
  /** The top-K of the category-counts round over the discovered ids (the bootstrap's). */
  bootstrapTop: string[];
  /** The same round over every id (what a catalog gives): the reference. */
  catalogTop: string[];
  seconds: number;
}

const results: RunResult[] = [];
for (let run = 1; run <= runs; run++) {
  const runStarted = performance.now();
  let state = startDiscovery({ thresholdSigmas, minCount: 1, maxCandidates, levels });
  const configs: PrivacyConfig[] = [];
  while (state.stopped === null) {
    const query = levelQuery(state);
    const released = release(query, run * 100 + state.levels.length);
    configs.push(released.config);
    state = advanceDiscovery(state, { summary: released.summary, noiseStd: released.noiseStd, epsilon: roundsEpsilon(released.config, 1).epsilon });
    const l = state.levels.at(-1) as DiscoveryLevel;
    log(`run ${run} level ${l.level}: ${l.prefixes} prefixes, z ${released.config.noiseMultiplier.toFixed(3)}, σ ${l.noiseStd.toFixed(1)}, threshold ${l.threshold.toFixed(1)}: ${l.found} ids, ${l.kept} prefixes kept, ${l.dropped} dropped`);
  }
  const discovered = discoveredCategories(state).map((c) => c.category);
  const counts = AnalyticsQuerySchema.parse({ statistic: 'category-counts', categories: discovered });
  const boot = release(counts, run * 100 + 99);
  if (boot.summary.statistic !== 'category-counts') throw new Error('unexpected summary');
  const bootstrapTop = boot.summary.categories.slice(0, top).map((c) => c.category);
  const withCatalog = release(AnalyticsQuerySchema.parse({ statistic: 'category-counts', categories: catalog }), run * 100 + 98);
  if (withCatalog.summary.statistic !== 'category-counts') throw new Error('unexpected summary');
  const catalogTop = withCatalog.summary.categories.slice(0, top).map((c) => c.category);
  results.push({ state, configs, discovered, bootstrapTop, catalogTop, seconds: (performance.now() - runStarted) / 1000 });
  log(`run ${run}: ${discovered.length} ids in ${state.levels.length} levels, ${rawTop.filter((c) => discovered.includes(c)).length} of the raw top-${top}; bootstrap top-${top} ∩ raw ${rawTop.filter((c) => bootstrapTop.includes(c)).length} (${((performance.now() - runStarted) / 1000).toFixed(0)} s)`);
}

// ---------------------------------------------------------------------------------------------
// The tables.

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
const rows: (string | number)[][] = [];
function row(quantity: string, reference: string, values: readonly number[], format: (v: number) => string = String): void {
  rows.push([quantity, reference, format(median(values)), format(Math.min(...values)), format(Math.max(...values))]);
}
const fixed = (digits: number) => (v: number) => v.toFixed(digits);
const inRawTop = (ids: readonly string[]) => rawTop.filter((c) => ids.includes(c)).length;
/** Epsilon of the levels composed by the accountant (RDP summed per order), the way the ledger composes released rounds. */
const composed = (configs: readonly PrivacyConfig[]) => {
  const rdp = new Float64Array(DEFAULT_RDP_ORDERS.length);
  for (const c of configs) roundsRdp(c, 1).forEach((v, i) => (rdp[i] = (rdp[i] as number) + v));
  return epsilonFromRdp(DEFAULT_RDP_ORDERS, rdp, delta).epsilon;
};
const thresholds = results.flatMap((r) => r.state.levels.map((l) => l.threshold));
const ceiling = rawTop.filter((c) => (held.get(c) ?? 0) >= Math.max(...thresholds)).length;
row(`raw top-${top} categories discovered`, `${top} (${ceiling} held by ≥ the highest threshold, ${Math.max(...thresholds).toFixed(1)} devices)`, results.map((r) => inRawTop(r.discovered)));
row('ids discovered', `${[...held.values()].filter((n) => n >= Math.min(...thresholds)).length} held by ≥ the lowest threshold`, results.map((r) => r.discovered.length));
row('… held by no device (false discoveries)', '0', results.map((r) => r.discovered.filter((c) => !held.has(c)).length));
row(`… held by some device, outside the raw top-${top}`, '', results.map((r) => r.discovered.filter((c) => held.has(c) && !rawTop.includes(c)).length));
row('levels (rounds)', '', results.map((r) => r.state.levels.length));
row('prefixes still open at --levels', '0', results.map((r) => r.state.unfinished.length));
row(`ε of discovery, levels summed (basic composition)`, '', results.map((r) => r.state.levels.reduce((a, l) => a + (l.epsilon ?? Number.NaN), 0)), fixed(2));
row('ε of discovery, levels composed by the accountant (RDP)', '', results.map((r) => composed(r.configs)), fixed(2));
row(`bootstrap: noisy top-${top} of category-counts over the discovered ids ∩ raw top-${top}`, String(top), results.map((r) => inRawTop(r.bootstrapTop)));
row(`… the same round over all ${catalogSize} ids (the catalog known)`, String(top), results.map((r) => inRawTop(r.catalogTop)));
row('ε of discovery and the category-counts round (RDP)', '', results.map((r) => composed([...r.configs, calibratedConfig(AnalyticsQuerySchema.parse({ statistic: 'category-counts', categories: r.discovered }))])), fixed(2));
const table = markdownTable(['quantity', 'reference', `median of ${runs}`, 'min', 'max'], rows);

const first = results[0] as RunResult;
const levelRows = first.state.levels.map((l, i) => {
  const c = first.configs[i] as PrivacyConfig;
  return [l.level, l.prefixes, l.dimension, c.noiseMultiplier.toFixed(3), l.noiseStd.toFixed(1), l.threshold.toFixed(1), l.found, l.kept, l.dropped, (l.epsilon ?? Number.NaN).toFixed(3)];
});
const levelTable = markdownTable(['level', 'prefixes', 'cells', 'z', 'noise std', 'threshold', 'ids found', 'prefixes kept', 'dropped (cap)', 'ε'], levelRows);

const minHeld = Math.min(...rawTop.map((c) => held.get(c) ?? 0));
const threshold = Math.max(...thresholds);
const sigma = threshold / thresholdSigmas;
const near = rawTop.filter((c) => (held.get(c) ?? 0) < threshold + 2 * sigma);
const missed = results.flatMap((r) => rawTop.filter((c) => !r.discovered.includes(c)));
const rawRank = new Map(rawTop.map((c, i) => [c, i + 1]));
const seconds = (performance.now() - started) / 1000;
const notes = [
  `Run 1, level by level:\n\n${levelTable}`,
  `${spec} (population seed 7): the ${devices.length} training users of the seeded split are the devices; their events hold ${catalogSize} category ids (\`c0\` … \`c${catalogSize - 1}\`), which the server does not know. The raw top-${top} is \`buildVocabulary\`'s over their events (top by event count). ` +
    `Each level is one \`category-prefixes\` round (a device marks, for each of its 8 most active categories, the cell of its candidate prefix and next symbol, or the end cell; bound sqrt(8)) with every device selected (fixed selection, q = 1), t = ${devices.length}, the distributed discrete Gaussian with rotation and conditional rounding, residues summed mod 2^32 and decoded, noise std from \`releasedNoiseStd\`; z is calibrated per level (\`calibrateNoise\` on \`roundsEpsilon\`) so that each level spends at most ε = ${epsilon} at δ = ${delta.toExponential()}. ` +
    `A prefix or id is kept when its released count is at least ${thresholdSigmas} noise std; at most ${maxCandidates} prefixes go on per level (the largest counts), at most ${levels} levels. The default alphabet (digits, lowercase letters, '-', '_') gives 39 cells per prefix.`,
  `The bootstrap rows are the next step of a catalog-less start: one \`category-counts\` round (caps 8x1, ε = ${epsilon}) over the discovered ids, whose noisy top-${top} becomes the vocabulary (\`portrait model bootstrap --categories\`), beside the same round over all ${catalogSize} ids, as a server that knows its catalog runs it (bench:vocabulary's path; same seeds per run, separate draws). ` +
    `Raw top-${top} categories missed by discovery: ${missed.length === 0 ? 'none in any run' : [...new Set(missed)].map((c) => `raw rank ${rawRank.get(c)} (held by ${held.get(c) ?? 0} devices) in ${missed.filter((m) => m === c).length} of ${runs} runs`).join(', ')}. ` +
    `A raw top-${top} category is held (among a device's 8 most active: shoppers, where the raw ranking counts events) by ${minHeld} to ${Math.max(...rawTop.map((c) => held.get(c) ?? 0))} devices, against a threshold of ${threshold.toFixed(1)} (${thresholdSigmas} noise std of ${sigma.toFixed(1)}). ` +
    (near.length === 0
      ? 'Every one is held by more than the threshold plus 2 noise std. '
      : `${near.length} of them (raw rank${near.length === 1 ? '' : 's'} ${near.map((c) => rawRank.get(c)).join(', ')}, held by ${near.map((c) => held.get(c) ?? 0).join(', ')}) ${near.length === 1 ? 'is' : 'are'} held by fewer than the threshold plus 2 noise std (${(threshold + 2 * sigma).toFixed(1)}) and pass${near.length === 1 ? 'es' : ''} a level or not by the noise; one further above it is missed only when the noise on its end cell falls that far below its count. `) +
    `What limits the vocabulary is then the category-counts round after discovery, as with a catalog: the round is the same (caps, noise), and over the discovered list only ids that passed the threshold compete for the top-${top}.`,
  `ε: every level is a release in the ledger, so discovery costs ${median(results.map((r) => r.state.levels.length))} rounds' budget (median) before the bootstrap's three; the accountant composes them (RDP) to less than their sum. A level that keeps false prefixes (cells of count 0 above ${thresholdSigmas} noise std, about ${(50 * Math.exp(logErfc(thresholdSigmas / Math.SQRT2))).toFixed(2)} % of them) adds a level that finds nothing. The run took ${seconds.toFixed(0)} s (${results.map((r) => r.seconds.toFixed(0)).join(', ')} s per run).`,
].join('\n\n');

if (flag('--no-write')) process.stdout.write(`${table}\n\n${notes}\n`);
else writeBenchmark({ key: benchmarkKey('heavy-hitters', spec, `epsilon=${epsilon}`), title: `Category discovery without a catalog (${spec}, ε = ${epsilon} per level)`, tfjsBackend: 'none', table, notes });

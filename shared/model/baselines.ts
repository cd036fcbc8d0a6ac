/**
 * The baselines every result table carries, scored by the same code on the same test examples as
 * the model, and the paired bootstrap of model − best baseline. Every heuristic reads the example's
 * own feature vector (shared/features/extract.ts), so it sees exactly the model's inputs:
 *
 * - interests: global popularity, own history share, own history + popularity prior (β chosen on
 *   the validation examples), popularity × activity (which ranks categories like popularity but
 *   knows who is active: it shows how much of a micro-AUC is activity prediction);
 * - purchase: recency of the last event, share of active days, has bought before;
 * - spending: the tier of the user's own past bought prices (majority tier when nothing was bought);
 * - every head but interests: the training majority (ranking metrics at 0.5 by construction);
 * - every head: `logistic`, a pooled logistic regression on a few documented aggregate features,
 *   fitted on the training users' examples only (LOGISTIC_USER_FEATURES, LOGISTIC_CATEGORY_FEATURES).
 *
 * `best` is the baseline with the highest primary metric on the test examples (choosing it there
 * favours the baselines, so a model that beats it has beaten every one of them).
 */
import type { Example } from '../features/examples.ts';
import { BEHAVIOUR_FEATURES, SPENDING_FEATURES, interestSlots } from '../features/extract.ts';
import { SeededRandom } from '../features/seeded-random.ts';
import { spendingTier } from '../features/vocabulary.ts';
import type { Vocabulary } from '../features/vocabulary.ts';
import { labelRow } from './batches.ts';
import { headMetric, labelledRows, OWN_HISTORY_BETAS, scoreRows } from './evaluate.ts';
import type { HeadScores, MetricName } from './evaluate.ts';
import { auc } from './metrics.ts';
import { headSpecs, headUnits } from './spec.ts';
import type { HeadName, HeadSpec, ModelConfig } from './spec.ts';

/** Per-head score rows, one per example, in example order. */
export type HeadRows = Map<HeadName, Float32Array[]>;

/** The metric a head's best baseline and its bootstrap are chosen on. */
export function primaryMetric(spec: HeadSpec): MetricName {
  if (spec.name === 'interests') return 'userAuc';
  if (spec.kind === 'multilabel') return 'microAuc';
  return spec.kind === 'binary' ? 'auc' : 'macroF1';
}

type BehaviourFeature = (typeof BEHAVIOUR_FEATURES)[number];
type SpendingFeature = (typeof SPENDING_FEATURES)[number];

/** Named reads from an example's flat feature vector, at the offsets extractFeatures writes. */
export function featureReader(vocab: Vocabulary) {
  const slots = interestSlots(vocab);
  const shareOffset = BEHAVIOUR_FEATURES.length;
  const spendOffset = shareOffset + 2 * slots;
  return {
    behaviour: (f: Float32Array, name: BehaviourFeature) => f[BEHAVIOUR_FEATURES.indexOf(name)] as number,
    spending: (f: Float32Array, name: SpendingFeature) => f[spendOffset + SPENDING_FEATURES.indexOf(name)] as number,
    /** Events in the history: logCountAll is log1p of it. */
    events: (f: Float32Array) => Math.expm1(f[BEHAVIOUR_FEATURES.indexOf('logCountAll')] as number),
    share: (f: Float32Array, c: number) => f[shareOffset + c] as number,
    decayedShare: (f: Float32Array, c: number) => f[shareOffset + slots + c] as number,
  };
}

/** Label frequencies over the training examples whose label is known: the constant "prior" row. */
export function priorRow(spec: HeadSpec, train: readonly Example[]): Float32Array {
  const sum = new Float32Array(headUnits(spec));
  let n = 0;
  for (const e of train) {
    const row = labelRow(spec, e.labels);
    if (!row) continue;
    for (let j = 0; j < row.length; j++) sum[j] = (sum[j] as number) + (row[j] as number);
    n++;
  }
  return sum.map((v) => v / Math.max(1, n));
}

/** (n_c + β·p_c) / (N + β) from the share and event count features: own history smoothed towards popularity. */
export function ownHistoryRow(vocab: Vocabulary, features: Float32Array, beta: number): Float32Array {
  const read = featureReader(vocab);
  const events = read.events(features);
  return Float32Array.from(vocab.categories, (_, c) => (read.share(features, c) * events + beta * (vocab.popularity[c] as number)) / (events + beta));
}

/** The heuristic baselines' rows on `examples`, by baseline name then head. */
export function heuristicRows(config: ModelConfig, train: readonly Example[], examples: readonly Example[], ownHistoryBeta: number): Map<string, HeadRows> {
  const vocab = config.vocabulary;
  const read = featureReader(vocab);
  const out = new Map<string, HeadRows>();
  const put = (baseline: string, head: HeadName, rows: Float32Array[]) => {
    let byHead = out.get(baseline);
    if (!byHead) out.set(baseline, (byHead = new Map()));
    byHead.set(head, rows);
  };
  for (const spec of headSpecs(config)) {
    const prior = priorRow(spec, train);
    if (spec.name === 'interests') {
      put('popularity', spec.name, examples.map(() => prior));
      put('ownShare', spec.name, examples.map((e) => Float32Array.from(vocab.categories, (_, c) => read.share(e.features, c))));
      put('ownHistory', spec.name, examples.map((e) => ownHistoryRow(vocab, e.features, ownHistoryBeta)));
      put('popularityActivity', spec.name, examples.map((e) => prior.map((p) => p * (read.behaviour(e.features, 'logCountAll')))));
      continue;
    }
    const majority = spec.kind === 'binary' ? Float32Array.of((prior[0] as number) >= 0.5 ? 1 : 0) : prior;
    put('majority', spec.name, examples.map(() => majority));
    if (spec.name === 'purchase') {
      put('recency', spec.name, examples.map((e) => Float32Array.of(1 - read.behaviour(e.features, 'daysSinceLastEvent'))));
      put('activeDays', spec.name, examples.map((e) => Float32Array.of(read.behaviour(e.features, 'activeDayShare'))));
      put('hasBought', spec.name, examples.map((e) => Float32Array.of(read.spending(e.features, 'hasBought'))));
    }
    if (spec.name === 'spending') {
      const majorityTier = prior.indexOf(Math.max(...prior));
      put('ownPriceTier', spec.name, examples.map((e) => {
        const row = new Float32Array(headUnits(spec));
        // meanLogPriceBought is stored normalised: undo it to compare with the tier bounds.
        const bought = read.spending(e.features, 'meanLogPriceBought') * vocab.logPriceStd + vocab.logPriceMean;
        row[read.spending(e.features, 'hasBought') > 0.5 ? spendingTier(vocab, bought) : majorityTier] = 1;
        return row;
      }));
    }
  }
  return out;
}

/** β of the own-history + popularity baseline: the best on the validation examples by the interests' primary metric. */
export function chooseOwnHistoryBeta(config: ModelConfig, validation: readonly Example[]): number {
  const spec = headSpecs(config).find((s) => s.name === 'interests');
  let beta: number = OWN_HISTORY_BETAS[0];
  if (!spec || validation.length === 0) return beta;
  let best = -Infinity;
  for (const b of OWN_HISTORY_BETAS) {
    const value = headMetric(spec, primaryMetric(spec), labelledRows(spec, validation.map((e) => ownHistoryRow(config.vocabulary, e.features, b)), validation));
    if (value > best) {
      best = value;
      beta = b;
    }
  }
  return beta;
}

// ---------------------------------------------------------------------------------------------
// Logistic regression baseline.

/** Per-example aggregate features of the logistic baseline for every head but interests (names from extract.ts). */
export const LOGISTIC_USER_FEATURES = ['logCountAll', 'activeDayShare', 'daysSinceLastEvent', 'daysSinceLastBuy', 'logCountLast3Days', 'logDistinctCategories', 'hasBought', 'meanLogPriceBought', 'meanLogPrice'] as const;
/**
 * Per-(example, category) features of the pooled interests model: the category's own share and
 * decayed share, log of the own-history score (n_c + p_c) / (N + 1), the category's training
 * popularity p_c, and the user's activity (logCountAll, activeDayShare, daysSinceLastEvent).
 */
export const LOGISTIC_CATEGORY_FEATURES = ['share', 'decayedShare', 'logOwnHistory', 'popularity', 'logCountAll', 'activeDayShare', 'daysSinceLastEvent'] as const;

export interface LogisticModel {
  /** Intercept first, then one weight per standardised feature. */
  weights: Float64Array;
  mean: Float64Array;
  std: Float64Array;
  iterations: number;
}

export interface LogisticOptions {
  /** Newton steps at most (they stop once no weight moves by 1e-9). */
  iterations?: number;
  /** L2 penalty on the non-intercept weights: keeps a separable problem finite. */
  l2?: number;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Solves A x = b in place for a small dense system (Gaussian elimination, partial pivoting). */
function solve(a: Float64Array, b: Float64Array, n: number): Float64Array {
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r * n + col] as number) > Math.abs(a[pivot * n + col] as number)) pivot = r;
    if (pivot !== col) {
      for (let k = 0; k < n; k++) [a[col * n + k], a[pivot * n + k]] = [a[pivot * n + k] as number, a[col * n + k] as number];
      [b[col], b[pivot]] = [b[pivot] as number, b[col] as number];
    }
    const d = a[col * n + col] as number;
    for (let r = col + 1; r < n; r++) {
      const f = (a[r * n + col] as number) / d;
      if (f === 0) continue;
      for (let k = col; k < n; k++) a[r * n + k] = (a[r * n + k] as number) - f * (a[col * n + k] as number);
      b[r] = (b[r] as number) - f * (b[col] as number);
    }
  }
  const x = new Float64Array(n);
  for (let r = n - 1; r >= 0; r--) {
    let s = b[r] as number;
    for (let k = r + 1; k < n; k++) s -= (a[r * n + k] as number) * (x[k] as number);
    x[r] = s / (a[r * n + r] as number);
  }
  return x;
}

/**
 * L2-penalised logistic regression by Newton's method (IRLS; Hastie, Tibshirani & Friedman, The
 * Elements of Statistical Learning, Sec. 4.4.1) on standardised columns. `x` holds `rows` rows of
 * `d` features. Deterministic: no randomness, a fixed order of summation.
 */
export function fitLogistic(x: Float64Array, y: ArrayLike<number>, d: number, options: LogisticOptions = {}): LogisticModel {
  const rows = y.length;
  if (x.length !== rows * d) throw new RangeError(`"x" expected ${rows * d} values (${rows} rows × ${d}), got ${x.length}`);
  const maxIterations = options.iterations ?? 25;
  const l2 = options.l2 ?? 1;
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let i = 0; i < rows; i++) for (let j = 0; j < d; j++) mean[j] = (mean[j] as number) + (x[i * d + j] as number) / Math.max(1, rows);
  for (let i = 0; i < rows; i++) for (let j = 0; j < d; j++) std[j] = (std[j] as number) + ((x[i * d + j] as number) - (mean[j] as number)) ** 2 / Math.max(1, rows);
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j] as number) || 1;
  const n = d + 1;
  const w = new Float64Array(n);
  const z = new Float64Array(n);
  z[0] = 1;
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    const hessian = new Float64Array(n * n);
    const gradient = new Float64Array(n);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < d; j++) z[j + 1] = ((x[i * d + j] as number) - (mean[j] as number)) / (std[j] as number);
      let dot = 0;
      for (let j = 0; j < n; j++) dot += (w[j] as number) * (z[j] as number);
      const p = sigmoid(dot);
      const r = p - (y[i] as number);
      const v = Math.max(p * (1 - p), 1e-12);
      for (let j = 0; j < n; j++) {
        gradient[j] = (gradient[j] as number) + r * (z[j] as number);
        for (let k = j; k < n; k++) hessian[j * n + k] = (hessian[j * n + k] as number) + v * (z[j] as number) * (z[k] as number);
      }
    }
    for (let j = 0; j < n; j++) for (let k = 0; k < j; k++) hessian[j * n + k] = hessian[k * n + j] as number;
    for (let j = 1; j < n; j++) {
      gradient[j] = (gradient[j] as number) + l2 * (w[j] as number);
      hessian[j * n + j] = (hessian[j * n + j] as number) + l2;
    }
    hessian[0] = (hessian[0] as number) + 1e-9;
    const step = solve(hessian, gradient, n);
    let moved = 0;
    for (let j = 0; j < n; j++) {
      w[j] = (w[j] as number) - (step[j] as number);
      moved = Math.max(moved, Math.abs(step[j] as number));
    }
    if (moved < 1e-9) {
      iterations++;
      break;
    }
  }
  return { weights: w, mean, std, iterations };
}

export function predictLogistic(model: LogisticModel, features: ArrayLike<number>): number {
  let dot = model.weights[0] as number;
  for (let j = 0; j < model.mean.length; j++) dot += (model.weights[j + 1] as number) * (((features[j] as number) - (model.mean[j] as number)) / (model.std[j] as number));
  return sigmoid(dot);
}

function userFeatures(vocab: Vocabulary, e: Example): Float64Array {
  const read = featureReader(vocab);
  return Float64Array.from(LOGISTIC_USER_FEATURES, (name) =>
    (BEHAVIOUR_FEATURES as readonly string[]).includes(name) ? read.behaviour(e.features, name as BehaviourFeature) : read.spending(e.features, name as SpendingFeature),
  );
}

function categoryFeatures(vocab: Vocabulary, e: Example, c: number, out: Float64Array, at: number): void {
  const read = featureReader(vocab);
  const share = read.share(e.features, c);
  const events = read.events(e.features);
  const p = vocab.popularity[c] as number;
  const values = [share, read.decayedShare(e.features, c), Math.log((share * events + p) / (events + 1) + 1e-9), p, read.behaviour(e.features, 'logCountAll'), read.behaviour(e.features, 'activeDayShare'), read.behaviour(e.features, 'daysSinceLastEvent')];
  out.set(values, at);
}

/**
 * The logistic baseline's rows on `examples`, fitted on `train` only: for `interests` one pooled
 * model over every (example, category) pair; for any other head one model per output unit (the
 * binary target; one-vs-rest per class or label).
 */
export function logisticRows(config: ModelConfig, train: readonly Example[], examples: readonly Example[], options: LogisticOptions = {}): HeadRows {
  const vocab = config.vocabulary;
  const out: HeadRows = new Map();
  for (const spec of headSpecs(config)) {
    const known = train.filter((e) => labelRow(spec, e.labels) !== undefined);
    if (known.length === 0) continue;
    if (spec.name === 'interests') {
      const k = vocab.categories.length;
      const d = LOGISTIC_CATEGORY_FEATURES.length;
      const x = new Float64Array(known.length * k * d);
      const y = new Float64Array(known.length * k);
      known.forEach((e, i) => {
        for (let c = 0; c < k; c++) {
          categoryFeatures(vocab, e, c, x, (i * k + c) * d);
          y[i * k + c] = e.labels.interests[c] as number;
        }
      });
      const model = fitLogistic(x, y, d, options);
      const row = new Float64Array(d);
      out.set(spec.name, examples.map((e) => Float32Array.from(vocab.categories, (_, c) => {
        categoryFeatures(vocab, e, c, row, 0);
        return predictLogistic(model, row);
      })));
      continue;
    }
    const d = LOGISTIC_USER_FEATURES.length;
    const x = new Float64Array(known.length * d);
    known.forEach((e, i) => x.set(userFeatures(vocab, e), i * d));
    const labels = known.map((e) => labelRow(spec, e.labels) as Float32Array);
    const models = Array.from({ length: headUnits(spec) }, (_, unit) => fitLogistic(x, labels.map((l) => l[unit] as number), d, options));
    out.set(spec.name, examples.map((e) => {
      const f = userFeatures(vocab, e);
      return Float32Array.from(models, (m) => predictLogistic(m, f));
    }));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Best baseline and the paired bootstrap.

export interface BootstrapOptions {
  resamples?: number;
  seed?: number;
}

/** Model − baseline on a head's metric, with its paired bootstrap interval. */
export interface Comparison {
  baseline: string;
  metric: MetricName;
  delta: number;
  /** 2.5th and 97.5th percentiles of the resampled deltas. */
  ci: [number, number];
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (at - lo);
}

/** Every (example, label) pair of the examples with a known label, in ascending order of score, with where each run of tied scores starts. */
interface RankedPairs {
  example: Uint32Array;
  positive: Uint8Array;
  tieStart: Uint8Array;
}

function rankPairs(spec: HeadSpec, rows: readonly Float32Array[], examples: readonly Example[]): RankedPairs {
  const scores: number[] = [];
  const example: number[] = [];
  const positive: number[] = [];
  examples.forEach((e, i) => {
    const truth = labelRow(spec, e.labels);
    if (!truth) return;
    const row = rows[i] as Float32Array;
    for (let j = 0; j < truth.length; j++) {
      scores.push(row[j] as number);
      example.push(i);
      positive.push((truth[j] as number) > 0.5 ? 1 : 0);
    }
  });
  const order = Array.from({ length: scores.length }, (_, k) => k).sort((a, b) => (scores[a] as number) - (scores[b] as number));
  const ranked: RankedPairs = { example: new Uint32Array(order.length), positive: new Uint8Array(order.length), tieStart: new Uint8Array(order.length) };
  order.forEach((k, at) => {
    ranked.example[at] = example[k] as number;
    ranked.positive[at] = positive[k] as number;
    ranked.tieStart[at] = at === 0 || scores[k] !== scores[order[at - 1] as number] ? 1 : 0;
  });
  return ranked;
}

/** Mann-Whitney AUC (ties half) of ranked pairs, each pair weighted by its example's weight: auc() of the multiset with that many copies. */
function weightedAuc(ranked: RankedPairs, weight: Float64Array): number {
  const n = ranked.example.length;
  let negativesBelow = 0;
  let wins = 0;
  let positives = 0;
  let negatives = 0;
  let k = 0;
  while (k < n) {
    let p = 0;
    let q = 0;
    let j = k;
    do {
      const w = weight[ranked.example[j] as number] as number;
      if (ranked.positive[j] === 1) p += w;
      else q += w;
      j++;
    } while (j < n && ranked.tieStart[j] === 0);
    wins += p * (negativesBelow + q / 2);
    negativesBelow += q;
    positives += p;
    negatives += q;
    k = j;
  }
  return positives === 0 || negatives === 0 ? Number.NaN : wins / (positives * negatives);
}

/** Per user, model − baseline of the user's own AUC (mean over their examples with both classes); NaN when none has. */
function perUserAucs(spec: HeadSpec, modelRows: readonly Float32Array[], baselineRows: readonly Float32Array[], examples: readonly Example[], users: readonly (readonly number[])[]): Float64Array {
  return Float64Array.from(users, (indices) => {
    let sum = 0;
    let n = 0;
    for (const i of indices) {
      const truth = labelRow(spec, (examples[i] as Example).labels);
      if (!truth) continue;
      const a = auc(modelRows[i] as Float32Array, truth);
      if (Number.isNaN(a)) continue;
      sum += a - auc(baselineRows[i] as Float32Array, truth);
      n++;
    }
    return n === 0 ? Number.NaN : sum / n;
  });
}

/**
 * Paired bootstrap over users (Efron & Tibshirani, An Introduction to the Bootstrap, 1993, Ch. 13
 * percentile interval): draw as many users as there are, with replacement, take all of each drawn
 * user's examples, and score the model's and the baseline's rows of those same examples. A user
 * drawn twice counts as two users for the per-user AUC. Resamples whose delta is undefined (one
 * class only) are dropped. A seeded PRNG: the interval is a statistic, rerun to the same digits.
 * Per-user and pooled AUCs take fast paths (per-user values computed once; pairs ranked once and
 * weighted by draws) that the unit tests check against scoring every resample.
 */
export function pairedBootstrap(
  spec: HeadSpec,
  metric: MetricName,
  modelRows: readonly Float32Array[],
  baselineRows: readonly Float32Array[],
  examples: readonly Example[],
  options: BootstrapOptions = {},
): { delta: number; ci: [number, number]; resamples: number } {
  const byUser = new Map<string, number[]>();
  examples.forEach((e, i) => {
    const list = byUser.get(e.userId);
    if (list) list.push(i);
    else byUser.set(e.userId, [i]);
  });
  const users = [...byUser.values()];
  const deltaOf = (indices: readonly number[], groups: readonly number[]) => {
    const picked = indices.map((i) => examples[i] as Example);
    const model = labelledRows(spec, indices.map((i) => modelRows[i] as Float32Array), picked, groups);
    const base = labelledRows(spec, indices.map((i) => baselineRows[i] as Float32Array), picked, groups);
    return headMetric(spec, metric, model) - headMetric(spec, metric, base);
  };
  const examplesOf = (drawn: readonly number[]) => {
    const indices: number[] = [];
    const groups: number[] = [];
    drawn.forEach((u, draw) => {
      for (const i of users[u] as number[]) {
        indices.push(i);
        groups.push(draw);
      }
    });
    return { indices, groups };
  };
  const all = examplesOf(users.map((_, u) => u));
  const delta = deltaOf(all.indices, all.groups);
  // The per-user AUC of a resample is the mean of its drawn users' own values, which do not
  // change between resamples: compute them once (same draws, same result as scoring each resample).
  const perUser = metric === 'userAuc' ? perUserAucs(spec, modelRows, baselineRows, examples, users) : undefined;
  // A pooled AUC of a resample is a weighted Mann-Whitney statistic over the pairs ranked once,
  // each example weighted by how many times its user was drawn.
  const pooled = metric === 'microAuc' || (metric === 'auc' && spec.kind === 'binary') ? { model: rankPairs(spec, modelRows, examples), baseline: rankPairs(spec, baselineRows, examples) } : undefined;
  const userIndex = new Int32Array(examples.length);
  users.forEach((list, u) => {
    for (const i of list) userIndex[i] = u;
  });
  const resampledDelta = (drawn: readonly number[]) => {
    if (pooled) {
      const times = new Float64Array(users.length);
      for (const u of drawn) times[u] = (times[u] as number) + 1;
      const weight = Float64Array.from(userIndex, (u) => times[u] as number);
      return weightedAuc(pooled.model, weight) - weightedAuc(pooled.baseline, weight);
    }
    if (!perUser) {
      const { indices, groups } = examplesOf(drawn);
      return deltaOf(indices, groups);
    }
    let sum = 0;
    let n = 0;
    for (const u of drawn) {
      const d = perUser[u] as number;
      if (Number.isNaN(d)) continue;
      sum += d;
      n++;
    }
    return n === 0 ? Number.NaN : sum / n;
  };
  const random = new SeededRandom(options.seed ?? 1);
  const deltas: number[] = [];
  const resamples = options.resamples ?? 200;
  for (let r = 0; r < resamples; r++) {
    const drawn = Array.from({ length: users.length }, () => random.int(users.length));
    const value = resampledDelta(drawn);
    if (!Number.isNaN(value)) deltas.push(value);
  }
  deltas.sort((a, b) => a - b);
  return { delta, ci: [percentile(deltas, 0.025), percentile(deltas, 0.975)], resamples: deltas.length };
}

export interface BaselineReport {
  /** Metrics of each baseline, by name then head. */
  scores: Record<string, HeadScores>;
  /** Per head, the baseline with the highest primary metric on these examples. */
  best: Partial<Record<HeadName, { baseline: string; metric: MetricName; value: number }>>;
  ownHistoryBeta: number;
  /** Score rows of every baseline on the examples, for pairing with the model's. */
  rows: Map<string, HeadRows>;
}

/** Every baseline on `test`: heuristics, majority and the logistic regression fitted on `train`. */
export function computeBaselineReport(config: ModelConfig, train: readonly Example[], validation: readonly Example[], test: readonly Example[]): BaselineReport {
  const ownHistoryBeta = chooseOwnHistoryBeta(config, validation);
  const rows = heuristicRows(config, train, test, ownHistoryBeta);
  rows.set('logistic', logisticRows(config, train, test));
  const scores: Record<string, HeadScores> = {};
  for (const [name, byHead] of rows) scores[name] = scoreRows(config, byHead, test);
  const best: BaselineReport['best'] = {};
  for (const spec of headSpecs(config)) {
    const metric = primaryMetric(spec);
    for (const [name, byHead] of Object.entries(scores)) {
      const value = byHead[spec.name]?.[metric];
      if (value === undefined || Number.isNaN(value)) continue;
      const current = best[spec.name];
      if (!current || value > current.value) best[spec.name] = { baseline: name, metric, value };
    }
  }
  return { scores, best, ownHistoryBeta, rows };
}

/** Model − best baseline on every head, paired on the same examples. */
export function compareWithBest(config: ModelConfig, modelRows: ReadonlyMap<HeadName, readonly Float32Array[]>, report: BaselineReport, test: readonly Example[], options: BootstrapOptions = {}): Partial<Record<HeadName, Comparison>> {
  const out: Partial<Record<HeadName, Comparison>> = {};
  for (const spec of headSpecs(config)) {
    const best = report.best[spec.name];
    const model = modelRows.get(spec.name);
    const baseline = report.rows.get(best?.baseline ?? '')?.get(spec.name);
    if (!best || !model || !baseline) continue;
    const { delta, ci } = pairedBootstrap(spec, best.metric, model, baseline, test, options);
    out[spec.name] = { baseline: best.baseline, metric: best.metric, delta, ci };
  }
  return out;
}

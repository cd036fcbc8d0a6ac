/**
 * Federated evaluation by sufficient statistics. Each selected device scores a model version on
 * its own examples and contributes one fixed-length vector of counts (per-unit score histograms
 * and positive/negative counts, confusion counts, example counts, recall@5 sums); the server sees
 * only the DP-noised, SecAgg-masked sum and decodes it into the metrics of the central `scoreHead`
 * (shared/model/evaluate.ts), with 95% intervals for the noise and the sampling of examples.
 *
 * AUCs come from histograms of the scores on a logit scale with ties inside a bin counted half,
 * so they differ from the exact Mann–Whitney AUC by at most `aucBinningBounds`. Everything else
 * (accuracy, macro-F1, recall@5, example counts) is exact when the sum carries no noise.
 *
 * Under noise (what is null, what a macro average is over):
 *   - Whether a total is present is read from cells that hold only that total: a unit's
 *     positives and negatives from its own count cell (noise σ, not the σ·sqrt(bins) of its
 *     histogram's sum), a head's examples from its example cell and every unit's counts, a class's
 *     actual count from its count cell. Their noise is independent of the histogram and confusion
 *     cells a metric is computed from, so choosing what to report does not bias what is reported
 *     (except for a class that enters macro-F1 only as a predicted one: its confusion column).
 *   - A metric with one denominator (micro-AUC, accuracy, recall@5) is null where that total is
 *     not clearly above its noise (PRESENCE_Z standard deviations); with no noise this is
 *     scoreHead's rule, total > 0.
 *   - A macro average (AUC of a multilabel or multiclass head, macro-F1) is over the units whose
 *     totals the release shows present, and the release names them (`averagedUnits`): its central
 *     value is scoreHead's average over the same units (decode the noise-free sum with
 *     `averageOver`). Averaging all units scoreHead averages would need each one's presence, which
 *     the noise cannot decide for a unit with fewer examples than a few σ (a shopper interest with
 *     8 positives against σ = 20); averaging the present ones but calling it scoreHead's macro over
 *     all would be biased towards the frequent units. Null where no unit is present.
 *   - Per-unit values (AUCs, F1s) are averaged as they come out of the noisy cells, negative or
 *     above 1 included, and only the reported value and interval are clipped to [0, 1]: clamping
 *     each before averaging biases the average (the demo's untrained spending head never predicts
 *     two classes, whose F1 is 0; with their noisy F1s clamped at 0 its macro-F1 decoded 0.34
 *     against 0.16). Clipping a percentile interval's ends is harmless, as quantiles commute with
 *     a monotone map.
 *   - A ratio of noisy totals is not exactly unbiased. An AUC divides by the count cells (its
 *     numerator is unbiased, see histogramAuc); accuracy and F1 divide by totals of the confusion
 *     matrix they are computed from, as the central metric does, since a ratio of cells that
 *     share the noise varies less (at the demo's budget the purchase accuracy interval was 0.22
 *     wide this way, 0.30 over the examples estimate). The bootstrap carries what bias remains into the interval;
 *     the tests and docs/benchmarks.md measure its coverage.
 *
 * Pure: no tfjs (score rows come in as plain arrays, as `predictExamples` returns them).
 */
import type { Example } from '../features/examples.ts';
import type { ExampleLabels } from '../features/extract.ts';
import { SeededRandom } from '../features/seeded-random.ts';
import { examplesPerUser } from '../features/windows.ts';
import type { Metrics } from '../model/evaluate.ts';
import { argmax, recallAtK } from '../model/metrics.ts';
import type { HeadName, HeadSpec, ModelConfig } from '../model/spec.ts';
import { headSpecs, headUnits } from '../model/spec.ts';

export type EvaluationMetric = keyof Metrics;

/**
 * Bins span logits in [-LOGIT_RANGE, LOGIT_RANGE] (probabilities 3.4e-4 .. 0.99966), the two
 * end bins catching the tails. AUC only needs a monotone binning; equal widths in logit rather
 * than probability keep resolution where a rare label's sigmoid outputs sit (mostly below 0.05,
 * the first 1-2 of 32 equal-width probability bins).
 */
const LOGIT_RANGE = 8;

/**
 * 32 bins: the noise each bin adds to an AUC grows like sqrt(bins) while the binning error
 * falls faster. Simulated on two-Gaussian logits (600/600, 100/1100 and 20/1180 positives/
 * negatives, and the tests' synthetic heads), 32 bins gave a binning error of 0.001-0.003
 * (computed worst-case bound 0.03-0.04; with 100 bins 0.0003, bound 0.01), below the AUC's
 * noise standard deviation already at noiseStd = 1 (0.006 with 32 bins, 0.012 with 100). Pass
 * more bins for evaluation without DP noise, where only binning counts.
 */
const DEFAULT_BINS = 32;

/**
 * Bootstrap replicates of the DP noise for the intervals. The Monte Carlo error of a 2.5%
 * quantile from few replicates narrows the intervals: in simulation 100 replicates covered 1-3
 * points less often than 400.
 */
const DEFAULT_REPLICATES = 400;

/** recall@k of the `interests` head, as scoreHead reports it (`recallAt5`). */
const RECALL_K = 5;

/**
 * A total is taken as "present" (the central metric's "both classes occur", "some example
 * counted") when it exceeds PRESENCE_Z noise standard deviations of that total; with no noise
 * this is the central rule, total > 0. A total of 0 passes it in 2.3% of releases.
 */
const PRESENCE_Z = 2;

const Z_975 = 1.959963984540054;

/** Where one head's blocks sit in the flat vector. */
export interface HeadBlocks {
  readonly spec: HeadSpec;
  /** Output units: labels (multilabel), classes (multiclass), 1 (binary). */
  readonly units: number;
  /** Offset of the head's example count (examples whose label is known). */
  readonly examples: number;
  /** Offset of `units` histograms of `bins` cells: unit u's scores of the examples where u is positive, at `positives + u * bins`. */
  readonly positives: number;
  /** The same for the examples where unit u is negative. */
  readonly negatives: number;
  /** Offset of `units` cells: how many examples unit u is positive in, at `positiveCounts + u` (its positives histogram's total, in one cell). */
  readonly positiveCounts: number;
  /** The same for the examples where unit u is negative. */
  readonly negativeCounts: number;
  /** Offset of the k×k confusion counts, row `actual`, column `predicted` (k = 2 for binary heads); absent for multilabel heads. */
  readonly confusion?: number;
  readonly confusionClasses?: number;
  /** `interests` only: sum over examples with a positive label of recall@5, and their count. */
  readonly recall?: { readonly sum: number; readonly count: number };
  /** Cells one example adds to, each by at most 1. */
  readonly cellsPerExample: number;
}

export interface EvaluationLayout {
  readonly bins: number;
  readonly examplesPerDevice: number;
  readonly heads: readonly HeadBlocks[];
  readonly dimension: number;
  /** Cells one example adds to over all heads, each by at most 1. */
  readonly cellsPerExample: number;
}

export interface EvaluationLayoutOptions {
  bins?: number;
  /**
   * Examples one device contributes at most (its last ones). Default: the config's number of
   * cut days, the most examples `userExamples` makes for one user, so no device is truncated.
   */
  examplesPerDevice?: number;
}

/**
 * The count cells cost one more cell per unit and example, so every cell's noise (z times the
 * bound) grows as sqrt(cellsPerExample): for the demo's heads from 61 to 115 cells, σ 15.1 to
 * 20.7 per cell at its budget. They pay for it in what decides null and in the AUCs'
 * denominators: a unit's positives carry σ instead of the σ·sqrt(bins) of its histogram's sum, so
 * a unit's AUC is decoded from about 42 positives instead of 121 at 16 bins, and micro-AUC's
 * pooled totals carry σ·sqrt(units) instead of σ·sqrt(units·bins). Simulated at the demo's budget
 * (200 releases, Gaussian noise of the round's σ, the same decoder reading totals from the
 * histograms instead), interests micro-AUC was null in 82 releases, purchase AUC in 26 and
 * spending AUC in 138; with the count cells in none, at 94-99% coverage.
 */
export function evaluationLayout(config: ModelConfig, options: EvaluationLayoutOptions = {}): EvaluationLayout {
  const bins = options.bins ?? DEFAULT_BINS;
  if (!Number.isInteger(bins) || bins < 2 || bins > 4096) throw new RangeError(`"bins" expected an integer in 2..4096, got ${bins}`);
  const examplesPerDevice = options.examplesPerDevice ?? examplesPerUser(config.windows);
  if (!Number.isInteger(examplesPerDevice) || examplesPerDevice < 1) throw new RangeError(`"examplesPerDevice" expected an integer >= 1, got ${examplesPerDevice}`);
  let offset = 0;
  const take = (cells: number) => {
    const at = offset;
    offset += cells;
    return at;
  };
  const heads = headSpecs(config).map((spec): HeadBlocks => {
    const units = headUnits(spec);
    const examples = take(1);
    const positives = take(units * bins);
    const negatives = take(units * bins);
    const positiveCounts = take(units);
    const negativeCounts = take(units);
    // Per unit one histogram cell and one count cell, plus the example count.
    let cellsPerExample = 2 * units + 1;
    const blocks = { spec, units, examples, positives, negatives, positiveCounts, negativeCounts };
    if (spec.kind === 'multilabel') {
      if (spec.name !== 'interests') return Object.freeze({ ...blocks, cellsPerExample });
      const recall = Object.freeze({ sum: take(1), count: take(1) });
      cellsPerExample += 2;
      return Object.freeze({ ...blocks, recall, cellsPerExample });
    }
    const confusionClasses = spec.kind === 'binary' ? 2 : units;
    const confusion = take(confusionClasses * confusionClasses);
    cellsPerExample += 1;
    return Object.freeze({ ...blocks, confusion, confusionClasses, cellsPerExample });
  });
  const cellsPerExample = heads.reduce((total, h) => total + h.cellsPerExample, 0);
  return Object.freeze({ bins, examplesPerDevice, heads: Object.freeze(heads), dimension: offset, cellsPerExample });
}

/**
 * An upper bound on the L2 norm of any contribution, attained: each of at most m examples adds
 * a vector of `cellsPerExample` entries in [0, 1] (norm <= sqrt(cells)), so by the triangle
 * inequality the sum has norm <= m * sqrt(cells), with equality for m identical examples whose
 * labels are all known and whose recall@5 is 1.
 */
export function evaluationBound(layout: EvaluationLayout): number {
  return layout.examplesPerDevice * Math.sqrt(layout.cellsPerExample);
}

/** Bin of a probability: equal widths in logit on [-LOGIT_RANGE, LOGIT_RANGE], tails in the end bins. Non-decreasing in `score`. */
export function scoreBin(score: number, bins: number): number {
  const logit = Math.log(score) - Math.log1p(-score);
  const bin = Math.floor(((logit + LOGIT_RANGE) / (2 * LOGIT_RANGE)) * bins);
  return bin < 0 ? 0 : bin >= bins ? bins - 1 : bin;
}

/**
 * The label of one head as a dense row, or undefined when unknown: the rule of `labelRow` in
 * shared/model/batches.ts, written again here because that module loads tfjs (moving `labelRow`
 * to a tfjs-free module would let both share it). The tests check the example counts agree with
 * scoreHead's, which uses `labelRow`.
 */
function knownLabel(spec: HeadSpec, labels: ExampleLabels): ArrayLike<number> | undefined {
  switch (spec.name) {
    case 'interests':
      return labels.interests;
    case 'purchase':
      return [labels.purchase];
    case 'stage':
      return labels.stage;
    default: {
      const cls = labels[spec.name];
      if (cls === undefined) return undefined;
      const row = new Float32Array(spec.classes.length);
      row[cls] = 1;
      return row;
    }
  }
}

/**
 * One device's statistics over its examples; `rows` are the per-head probability rows in example
 * order (as `predictExamples` returns them). Only the last `layout.examplesPerDevice` examples
 * count (examples come in cut-day order, so these are the most recent), which bounds the norm by
 * `evaluationBound`. Examples whose label of a head is unknown are skipped for that head, as in
 * scoreHead.
 */
export function evaluationContribution(layout: EvaluationLayout, rows: ReadonlyMap<HeadName, readonly Float32Array[]>, examples: readonly Example[]): Float32Array {
  const out = new Float32Array(layout.dimension);
  const first = Math.max(0, examples.length - layout.examplesPerDevice);
  const bins = layout.bins;
  const add = (cell: number, value = 1) => {
    out[cell] = (out[cell] as number) + value;
  };
  for (const head of layout.heads) {
    const { spec, units } = head;
    const headRows = rows.get(spec.name);
    if (!headRows) throw new RangeError(`"rows" expected score rows for head "${spec.name}"`);
    if (headRows.length !== examples.length) throw new RangeError(`"rows.${spec.name}" expected ${examples.length} rows (one per example), got ${headRows.length}`);
    for (let i = first; i < examples.length; i++) {
      const row = headRows[i] as Float32Array;
      if (row.length !== units) throw new RangeError(`"rows.${spec.name}[${i}]" expected ${units} scores, got ${row.length}`);
      for (let u = 0; u < units; u++) {
        const p = row[u] as number;
        if (!(p >= 0 && p <= 1)) throw new RangeError(`"rows.${spec.name}[${i}]" expected probabilities in [0, 1], got ${p}`);
      }
      const truth = knownLabel(spec, (examples[i] as Example).labels);
      if (!truth) continue;
      if (truth.length !== units) throw new RangeError(`"examples[${i}].labels.${spec.name}" expected ${units} entries, got ${truth.length}`);
      add(head.examples);
      // The same positive rule as `auc` (label > 0.5); a multiclass row is one-hot.
      for (let u = 0; u < units; u++) {
        const positive = (truth[u] as number) > 0.5;
        add((positive ? head.positives : head.negatives) + u * bins + scoreBin(row[u] as number, bins));
        add((positive ? head.positiveCounts : head.negativeCounts) + u);
      }
      if (head.confusion !== undefined) {
        const k = head.confusionClasses as number;
        // scoreHead's predictions: threshold 0.5 for binary heads, argmax (lowest index on ties) for multiclass.
        const actual = spec.kind === 'binary' ? ((truth[0] as number) > 0.5 ? 1 : 0) : argmax(truth);
        const predicted = spec.kind === 'binary' ? ((row[0] as number) >= 0.5 ? 1 : 0) : argmax(row);
        add(head.confusion + actual * k + predicted);
      }
      if (head.recall) {
        // recallAtK is a mean over examples with a positive of each one's hits/positives, so a
        // device adds its examples' ratios and their count (not hits and positives, whose
        // ratio of sums would be a different, micro-averaged recall).
        const r = recallAtK([row], [truth], RECALL_K);
        if (!Number.isNaN(r)) {
          add(head.recall.sum, r);
          add(head.recall.count);
        }
      }
    }
  }
  return out;
}

/** Per head, the units (label or class indices, ascending) each macro average is over. */
export type AveragedUnits = Partial<Record<HeadName, { auc: number[]; macroF1?: number[] }>>;

/** What a release decides once from its own sum (and its bootstrap copies keep): which metrics are present, which units each macro average is over. */
interface HeadDecision {
  microAuc: boolean;
  accuracy: boolean;
  recallAt5: boolean;
  auc: number[];
  macroF1: number[];
}

/** A metric's value (not clipped to its range) and the standard error of its sampling of examples (0 where not modelled). */
interface Estimate {
  value: number | null;
  se: number;
}

type HeadEstimates = Partial<Record<EvaluationMetric, Estimate>>;

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/**
 * A denominator taken from noisy cells, at least 1: only a bootstrap copy of a present total (or
 * a total of 0 that passed the presence test) comes near 0, and its ratio then lands in a tail.
 */
const atLeastOne = (x: number) => (x < 1 ? 1 : x);

/**
 * AUC from one pair of histograms (a unit's, or all units' pooled) and the count cells of their
 * totals: the Mann–Whitney U from binned scores with ties in a bin counted half,
 * U = Σ_b pos_b C_b with C_b = Σ_{b'<b} neg_b' + neg_b / 2, over P·N from the count cells.
 * U is bilinear in independent cells, so zero-mean noise leaves E[U] unchanged, but every
 * positive bin's noise enters with weight C_b and every negative bin's with
 * D_b = Σ_{b'>b} pos_b' + pos_b / 2, empty bins included: for scores that sit in a few of 16
 * bins, most of the noise. The histograms' totals minus the count cells, Σ_b pos_b − P and
 * Σ_b neg_b − N, are pure noise of mean zero that shares it, so they serve as control variates
 * (Glasserman 2003, "Monte Carlo Methods in Financial Engineering", Sec. 4.1):
 * Û = U − mean_b(C_b)·(Σ_b pos_b − P) − mean_b(D_b)·(Σ_b neg_b − N), which leaves each bin's
 * noise with weight C_b − mean(C) (D_b − mean(D)), near 0 over the empty bins where C_b (D_b) is
 * flat. Each coefficient comes from the other histogram, independent of the cells it multiplies,
 * so E[Û] = U exactly; noise-free both corrections are 0 and this is U / (P·N). Coefficients
 * fitted from the same cells (β = Cov/Var plugged in) biased per-label AUCs by −0.1 at
 * 100-200 positives against σ 49, and the interests macro-AUC interval then covered in 41 of
 * 50 releases on the whole fleet. At the demo's budget this narrowed the interests micro-AUC
 * interval from 0.83-0.85 to 0.54-0.56 wide, at 94-99% coverage of every AUC (200 simulated
 * releases, trained and untrained model).
 */
function histogramAuc(cells: ArrayLike<number>, posAt: number, negAt: number, bins: number, positives: number, negatives: number): number {
  let below = 0;
  let u = 0;
  let sumC = 0;
  let posTotal = 0;
  for (let b = 0; b < bins; b++) {
    const pos = cells[posAt + b] as number;
    const neg = cells[negAt + b] as number;
    const c = below + neg / 2;
    u += pos * c;
    sumC += c;
    below += neg;
    posTotal += pos;
  }
  const negTotal = below;
  let above = 0;
  let sumD = 0;
  for (let b = bins - 1; b >= 0; b--) {
    const pos = cells[posAt + b] as number;
    sumD += above + pos / 2;
    above += pos;
  }
  const corrected = u - (sumC / bins) * (posTotal - positives) - (sumD / bins) * (negTotal - negatives);
  return corrected / (atLeastOne(positives) * atLeastOne(negatives));
}

/** Hanley & McNeil 1982 ("The meaning and use of the area under a ROC curve", Radiology 143, Table/eq. 2): the AUC's standard error from P positives and N negatives. */
function hanleyMcNeilSe(auc: number, p: number, n: number): number {
  const a = clamp01(auc);
  const q1 = a / (2 - a);
  const q2 = (2 * a * a) / (1 + a);
  const variance = (a * (1 - a) + Math.max(0, p - 1) * (q1 - a * a) + Math.max(0, n - 1) * (q2 - a * a)) / (p * n);
  return Math.sqrt(Math.max(0, variance));
}

/** Mean of values and of their standard errors: the SE of a mean of correlated estimates is at most the mean SE (Minkowski), so this errs wide. */
function meanEstimate(values: readonly number[], ses: readonly number[]): Estimate {
  if (values.length === 0) return { value: null, se: 0 };
  return { value: values.reduce((a, b) => a + b, 0) / values.length, se: ses.reduce((a, b) => a + b, 0) / ses.length };
}

/** The totals of one head that decide presence (and that AUCs divide by), each read from cells that hold only it. */
interface HeadTotals {
  positives: Float64Array;
  negatives: Float64Array;
  /** Examples: the example cell and the units' counts (each unit's positives + negatives is the example count) weighted by inverse variance, and its noise std. */
  examples: number;
  examplesStd: number;
  /** Per class of a head with a confusion matrix: its actual count (count cells) and its predicted count (the confusion column). */
  actual?: Float64Array;
  predicted?: Float64Array;
}

function headTotals(head: HeadBlocks, cells: ArrayLike<number>, noiseStd: number): HeadTotals {
  const positives = Float64Array.from({ length: head.units }, (_, u) => cells[head.positiveCounts + u] as number);
  const negatives = Float64Array.from({ length: head.units }, (_, u) => cells[head.negativeCounts + u] as number);
  // mean_u (P_u + N_u) has variance 2σ²/units, the example cell σ²: weights 1 and units/2.
  let both = 0;
  for (let u = 0; u < head.units; u++) both += (positives[u] as number) + (negatives[u] as number);
  const cell = cells[head.examples] as number;
  const weight = head.units / 2 / (1 + head.units / 2);
  // Written as cell + w·(mean − cell) so that a noise-free sum gives the count exactly.
  const totals: HeadTotals = { positives, negatives, examples: cell + weight * (both / head.units - cell), examplesStd: noiseStd / Math.sqrt(1 + head.units / 2) };
  if (head.confusion !== undefined) {
    const k = head.confusionClasses as number;
    totals.actual = head.spec.kind === 'binary' ? Float64Array.of(negatives[0] as number, positives[0] as number) : positives;
    totals.predicted = Float64Array.from({ length: k }, (_, p) => {
      let column = 0;
      for (let a = 0; a < k; a++) column += cells[(head.confusion as number) + a * k + p] as number;
      return column;
    });
  }
  return totals;
}

/**
 * Which metrics a sum shows present, and the units of each macro average (see the module
 * comment); `over`, where given, restricts the macro averages to its units.
 */
function decide(layout: EvaluationLayout, cells: ArrayLike<number>, noiseStd: number, over?: AveragedUnits): HeadDecision[] {
  const present = (total: number, std: number) => total > PRESENCE_Z * std;
  return layout.heads.map((head) => {
    const totals = headTotals(head, cells, noiseStd);
    const allowed = over?.[head.spec.name];
    const allow = (list: readonly number[] | undefined, unit: number) => list === undefined || allowed === undefined || list.includes(unit);
    const auc: number[] = [];
    for (let unit = 0; unit < head.units; unit++) {
      if (present(totals.positives[unit] as number, noiseStd) && present(totals.negatives[unit] as number, noiseStd) && allow(allowed?.auc, unit)) auc.push(unit);
    }
    const pooledStd = noiseStd * Math.sqrt(head.units);
    const sum = (xs: Float64Array) => xs.reduce((a, b) => a + b, 0);
    const macroF1: number[] = [];
    if (totals.actual && totals.predicted) {
      const k = head.confusionClasses as number;
      // macroF1's rule: a class counts where tp + fp + fn > 0, that is where it is an actual or a predicted class.
      for (let cls = 0; cls < k; cls++) {
        if ((present(totals.actual[cls] as number, noiseStd) || present(totals.predicted[cls] as number, noiseStd * Math.sqrt(k))) && allow(allowed?.macroF1, cls)) macroF1.push(cls);
      }
    }
    return {
      microAuc: present(sum(totals.positives), pooledStd) && present(sum(totals.negatives), pooledStd),
      accuracy: present(totals.examples, totals.examplesStd),
      recallAt5: head.recall !== undefined && present(cells[head.recall.count] as number, noiseStd),
      auc,
      macroF1,
    };
  });
}

/**
 * The metrics of every head from one (possibly noisy) sum, as decided. Cells are used as they
 * are, negative noise included: the AUC numerators are bilinear in independent cells and the
 * totals linear, so zero-mean noise leaves them unbiased. Clamping each cell at 0 first would add
 * about 0.4·noiseStd to every empty cell (E[max(0, Z)] = 1/sqrt(2π)) and so pull every AUC towards
 * 1/2 (simulated with 600 positives and 600 negatives at noiseStd 1: by 0.005 with 32 bins and
 * 0.017 with 100, and the bootstrap intervals then covered the noise-free AUC in 49% and 4% of
 * draws; from the cells as they are, in 95% and 96%). Values are not clipped to their ranges here
 * (see the module comment). AUCs divide by count cells their histograms do not share, accuracy
 * and F1 by totals of their own confusion matrix.
 */
function estimateAll(layout: EvaluationLayout, cells: ArrayLike<number>, noiseStd: number, decisions: readonly HeadDecision[]): HeadEstimates[] {
  const bins = layout.bins;
  return layout.heads.map((head, h) => {
    const decision = decisions[h] as HeadDecision;
    const totals = headTotals(head, cells, noiseStd);
    const estimates: HeadEstimates = { examples: { value: totals.examples, se: 0 } };
    const aucs: number[] = [];
    const aucSes: number[] = [];
    for (const unit of decision.auc) {
      const p = totals.positives[unit] as number;
      const n = totals.negatives[unit] as number;
      const a = histogramAuc(cells, head.positives + unit * bins, head.negatives + unit * bins, bins, p, n);
      aucs.push(a);
      aucSes.push(hanleyMcNeilSe(a, atLeastOne(p), atLeastOne(n)));
    }
    estimates.auc = meanEstimate(aucs, aucSes);
    if (head.spec.kind === 'multilabel') {
      if (decision.microAuc) {
        const pooled = new Float64Array(2 * bins);
        for (let unit = 0; unit < head.units; unit++) {
          for (let b = 0; b < bins; b++) {
            pooled[b] = (pooled[b] as number) + (cells[head.positives + unit * bins + b] as number);
            pooled[bins + b] = (pooled[bins + b] as number) + (cells[head.negatives + unit * bins + b] as number);
          }
        }
        const p = totals.positives.reduce((x, y) => x + y, 0);
        const n = totals.negatives.reduce((x, y) => x + y, 0);
        const a = histogramAuc(pooled, 0, bins, bins, p, n);
        // Hanley-McNeil over (example, label) pairs treats an example's labels as independent: too narrow when they correlate.
        estimates.microAuc = { value: a, se: hanleyMcNeilSe(a, atLeastOne(p), atLeastOne(n)) };
      } else estimates.microAuc = { value: null, se: 0 };
      if (head.recall) {
        if (decision.recallAt5) {
          const count = atLeastOne(cells[head.recall.count] as number);
          const r = (cells[head.recall.sum] as number) / count;
          // sqrt(r(1-r)/n) bounds the SE of a mean of values in [0, 1] (Bhatia-Davis: variance <= μ(1-μ)).
          const c = clamp01(r);
          estimates.recallAt5 = { value: r, se: Math.sqrt((c * (1 - c)) / count) };
        } else estimates.recallAt5 = { value: null, se: 0 };
      }
      return estimates;
    }
    const k = head.confusionClasses as number;
    const at = head.confusion as number;
    const c = (actual: number, predicted: number) => cells[at + actual * k + predicted] as number;
    if (decision.accuracy) {
      let hits = 0;
      let total = 0;
      for (let a = 0; a < k; a++) {
        hits += c(a, a);
        for (let p = 0; p < k; p++) total += c(a, p);
      }
      total = atLeastOne(total);
      const accuracy = hits / total;
      const a = clamp01(accuracy);
      estimates.accuracy = { value: accuracy, se: Math.sqrt((a * (1 - a)) / total) };
    } else estimates.accuracy = { value: null, se: 0 };
    // F1 = 2tp / (2tp + fp + fn) = 2tp / (actual + predicted).
    const f1s: number[] = [];
    const f1Ses: number[] = [];
    for (const cls of decision.macroF1) {
      const tp = c(cls, cls);
      let actual = 0;
      for (let p = 0; p < k; p++) actual += c(cls, p);
      const denominator = actual + (totals.predicted?.[cls] as number);
      f1s.push((2 * tp) / atLeastOne(denominator));
      // Delta method under the multinomial: F = 2a/(2a+e), a = tp, e = fp+fn, is homogeneous of
      // degree 0, so Var F = 4 a e (a + e) / (2a + e)^4 (in counts; the example total cancels).
      const a = Math.max(0, tp);
      const e = Math.max(0, denominator - 2 * tp);
      const d = 2 * a + e;
      f1Ses.push(d > 0 ? (2 * Math.sqrt(a * e * (a + e))) / (d * d) : 0);
    }
    estimates.macroF1 = meanEstimate(f1s, f1Ses);
    return estimates;
  });
}

/** The metric names scoreHead reports for a head, in its order. */
function metricNames(head: HeadBlocks): EvaluationMetric[] {
  if (head.spec.kind !== 'multilabel') return ['examples', 'accuracy', 'macroF1', 'auc'];
  return head.recall ? ['examples', 'microAuc', 'auc', 'recallAt5'] : ['examples', 'microAuc', 'auc'];
}

export interface DecodedEvaluation {
  /** The metrics of scoreHead, per head; null where the central metric would be NaN or absent, or where the noise hides its totals. */
  heads: Partial<Record<HeadName, Partial<Record<EvaluationMetric, number | null>>>>;
  /** A 95% interval per metric (see decodeEvaluation); null where the metric is. */
  intervals: Partial<Record<HeadName, Partial<Record<EvaluationMetric, [number, number] | null>>>>;
  /**
   * The units each macro average (`auc` of a head with several units, `macroF1`) is over: under
   * noise those whose totals the release shows present; without, those scoreHead averages. The
   * central value of such a release is the noise-free sum decoded with `averageOver` these.
   */
  averagedUnits: AveragedUnits;
}

export interface DecodeOptions {
  /**
   * Uniform [0, 1) draws for the bootstrap. It re-noises an already released sum, which is
   * post-processing and needs no secret randomness; default: a fixed-seed SeededRandom, so
   * the same sum always decodes to the same intervals.
   */
  uniform?: () => number;
  replicates?: number;
  /**
   * Widen the intervals by the sampling uncertainty of the evaluated examples (default true):
   * with it, an interval is for the metric on the population the examples are drawn from;
   * without, for the metric on these examples (the noise-free value).
   */
  sampling?: boolean;
  /**
   * Average the macro metrics over these units only, of those the sum shows present: e.g. the
   * noise-free value of a release's macro averages (its `averagedUnits`), or two releases over
   * the units both show present.
   */
  averageOver?: AveragedUnits;
}

const DEFAULT_BOOTSTRAP_SEED = 0x18;

function checkSum(layout: EvaluationLayout, sum: ArrayLike<number>): void {
  if (sum.length !== layout.dimension) throw new RangeError(`"sum" expected ${layout.dimension} values, got ${sum.length}`);
  for (let i = 0; i < sum.length; i++) {
    if (!Number.isFinite(sum[i] as number)) throw new RangeError(`"sum[${i}]" expected a finite number, got ${sum[i]}`);
  }
}

function checkNoiseStd(noiseStd: number): void {
  if (!Number.isFinite(noiseStd) || noiseStd < 0) throw new RangeError(`"noiseStd" expected a finite number >= 0, got ${noiseStd}`);
}

/** Linear interpolation between order statistics (R's type 7) of sorted values. */
function quantile(sorted: readonly number[], q: number): number {
  const position = q * (sorted.length - 1);
  const lo = Math.floor(position);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (position - lo);
}

function averagedUnitsOf(layout: EvaluationLayout, decisions: readonly HeadDecision[]): AveragedUnits {
  const out: AveragedUnits = {};
  layout.heads.forEach((head, h) => {
    const decision = decisions[h] as HeadDecision;
    out[head.spec.name] = head.confusion === undefined ? { auc: [...decision.auc] } : { auc: [...decision.auc], macroF1: [...decision.macroF1] };
  });
  return out;
}

/**
 * Decodes a sum of contributions carrying Gaussian noise of standard deviation `noiseStd` per
 * coordinate (0 without DP) into scoreHead's metrics, with 95% intervals:
 *   - noiseStd > 0: a parametric bootstrap of the noise (Efron & Tibshirani 1993, Sec. 6.5):
 *     `replicates` copies of the sum with fresh N(0, noiseStd²) noise are decoded with the
 *     release's own decisions (which metrics are present, which units a macro average is over),
 *     each value plus (with `sampling`) an N(0, se²) draw of its sampling error, and the interval
 *     is their 2.5th and 97.5th percentiles. Percentile rather than basic (reflected) intervals:
 *     in simulation the basic ones covered AUCs in 83-91% of draws, the percentile ones in
 *     92-98%. `examples`: the count ± 1.96 times its noise std (the example cell and the count
 *     cells combined);
 *   - noiseStd = 0: value ± 1.96 se (with `sampling`), else the point.
 * Sampling standard errors: Hanley–McNeil for an AUC, the mean of the per-label (per-class) SEs
 * for a macro average, binomial for accuracy, the Bhatia–Davis bound sqrt(r(1-r)/n) for recall@5,
 * the multinomial delta method for each class's F1; `examples` has none. The sampling part
 * treats examples (and, for micro-AUC, an example's labels) as independent, so it is too narrow
 * when one user's examples correlate. Binning error is not in the intervals: see
 * `aucBinningBounds`. Values and intervals are clipped to [0, 1] (examples: to >= 0).
 */
export function decodeEvaluation(layout: EvaluationLayout, sum: ArrayLike<number>, noiseStd: number, options: DecodeOptions = {}): DecodedEvaluation {
  checkSum(layout, sum);
  checkNoiseStd(noiseStd);
  const replicates = options.replicates ?? DEFAULT_REPLICATES;
  if (!Number.isInteger(replicates) || replicates < 20) throw new RangeError(`"replicates" expected an integer >= 20, got ${replicates}`);
  if (options.uniform !== undefined && typeof options.uniform !== 'function') throw new TypeError('"uniform" expected a function returning numbers in [0, 1)');
  const sampling = options.sampling ?? true;
  const decisions = decide(layout, sum, noiseStd, options.averageOver);
  const point = estimateAll(layout, sum, noiseStd, decisions);
  const heads: DecodedEvaluation['heads'] = {};
  const intervals: DecodedEvaluation['intervals'] = {};
  const clip = (metric: EvaluationMetric, x: number) => (metric === 'examples' ? Math.max(0, x) : clamp01(x));
  const valueOf = (metric: EvaluationMetric, estimate: Estimate) => (estimate.value === null ? null : clip(metric, estimate.value));
  const averagedUnits = averagedUnitsOf(layout, decisions);

  if (noiseStd === 0) {
    layout.heads.forEach((head, h) => {
      const values: Partial<Record<EvaluationMetric, number | null>> = {};
      const ranges: Partial<Record<EvaluationMetric, [number, number] | null>> = {};
      for (const metric of metricNames(head)) {
        const estimate = (point[h] as HeadEstimates)[metric] as Estimate;
        values[metric] = valueOf(metric, estimate);
        if (estimate.value === null) ranges[metric] = null;
        else {
          const half = sampling ? Z_975 * estimate.se : 0;
          ranges[metric] = [clip(metric, estimate.value - half), clip(metric, estimate.value + half)];
        }
      }
      heads[head.spec.name] = values;
      intervals[head.spec.name] = ranges;
    });
    return { heads, intervals, averagedUnits };
  }

  const uniform = options.uniform ?? (() => {
    const rng = new SeededRandom(DEFAULT_BOOTSTRAP_SEED);
    return () => rng.next();
  })();
  // Box-Muller, both outputs used.
  let spare: number | null = null;
  const gaussian = () => {
    if (spare !== null) {
      const z = spare;
      spare = null;
      return z;
    }
    const radius = Math.sqrt(-2 * Math.log(1 - uniform()));
    const angle = 2 * Math.PI * uniform();
    spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  };
  const draws = layout.heads.map((head) => new Map<EvaluationMetric, number[]>(metricNames(head).map((m) => [m, []])));
  const copy = new Float64Array(layout.dimension);
  for (let r = 0; r < replicates; r++) {
    for (let i = 0; i < copy.length; i++) copy[i] = (sum[i] as number) + noiseStd * gaussian();
    const replicate = estimateAll(layout, copy, noiseStd, decisions);
    layout.heads.forEach((head, h) => {
      for (const metric of metricNames(head)) {
        const estimate = (replicate[h] as HeadEstimates)[metric] as Estimate;
        if (estimate.value === null || metric === 'examples') continue;
        (draws[h]?.get(metric) as number[]).push(estimate.value + (sampling ? estimate.se * gaussian() : 0));
      }
    });
  }
  layout.heads.forEach((head, h) => {
    const values: Partial<Record<EvaluationMetric, number | null>> = {};
    const ranges: Partial<Record<EvaluationMetric, [number, number] | null>> = {};
    for (const metric of metricNames(head)) {
      const estimate = (point[h] as HeadEstimates)[metric] as Estimate;
      values[metric] = valueOf(metric, estimate);
      if (estimate.value === null) {
        ranges[metric] = null;
        continue;
      }
      if (metric === 'examples') {
        // A linear combination of cells: its noise interval needs no simulation.
        const half = Z_975 * headTotals(head, sum, noiseStd).examplesStd;
        ranges[metric] = [clip(metric, estimate.value - half), clip(metric, estimate.value + half)];
        continue;
      }
      const sample = (draws[h]?.get(metric) as number[]).sort((a, b) => a - b);
      ranges[metric] = [clip(metric, quantile(sample, 0.025)), clip(metric, quantile(sample, 0.975))];
    }
    heads[head.spec.name] = values;
    intervals[head.spec.name] = ranges;
  });
  return { heads, intervals, averagedUnits };
}

/**
 * How far each decoded AUC can be from the exact one on the same examples. Only positive-negative
 * pairs in the same bin are uncertain: their exact contribution lies in [0, pos_b·neg_b] and the
 * histogram counts pos_b·neg_b / 2, so |binned - exact| <= Σ_b pos_b neg_b / (2 P N); a macro AUC,
 * a mean over the same labels (classes) centrally and here, is off by at most the mean of theirs.
 * Exact for a noise-free sum; for a noisy one an estimate from the histogram cells clamped at 0
 * over the count cells' totals, averaged over the units decodeEvaluation averages. Null where
 * the AUC is.
 */
export function aucBinningBounds(layout: EvaluationLayout, sum: ArrayLike<number>, noiseStd = 0): Partial<Record<HeadName, { auc: number | null; microAuc?: number | null }>> {
  checkSum(layout, sum);
  checkNoiseStd(noiseStd);
  const bins = layout.bins;
  const decisions = decide(layout, sum, noiseStd);
  const out: Partial<Record<HeadName, { auc: number | null; microAuc?: number | null }>> = {};
  layout.heads.forEach((head, h) => {
    const decision = decisions[h] as HeadDecision;
    const totals = headTotals(head, sum, noiseStd);
    const pooledPos = new Float64Array(bins);
    const pooledNeg = new Float64Array(bins);
    const sameBin = new Float64Array(head.units);
    for (let unit = 0; unit < head.units; unit++) {
      for (let b = 0; b < bins; b++) {
        const pos = Math.max(0, sum[head.positives + unit * bins + b] as number);
        const neg = Math.max(0, sum[head.negatives + unit * bins + b] as number);
        sameBin[unit] = (sameBin[unit] as number) + pos * neg;
        pooledPos[b] = (pooledPos[b] as number) + pos;
        pooledNeg[b] = (pooledNeg[b] as number) + neg;
      }
    }
    const perUnit = decision.auc.map((unit) => (sameBin[unit] as number) / (2 * atLeastOne(totals.positives[unit] as number) * atLeastOne(totals.negatives[unit] as number)));
    const bound: { auc: number | null; microAuc?: number | null } = { auc: perUnit.length === 0 ? null : perUnit.reduce((a, b) => a + b, 0) / perUnit.length };
    if (head.spec.kind === 'multilabel') {
      let same = 0;
      for (let b = 0; b < bins; b++) same += (pooledPos[b] as number) * (pooledNeg[b] as number);
      const p = atLeastOne(totals.positives.reduce((a, b) => a + b, 0));
      const n = atLeastOne(totals.negatives.reduce((a, b) => a + b, 0));
      bound.microAuc = decision.microAuc ? same / (2 * p * n) : null;
    }
    out[head.spec.name] = bound;
  });
  return out;
}

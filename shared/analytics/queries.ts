/**
 * Federated analytics queries: statistics that devices compute from their own events and that
 * are released only as a sum through the training rounds' own pipeline (clip to the query's
 * bound, distributed discrete Gaussian noise, SecAgg+, the ledger entry before the sum is
 * unmasked). Each query fixes its vector's length and a bound on the L2 norm of one device's
 * contribution; that bound is the round's clip, so the accountant's sensitivity is the query's.
 * This is the primitive of Gboard-style federated analytics (Ramage & Mazzocchi, "Federated
 * Analytics: Collaborative Data Science without Data Collection", Google AI blog 2020; Kairouz
 * et al., "Advances and Open Problems in Federated Learning", 2021, Sec. 4.4).
 *
 * Every decoded number carries an interval: counts ± z·σ from the known per-coordinate noise σ,
 * derived numbers (shares, means, quantiles) from a parametric bootstrap that re-noises the
 * released sum (post-processing of public output, so a seeded generator is enough).
 */
import { z } from 'zod';
import type { BehaviourEvent } from '../features/events.ts';
import { logPrice } from '../features/vocabulary.ts';
import { SeededRandom } from '../features/seeded-random.ts';
import type { EvaluateSummary } from './federated-evaluation.ts';
import { DEFAULT_MIN_CELL_COUNT, dimensionLabels, SEGMENT_DIMENSIONS, segmentCells } from './segments.ts';
import type { SegmentDimension } from './segments.ts';

/** Largest category list a `category-counts` query may carry (it goes to every selected device). */
export const MAX_QUERY_CATEGORIES = 20_000;
/** Upper end of the log1p price scale the price statistics use: log1p(1e6), the importers' plausible-price cap. */
export const DEFAULT_MAX_LOG_PRICE = Math.log1p(1_000_000);

export const CategoryCountsQuerySchema = z
  .object({
    statistic: z.literal('category-counts'),
    /**
     * The candidate categories; the vector has one cell per category. A launch may leave them out:
     * the coordinator fills in the shop's catalog (or the serving model's vocabulary) before the
     * round is stored, so every device of a round counts over the same list.
     */
    categories: z
      .array(z.string().min(1).max(128))
      .min(1)
      .max(MAX_QUERY_CATEGORIES)
      .refine((c) => new Set(c).size === c.length, 'expected distinct categories')
      .optional(),
    /** A device counts at most this many of its categories (its most active ones). */
    maxCategoriesPerDevice: z.number().int().min(1).max(1000).default(8),
    /** Each of them counts at most this many events (1: the number of shoppers active in it). */
    maxEventsPerCategory: z.number().int().min(1).max(1000).default(1),
  })
  .strict();

/**
 * Symbols a category id may contain in a `category-prefixes` query unless the query names its own:
 * digits, lowercase letters, '-' and '_' (numeric ids such as Tianchi's, slugs such as `c17`).
 */
export const DEFAULT_CATEGORY_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz-_';
/** Longest alphabet a `category-prefixes` query may name (so that one prefix's cells fit a query). */
export const MAX_PREFIX_ALPHABET = 1024;

/**
 * One level of federated heavy-hitter discovery of the category ids when the catalog is unknown
 * (heavy-hitters.ts): per candidate prefix p and per symbol s of the alphabet, how many devices
 * hold a category p+s… among their most active ones, and per p how many hold p itself (the end
 * cell). A category id with a symbol outside the alphabet contributes nothing from the level where
 * that symbol comes (it is never discovered); a query whose shop uses capitals or other symbols
 * names its own alphabet.
 */
export const CategoryPrefixesQuerySchema = z
  .object({
    statistic: z.literal('category-prefixes'),
    /** The candidate prefixes of this level, all of one length ('' alone at the first level). */
    prefixes: z
      .array(z.string().max(128))
      .min(1)
      .max(MAX_QUERY_CATEGORIES)
      .refine((p) => new Set(p).size === p.length, 'expected distinct prefixes')
      .refine((p) => p.every((x) => symbolsOf(x).length === symbolsOf(p[0] as string).length), 'expected prefixes of one length (the candidates of one level of the trie)'),
    /** The symbols a category id may contain, each once. */
    alphabet: z
      .string()
      .min(1)
      .default(DEFAULT_CATEGORY_ALPHABET)
      .refine((a) => symbolsOf(a).length <= MAX_PREFIX_ALPHABET, `expected at most ${MAX_PREFIX_ALPHABET} symbols`)
      .refine((a) => new Set(symbolsOf(a)).size === symbolsOf(a).length, 'expected distinct symbols'),
    /** A device marks the cells of at most this many of its categories (its most active ones). */
    maxCategoriesPerDevice: z.number().int().min(1).max(1000).default(8),
  })
  .strict()
  .superRefine((query, ctx) => {
    const symbols = new Set(symbolsOf(query.alphabet));
    const dimension = query.prefixes.length * (symbols.size + 1);
    // The same limit as a category-counts query's list: the vector goes to and from every selected device.
    if (dimension > MAX_QUERY_CATEGORIES) ctx.addIssue({ code: 'custom', path: ['prefixes'], message: `expected at most ${Math.floor(MAX_QUERY_CATEGORIES / (symbols.size + 1))} prefixes with an alphabet of ${symbols.size} symbols (${symbols.size + 1} cells each, at most ${MAX_QUERY_CATEGORIES} in all), got ${query.prefixes.length}` });
    const foreign = query.prefixes.find((p) => symbolsOf(p).some((s) => !symbols.has(s)));
    if (foreign !== undefined) ctx.addIssue({ code: 'custom', path: ['prefixes'], message: `expected prefixes of the alphabet's symbols, got ${JSON.stringify(foreign)}` });
  });
export type CategoryPrefixesQuery = z.infer<typeof CategoryPrefixesQuerySchema>;

/** The symbols (code points) of a string: an alphabet, a prefix or a category id. */
export function symbolsOf(text: string): string[] {
  return Array.from(text);
}

export const LogPriceMomentsQuerySchema = z
  .object({
    statistic: z.literal('log-price-moments'),
    /** A device counts at most this many priced events (its most recent). */
    maxEventsPerDevice: z.number().int().min(1).max(10_000).default(16),
    maxLogPrice: z.number().positive().max(100).default(DEFAULT_MAX_LOG_PRICE),
  })
  .strict();

export const SpendHistogramQuerySchema = z
  .object({
    statistic: z.literal('spend-histogram'),
    /** Equal-width bins of the device's mean log1p price of bought items over [0, maxLogPrice]. */
    bins: z.number().int().min(2).max(4096).default(64),
    maxLogPrice: z.number().positive().max(100).default(DEFAULT_MAX_LOG_PRICE),
  })
  .strict();

/** One version's block of an evaluate query, fixed by the coordinator at launch from the version's config. */
export const EvaluationBlockSchema = z
  .object({
    version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    /** The version's parameter count (the device checks the files it fetches against it). */
    parameters: z.number().int().min(1).max(2 ** 28),
    dimension: z.number().int().min(1).max(2 ** 24),
    bound: z.number().positive().finite(),
  })
  .strict();
export type EvaluationBlock = z.infer<typeof EvaluationBlockSchema>;

/**
 * Federated evaluation (federated-evaluation.ts): the devices score `versions` (two: a paired
 * A/B comparison on the same devices) on their own examples and contribute the metrics'
 * sufficient statistics. `blocks` is filled in by the coordinator; a launch may not give it.
 */
export const EvaluateQuerySchema = z
  .object({
    statistic: z.literal('evaluate'),
    versions: z
      .array(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER))
      .min(1)
      .max(2)
      .refine((v) => new Set(v).size === v.length, 'expected distinct versions'),
    bins: z.number().int().min(2).max(4096).optional(),
    examplesPerDevice: z.number().int().min(1).max(64).optional(),
    blocks: z.array(EvaluationBlockSchema).min(1).max(2).optional(),
  })
  .strict();
export type EvaluateQuery = z.infer<typeof EvaluateQuerySchema>;

/**
 * A segment report (segments.ts): shoppers per cell of `by` (e.g. interest × propensity), each
 * device placing itself by its own portrait from the serving version. `version`, `parameters`
 * and `categories` are filled in by the coordinator at launch (the serving version's).
 */
export const SegmentsQuerySchema = z
  .object({
    statistic: z.literal('segments'),
    by: z
      .array(z.enum(SEGMENT_DIMENSIONS))
      .min(1)
      .max(3)
      .refine((d) => new Set(d).size === d.length, 'expected distinct dimensions'),
    /** Cells whose released count is below this are suppressed (reported without a value). */
    minCount: z.number().min(0).max(1e6).default(DEFAULT_MIN_CELL_COUNT),
    version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    parameters: z.number().int().min(1).max(2 ** 28).optional(),
    // None when the serving version names no category (a hash-space start); the coordinator then refuses "by" interest.
    categories: z.array(z.string().min(1).max(128)).max(MAX_QUERY_CATEGORIES).optional(),
  })
  .strict();
export type SegmentsQuery = z.infer<typeof SegmentsQuerySchema>;

export const AnalyticsQuerySchema = z.discriminatedUnion('statistic', [CategoryCountsQuerySchema, CategoryPrefixesQuerySchema, LogPriceMomentsQuerySchema, SpendHistogramQuerySchema, EvaluateQuerySchema, SegmentsQuerySchema]);
export type AnalyticsQuery = z.infer<typeof AnalyticsQuerySchema>;
export type AnalyticsQueryInput = z.input<typeof AnalyticsQuerySchema>;
/** The statistics `round launch` names for `--query` (category-prefixes levels run through `portrait vocabulary discover`). */
export const ANALYTICS_STATISTICS = ['category-counts', 'log-price-moments', 'spend-histogram', 'evaluate', 'segments'] as const;
export type AnalyticsStatistic = AnalyticsQuery['statistic'];

/** What the ledger and the round record say about a query: which statistic, its bound and length. */
export interface QueryPlan {
  statistic: AnalyticsStatistic;
  dimension: number;
  /** Upper bound on the L2 norm of one device's contribution: the round's clip. */
  bound: number;
}

/** Upper bound on the L2 norm of one device's contribution (it does not depend on the category list). */
export function queryBound(query: AnalyticsQuery): number {
  switch (query.statistic) {
    case 'category-counts':
      return query.maxEventsPerCategory * Math.sqrt(query.maxCategoriesPerDevice);
    case 'category-prefixes':
      // Indicators: each of at most maxCategoriesPerDevice ids marks one cell (the prefixes are of one length).
      return Math.sqrt(query.maxCategoriesPerDevice);
    case 'log-price-moments':
      // (k, Σx/B, Σx²/B²)/m with k ≤ m priced events and 0 ≤ x ≤ B: each cell is in [0, 1].
      return Math.sqrt(3);
    case 'spend-histogram':
      return 1;
    case 'segments':
      // One-hot: a device is in one cell.
      return 1;
    case 'evaluate':
      // The versions' blocks are concatenated: the norm of the whole is at most the root sum of squares of theirs.
      return Math.hypot(...evaluateBlocks(query).map((b) => b.bound));
  }
}

/** The blocks of an evaluate query, once the coordinator has filled them in. */
export function evaluateBlocks(query: EvaluateQuery): EvaluationBlock[] {
  const blocks = query.blocks;
  if (!blocks || blocks.length !== query.versions.length || blocks.some((b, i) => b.version !== query.versions[i])) throw new RangeError('"query.blocks" expected one block per version, in version order (the coordinator fills them in at launch)');
  return blocks;
}

/** The category list of a category-counts query, once the coordinator has filled it in. */
export function queryCategories(query: Extract<AnalyticsQuery, { statistic: 'category-counts' }>): string[] {
  if (!query.categories) throw new RangeError('"query.categories" expected the category list (the coordinator fills it in at launch), got none');
  return query.categories;
}

export function planQuery(query: AnalyticsQuery): QueryPlan {
  const bound = queryBound(query);
  switch (query.statistic) {
    case 'category-counts':
      return { statistic: query.statistic, dimension: queryCategories(query).length, bound };
    case 'category-prefixes':
      return { statistic: query.statistic, dimension: query.prefixes.length * (symbolsOf(query.alphabet).length + 1), bound };
    case 'log-price-moments':
      return { statistic: query.statistic, dimension: 3, bound };
    case 'spend-histogram':
      return { statistic: query.statistic, dimension: query.bins, bound };
    case 'evaluate':
      return { statistic: query.statistic, dimension: evaluateBlocks(query).reduce((n, b) => n + b.dimension, 0), bound };
    case 'segments':
      return { statistic: query.statistic, dimension: segmentCells(query.by, segmentCategories(query)), bound };
  }
}

/** The interest categories of a segments query, once the coordinator has filled in its model version. */
export function segmentCategories(query: SegmentsQuery): string[] {
  if (!query.categories || query.version === undefined || query.parameters === undefined) throw new RangeError('"query.version" expected the serving model version and its categories (the coordinator fills them in at launch), got none');
  return query.categories;
}

/**
 * One device's contribution, from its own events only. Its L2 norm never exceeds
 * `planQuery(query).bound` (the tests check it); the privacy pipeline clips to it all the same.
 */
export function deviceContribution(query: AnalyticsQuery, events: readonly BehaviourEvent[]): Float32Array {
  const { dimension } = planQuery(query);
  const out = new Float32Array(dimension);
  switch (query.statistic) {
    case 'category-counts': {
      const index = new Map(queryCategories(query).map((c, i) => [c, i]));
      const counts = new Map<number, number>();
      for (const e of events) {
        const slot = index.get(e.category);
        if (slot !== undefined) counts.set(slot, (counts.get(slot) ?? 0) + 1);
      }
      const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, query.maxCategoriesPerDevice);
      for (const [slot, n] of ranked) out[slot] = Math.min(n, query.maxEventsPerCategory);
      return out;
    }
    case 'category-prefixes': {
      const symbols = symbolsOf(query.alphabet);
      const cells = symbols.length + 1;
      const symbolIndex = new Map(symbols.map((c, i) => [c, i]));
      const prefixIndex = new Map(query.prefixes.map((p, i) => [p, i]));
      const length = symbolsOf(query.prefixes[0] as string).length;
      const counts = new Map<string, number>();
      for (const e of events) counts.set(e.category, (counts.get(e.category) ?? 0) + 1);
      // Its most active categories, as category-counts ranks them; ties by id, so the choice is deterministic.
      const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, query.maxCategoriesPerDevice);
      for (const [id] of ranked) {
        // The prefixes are of one length, so an id matches at most one of them: one cell per id.
        const idSymbols = symbolsOf(id);
        if (idSymbols.length < length) continue;
        const slot = prefixIndex.get(idSymbols.slice(0, length).join(''));
        if (slot === undefined) continue;
        // A symbol outside the alphabet: the id contributes nothing from here on. Several ids may
        // share a cell, which a device marks once.
        const next = idSymbols.length === length ? symbols.length : symbolIndex.get(idSymbols[length] as string);
        if (next !== undefined) out[slot * cells + next] = 1;
      }
      return out;
    }
    case 'log-price-moments': {
      const priced = events.filter((e) => e.price !== undefined).sort((a, b) => (b.ts ?? b.day) - (a.ts ?? a.day)).slice(0, query.maxEventsPerDevice);
      const m = query.maxEventsPerDevice;
      const b = query.maxLogPrice;
      for (const e of priced) {
        const x = Math.min(logPrice(e.price as number), b) / b;
        out[0] = (out[0] as number) + 1 / m;
        out[1] = (out[1] as number) + x / m;
        out[2] = (out[2] as number) + (x * x) / m;
      }
      return out;
    }
    case 'spend-histogram': {
      let sum = 0;
      let n = 0;
      for (const e of events) {
        if (e.type === 'buy' && e.price !== undefined) {
          sum += logPrice(e.price);
          n++;
        }
      }
      if (n > 0) out[binOf(sum / n, query.bins, query.maxLogPrice)] = 1;
      return out;
    }
    case 'evaluate':
    case 'segments':
      throw new RangeError(`"query" ${query.statistic} is answered from the device's model and data (federated-evaluation.ts, segments.ts), not from its events alone`);
  }
}

function binOf(value: number, bins: number, max: number): number {
  return Math.max(0, Math.min(bins - 1, Math.floor((value / max) * bins)));
}

/** A number released by a query with its 95 % interval (null when the noise leaves it undefined). */
export interface Estimate {
  value: number | null;
  interval: [number, number] | null;
}

export interface CategoryCount {
  category: string;
  count: Estimate;
  /** The category's share of all counted activity. */
  share: Estimate;
}

/** One cell of a category-prefixes level: the devices holding a category that extends `prefix` by `symbol`. */
export interface PrefixCell {
  prefix: string;
  /** The next symbol, or null for the end cell: devices holding the id `prefix` itself. */
  symbol: string | null;
  /** `prefix` followed by `symbol`: the longer prefix, or for the end cell the id, that the cell counts. */
  extension: string;
  count: Estimate;
}

export type AnalyticsSummary =
  | { statistic: 'category-counts'; total: Estimate; categories: CategoryCount[] }
  | { statistic: 'category-prefixes'; cells: PrefixCell[] }
  | { statistic: 'log-price-moments'; events: Estimate; mean: Estimate; std: Estimate }
  | { statistic: 'spend-histogram'; buyers: Estimate; quantiles: { q: number; logPrice: Estimate }[] }
  | EvaluateSummary
  | { statistic: 'segments'; by: SegmentDimension[]; minCount: number; devices: Estimate; cells: SegmentCell[] };

/** One cell of a segment report: its labels along `by`, the released count (null when suppressed) with its interval. */
export interface SegmentCell {
  labels: string[];
  count: Estimate;
  suppressed: boolean;
}

/** Two-sided 95 % normal quantile. */
const Z95 = 1.959964;
/** Re-noised copies of the sum for the intervals of derived numbers. */
const BOOTSTRAP_DRAWS = 200;

export interface DecodeOptions {
  /** Quantiles of the spend histogram to report; default the tertiles (the spending-tier bounds). */
  quantiles?: readonly number[];
  /** How many categories (or prefix cells) to list, most counted first; default all. */
  top?: number;
  /** Seed of the bootstrap's generator (post-processing of public output only). */
  seed?: number;
}

/**
 * Decodes the released sum (the noised sum of the contributions, in value units) into the
 * query's numbers with 95 % intervals. `noiseStd` is the standard deviation of the noise on each
 * coordinate of `sum` (releasedNoiseStd in the coordinator); noisy counts below 0 count as 0.
 */
export function decodeQuery(query: AnalyticsQuery, sum: ArrayLike<number>, noiseStd: number, options: DecodeOptions = {}): AnalyticsSummary {
  const { dimension } = planQuery(query);
  if (sum.length !== dimension) throw new RangeError(`"sum" expected ${dimension} values for ${query.statistic}, got ${sum.length}`);
  if (!(noiseStd >= 0) || !Number.isFinite(noiseStd)) throw new RangeError(`"noiseStd" expected a finite number >= 0, got ${noiseStd}`);
  if (query.statistic === 'evaluate') throw new RangeError('"query" evaluate is decoded with its versions\' configs (decodeEvaluate in federated-evaluation.ts)');
  const values = Float64Array.from(sum);
  const draws = bootstrap(values, noiseStd, options.seed ?? 1);
  switch (query.statistic) {
    case 'category-counts': {
      const total = (v: Float64Array): number => v.reduce((a, x) => a + Math.max(0, x), 0);
      const order = [...values.keys()].sort((a, b) => (values[b] as number) - (values[a] as number) || a - b).slice(0, options.top ?? dimension);
      const categories = order.map((i) => ({
        category: queryCategories(query)[i] as string,
        count: countEstimate(values[i] as number, noiseStd),
        share: estimate((v) => ratio(Math.max(0, v[i] as number), total(v)), values, draws),
      }));
      return { statistic: 'category-counts', total: estimate(total, values, draws), categories };
    }
    case 'category-prefixes': {
      // Per cell, like a category's count: the noisy count ± 1.96 σ, largest first.
      const symbols = symbolsOf(query.alphabet);
      const cells = symbols.length + 1;
      const order = [...values.keys()].sort((a, b) => (values[b] as number) - (values[a] as number) || a - b).slice(0, options.top ?? dimension);
      return {
        statistic: 'category-prefixes',
        cells: order.map((i) => {
          const prefix = query.prefixes[Math.floor(i / cells)] as string;
          const symbol = symbols[i % cells] ?? null;
          return { prefix, symbol, extension: prefix + (symbol ?? ''), count: countEstimate(values[i] as number, noiseStd) };
        }),
      };
    }
    case 'log-price-moments': {
      const m = query.maxEventsPerDevice;
      const b = query.maxLogPrice;
      const n = (v: Float64Array): number => (v[0] as number) * m;
      const mean = (v: Float64Array): number => ratio((v[1] as number) * m * b, n(v));
      const std = (v: Float64Array): number => {
        const mu = mean(v);
        const second = ratio((v[2] as number) * m * b * b, n(v));
        return Number.isNaN(mu) || Number.isNaN(second) ? Number.NaN : Math.sqrt(Math.max(second - mu * mu, 0));
      };
      return { statistic: 'log-price-moments', events: countEstimate(n(values), noiseStd * m), mean: estimate(mean, values, draws), std: estimate(std, values, draws) };
    }
    case 'segments': {
      const axes = dimensionLabels(query.by, segmentCategories(query));
      const labelsOf = (cell: number): string[] => {
        const out: string[] = [];
        for (let d = axes.length - 1; d >= 0; d--) {
          const labels = axes[d] as string[];
          out.unshift(labels[cell % labels.length] as string);
          cell = Math.floor(cell / labels.length);
        }
        return out;
      };
      // A cell below the minimum is reported without a value: a small group is not singled out, and its noise would dominate.
      const cells = [...values.keys()]
        .sort((a, b) => (values[b] as number) - (values[a] as number) || a - b)
        .map((i) => {
          const suppressed = (values[i] as number) < query.minCount;
          return { labels: labelsOf(i), count: suppressed ? { value: null, interval: null } : countEstimate(values[i] as number, noiseStd), suppressed };
        });
      return { statistic: 'segments', by: [...query.by], minCount: query.minCount, devices: estimate((v) => v.reduce((a, x) => a + Math.max(0, x), 0), values, draws), cells };
    }
    case 'spend-histogram': {
      const qs = options.quantiles ?? [1 / 3, 2 / 3];
      const buyers = (v: Float64Array): number => v.reduce((a, x) => a + Math.max(0, x), 0);
      return {
        statistic: 'spend-histogram',
        buyers: estimate(buyers, values, draws),
        quantiles: qs.map((q) => ({ q, logPrice: estimate((v) => histogramQuantile(v, q, query.maxLogPrice), values, draws) })),
      };
    }
  }
}

/** The q-quantile of a (noisy) histogram over [0, max]: negative cells count as 0, linear within a bin. */
export function histogramQuantile(cells: ArrayLike<number>, q: number, max: number): number {
  let total = 0;
  for (let i = 0; i < cells.length; i++) total += Math.max(0, cells[i] as number);
  if (!(total > 0)) return Number.NaN;
  const target = q * total;
  const width = max / cells.length;
  let seen = 0;
  for (let i = 0; i < cells.length; i++) {
    const c = Math.max(0, cells[i] as number);
    if (c > 0 && seen + c >= target) return (i + (target - seen) / c) * width;
    seen += c;
  }
  return max;
}

function ratio(a: number, b: number): number {
  return b > 0 ? a / b : Number.NaN;
}

function countEstimate(value: number, noiseStd: number): Estimate {
  return { value, interval: [value - Z95 * noiseStd, value + Z95 * noiseStd] };
}

/** Re-noised copies of the released sum: the noise the release carries, drawn again around it. */
function bootstrap(values: Float64Array, noiseStd: number, seed: number): Float64Array[] {
  if (noiseStd === 0) return [];
  const random = new SeededRandom(seed >>> 0, values.length);
  return Array.from({ length: BOOTSTRAP_DRAWS }, () => values.map((v) => v + noiseStd * random.normal()));
}

function estimate(f: (v: Float64Array) => number, values: Float64Array, draws: readonly Float64Array[]): Estimate {
  const value = f(values);
  if (!Number.isFinite(value)) return { value: null, interval: null };
  if (draws.length === 0) return { value, interval: [value, value] };
  const samples = draws.map(f).filter(Number.isFinite).sort((a, b) => a - b);
  // The re-noised copies sit one noise draw further from the truth than the release: their spread
  // around the release is the release's spread around the truth.
  if (samples.length < draws.length * 0.9) return { value, interval: null };
  const lo = samples[Math.floor(0.025 * (samples.length - 1))] as number;
  const hi = samples[Math.ceil(0.975 * (samples.length - 1))] as number;
  return { value, interval: [Math.min(lo, 2 * value - hi), Math.max(hi, 2 * value - lo)] };
}

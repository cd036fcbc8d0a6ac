/**
 * A model vocabulary from federated analytics (issue 18): what `buildVocabulary` computes from
 * shoppers' raw events on a simulation server, a production deployment computes from three
 * released analytics queries instead: the top-K categories and their popularity from a
 * category-counts query, the log-price scale from log-price moments, and the spending-tier bounds
 * from the tertiles of the spend histogram. Building it is post-processing of released,
 * differentially private sums, so it spends no further privacy (Dwork & Roth 2014, Prop. 2.1).
 */
import type { AnalyticsResult } from '../protocol/messages.ts';
import type { Vocabulary } from '../features/vocabulary.ts';
import { VocabularySchema } from '../features/vocabulary.ts';
import { HEAD_NAMES } from '../model/spec.ts';
import type { HeadName } from '../model/spec.ts';
import type { AnalyticsSummary, Estimate } from './queries.ts';

/** Popularity floor: a category whose noisy share is 0 or below still gets a positive prior (features take its log). */
export const MIN_POPULARITY = 1e-6;

export interface BootstrapSources {
  categories: AnalyticsResult;
  prices: AnalyticsResult;
  spend: AnalyticsResult;
}

export interface BootstrapOptions {
  topK: number;
  hashBuckets: number;
  /** Used where a released number is undefined (too few devices for the noise): the serving vocabulary's value. */
  fallback: Vocabulary;
}

/** What each vocabulary field came from, with the released estimate and its interval. */
export interface BootstrapReport {
  categories: { category: string; count: Estimate; share: Estimate }[];
  logPriceMean: Estimate & { fallback: boolean };
  logPriceStd: Estimate & { fallback: boolean };
  spendingBounds: (Estimate & { fallback: boolean })[];
}

function summaryOf<S extends AnalyticsSummary['statistic']>(name: string, result: AnalyticsResult, statistic: S): Extract<AnalyticsSummary, { statistic: S }> {
  if (result.summary.statistic !== statistic) throw new RangeError(`"${name}" expected a ${statistic} result, got ${result.summary.statistic}`);
  return result.summary as Extract<AnalyticsSummary, { statistic: S }>;
}

export function vocabularyFromAnalytics(sources: BootstrapSources, options: BootstrapOptions): { vocabulary: Vocabulary; report: BootstrapReport } {
  const { topK, hashBuckets, fallback } = options;
  if (!Number.isInteger(topK) || topK < 1) throw new RangeError(`"topK" expected an integer >= 1, got ${topK}`);
  const counts = summaryOf('categories', sources.categories, 'category-counts');
  const moments = summaryOf('prices', sources.prices, 'log-price-moments');
  const spend = summaryOf('spend', sources.spend, 'spend-histogram');
  // The summary lists categories by released count, largest first: the noisy top-K.
  const top = counts.categories.slice(0, topK);
  if (top.length === 0) throw new RangeError('"categories" expected a category-counts result with at least one category');
  const mean = moments.mean.value ?? null;
  const std = moments.std.value !== null && moments.std.value > 0 ? moments.std.value : null;
  const bounds = spend.quantiles.slice(0, 2).map((q, i) => ({ ...q.logPrice, fallback: q.logPrice.value === null, value: q.logPrice.value ?? (fallback.spendingBounds[i] as number) }));
  while (bounds.length < 2) bounds.push({ value: fallback.spendingBounds[bounds.length] as number, interval: null, fallback: true });
  const [low, high] = bounds as [Estimate & { fallback: boolean; value: number }, Estimate & { fallback: boolean; value: number }];
  // Noise can cross the tertiles; the tiers need them ascending.
  const spendingBounds: [number, number] = [Math.min(low.value, high.value), Math.max(low.value, high.value)];
  const vocabulary = VocabularySchema.parse({
    categories: top.map((c) => c.category),
    hashBuckets,
    popularity: top.map((c) => Math.max(MIN_POPULARITY, c.share.value ?? 0)),
    logPriceMean: mean ?? fallback.logPriceMean,
    logPriceStd: std ?? fallback.logPriceStd,
    spendingBounds,
  });
  return {
    vocabulary,
    report: {
      categories: top.map((c) => ({ category: c.category, count: c.count, share: c.share })),
      logPriceMean: { ...moments.mean, fallback: mean === null },
      logPriceStd: { ...moments.std, fallback: std === null },
      spendingBounds: [low, high],
    },
  };
}

/** Most hash buckets a vocabulary may have (VocabularySchema): the largest category hash space. */
export const MAX_HASH_BUCKETS = 64;

/**
 * The first vocabulary of a deployment that knows neither its catalog nor any shopper's events
 * (`portrait server --category-hash-space N`): no category has its own slot, every one hashes into
 * the N buckets, and the price scale and spending tiers are a catalog without prices' (log1p price
 * mean 0, std 1, bounds [0, 0]) until analytics rounds replace them. A model on it has no interests
 * head (its outputs are the named categories; tfjs builds no layer of zero units): devices train
 * and profile the purchase and spending heads, with the hashed shares as features, until heavy-
 * hitter discovery and a bootstrap give it named categories.
 */
export function hashSpaceVocabulary(hashBuckets: number): Vocabulary {
  if (!Number.isInteger(hashBuckets) || hashBuckets < 1 || hashBuckets > MAX_HASH_BUCKETS) throw new RangeError(`"hashBuckets" expected an integer in [1, ${MAX_HASH_BUCKETS}], got ${hashBuckets}`);
  return VocabularySchema.parse({ categories: [], hashBuckets, popularity: [], logPriceMean: 0, logPriceStd: 1, spendingBounds: [0, 0] });
}

/**
 * The heads of a model on `vocabulary` that replaces a version with `heads` on `replaced`: without
 * named categories no interests head; the interests head back in its place when the replaced
 * version had none for want of named categories (a hash-space start); otherwise the same heads.
 */
export function headsForVocabulary(heads: readonly HeadName[], replaced: Vocabulary, vocabulary: Vocabulary): HeadName[] {
  if (vocabulary.categories.length === 0) return heads.filter((h) => h !== 'interests');
  if (replaced.categories.length === 0) return HEAD_NAMES.filter((h) => h === 'interests' || heads.includes(h));
  return [...heads];
}

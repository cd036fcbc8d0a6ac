/**
 * The feature vocabulary: which categories get their own slot (the top-K by activity in the
 * training split), how the rest hash into a few buckets, price normalisation, the global
 * category popularity and the spending-tier bounds. It is part of the model config and ships
 * with every model version, so a device computes exactly the features the model was trained on.
 */
import { z } from 'zod';
import type { BehaviourEvent } from './events.ts';
import type { UserRecord } from './dataset.ts';
import type { WindowConfig } from './windows.ts';

export const VocabularySchema = z
  .object({
    /**
     * The categories with their own slot. None only in a deployment started without a catalog
     * (`portrait server --category-hash-space N`): every category then hashes into the buckets, and
     * the model has no interests head (whose outputs are these categories) until a vocabulary is
     * bootstrapped from discovered ones (docs/analytics.md, "Starting without a catalog").
     */
    categories: z.array(z.string()),
    hashBuckets: z.number().int().min(1).max(64),
    /** Share of training events per top-K category (sums to ≤ 1). */
    popularity: z.array(z.number().min(0)),
    logPriceMean: z.number(),
    logPriceStd: z.number().positive(),
    /** Two ascending bounds on the mean log1p price of bought items: below → tier 0, above the second → tier 2. */
    spendingBounds: z.tuple([z.number(), z.number()]),
  })
  .strict();

export type Vocabulary = z.infer<typeof VocabularySchema>;

export const SPENDING_TIERS = ['low', 'mid', 'high'] as const;

/** FNV-1a: a stable, platform-independent hash for the out-of-vocabulary buckets. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Slot of a category in the interest block: 0..K-1 for the vocabulary, K..K+B-1 for hashed ones. */
export function categorySlot(vocab: Vocabulary, index: ReadonlyMap<string, number>, category: string): number {
  const known = index.get(category);
  return known ?? vocab.categories.length + (hashString(category) % vocab.hashBuckets);
}

export function categoryIndex(vocab: Vocabulary): Map<string, number> {
  return new Map(vocab.categories.map((c, i) => [c, i]));
}

export function logPrice(price: number): number {
  return Math.log1p(price);
}

/** Mean log1p price of the events matching `keep`, or undefined when none carries a price. */
export function meanLogPrice(events: readonly BehaviourEvent[], keep: (e: BehaviourEvent) => boolean): number | undefined {
  let sum = 0;
  let n = 0;
  for (const e of events) {
    if (e.price !== undefined && keep(e)) {
      sum += logPrice(e.price);
      n++;
    }
  }
  return n === 0 ? undefined : sum / n;
}

export interface VocabularyOptions {
  topK: number;
  hashBuckets: number;
  windows: WindowConfig;
  startDay: number;
}

/** Builds the vocabulary from training users only, so nothing about test users leaks into it. */
export function buildVocabulary(trainUsers: Iterable<UserRecord>, options: VocabularyOptions): Vocabulary {
  const counts = new Map<string, number>();
  let total = 0;
  let priceSum = 0;
  let priceSq = 0;
  let priced = 0;
  const boughtMeans: number[] = [];
  for (const user of trainUsers) {
    for (const e of user.events) {
      counts.set(e.category, (counts.get(e.category) ?? 0) + 1);
      total++;
      if (e.price !== undefined) {
        const lp = logPrice(e.price);
        priceSum += lp;
        priceSq += lp * lp;
        priced++;
      }
    }
    // Every cut's label window, whatever the per-user cap keeps: the tiers are the data's, not the sample's.
    for (const offset of options.windows.cutOffsets) {
      const cut = options.startDay + offset;
      const m = meanLogPrice(user.events, (e) => e.type === 'buy' && e.day >= cut && e.day < cut + options.windows.horizonDays);
      if (m !== undefined) boughtMeans.push(m);
    }
  }
  const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const categories = ranked.slice(0, options.topK).map(([c]) => c);
  const popularity = categories.map((c) => (total === 0 ? 0 : (counts.get(c) ?? 0) / total));
  const mean = priced === 0 ? 0 : priceSum / priced;
  const variance = priced === 0 ? 1 : Math.max(priceSq / priced - mean * mean, 1e-6);
  boughtMeans.sort((a, b) => a - b);
  const quantile = (q: number) => (boughtMeans.length === 0 ? mean : (boughtMeans[Math.min(boughtMeans.length - 1, Math.floor(q * boughtMeans.length))] as number));
  return {
    categories,
    hashBuckets: options.hashBuckets,
    popularity,
    logPriceMean: mean,
    logPriceStd: Math.sqrt(variance),
    spendingBounds: [quantile(1 / 3), quantile(2 / 3)],
  };
}

export function spendingTier(vocab: Vocabulary, meanLog: number): number {
  if (meanLog < vocab.spendingBounds[0]) return 0;
  if (meanLog < vocab.spendingBounds[1]) return 1;
  return 2;
}

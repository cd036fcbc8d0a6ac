/**
 * Feature and label extraction for one user at one cut day. This exact code runs on the device
 * (browser or app) and in the centralised baseline, so a portrait computed locally matches the
 * one the model was evaluated on. Layout of the flat feature vector (documented in docs/model.md):
 *
 *   behaviour (13) | interest share (K+B) | decayed interest share (K+B) | spending (6)
 *
 * The interest share counts every event once; the decayed share weights events by type (a buy
 * says more than a click) and halves their weight every two days before the cut.
 */
import type { BehaviourEvent, EventType } from './events.ts';
import { EVENT_TYPES } from './events.ts';
import type { ProfileLabels } from './labels.ts';
import { CAREERS, STAGES } from './labels.ts';
import type { Vocabulary } from './vocabulary.ts';
import { categoryIndex, categorySlot, logPrice, meanLogPrice, spendingTier } from './vocabulary.ts';

export const BEHAVIOUR_FEATURES = [
  'logCountView', 'logCountClick', 'logCountFavourite', 'logCountCart', 'logCountBuy',
  'logCountAll', 'activeDayShare', 'daysSinceLastEvent', 'daysSinceLastBuy',
  'logCountLastDay', 'logCountLast3Days', 'logDistinctCategories', 'logDistinctItems',
] as const;
export const SPENDING_FEATURES = [
  'meanLogPrice', 'stdLogPrice', 'maxLogPrice', 'meanLogPriceBought', 'hasBought', 'meanLogPriceIntent',
] as const;

/** Interest weight per event type: stronger signals of intent count more. */
const TYPE_WEIGHT: Record<EventType, number> = { view: 0.5, click: 1, favourite: 2, cart: 3, buy: 4 };
/** Half-life, in days, of the decayed interest share (recent days say more about the next ones). */
const INTEREST_HALF_LIFE_DAYS = 2;
/** Per-event numeric channels of the sequence model: type one-hot, price, price flag, age. */
export const SEQUENCE_EVENT_CHANNELS = EVENT_TYPES.length + 3;

export function interestSlots(vocab: Vocabulary): number {
  return vocab.categories.length + vocab.hashBuckets;
}

export function featureSize(vocab: Vocabulary): number {
  return BEHAVIOUR_FEATURES.length + 2 * interestSlots(vocab) + SPENDING_FEATURES.length;
}

/**
 * The MLP takes the flat vector as two inputs: the dense block (behaviour then spending) and the
 * interest block (both share blocks), which also feeds the interests head's wide path.
 */
/**
 * Per-category channels of the interests head's shared scorer: share of events, type-weighted
 * decayed share, log1p of the event count, and the log of the own-history score
 * (n_c + p_c) / (N + 1) (counts smoothed by one pseudo-event of global popularity p_c).
 */
export const CATEGORY_SIGNAL_CHANNELS = 4;

export function featureBlocks(vocab: Vocabulary): { dense: number; interest: number; categorySignals: [number, number] } {
  return {
    dense: BEHAVIOUR_FEATURES.length + SPENDING_FEATURES.length,
    interest: 2 * interestSlots(vocab),
    categorySignals: [vocab.categories.length, CATEGORY_SIGNAL_CHANNELS],
  };
}

/** Splits a flat feature vector into the MLP's three inputs, writing into the given rows. */
export function splitFeatureVector(features: Float32Array, vocab: Vocabulary, dense: Float32Array, interest: Float32Array, signals: Float32Array): void {
  const b = BEHAVIOUR_FEATURES.length;
  const slots = interestSlots(vocab);
  const i = 2 * slots;
  dense.set(features.subarray(0, b), 0);
  dense.set(features.subarray(b + i), b);
  interest.set(features.subarray(b, b + i), 0);
  const activity = features[5] as number;
  for (let c = 0; c < vocab.categories.length; c++) {
    const share = features[b + c] as number;
    const decayed = features[b + slots + c] as number;
    const at = c * CATEGORY_SIGNAL_CHANNELS;
    signals[at] = share;
    signals[at + 1] = decayed;
    signals[at + 2] = Math.log1p(share * Math.expm1(activity));
    const events = Math.expm1(activity);
    signals[at + 3] = Math.log(((share * events) + (vocab.popularity[c] as number)) / (events + 1));
  }
}

/** Names of every slot of the flat feature vector, in order. */
export function featureNames(vocab: Vocabulary): string[] {
  const slots = [...vocab.categories.map((c) => `cat:${c}`), ...Array.from({ length: vocab.hashBuckets }, (_, i) => `bucket:${i}`)];
  return [...BEHAVIOUR_FEATURES, ...slots.map((s) => `share:${s}`), ...slots.map((s) => `decayedShare:${s}`), ...SPENDING_FEATURES];
}

/** Events strictly before the cut day: the only ones features may use. */
export function historyBefore(events: readonly BehaviourEvent[], cutDay: number): BehaviourEvent[] {
  return events.filter((e) => e.day < cutDay);
}

export interface FeatureContext {
  vocab: Vocabulary;
  index: ReadonlyMap<string, number>;
  /** First day of the dataset (or of the device's retention window): scales recency features. */
  startDay: number;
}

export function featureContext(vocab: Vocabulary, startDay: number): FeatureContext {
  return { vocab, index: categoryIndex(vocab), startDay };
}

/** The flat feature vector of `history` (events before `cutDay`) for the MLP. */
export function extractFeatures(history: readonly BehaviourEvent[], cutDay: number, ctx: FeatureContext): Float32Array {
  const { vocab } = ctx;
  const out = new Float32Array(featureSize(vocab));
  const span = Math.max(1, cutDay - ctx.startDay);
  const slots = interestSlots(vocab);
  const shareOffset = BEHAVIOUR_FEATURES.length;
  const decayedOffset = shareOffset + slots;
  const spendOffset = decayedOffset + slots;

  const typeCounts = new Map<EventType, number>();
  const days = new Set<number>();
  const categories = new Set<string>();
  const items = new Set<string>();
  let lastDay = -Infinity;
  let lastBuy = -Infinity;
  let lastDayCount = 0;
  let last3Count = 0;
  let shareTotal = 0;
  let decayedTotal = 0;
  for (const e of history) {
    typeCounts.set(e.type, (typeCounts.get(e.type) ?? 0) + 1);
    days.add(e.day);
    categories.add(e.category);
    items.add(e.itemId);
    lastDay = Math.max(lastDay, e.day);
    if (e.type === 'buy') lastBuy = Math.max(lastBuy, e.day);
    const age = cutDay - 1 - e.day;
    if (age < 1) lastDayCount++;
    if (age < 3) last3Count++;
    const slot = categorySlot(vocab, ctx.index, e.category);
    const w = TYPE_WEIGHT[e.type];
    const decayed = w * 2 ** (-age / INTEREST_HALF_LIFE_DAYS);
    out[shareOffset + slot] = (out[shareOffset + slot] as number) + 1;
    out[decayedOffset + slot] = (out[decayedOffset + slot] as number) + decayed;
    shareTotal += 1;
    decayedTotal += decayed;
  }
  for (let s = 0; s < slots; s++) {
    if (shareTotal > 0) out[shareOffset + s] = (out[shareOffset + s] as number) / shareTotal;
    if (decayedTotal > 0) out[decayedOffset + s] = (out[decayedOffset + s] as number) / decayedTotal;
  }

  EVENT_TYPES.forEach((type, i) => {
    out[i] = Math.log1p(typeCounts.get(type) ?? 0);
  });
  out[5] = Math.log1p(history.length);
  out[6] = days.size / span;
  out[7] = history.length === 0 ? 1 : Math.min(1, (cutDay - lastDay) / span);
  out[8] = lastBuy === -Infinity ? 1 : Math.min(1, (cutDay - lastBuy) / span);
  out[9] = Math.log1p(lastDayCount);
  out[10] = Math.log1p(last3Count);
  out[11] = Math.log1p(categories.size);
  out[12] = Math.log1p(items.size);

  const norm = (lp: number) => (lp - vocab.logPriceMean) / vocab.logPriceStd;
  const prices = history.filter((e) => e.price !== undefined).map((e) => logPrice(e.price as number));
  if (prices.length > 0) {
    const mean = prices.reduce((a, b) => a + b, 0) / prices.length;
    const variance = prices.reduce((a, b) => a + (b - mean) ** 2, 0) / prices.length;
    out[spendOffset] = norm(mean);
    out[spendOffset + 1] = Math.sqrt(variance) / vocab.logPriceStd;
    out[spendOffset + 2] = norm(Math.max(...prices));
  }
  const bought = meanLogPrice(history, (e) => e.type === 'buy');
  if (bought !== undefined) {
    out[spendOffset + 3] = norm(bought);
    out[spendOffset + 4] = 1;
  }
  const intent = meanLogPrice(history, (e) => e.type === 'cart' || e.type === 'favourite');
  if (intent !== undefined) out[spendOffset + 5] = norm(intent);
  return out;
}

export interface EventSequence {
  /** [length × (K+B+1)] one-hot category slots; the last channel marks padding-free steps' unknowns never (kept for symmetry). */
  categories: Float32Array;
  /** [length × SEQUENCE_EVENT_CHANNELS]: event type one-hot, normalised log price, has-price flag, age in days / span. */
  events: Float32Array;
}

/** The last `length` events before the cut, left-padded with zeros, for the GRU. */
export function extractSequence(history: readonly BehaviourEvent[], cutDay: number, length: number, ctx: FeatureContext): EventSequence {
  const { vocab } = ctx;
  const slots = interestSlots(vocab);
  const categories = new Float32Array(length * slots);
  const events = new Float32Array(length * SEQUENCE_EVENT_CHANNELS);
  const span = Math.max(1, cutDay - ctx.startDay);
  const recent = history.slice(-length);
  const pad = length - recent.length;
  recent.forEach((e, i) => {
    const step = pad + i;
    categories[step * slots + categorySlot(vocab, ctx.index, e.category)] = 1;
    const base = step * SEQUENCE_EVENT_CHANNELS;
    events[base + EVENT_TYPES.indexOf(e.type)] = 1;
    if (e.price !== undefined) {
      events[base + EVENT_TYPES.length] = (logPrice(e.price) - vocab.logPriceMean) / vocab.logPriceStd;
      events[base + EVENT_TYPES.length + 1] = 1;
    }
    events[base + EVENT_TYPES.length + 2] = (cutDay - e.day) / span;
  });
  return { categories, events };
}

/** Targets of one example. `undefined` means unknown: that head's loss and metrics skip it. */
export interface ExampleLabels {
  /** Multi-hot over the K vocabulary categories touched in the label window. */
  interests: Float32Array;
  /** 1 when the user buys anything in the label window. */
  purchase: number;
  /** Spending tier of the items bought in the label window; undefined when nothing was bought. */
  spending?: number;
  age?: number;
  gender?: number;
  career?: number;
  /** Multi-hot over STAGES. */
  stage?: Float32Array;
}

export function extractLabels(future: readonly BehaviourEvent[], profile: ProfileLabels, ctx: FeatureContext): ExampleLabels {
  const { vocab } = ctx;
  const interests = new Float32Array(vocab.categories.length);
  let purchase = 0;
  for (const e of future) {
    const slot = ctx.index.get(e.category);
    if (slot !== undefined) interests[slot] = 1;
    if (e.type === 'buy') purchase = 1;
  }
  const labels: ExampleLabels = { interests, purchase };
  const bought = meanLogPrice(future, (e) => e.type === 'buy');
  if (bought !== undefined) labels.spending = spendingTier(vocab, bought);
  if (profile.age !== undefined) labels.age = profile.age;
  if (profile.gender !== undefined) labels.gender = profile.gender;
  if (profile.career !== undefined && profile.career < CAREERS.length) labels.career = profile.career;
  if (profile.stage !== undefined && profile.stage.length > 0) {
    const stage = new Float32Array(STAGES.length);
    for (const s of profile.stage) stage[s] = 1;
    labels.stage = stage;
  }
  return labels;
}

/**
 * "Why this portrait": for each head, the few things in the device's own history that moved its
 * prediction most, computed on the device from the same features and model as the portrait.
 *
 * Method: integrated gradients (Sundararajan, Taly, Yan 2017, "Axiomatic Attribution for Deep
 * Networks", Sec. 3, eq. 1) of the explained class's output probability with respect to the
 * model's input vector, along the straight line from a baseline to the input. Its guarantee is
 * completeness (Sec. 3, Proposition 1): the attributions sum to f(input) − f(baseline). The
 * integral is computed by the trapezoid rule (the Riemann sum of Sec. 5, "Computing Integrated
 * Gradients", with the end points weighted one half), and as Sec. 5 recommends the sum is checked
 * against f(input) − f(baseline): the intervals are halved until the gap is under a tolerance
 * (1e-3 in probability by default), and the gap left is returned as `completenessError`.
 *
 * The baseline is the portrait of a shopper with no history: the features of an empty history at
 * the same day and retention start (extractFeatures([]) — all zeros except "days since the last
 * event" and "days since the last buy", both 1), and for the GRU the all-padding sequence
 * (extractSequence([]), all zeros). The explained output is the probability, not the logit, so
 * an attribution reads in probability points and all of them add up to the probability shown
 * minus the probability an empty history gets.
 *
 * Attributions are summed over groups of inputs that mean one thing to a shopper (one category's
 * shares; activity counts; recency; purchases; prices) and each group is told in words from the
 * raw history the features came from, in Chinese or English. Nothing here leaves the device.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { DisplayLanguage, DisplayName } from '../features/catalog-names.ts';
import type { BehaviourEvent, EventType } from '../features/events.ts';
import { EVENT_TYPES, sortEvents } from '../features/events.ts';
import type { FeatureContext } from '../features/extract.ts';
import {
  BEHAVIOUR_FEATURES,
  extractFeatures,
  extractSequence,
  featureBlocks,
  featureContext,
  historyBefore,
  interestSlots,
  SEQUENCE_EVENT_CHANNELS,
  SPENDING_FEATURES,
} from '../features/extract.ts';
import { categorySlot, logPrice } from '../features/vocabulary.ts';
import { outputsOf } from './batches.ts';
import type { HeadName, HeadSpec, ModelConfig } from './spec.ts';
import { headSpecs, headUnits } from './spec.ts';

/** Display names by category id, as a shop page or `portrait profile --category-names FILE` gives them. */
export const CategoryNamesSchema = z.record(z.string(), z.object({ zh: z.string(), en: z.string() }).strict());

export const EXPLANATION_LANGUAGES = ['zh', 'en'] as const satisfies readonly DisplayLanguage[];
export type ExplanationLanguage = (typeof EXPLANATION_LANGUAGES)[number];

/** Trapezoid intervals to start with, the gap accepted (in probability) and the most intervals: see IntegrationOptions. */
export const DEFAULT_STEPS = 64;
export const DEFAULT_TOLERANCE = 1e-3;
export const DEFAULT_MAX_STEPS = 1024;
export const MAX_STEPS = 4096;
export const DEFAULT_TOP_GROUPS = 3;
export const MAX_TOP_GROUPS = 50;
/** Days counted as "recent" in a category's sentence: the window of the logCountLast3Days feature. */
export const RECENT_DAYS = 3;

/** What a group of inputs means to a shopper. */
export const GROUP_KINDS = ['category', 'otherCategories', 'activity', 'recency', 'purchases', 'purchasePrices', 'browsedPrices'] as const;
export type GroupKind = (typeof GROUP_KINDS)[number];

/** Where each behaviour and spending feature of the MLP's flat vector is told (shared/features/extract.ts layout). */
const BEHAVIOUR_GROUP: Record<(typeof BEHAVIOUR_FEATURES)[number], GroupKind> = {
  logCountView: 'activity',
  logCountClick: 'activity',
  logCountFavourite: 'activity',
  logCountCart: 'activity',
  logCountBuy: 'purchases',
  logCountAll: 'activity',
  activeDayShare: 'recency',
  daysSinceLastEvent: 'recency',
  daysSinceLastBuy: 'purchases',
  logCountLastDay: 'recency',
  logCountLast3Days: 'recency',
  logDistinctCategories: 'activity',
  logDistinctItems: 'activity',
};
const SPENDING_GROUP: Record<(typeof SPENDING_FEATURES)[number], GroupKind> = {
  meanLogPrice: 'browsedPrices',
  stdLogPrice: 'browsedPrices',
  maxLogPrice: 'browsedPrices',
  meanLogPriceBought: 'purchasePrices',
  hasBought: 'purchases',
  meanLogPriceIntent: 'browsedPrices',
};

/**
 * The model's input as one flat vector per example, with the baseline and the differentiable map
 * from flat vectors to the model's input tensors (so gradients reach every flat slot).
 */
export interface AttributionInput {
  input: Float32Array;
  baseline: Float32Array;
  /** Group key of each slot of the flat vector (`category:<id>`, `bucket:<b>` or a GroupKind). */
  groups: string[];
  /** [rows, input.length] → the model's inputs, built with tensor ops only. */
  toModelInputs(points: tf.Tensor2D): tf.Tensor[];
}

function categoryGroup(config: ModelConfig, slot: number): string {
  const k = config.vocabulary.categories.length;
  return slot < k ? `category:${config.vocabulary.categories[slot] as string}` : `bucket:${slot - k}`;
}

/**
 * MLP: the flat feature vector of extractFeatures. The three model inputs follow
 * splitFeatureVector (shared/features/extract.ts) op for op, the category signals included, so the
 * gradient of the activity count through them lands on logCountAll.
 */
function mlpInput(config: ModelConfig, history: readonly BehaviourEvent[], asOfDay: number, ctx: FeatureContext): AttributionInput {
  const vocab = config.vocabulary;
  const b = BEHAVIOUR_FEATURES.length;
  const slots = interestSlots(vocab);
  const k = vocab.categories.length;
  const blocks = featureBlocks(vocab);
  const groups = [
    ...BEHAVIOUR_FEATURES.map((name) => BEHAVIOUR_GROUP[name]),
    ...Array.from({ length: slots }, (_, s) => categoryGroup(config, s)),
    ...Array.from({ length: slots }, (_, s) => categoryGroup(config, s)),
    ...SPENDING_FEATURES.map((name) => SPENDING_GROUP[name]),
  ];
  const popularity = Float32Array.from(vocab.popularity);
  const activity = BEHAVIOUR_FEATURES.indexOf('logCountAll');
  return {
    input: extractFeatures(history, asOfDay, ctx),
    baseline: extractFeatures([], asOfDay, ctx),
    groups,
    toModelInputs(points) {
      const rows = points.shape[0];
      const dense = tf.concat([points.slice([0, 0], [rows, b]), points.slice([0, b + blocks.interest], [rows, SPENDING_FEATURES.length])], 1);
      const interest = points.slice([0, b], [rows, blocks.interest]);
      const share = points.slice([0, b], [rows, k]);
      const decayed = points.slice([0, b + slots], [rows, k]);
      const events = tf.expm1(points.slice([0, activity], [rows, 1]));
      const ownEvents = tf.mul(share, events);
      // Channels as splitFeatureVector: share, decayed share, log1p(n_c), log((n_c + p_c) / (N + 1)).
      const signals = tf.stack([share, decayed, tf.log1p(ownEvents), tf.log(tf.div(tf.add(ownEvents, tf.tensor1d(popularity)), tf.add(events, 1)))], 2);
      return [dense, interest, signals];
    },
  };
}

/**
 * GRU: the flat concatenation of extractSequence's two blocks. Each step's category slot, event
 * type and age are told as its category; its price channels as a price.
 */
function gruInput(config: ModelConfig, window: readonly BehaviourEvent[], asOfDay: number, ctx: FeatureContext): AttributionInput {
  const n = config.sequenceLength;
  const slots = interestSlots(config.vocabulary);
  const ch = SEQUENCE_EVENT_CHANNELS;
  const seq = extractSequence(window, asOfDay, n, ctx);
  const empty = extractSequence([], asOfDay, n, ctx);
  const pad = n - window.length;
  const stepSlot = (step: number): number | undefined => {
    const e = window[step - pad];
    return e === undefined ? undefined : categorySlot(config.vocabulary, ctx.index, e.category);
  };
  const groups: string[] = [];
  for (let step = 0; step < n; step++) for (let s = 0; s < slots; s++) groups.push(categoryGroup(config, s));
  for (let step = 0; step < n; step++) {
    const slot = stepSlot(step);
    const own = slot === undefined ? 'activity' : categoryGroup(config, slot);
    const prices = window[step - pad]?.type === 'buy' ? 'purchasePrices' : 'browsedPrices';
    for (let c = 0; c < ch; c++) groups.push(c === EVENT_TYPES.length || c === EVENT_TYPES.length + 1 ? prices : own);
  }
  const concat = (s: { categories: Float32Array; events: Float32Array }) => {
    const out = new Float32Array(s.categories.length + s.events.length);
    out.set(s.categories, 0);
    out.set(s.events, s.categories.length);
    return out;
  };
  return {
    input: concat(seq),
    baseline: concat(empty),
    groups,
    toModelInputs(points) {
      const rows = points.shape[0];
      return [points.slice([0, 0], [rows, n * slots]).reshape([rows, n, slots]), points.slice([0, n * slots], [rows, n * ch]).reshape([rows, n, ch])];
    },
  };
}

/** The events the model reads: the whole history for the MLP, the last `sequenceLength` for the GRU. */
export function attributionInput(config: ModelConfig, history: readonly BehaviourEvent[], asOfDay: number, ctx: FeatureContext): { attribution: AttributionInput; seen: BehaviourEvent[] } {
  if (config.architecture === 'mlp') return { attribution: mlpInput(config, history, asOfDay, ctx), seen: [...history] };
  const seen = history.slice(-config.sequenceLength);
  return { attribution: gruInput(config, seen, asOfDay, ctx), seen };
}

/** One explained output: a head (its index among the model's outputs) and one of its units. */
export interface AttributionTarget {
  output: number;
  unit: number;
}

export interface IntegratedGradients {
  /** One per slot of the flat input; they sum to value − baselineValue up to completenessError. */
  attributions: Float64Array;
  value: number;
  baselineValue: number;
  /** Trapezoid intervals used. */
  steps: number;
  /** |Σ attributions − (value − baselineValue)|. */
  completenessError: number;
}

export interface IntegrationOptions {
  /** Trapezoid intervals to start with (default 64). */
  steps?: number;
  /**
   * Largest completeness gap accepted, in probability (default 1e-3, a tenth of a percentage
   * point): a target whose gap is larger has its intervals halved until it is not or `maxSteps`
   * is reached. Infinity keeps `steps`.
   */
  tolerance?: number;
  /** Most intervals (default 1024). */
  maxSteps?: number;
}

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`"${name}" expected a number, got ${typeof value}`);
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`"${name}" expected an integer from ${min} to ${max}, got ${value}`);
  return value;
}

function integrationOptions(options: IntegrationOptions): Required<IntegrationOptions> {
  const steps = checkInteger('steps', options.steps ?? DEFAULT_STEPS, 1, MAX_STEPS);
  const maxSteps = checkInteger('maxSteps', options.maxSteps ?? Math.max(steps, DEFAULT_MAX_STEPS), steps, MAX_STEPS);
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  if (typeof tolerance !== 'number') throw new TypeError(`"tolerance" expected a number, got ${typeof tolerance}`);
  if (Number.isNaN(tolerance) || tolerance < 0) throw new RangeError(`"tolerance" expected a number >= 0, got ${tolerance}`);
  return { steps, maxSteps, tolerance };
}

/**
 * Integrated gradients of each target (Sundararajan et al. 2017, Sec. 3, eq. 1) by the trapezoid
 * rule. The first pass reads steps + 1 points of the path; each further pass, for the targets
 * whose completeness gap is still above the tolerance (the check of Sec. 5), reads only the
 * midpoints of the current intervals and halves them, so m intervals cost m + 1 gradients in
 * all. The network's ReLUs make the integrand jump, so the gap shrinks about as 1/m, not 1/m².
 * Synchronous; every tensor is freed before it returns.
 */
export function integratedGradients(model: tf.LayersModel, input: AttributionInput, targets: readonly AttributionTarget[], options: IntegrationOptions = {}): IntegratedGradients[] {
  const { steps, maxSteps, tolerance } = integrationOptions(options);
  const width = input.input.length;
  if (input.baseline.length !== width) throw new RangeError(`"baseline" expected ${width} values, got ${input.baseline.length}`);
  const delta = Float64Array.from(input.input, (v, i) => v - (input.baseline[i] as number));
  const ends = tf.tidy(() => {
    const both = tf.tensor2d([...input.baseline, ...input.input], [2, width]);
    const outputs = outputsOf(model.apply(input.toModelInputs(both), { training: false }));
    return targets.map((target) => {
      const end = outputs[target.output];
      if (!end) throw new RangeError(`"target.output" expected an index below ${outputs.length}, got ${target.output}`);
      const units = end.shape[1] as number;
      if (!Number.isInteger(target.unit) || target.unit < 0 || target.unit >= units) throw new RangeError(`"target.unit" expected an index below ${units}, got ${target.unit}`);
      return end.slice([0, target.unit], [2, 1]).dataSync() as Float32Array;
    });
  });
  const state = targets.map((target, t) => ({
    target,
    baselineValue: (ends[t] as Float32Array)[0] as number,
    value: (ends[t] as Float32Array)[1] as number,
    /** Trapezoid-weighted sum of the gradients read so far (the end points weigh one half). */
    gradientSum: new Float64Array(width),
    steps,
    result: undefined as IntegratedGradients | undefined,
  }));
  let alphas = Array.from({ length: steps + 1 }, (_, k) => k / steps);
  let weights = alphas.map((_, k) => (k === 0 || k === steps ? 0.5 : 1));
  let intervals = steps;
  let pending = state;
  for (;;) {
    const sums = tf.tidy(() => {
      const alpha = tf.tensor2d(alphas, [alphas.length, 1]);
      const path = tf.add(tf.tensor2d(input.baseline, [1, width]), tf.mul(alpha, tf.tensor2d(Float32Array.from(delta), [1, width]))) as tf.Tensor2D;
      const weight = tf.tensor2d(weights, [1, weights.length]);
      return pending.map(({ target }) => {
        const probability = (points: tf.Tensor): tf.Scalar => {
          const outputs = outputsOf(model.apply(input.toModelInputs(points as tf.Tensor2D), { training: false }));
          return (outputs[target.output] as tf.Tensor2D).slice([0, target.unit], [-1, 1]).sum();
        };
        // Each point's output depends on its own row only, so the gradient of the sum is every row's gradient.
        const gradients = tf.grad(probability)(path) as tf.Tensor2D;
        return tf.matMul(weight, gradients).dataSync() as Float32Array;
      });
    });
    pending.forEach((s, p) => {
      const sum = sums[p] as Float32Array;
      for (let i = 0; i < width; i++) s.gradientSum[i] = (s.gradientSum[i] as number) + (sum[i] as number);
      s.steps = intervals;
      const attributions = Float64Array.from(s.gradientSum, (g, i) => (g / intervals) * (delta[i] as number));
      const total = attributions.reduce((a, b) => a + b, 0);
      s.result = { attributions, value: s.value, baselineValue: s.baselineValue, steps: intervals, completenessError: Math.abs(total - (s.value - s.baselineValue)) };
    });
    pending = pending.filter((s) => (s.result as IntegratedGradients).completenessError > tolerance);
    if (pending.length === 0 || intervals * 2 > maxSteps) break;
    alphas = Array.from({ length: intervals }, (_, j) => (2 * j + 1) / (2 * intervals));
    weights = alphas.map(() => 1);
    intervals *= 2;
  }
  return state.map((s) => s.result as IntegratedGradients);
}

export interface GroupAttribution {
  /** `category:<id>`, `bucket:<index>` (hashed out-of-vocabulary categories) or the kind. */
  group: string;
  kind: GroupKind;
  /** The category id, for kind `category`. */
  category?: string;
  /** Sum of the group's attributions, in probability points (0.1 = ten percentage points). */
  attribution: number;
  direction: 'raises' | 'lowers';
  /** What the shopper did, in their words: "12 views in Phones (5 in the last 3 days)". */
  text: string;
}

export interface HeadExplanation {
  head: HeadName;
  sensitive: boolean;
  /** The explained class: the most probable one, or the binary head's single output. */
  label: string;
  /** The class as a page shows it (a category's display name). */
  labelText: string;
  probability: number;
  /** What a shopper with no history gets. */
  baselineProbability: number;
  /** Sum of every attribution (not only the top groups). */
  attributionSum: number;
  /** |attributionSum − (probability − baselineProbability)|: the integral's approximation error. */
  completenessError: number;
  /** Trapezoid intervals it took to bring the gap under the tolerance (or maxSteps). */
  steps: number;
  top: GroupAttribution[];
}

export interface PortraitExplanation {
  asOfDay: number;
  /** Events the model read (the GRU reads the last sequenceLength). */
  events: number;
  method: { name: 'integrated-gradients'; output: 'probability'; baseline: 'empty-history'; rule: 'trapezoid' } & Required<IntegrationOptions>;
  language: ExplanationLanguage;
  heads: Partial<Record<HeadName, HeadExplanation>>;
}

export interface ExplainOptions extends IntegrationOptions {
  /** As computePortrait: the day the portrait looks ahead from, and where the retained history starts. */
  asOfDay?: number;
  historyStartDay?: number;
  /** Groups per head, by |attribution| (default 3). */
  top?: number;
  language?: ExplanationLanguage;
  /** Display names by category id (the shop's catalogue); a category without one shows its id. */
  categoryNames?: ReadonlyMap<string, DisplayName> | Readonly<Record<string, DisplayName>>;
  /** Prefix of prices in sentences (default ¥). */
  currency?: string;
  /** Only these heads (default: every head of the config that may be shown). */
  heads?: readonly HeadName[];
}

/** A sensitive head is explained only where the model config enables sensitive heads. */
export function explainableHeads(config: ModelConfig): HeadSpec[] {
  return headSpecs(config).filter((spec) => !spec.sensitive || config.enableSensitiveHeads);
}

/**
 * Explains the portrait computePortrait would give for `events`: same history, same day, same
 * features. Synchronous (run it where a long task does not block a page: the browser's worker).
 */
export function explainPortrait(model: tf.LayersModel, config: ModelConfig, events: readonly BehaviourEvent[], options: ExplainOptions = {}): PortraitExplanation {
  const integration = integrationOptions(options);
  const top = checkInteger('top', options.top ?? DEFAULT_TOP_GROUPS, 1, MAX_TOP_GROUPS);
  const language = options.language ?? 'en';
  if (!(EXPLANATION_LANGUAGES as readonly string[]).includes(language)) throw new RangeError(`"language" expected one of ${EXPLANATION_LANGUAGES.join(', ')}, got ${JSON.stringify(language)}`);
  const all = headSpecs(config);
  for (const h of options.heads ?? []) {
    if (!config.heads.includes(h)) throw new RangeError(`"heads" names ${h}, which this model does not have (${config.heads.join(', ')})`);
  }
  const explained = explainableHeads(config).filter((spec) => options.heads === undefined || options.heads.includes(spec.name));

  const sorted = sortEvents([...events]);
  const asOfDay = options.asOfDay ?? (sorted.at(-1)?.day ?? 0) + 1;
  const history = historyBefore(sorted, asOfDay);
  const startDay = options.historyStartDay ?? history[0]?.day ?? asOfDay - 1;
  const ctx = featureContext(config.vocabulary, startDay);
  const { attribution, seen } = attributionInput(config, history, asOfDay, ctx);
  const words = new Words(config, seen, asOfDay, startDay, language, options);

  // The explained class is the most probable at the input: one forward pass picks it.
  const rows = tf.tidy(() => outputsOf(model.apply(attribution.toModelInputs(tf.tensor2d(attribution.input, [1, attribution.input.length])), { training: false })).map((o) => o.dataSync() as Float32Array));
  const targets = explained.map((spec) => {
    const output = all.findIndex((s) => s.name === spec.name);
    const row = rows[output] as Float32Array;
    let unit = 0;
    for (let u = 1; u < headUnits(spec); u++) if ((row[u] as number) > (row[unit] as number)) unit = u;
    return { spec, output, unit };
  });
  const results = integratedGradients(model, attribution, targets, integration);

  const heads: PortraitExplanation['heads'] = {};
  targets.forEach(({ spec, unit }, t) => {
    const ig = results[t] as IntegratedGradients;
    const byGroup = new Map<string, number>();
    ig.attributions.forEach((a, i) => {
      if (a !== 0) byGroup.set(attribution.groups[i] as string, (byGroup.get(attribution.groups[i] as string) ?? 0) + a);
    });
    const ranked = [...byGroup.entries()].filter(([, a]) => a !== 0).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]) || (a[0] < b[0] ? -1 : 1));
    const label = spec.kind === 'binary' ? 'yes' : (spec.classes[unit] as string);
    heads[spec.name] = {
      head: spec.name,
      sensitive: spec.sensitive,
      label,
      labelText: spec.name === 'interests' ? words.categoryName(label) : label,
      probability: ig.value,
      baselineProbability: ig.baselineValue,
      attributionSum: ig.attributions.reduce((a, b) => a + b, 0),
      completenessError: ig.completenessError,
      steps: ig.steps,
      top: ranked.slice(0, top).map(([group, a]) => words.group(group, a)),
    };
  });
  return { asOfDay, events: seen.length, method: { name: 'integrated-gradients', output: 'probability', baseline: 'empty-history', rule: 'trapezoid', ...integration }, language, heads };
}

const EVENT_WORDS: Record<EventType, { en: [string, string]; zh: string }> = {
  view: { en: ['view', 'views'], zh: '浏览' },
  click: { en: ['click', 'clicks'], zh: '点击' },
  favourite: { en: ['favourite', 'favourites'], zh: '收藏' },
  cart: { en: ['add to cart', 'adds to cart'], zh: '加购' },
  buy: { en: ['purchase', 'purchases'], zh: '购买' },
};

const count = (n: number, [one, many]: readonly [string, string]) => `${n} ${n === 1 ? one : many}`;

function listEn(parts: readonly string[]): string {
  return parts.length <= 1 ? (parts[0] ?? '') : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1) as string}`;
}

/** The mean log1p price back in currency (a geometric mean): the "typical price" the features see. */
function typicalPrice(events: readonly BehaviourEvent[]): number | undefined {
  const prices = events.filter((e) => e.price !== undefined).map((e) => logPrice(e.price as number));
  return prices.length === 0 ? undefined : Math.expm1(prices.reduce((a, b) => a + b, 0) / prices.length);
}

/** Sentences about the events the model read, in one language. */
class Words {
  private readonly names: ReadonlyMap<string, DisplayName>;
  private readonly currency: string;

  constructor(
    private readonly config: ModelConfig,
    private readonly seen: readonly BehaviourEvent[],
    private readonly asOfDay: number,
    private readonly startDay: number,
    private readonly language: ExplanationLanguage,
    options: ExplainOptions,
  ) {
    const names = options.categoryNames;
    this.names = names === undefined ? new Map() : names instanceof Map ? names : new Map(Object.entries(names));
    this.currency = options.currency ?? '¥';
  }

  categoryName(id: string): string {
    return this.names.get(id)?.[this.language] ?? id;
  }

  group(group: string, attribution: number): GroupAttribution {
    const [kind, key] = group.includes(':') ? (group.split(/:(.*)/s) as [string, string]) : [group, ''];
    const direction = attribution >= 0 ? 'raises' : 'lowers';
    if (kind === 'category') return { group, kind, category: key, attribution, direction, text: this.category(key) };
    if (kind === 'bucket') return { group, kind: 'otherCategories', attribution, direction, text: this.bucket(Number(key)) };
    const k = kind as Exclude<GroupKind, 'category' | 'otherCategories'>;
    return { group, kind: k, attribution, direction, text: this[k]() };
  }

  private price(value: number): string {
    return `${this.currency}${value >= 10 ? Math.round(value) : value.toFixed(1)}`;
  }

  private daysAgo(days: number): string {
    if (this.language === 'zh') return days <= 1 ? '昨天' : `${days} 天前`;
    return days <= 1 ? 'yesterday' : `${days} days ago`;
  }

  private recent(events: readonly BehaviourEvent[]): number {
    return events.filter((e) => this.asOfDay - 1 - e.day < RECENT_DAYS).length;
  }

  private category(id: string): string {
    const events = this.seen.filter((e) => e.category === id);
    const name = this.categoryName(id);
    const byType = EVENT_TYPES.map((t) => [t, events.filter((e) => e.type === t).length] as const).filter(([, n]) => n > 0);
    const recent = this.recent(events);
    if (this.language === 'zh') {
      const did = byType.map(([t, n]) => `${EVENT_WORDS[t].zh} ${n} 次`).join('、');
      return `在「${name}」${did || '没有行为'}${recent > 0 && recent < events.length ? `，其中近 ${RECENT_DAYS} 天 ${recent} 次` : recent > 0 ? `，都在近 ${RECENT_DAYS} 天` : ''}`;
    }
    const did = listEn(byType.map(([t, n]) => count(n, EVENT_WORDS[t].en)));
    return `${did || 'nothing'} in ${name}${recent > 0 && recent < events.length ? ` (${recent} in the last ${RECENT_DAYS} days)` : recent > 0 ? ` in the last ${RECENT_DAYS} days` : ''}`;
  }

  private bucket(bucket: number): string {
    const vocab = this.config.vocabulary;
    const index = new Map(vocab.categories.map((c, i) => [c, i]));
    const events = this.seen.filter((e) => categorySlot(vocab, index, e.category) === vocab.categories.length + bucket);
    const names = [...new Set(events.map((e) => this.categoryName(e.category)))];
    const shown = names.slice(0, 3);
    if (this.language === 'zh') return `其他品类（${shown.join('、')}${names.length > shown.length ? ' 等' : ''}）共 ${events.length} 次行为`;
    return `${count(events.length, ['event', 'events'])} in other categories (${shown.join(', ')}${names.length > shown.length ? ', …' : ''})`;
  }

  private activity(): string {
    const items = new Set(this.seen.map((e) => e.itemId)).size;
    const categories = new Set(this.seen.map((e) => e.category)).size;
    if (this.language === 'zh') return `共 ${this.seen.length} 次行为，涉及 ${categories} 个品类的 ${items} 件商品`;
    return `${count(this.seen.length, ['event', 'events'])} on ${count(items, ['item', 'items'])} in ${count(categories, ['category', 'categories'])}`;
  }

  private recency(): string {
    const span = Math.max(1, this.asOfDay - this.startDay);
    const active = new Set(this.seen.map((e) => e.day)).size;
    const recent = this.recent(this.seen);
    const last = this.seen.reduce((m, e) => Math.max(m, e.day), Number.NEGATIVE_INFINITY);
    if (this.language === 'zh') {
      const tail = recent > 0 ? `近 ${RECENT_DAYS} 天 ${recent} 次行为` : Number.isFinite(last) ? `最近一次在${this.daysAgo(this.asOfDay - last)}` : '没有行为';
      return `近 ${span} 天中有 ${active} 天活跃，${tail}`;
    }
    const tail = recent > 0 ? `${count(recent, ['event', 'events'])} in the last ${RECENT_DAYS} days` : Number.isFinite(last) ? `last active ${this.daysAgo(this.asOfDay - last)}` : 'no activity';
    return `active on ${active} of the last ${count(span, ['day', 'days'])}, ${tail}`;
  }

  private purchases(): string {
    const buys = this.seen.filter((e) => e.type === 'buy');
    if (buys.length === 0) return this.language === 'zh' ? '还没有购买' : 'no purchases yet';
    const last = buys.reduce((m, e) => Math.max(m, e.day), Number.NEGATIVE_INFINITY);
    const when = this.daysAgo(this.asOfDay - last);
    if (this.language === 'zh') return buys.length === 1 ? `购买 1 次，在${when}` : `购买 ${buys.length} 次，最近一次在${when}`;
    return buys.length === 1 ? `1 purchase, ${when}` : `${buys.length} purchases, the last one ${when}`;
  }

  private purchasePrices(): string {
    const mean = typicalPrice(this.seen.filter((e) => e.type === 'buy'));
    if (mean === undefined) return this.language === 'zh' ? '购买的商品没有价格' : 'your purchases carry no price';
    return this.language === 'zh' ? `你购买的商品一般在 ${this.price(mean)} 左右` : `your purchases typically cost ${this.price(mean)}`;
  }

  private browsedPrices(): string {
    const mean = typicalPrice(this.seen);
    if (mean === undefined) return this.language === 'zh' ? '看过的商品没有价格' : 'no prices among the items you looked at';
    const max = Math.max(...this.seen.filter((e) => e.price !== undefined).map((e) => e.price as number));
    return this.language === 'zh' ? `你看过的商品一般在 ${this.price(mean)} 左右，最高 ${this.price(max)}` : `items you looked at typically cost ${this.price(mean)}, up to ${this.price(max)}`;
  }
}

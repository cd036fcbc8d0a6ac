/**
 * The synthetic shopper population: the embedded default dataset when no real data is present.
 * It has the schema and roughly the shape of the Tianchi CIKM 2019 EComm sample (10 days of
 * click / favourite / cart / buy over ~400 very skewed categories, ~58 events per user) and is
 * driven by a latent profile per user, so the profile labels and spending power are partly, never
 * perfectly, predictable from behaviour. Randomness here is the data PRNG of seeded-random.ts,
 * never privacy randomness.
 */
import { nameCategories } from './catalog-names.ts';
import type { DisplayName } from './catalog-names.ts';
import type { CleaningReport, Dataset, UserRecord } from './dataset.ts';
import { dayFromDate } from './events.ts';
import type { BehaviourEvent, EventType } from './events.ts';
import { AGE_BANDS, CAREERS, GENDERS, STAGES } from './labels.ts';
import type { ProfileLabels } from './labels.ts';
import { SeededRandom } from './seeded-random.ts';

export interface SyntheticConfig {
  /** Number of users, 1..1,000,000. */
  users: number;
  /** Population seed, an integer in 0..2^32-1. Same seed, same population, byte for byte. */
  seed: number;
  /** Days covered (default 10, like the Tianchi sample). */
  days?: number;
  /** First day, in UTC days since the epoch (default 2019-06-10). */
  startDay?: number;
  /** Catalogue size in categories (default 400). */
  categories?: number;
}

export type ResolvedSyntheticConfig = Required<SyntheticConfig>;

export const SYNTHETIC_LIMITS = {
  maxUsers: 1_000_000,
  maxSeed: 0xffff_ffff,
  maxDays: 366,
  maxStartDay: 100_000,
  minCategories: 20,
  maxCategories: 5_000,
} as const;

export const SPENDING_TIERS = ['low', 'mid', 'high'] as const;

/** The hidden truth behind one synthetic user (labels are this, minus some missing fields). */
export interface SyntheticProfile {
  age: number;
  gender: number;
  career: number;
  stages: number[];
  /** Index into SPENDING_TIERS. */
  spendingTier: number;
  /** Number of events generated for the user. */
  activity: number;
  /** Category ids of the user's interests at the start, strongest first. */
  interests: string[];
}

export interface SyntheticUser {
  record: UserRecord;
  profile: SyntheticProfile;
}

/** Checks a config and fills in the defaults; errors name the offending field. */
export function resolveSyntheticConfig(config: SyntheticConfig): ResolvedSyntheticConfig {
  if (typeof config !== 'object' || config === null) {
    throw new TypeError(`"config" expected an object, got ${config === null ? 'null' : typeof config}`);
  }
  const days = checkInteger('days', config.days ?? 10, 1, SYNTHETIC_LIMITS.maxDays);
  return {
    users: checkInteger('users', config.users, 1, SYNTHETIC_LIMITS.maxUsers),
    seed: checkInteger('seed', config.seed, 0, SYNTHETIC_LIMITS.maxSeed),
    days,
    startDay: checkInteger('startDay', config.startDay ?? dayFromDate('20190610'), 0, SYNTHETIC_LIMITS.maxStartDay),
    categories: checkInteger(
      'categories',
      config.categories ?? 400,
      SYNTHETIC_LIMITS.minCategories,
      SYNTHETIC_LIMITS.maxCategories,
    ),
  };
}

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`"${name}" expected a number, got ${typeof value}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`"${name}" expected an integer in ${min}..${max}, got ${value}`);
  }
  return value;
}

/**
 * Streams users one at a time: memory is the catalogue plus one user, whatever `users` is.
 * User i depends only on (seed, i, days, startDay, categories), never on how many are generated.
 */
export function generateSyntheticPopulation(config: SyntheticConfig): Generator<SyntheticUser> {
  // Validated here, not on the first next(), so a bad config fails where it is passed.
  return population(resolveSyntheticConfig(config));
}

export function generateSyntheticUsers(config: SyntheticConfig): Generator<UserRecord> {
  return records(generateSyntheticPopulation(config));
}

function* population(config: ResolvedSyntheticConfig): Generator<SyntheticUser> {
  const world = worldFor(config.categories);
  const dayWeights = weekdayWeights(config.startDay, config.days);
  for (let i = 0; i < config.users; i++) yield generateUser(world, config, dayWeights, i);
}

function* records(users: Generator<SyntheticUser>): Generator<UserRecord> {
  for (const user of users) yield user.record;
}

/** The whole population in memory: for small N (tests, the demo); stream larger ones. */
export function syntheticDataset(config: SyntheticConfig): Dataset {
  const resolved = resolveSyntheticConfig(config);
  const users = [...generateSyntheticUsers(resolved)];
  const events = users.reduce((n, u) => n + u.events.length, 0);
  const cleaning: CleaningReport = { rowsRead: events, eventsKept: events, dropped: {}, repaired: {} };
  return { name: `synthetic:${resolved.users}`, startDay: resolved.startDay, days: resolved.days, users, cleaning };
}

/**
 * Display names (Chinese, English) of the synthetic catalogue's categories, for pages: the most
 * popular get common marketplace categories, the baby and home themes names of their theme. The
 * ids (`c<index>`), and so every generated event and model vocabulary, stay as they are.
 */
export function syntheticCategoryNames(categories = 400): Map<string, DisplayName> {
  const count = checkInteger('categories', categories, SYNTHETIC_LIMITS.minCategories, SYNTHETIC_LIMITS.maxCategories);
  const world = worldFor(count);
  return nameCategories({ ids: world.categories.map((c) => c.id), byPopularity: world.byPopularity, baby: world.babyCategories, home: world.homeCategories });
}

// ---------------------------------------------------------------------------------------------
// Population parameters. Marginals follow the Tianchi sample's user_feature file; the effects
// (shifts, funnel rates) are invented but sized so each label leaves a visible, noisy trace.

/** Tianchi pred_age_level mapped to AGE_BANDS: 0-2 ≈ 4%, 3 ≈ 29%, 4 ≈ 45%, 5 ≈ 16%, 6-9 ≈ 6%. */
const AGE_WEIGHTS = [0.04, 0.29, 0.45, 0.16, 0.06];
/** Tianchi pred_gender: 1,112 zeros to 357 ones. */
const GENDER_ONE_RATE = 0.243;
/** Tianchi pred_career_type 1..10 counts among users with a career. */
const CAREER_WEIGHTS = normalise([9, 180, 55, 17, 28, 6, 89, 101, 724, 144]);
/** Tianchi pred_stage prevalence per stage 1..10 (a user has several). */
const STAGE_RATES = [0.965, 0.84, 0.002, 0.92, 0.79, 0.64, 0.017, 0.31, 0.005, 0.09];
/** Stage 8 (index 7) is read as "young child at home": drives baby categories, peaks mid-age. */
const PARENT_STAGE = 7;
const PARENT_RATE_BY_AGE = [0.05, 0.2, 0.38, 0.4, 0.25];
/** Stage 10 (index 9) is read as "recently moved": drives home categories. */
const HOME_STAGE = 9;
const HOME_RATE_BY_AGE = [0.04, 0.11, 0.1, 0.07, 0.05];
/** Stage 6 (index 5) grows with age, stage 2 (index 1) shrinks: more age signal in stages. */
const OLDER_STAGE = 5;
const OLDER_RATE_BY_AGE = [0.4, 0.55, 0.65, 0.72, 0.8];
const YOUNGER_STAGE = 1;
const YOUNGER_RATE_BY_AGE = [0.95, 0.9, 0.84, 0.78, 0.7];
const MISSING_RATE = { age: 0.015, gender: 0.015, career: 0.1, stage: 0.015 };

/** Spending tier = thresholded (normal + age shift + career shift): about 40 / 40 / 20 %. */
const AGE_TIER_SHIFT = [-0.5, -0.15, 0.1, 0.2, 0];
const CAREER_TIER_SHIFT = [0.3, 0.4, 0.2, 0.5, 0.1, -0.2, 0, -0.3, -0.1, 0.25];
const TIER_THRESHOLDS = [-0.25, 0.85];
/** Position in a category's price-sorted items is u^exponent: low tiers skew cheap, high pricey. */
const TIER_PRICE_EXPONENT = [1.8, 1, 0.5];

/** Events per user over 10 days: log-normal, median 37 and mean ~58 like Tianchi, clipped 1..500. */
const ACTIVITY_MEDIAN_PER_DAY = 3.7;
const ACTIVITY_SIGMA = 0.95;
const ACTIVITY_MAX_PER_DAY = 50;

/** Funnel, per click. Tianchi's mix is ~68% click, 6.5% favourite, 18% cart, 8% buy. */
const FAVOURITE_RATE_BY_AGE = [0.13, 0.11, 0.095, 0.08, 0.07];
const CART_RATE_BY_TIER = [0.25, 0.27, 0.29];
const BUY_AFTER_CART_BY_TIER = [0.34, 0.41, 0.5];
const BUY_AFTER_CART_AGE_SHIFT = [-0.06, -0.02, 0, 0.03, 0.05];
const DIRECT_BUY_RATE = 0.025;

/** A session's category: an interest most of the time, else exploration. */
const EXPLORE_GROUP_RATE = 0.15;
const EXPLORE_GLOBAL_RATE = 0.04;
const ADOPT_EXPLORED_RATE = 0.3;
const MEAN_EXTRA_CLICKS_PER_SESSION = 1.2;
const RECLICK_RATE = 0.2;
/** Daily drift of interest weights (log-normal step) and chance of dropping a minor interest. */
const DRIFT_SIGMA = 0.3;
const DROP_INTEREST_RATE = 0.08;

const WORLD_SEED = 0x5eed_0001;
const ZIPF_EXPONENT = 1.3;
const ITEMS_PER_CATEGORY_AVERAGE = 90;
const BRANDED_CATEGORY_RATE = 0.15;
const BRANDED_ITEM_RATE = 0.3;

// ---------------------------------------------------------------------------------------------
// The world: categories, items and who likes what. It depends only on the catalogue size, so
// populations with different seeds are different samples of the same market (train on one seed,
// evaluate on another).

interface Category {
  id: string;
  /** Numeric part of the item ids: `i<index>-<k>`. */
  index: number;
  /** Item prices, ascending: item k is `i<index>-<k>`. */
  prices: Float64Array;
  /** Brand of item k, if it has one. */
  brands: (string | undefined)[];
  /** Item id strings, built on first use. */
  itemIds: (string | undefined)[];
}

interface World {
  categories: Category[];
  /** Cumulative global popularity over categories. */
  popularity: Float64Array;
  /** Category indices from the most to the least popular (display names follow it). */
  byPopularity: number[];
  /** Cumulative popularity × affinity, per (age band, gender) group = age * 2 + gender. */
  groupPreference: Float64Array[];
  babyCategories: number[];
  homeCategories: number[];
  /** Three categories per career with a mild pull on that career's users. */
  careerCategories: number[][];
}

let cachedWorld: World | undefined;

function worldFor(categoryCount: number): World {
  if (cachedWorld?.categories.length !== categoryCount) cachedWorld = buildWorld(categoryCount);
  return cachedWorld;
}

function buildWorld(count: number): World {
  const rng = new SeededRandom(WORLD_SEED, count);
  // Popularity is Zipf over a random order of the category ids, so id order carries no signal.
  const order = shuffledRange(rng, count);
  const share = new Float64Array(count);
  let total = 0;
  for (let rank = 0; rank < count; rank++) total += (share[order[rank]] = 1 / (rank + 1) ** ZIPF_EXPONENT);
  for (let c = 0; c < count; c++) share[c] /= total;

  const categories: Category[] = [];
  let nextBrand = 0;
  for (let c = 0; c < count; c++) {
    const items = 4 + Math.round(share[c] * ITEMS_PER_CATEGORY_AVERAGE * count);
    const basePrice = 40 * Math.exp(0.8 * rng.normal());
    const prices = new Float64Array(items);
    for (let k = 0; k < items; k++) {
      prices[k] = Math.max(0.5, Math.round(basePrice * Math.exp(0.6 * rng.normal()) * 100) / 100);
    }
    prices.sort();
    const brands: (string | undefined)[] = new Array<string | undefined>(items).fill(undefined);
    if (rng.chance(BRANDED_CATEGORY_RATE)) {
      const pool = 2 + rng.int(5);
      const first = nextBrand;
      nextBrand += pool;
      for (let k = 0; k < items; k++) if (rng.chance(BRANDED_ITEM_RATE)) brands[k] = `b${first + rng.int(pool)}`;
    }
    categories.push({ id: `c${c}`, index: c, prices, brands, itemIds: new Array<string | undefined>(items) });
  }

  // Themed categories come from outside the top 10 so the head of the distribution stays generic.
  const themed = order.slice(Math.min(10, count - 5));
  const themeSize = Math.max(1, Math.round(count * 0.04));
  const takeRandom = (): number => themed.splice(rng.int(themed.length), 1)[0];
  const babyCategories = Array.from({ length: themeSize }, takeRandom);
  const homeCategories = Array.from({ length: themeSize }, takeRandom);
  const careerCategories = CAREERS.map(() => [0, 1, 2].map(() => themed[rng.int(themed.length)]));

  // Each category leans towards one gender and peaks at one age band; each (age, gender) group
  // thereby prefers its own subset while the global Zipf head stays popular with everyone.
  const genderLean = new Float64Array(count);
  const agePeak = new Float64Array(count);
  const ageWidth = new Float64Array(count);
  const themeDamping = new Float64Array(count).fill(1);
  for (let c = 0; c < count; c++) {
    genderLean[c] = 0.7 * rng.normal();
    agePeak[c] = -0.5 + 5 * rng.next();
    ageWidth[c] = 0.5 + 1.5 * rng.next();
  }
  for (const c of babyCategories) themeDamping[c] = 0.1;
  for (const c of homeCategories) themeDamping[c] = 0.3;
  const groupPreference: Float64Array[] = [];
  for (let age = 0; age < AGE_BANDS.length; age++) {
    for (let gender = 0; gender < GENDERS.length; gender++) {
      const sign = gender === 1 ? 1 : -1;
      const weights = new Float64Array(count);
      for (let c = 0; c < count; c++) {
        const z = (age - agePeak[c]) / ageWidth[c];
        weights[c] = share[c] * themeDamping[c] * Math.exp(sign * genderLean[c] - 0.5 * z * z);
      }
      groupPreference.push(cumulative(weights));
    }
  }
  return { categories, popularity: cumulative(share), byPopularity: [...order], groupPreference, babyCategories, homeCategories, careerCategories };
}

function itemId(category: Category, k: number): string {
  return (category.itemIds[k] ??= `i${category.index}-${k}`);
}

// ---------------------------------------------------------------------------------------------
// One user.

/** Mutable interest mixture: parallel arrays of category indices and weights. */
interface Interests {
  categories: number[];
  weights: number[];
}

function generateUser(
  world: World,
  config: ResolvedSyntheticConfig,
  dayWeights: Float64Array,
  index: number,
): SyntheticUser {
  const rng = new SeededRandom(config.seed, index);
  const userId = `s${config.seed}-${index}`;

  const age = rng.pickWeighted(AGE_WEIGHTS);
  const gender = rng.chance(GENDER_ONE_RATE) ? 1 : 0;
  const career = rng.pickWeighted(CAREER_WEIGHTS);
  const stages = drawStages(rng, age);
  const tierScore = rng.normal() + AGE_TIER_SHIFT[age] + CAREER_TIER_SHIFT[career];
  const tier = tierScore < TIER_THRESHOLDS[0] ? 0 : tierScore < TIER_THRESHOLDS[1] ? 1 : 2;
  const activityScale = config.days * ACTIVITY_MEDIAN_PER_DAY;
  const activity = Math.min(
    config.days * ACTIVITY_MAX_PER_DAY,
    Math.max(1, Math.round(activityScale * Math.exp(ACTIVITY_SIGMA * rng.normal()))),
  );
  const group = age * 2 + gender;
  const interests = drawInterests(rng, world, group, stages, career, activity);
  const initialInterests = interests.categories
    .map((c, j) => ({ c, w: interests.weights[j] }))
    .sort((a, b) => b.w - a.w)
    .map(({ c }) => world.categories[c].id);

  const events: BehaviourEvent[] = [];
  const perDay = spreadOverDays(rng, activity, dayWeights);
  const funnel: FunnelRates = {
    favourite: FAVOURITE_RATE_BY_AGE[age],
    cart: CART_RATE_BY_TIER[tier],
    buyAfterCart: BUY_AFTER_CART_BY_TIER[tier] + BUY_AFTER_CART_AGE_SHIFT[age],
    priceExponent: TIER_PRICE_EXPONENT[tier],
  };
  let activeBefore = false;
  for (let d = 0; d < perDay.length; d++) {
    if (perDay[d] === 0) continue;
    if (activeBefore) driftInterests(rng, interests);
    activeBefore = true;
    generateDay(rng, world, group, interests, funnel, userId, config.startDay + d, perDay[d], events);
  }

  const labels: ProfileLabels = {};
  if (!rng.chance(MISSING_RATE.age)) labels.age = age;
  if (!rng.chance(MISSING_RATE.gender)) labels.gender = gender;
  if (!rng.chance(MISSING_RATE.career)) labels.career = career;
  if (!rng.chance(MISSING_RATE.stage)) labels.stage = [...stages];
  return {
    record: { userId, events, labels },
    profile: { age, gender, career, stages, spendingTier: tier, activity, interests: initialInterests },
  };
}

function drawStages(rng: SeededRandom, age: number): number[] {
  const stages: number[] = [];
  for (let s = 0; s < STAGES.length; s++) {
    let rate = STAGE_RATES[s];
    if (s === PARENT_STAGE) rate = PARENT_RATE_BY_AGE[age];
    else if (s === HOME_STAGE) rate = HOME_RATE_BY_AGE[age];
    else if (s === OLDER_STAGE) rate = OLDER_RATE_BY_AGE[age];
    else if (s === YOUNGER_STAGE) rate = YOUNGER_RATE_BY_AGE[age];
    if (rng.chance(rate)) stages.push(s);
  }
  if (stages.length === 0) stages.push(0);
  return stages;
}

function drawInterests(
  rng: SeededRandom,
  world: World,
  group: number,
  stages: readonly number[],
  career: number,
  activity: number,
): Interests {
  const interests: Interests = { categories: [], weights: [] };
  const add = (c: number, weight: number): void => {
    if (interests.categories.includes(c)) return;
    interests.categories.push(c);
    interests.weights.push(weight);
  };
  const preference = world.groupPreference[group];
  const core = 1 + rng.poisson(2.5 + 1.6 * Math.log1p(activity / 10));
  for (let j = 0, tries = 0; j < core && tries < 4 * core; tries++) {
    const before = interests.categories.length;
    add(rng.pickCumulative(preference), rng.exponential() + 0.1);
    if (interests.categories.length > before) j++;
  }
  // A personal favourite from the global head, unrelated to demographics: noise for the labels.
  if (rng.chance(0.6)) add(rng.pickCumulative(world.popularity), rng.exponential());
  if (stages.includes(PARENT_STAGE) && rng.chance(0.75)) {
    const n = rng.chance(0.5) ? 2 : 1;
    for (let j = 0; j < n; j++) add(world.babyCategories[rng.int(world.babyCategories.length)], 0.5 + rng.exponential());
  }
  if (stages.includes(HOME_STAGE) && rng.chance(0.7)) {
    add(world.homeCategories[rng.int(world.homeCategories.length)], 0.5 + rng.exponential());
  }
  if (rng.chance(0.35)) add(world.careerCategories[career][rng.int(3)], 0.3 + rng.exponential());
  return interests;
}

function driftInterests(rng: SeededRandom, interests: Interests): void {
  const { categories, weights } = interests;
  for (let j = 0; j < weights.length; j++) weights[j] *= Math.exp(DRIFT_SIGMA * rng.normal());
  if (categories.length > 2 && rng.chance(DROP_INTEREST_RATE)) {
    let weakest = 0;
    for (let j = 1; j < weights.length; j++) if (weights[j] < weights[weakest]) weakest = j;
    categories.splice(weakest, 1);
    weights.splice(weakest, 1);
  }
}

/** Split `total` events over days: how many days is heavy-user driven, which days weekend-leaning. */
function spreadOverDays(rng: SeededRandom, total: number, dayWeights: Float64Array): Int32Array {
  const days = dayWeights.length;
  const perDay = new Int32Array(days);
  const expected = 1 + (days - 1) * (1 - Math.exp(-total / (8 * days)));
  const active = Math.max(1, Math.min(days, total, Math.round(expected + rng.normal())));
  // Weighted sampling without replacement (Efraimidis & Spirakis 2006): top `active` keys u^(1/w).
  const keys = new Float64Array(days);
  for (let d = 0; d < days; d++) keys[d] = rng.next() ** (1 / dayWeights[d]);
  const chosen = Array.from({ length: days }, (_, d) => d)
    .sort((a, b) => keys[b] - keys[a])
    .slice(0, active);
  const shares = chosen.map(() => rng.exponential() + 0.2);
  const shareTotal = shares.reduce((a, b) => a + b, 0);
  let assigned = 0;
  for (let j = 0; j < active; j++) {
    const n = 1 + Math.floor((shares[j] / shareTotal) * (total - active));
    perDay[chosen[j]] = n;
    assigned += n;
  }
  for (; assigned < total; assigned++) perDay[chosen[rng.int(active)]]++;
  return perDay;
}

interface FunnelRates {
  favourite: number;
  cart: number;
  buyAfterCart: number;
  priceExponent: number;
}

function generateDay(
  rng: SeededRandom,
  world: World,
  group: number,
  interests: Interests,
  rates: FunnelRates,
  userId: string,
  day: number,
  budget: number,
  out: BehaviourEvent[],
): void {
  let left = budget;
  const emit = (type: EventType, category: Category, k: number): boolean => {
    const price = category.prices[k];
    const brand = category.brands[k];
    const item = itemId(category, k);
    out.push(
      brand === undefined
        ? { userId, day, type, itemId: item, category: category.id, price }
        : { userId, day, type, itemId: item, category: category.id, brand, price },
    );
    return --left > 0;
  };
  while (left > 0) {
    const category = world.categories[pickSessionCategory(rng, world, group, interests)];
    const items = category.prices.length;
    const clicks = 1 + rng.poisson(MEAN_EXTRA_CLICKS_PER_SESSION);
    let last = -1;
    for (let j = 0; j < clicks && left > 0; j++) {
      const k =
        last >= 0 && rng.chance(RECLICK_RATE)
          ? last
          : Math.min(items - 1, Math.floor(rng.next() ** rates.priceExponent * items));
      last = k;
      if (!emit('click', category, k)) return;
      if (rng.chance(rates.favourite) && !emit('favourite', category, k)) return;
      const carted = rng.chance(rates.cart);
      if (carted && !emit('cart', category, k)) return;
      if (rng.chance(carted ? rates.buyAfterCart : DIRECT_BUY_RATE) && !emit('buy', category, k)) return;
    }
  }
}

function pickSessionCategory(rng: SeededRandom, world: World, group: number, interests: Interests): number {
  const r = rng.next();
  if (r < EXPLORE_GROUP_RATE + EXPLORE_GLOBAL_RATE) {
    const c = rng.pickCumulative(r < EXPLORE_GROUP_RATE ? world.groupPreference[group] : world.popularity);
    if (!interests.categories.includes(c) && rng.chance(ADOPT_EXPLORED_RATE)) {
      interests.categories.push(c);
      interests.weights.push(0.3 * Math.min(...interests.weights));
    }
    return c;
  }
  const { categories, weights } = interests;
  let total = 0;
  for (let j = 0; j < weights.length; j++) total += weights[j];
  let u = rng.next() * total;
  for (let j = 0; j < weights.length - 1; j++) {
    u -= weights[j];
    if (u < 0) return categories[j];
  }
  return categories[categories.length - 1];
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

/** Weekends (from the real weekday of each day) get 30% more shoppers. */
function weekdayWeights(startDay: number, days: number): Float64Array {
  const weights = new Float64Array(days);
  for (let d = 0; d < days; d++) {
    const weekday = (startDay + d + 4) % 7; // 1970-01-01 was a Thursday; 0 = Sunday
    weights[d] = weekday === 0 || weekday === 6 ? 1.3 : 1;
  }
  return weights;
}

function shuffledRange(rng: SeededRandom, n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function cumulative(weights: Float64Array): Float64Array {
  const out = new Float64Array(weights.length);
  let sum = 0;
  for (let i = 0; i < weights.length; i++) out[i] = sum += weights[i];
  return out;
}

function normalise(weights: readonly number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => w / total);
}

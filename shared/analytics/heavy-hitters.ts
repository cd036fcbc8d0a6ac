/**
 * Federated heavy-hitter discovery of the shop's category ids when its catalog is unknown: a trie
 * grown one symbol per level, after TrieHH (Zhu, Kairouz, McMahan, Sun, Li, "Federated Heavy
 * Hitters Discovery with Differential Privacy", AISTATS 2020, Sec. 3). Each level is one
 * `category-prefixes` analytics query over the surviving prefixes: a device marks, for each of its
 * most active categories, the cell (prefix, next symbol) or the prefix's end cell; the prefixes
 * whose count passes a threshold are extended at the next level, and an end cell that passes is a
 * discovered id.
 *
 * Where TrieHH gets its privacy from sampling a few devices per level and a count threshold (its
 * Sec. 4 argument), here each level's counts are a distributed-DP SecAgg+ sum with its own ledger
 * entry (queries.ts), and the threshold only has to keep noise from growing the trie: a cell is
 * kept when its released count is at least `thresholdSigmas` times the released noise std (and at
 * least `minCount`). A cell of count 0 passes 3σ with probability 0.13 %, and a false prefix
 * still has to pass again at every later level to become an id. Choosing candidates from released
 * counts is post-processing and spends nothing more (Dwork & Roth 2014, Prop. 2.1).
 *
 * Pure: the caller releases each level (over the REST API, or simulated in a benchmark) and hands
 * the decoded summary back; `advanceDiscovery` moves the state.
 */
import type { AnalyticsSummary, CategoryPrefixesQuery, Estimate } from './queries.ts';
import { CategoryPrefixesQuerySchema, DEFAULT_CATEGORY_ALPHABET, MAX_QUERY_CATEGORIES, symbolsOf } from './queries.ts';

/** The `kind` of a discovery's result document (`portrait vocabulary discover --out`), which `model bootstrap --categories` reads. */
export const DISCOVERY_KIND = 'portrait-discovered-categories';

/** The longest category id (docs/catalog.md): a trie deeper than this finds nothing more. */
export const MAX_CATEGORY_ID_SYMBOLS = 128;

export interface DiscoveryOptions {
  /** A cell is kept when its released count is at least this many noise std (and at least `minCount`). */
  thresholdSigmas: number;
  /** The least count a kept cell must have, whatever the noise (without DP: the devices an id needs). */
  minCount: number;
  /** At most this many prefixes go on to the next level, the largest counts first: the query's dimension stays bounded. */
  maxCandidates: number;
  /** At most this many levels (queries); ids of n symbols are found at level n + 1, from their end cell. */
  levels: number;
  alphabet: string;
  maxCategoriesPerDevice: number;
}

export const DEFAULT_DISCOVERY: DiscoveryOptions = { thresholdSigmas: 3, minCount: 1, maxCandidates: 200, levels: 8, alphabet: DEFAULT_CATEGORY_ALPHABET, maxCategoriesPerDevice: 8 };

export interface DiscoveredCategory {
  category: string;
  /** The released count of its end cell: devices holding it among their most active categories. */
  count: Estimate;
  level: number;
}

/** What one level released and kept. */
export interface DiscoveryLevel {
  level: number;
  prefixes: number;
  dimension: number;
  noiseStd: number;
  threshold: number;
  /** Ids whose end cell passed. */
  found: number;
  /** Prefixes that passed and go on to the next level. */
  kept: number;
  /** Prefixes that passed but were over `maxCandidates` (the smallest counts). */
  dropped: number;
  /** The round that released it and the epsilon it spent, when the caller knows them. */
  roundId?: number;
  epsilon?: number | null;
}

export interface DiscoveryState {
  readonly options: DiscoveryOptions;
  /** This level's candidate prefixes; empty once discovery is done. */
  readonly candidates: readonly string[];
  readonly found: readonly DiscoveredCategory[];
  readonly levels: readonly DiscoveryLevel[];
  /** Why it stopped: no prefix passed (`exhausted`), or the level limit (`levels`); null while running. */
  readonly stopped: 'exhausted' | 'levels' | null;
  /** Prefixes that passed at the last level when the level limit stopped it: longer ids under them are not found. */
  readonly unfinished: readonly string[];
}

/** One released level, as the coordinator records it (`result.summary`, `result.noiseStd`). */
export interface LevelRelease {
  summary: AnalyticsSummary;
  noiseStd: number;
  roundId?: number;
  epsilon?: number | null;
}

function check(name: string, value: number, ok: boolean, expected: string): void {
  if (!ok) throw new RangeError(`"${name}" expected ${expected}, got ${value}`);
}

export function startDiscovery(input: Partial<DiscoveryOptions> = {}): DiscoveryState {
  const options = { ...DEFAULT_DISCOVERY, ...input };
  check('thresholdSigmas', options.thresholdSigmas, options.thresholdSigmas >= 0 && Number.isFinite(options.thresholdSigmas), 'a finite number >= 0');
  check('minCount', options.minCount, options.minCount >= 0 && Number.isFinite(options.minCount), 'a finite number >= 0');
  check('levels', options.levels, Number.isInteger(options.levels) && options.levels >= 1 && options.levels <= MAX_CATEGORY_ID_SYMBOLS + 1, `an integer in [1, ${MAX_CATEGORY_ID_SYMBOLS + 1}]`);
  const cells = symbolsOf(options.alphabet).length + 1;
  const most = Math.floor(MAX_QUERY_CATEGORIES / cells);
  check('maxCandidates', options.maxCandidates, Number.isInteger(options.maxCandidates) && options.maxCandidates >= 1 && options.maxCandidates <= most, `an integer in [1, ${most}] (at most ${MAX_QUERY_CATEGORIES} cells of ${cells} per prefix in one query)`);
  const state: DiscoveryState = { options, candidates: [''], found: [], levels: [], stopped: null, unfinished: [] };
  // Validates the alphabet and the cap as a query would (the first level's query).
  levelQuery(state);
  return state;
}

/** The query that releases the state's level. */
export function levelQuery(state: DiscoveryState): CategoryPrefixesQuery {
  if (state.stopped !== null) throw new RangeError(`"state" discovery has stopped (${state.stopped}): no level left to release`);
  const { alphabet, maxCategoriesPerDevice } = state.options;
  const parsed = CategoryPrefixesQuerySchema.safeParse({ statistic: 'category-prefixes', prefixes: [...state.candidates], alphabet, maxCategoriesPerDevice });
  if (!parsed.success) throw new RangeError(parsed.error.issues.map((i) => `"${i.path.join('.') || 'query'}" ${i.message}`).join('; '));
  return parsed.data;
}

/** The count a cell must reach to be kept at a release with noise std `noiseStd`. */
export function levelThreshold(options: Pick<DiscoveryOptions, 'thresholdSigmas' | 'minCount'>, noiseStd: number): number {
  return Math.max(options.minCount, options.thresholdSigmas * noiseStd);
}

const byCount = (a: { extension: string; count: Estimate }, b: { extension: string; count: Estimate }): number => (b.count.value as number) - (a.count.value as number) || (a.extension < b.extension ? -1 : a.extension > b.extension ? 1 : 0);

/**
 * The next state from a level's release: the ids whose end cell passed, and the next level's
 * candidates, the passing extensions with the largest counts, at most `maxCandidates`.
 */
export function advanceDiscovery(state: DiscoveryState, release: LevelRelease): DiscoveryState {
  const query = levelQuery(state);
  const { summary, noiseStd } = release;
  if (summary.statistic !== 'category-prefixes') throw new RangeError(`"release.summary" expected a category-prefixes result, got ${summary.statistic}`);
  if (!(noiseStd >= 0) || !Number.isFinite(noiseStd)) throw new RangeError(`"release.noiseStd" expected a finite number >= 0, got ${noiseStd}`);
  const dimension = query.prefixes.length * (symbolsOf(query.alphabet).length + 1);
  const candidates = new Set(state.candidates);
  if (summary.cells.length !== dimension || summary.cells.some((c) => !candidates.has(c.prefix))) throw new RangeError(`"release.summary" expected the ${dimension} cells of this level's ${candidates.size} prefixes, got ${summary.cells.length} cells of other prefixes`);
  const level = state.levels.length + 1;
  const threshold = levelThreshold(state.options, noiseStd);
  const passed = summary.cells.filter((c) => c.count.value !== null && c.count.value >= threshold);
  // The end cell of '' would be the empty id, which no category has.
  const found = passed.filter((c) => c.symbol === null && c.extension !== '').sort(byCount).map((c) => ({ category: c.extension, count: c.count, level }));
  const extensions = passed.filter((c) => c.symbol !== null).sort(byCount);
  const next = extensions.slice(0, state.options.maxCandidates).map((c) => c.extension);
  const record: DiscoveryLevel = {
    level,
    prefixes: query.prefixes.length,
    dimension,
    noiseStd,
    threshold,
    found: found.length,
    kept: next.length,
    dropped: extensions.length - next.length,
    ...(release.roundId === undefined ? {} : { roundId: release.roundId }),
    ...(release.epsilon === undefined ? {} : { epsilon: release.epsilon }),
  };
  const stopped = next.length === 0 ? 'exhausted' : level >= state.options.levels ? 'levels' : null;
  return {
    options: state.options,
    candidates: stopped === null ? next : [],
    found: [...state.found, ...found],
    levels: [...state.levels, record],
    stopped,
    unfinished: stopped === 'levels' ? next : [],
  };
}

/** The discovered ids, the largest released counts first. */
export function discoveredCategories(state: DiscoveryState): DiscoveredCategory[] {
  return [...state.found].sort((a, b) => byCount({ extension: a.category, count: a.count }, { extension: b.category, count: b.count }));
}

/**
 * The epsilon the levels spent together by basic composition (a sum: an upper bound; the
 * deployment's accountant composes them more tightly), or null when a level's is unknown or
 * unbounded (a release without DP).
 */
export function discoveryEpsilon(state: DiscoveryState): number | null {
  let total = 0;
  for (const l of state.levels) {
    if (l.epsilon === undefined || l.epsilon === null) return null;
    total += l.epsilon;
  }
  return total;
}

/**
 * Time windows that turn one user's event history into several supervised examples: features
 * from the days before a cut day, labels from the `horizonDays` days starting at it. Several
 * cut days give every user more than one local training example. The windows are part of the
 * dataset config and are printed with every result.
 *
 * Two kinds share one stored shape, so every model config saved before rolling windows still
 * parses and means what it meant:
 * - fixed (no `historyDays`): the 10-day Tianchi layout, history from the data's first day;
 * - rolling (`historyDays` set): history is the `historyDays` days before each cut. A rolling
 *   rule `{historyDays, horizonDays, cutEveryDays}` is resolved against a dataset's span by
 *   `rollingWindows` into cut offsets: the first cut has `historyDays` before it, then one
 *   every `cutEveryDays` while cut + horizon stays within the data. `maxCutsPerUser` caps the
 *   examples one user (or device) gives, by the seeded, evenly spread sample of `sampleCuts`.
 */
import { z } from 'zod';
import { dateFromDay } from './events.ts';

export const WindowConfigSchema = z
  .object({
    /** Cut days as offsets from the dataset's first day: labels are [cut, cut+horizon). */
    cutOffsets: z.array(z.number().int().min(1)).min(1),
    horizonDays: z.number().int().min(1),
    /** Rolling kind: history is [cut - historyDays, cut); without it, [first day, cut). */
    historyDays: z.number().int().min(1).optional(),
    /** Rolling kind: the spacing the cuts were laid out with (for descriptions). */
    cutEveryDays: z.number().int().min(1).optional(),
    /** At most this many examples per user; more cuts are sampled (see `sampleCuts`). */
    maxCutsPerUser: z.number().int().min(1).optional(),
  })
  .strict();

export type WindowConfig = z.infer<typeof WindowConfigSchema>;

/** For the 10-day Tianchi layout: four cuts, three label days each, the last ending on day 10. */
export const DEFAULT_WINDOWS = { cutOffsets: [4, 5, 6, 7], horizonDays: 3 } satisfies WindowConfig;

export interface RollingWindowRule {
  historyDays: number;
  horizonDays: number;
  cutEveryDays: number;
  maxCutsPerUser?: number;
}

/** Which CLI flag each rule field comes from, so a refusal names what the user typed. */
export const WINDOW_FLAGS: Record<keyof RollingWindowRule, string> = {
  historyDays: '--history-days',
  horizonDays: '--horizon-days',
  cutEveryDays: '--cut-every',
  maxCutsPerUser: '--max-cuts-per-user',
};

/** Resolves a rolling rule against a dataset of `datasetDays` days into cut offsets. */
export function rollingWindows(rule: RollingWindowRule, datasetDays: number): WindowConfig {
  for (const key of ['historyDays', 'horizonDays', 'cutEveryDays', 'maxCutsPerUser'] as const) {
    const v = rule[key];
    if (v === undefined && key === 'maxCutsPerUser') continue;
    if (!Number.isInteger(v) || (v as number) < 1) throw new RangeError(`"${WINDOW_FLAGS[key]}" expected an integer >= 1, got ${v}`);
  }
  if (rule.historyDays + rule.horizonDays > datasetDays) {
    throw new RangeError(`"${WINDOW_FLAGS.historyDays}" ${rule.historyDays} plus "${WINDOW_FLAGS.horizonDays}" ${rule.horizonDays} is longer than the data's ${datasetDays} days`);
  }
  const cutOffsets: number[] = [];
  for (let cut = rule.historyDays; cut + rule.horizonDays <= datasetDays; cut += rule.cutEveryDays) cutOffsets.push(cut);
  const windows: WindowConfig = { cutOffsets, horizonDays: rule.horizonDays, historyDays: rule.historyDays, cutEveryDays: rule.cutEveryDays };
  if (rule.maxCutsPerUser !== undefined) windows.maxCutsPerUser = rule.maxCutsPerUser;
  return windows;
}

/** Up to this many days the fixed Tianchi layout is the default; longer data gets rolling windows. */
export const FIXED_LAYOUT_MAX_DAYS = 14;

/**
 * The default windows for a dataset of `datasetDays` days. Up to two weeks: `DEFAULT_WINDOWS`
 * exactly, so Tianchi and demo numbers do not move. Up to eight weeks: a week of history, three
 * label days and a cut every day (the Tianchi layout's rhythm, rolled over the span). Longer:
 * four weeks of history, a week of labels and a cut every week, so every weekday is in every
 * window and a sparse buyer (a purchase every few weeks) has history at most cuts; eight cuts
 * per user at most, so a year-long user weighs like eight Tianchi examples, not fifty.
 */
export function defaultWindowRule(datasetDays: number): RollingWindowRule | null {
  if (datasetDays <= FIXED_LAYOUT_MAX_DAYS) return null;
  if (datasetDays < 56) return { historyDays: 7, horizonDays: 3, cutEveryDays: 1, maxCutsPerUser: 8 };
  return { historyDays: 28, horizonDays: 7, cutEveryDays: 7, maxCutsPerUser: 8 };
}

/** The windows of a dataset: the default rule for its span, with any field a flag overrides. */
export function chooseWindows(datasetDays: number, overrides: Partial<RollingWindowRule> = {}): WindowConfig {
  if (!Number.isInteger(datasetDays) || datasetDays < 1) throw new RangeError(`"datasetDays" expected an integer >= 1, got ${datasetDays}`);
  const base = defaultWindowRule(datasetDays);
  const overridden = Object.values(overrides).some((v) => v !== undefined);
  if (base === null && !overridden) {
    if (datasetDays < windowsDays(DEFAULT_WINDOWS)) {
      throw new RangeError(`the data spans ${datasetDays} day${datasetDays === 1 ? '' : 's'}, fewer than the ${windowsDays(DEFAULT_WINDOWS)} the default windows need; set "${WINDOW_FLAGS.historyDays}" and "${WINDOW_FLAGS.horizonDays}" to fit`);
    }
    return DEFAULT_WINDOWS;
  }
  const horizonDays = overrides.horizonDays ?? base?.horizonDays ?? Math.min(3, Math.max(1, Math.floor(datasetDays / 3)));
  const rule: RollingWindowRule = {
    historyDays: overrides.historyDays ?? base?.historyDays ?? Math.max(1, datasetDays - horizonDays - 3),
    horizonDays,
    cutEveryDays: overrides.cutEveryDays ?? base?.cutEveryDays ?? 1,
  };
  const cap = overrides.maxCutsPerUser ?? base?.maxCutsPerUser;
  if (cap !== undefined) rule.maxCutsPerUser = cap;
  return rollingWindows(rule, datasetDays);
}

/** Days from the first day to the end of the last label window. */
export function windowsDays(windows: WindowConfig): number {
  return Math.max(...windows.cutOffsets) + windows.horizonDays;
}

export function validateWindows(windows: WindowConfig, datasetDays: number): WindowConfig {
  const parsed = WindowConfigSchema.parse(windows);
  for (const cut of parsed.cutOffsets) {
    if (cut + parsed.horizonDays > datasetDays) {
      throw new RangeError(`"cutOffsets" entry ${cut} with horizonDays ${parsed.horizonDays} runs past the dataset's ${datasetDays} days`);
    }
  }
  return parsed;
}

/** First day (offset from the windows' first day) of the history before `cut`. */
export function historyStart(windows: WindowConfig, cut: number): number {
  return windows.historyDays === undefined ? 0 : Math.max(0, cut - windows.historyDays);
}

/** The most examples one user or device can give: one per cut, at most the cap. */
export function examplesPerUser(windows: WindowConfig): number {
  return Math.min(windows.cutOffsets.length, windows.maxCutsPerUser ?? Infinity);
}

/** FNV-1a of a string: a stable per-user seed (not a secret; it only spreads the sample). */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * At most `max` of `cuts` (ascending), evenly spread: the k-th pick is at position
 * floor((k + u) · n / max), with u in [0, 1) from the hash of `seed` (the user id), so a
 * user keeps the same cuts on every run and different users shift their picks, and every
 * stretch of n/max cuts gives exactly one example. Fewer than `max` cuts are all kept.
 */
export function sampleCuts<T>(cuts: readonly T[], max: number | undefined, seed: string): T[] {
  const n = cuts.length;
  if (max === undefined || n <= max) return [...cuts];
  const u = hashString(seed) / 2 ** 32;
  return Array.from({ length: max }, (_, k) => cuts[Math.floor(((k + u) * n) / max)] as T);
}

export interface WindowDescription {
  cut: string;
  history: [string, string];
  labels: [string, string];
}

/** Human- and JSON-readable calendar dates of every window (inclusive ranges). */
export function describeWindows(windows: WindowConfig, startDay: number): WindowDescription[] {
  return windows.cutOffsets.map((offset) => {
    const cut = startDay + offset;
    return {
      cut: dateFromDay(cut),
      history: [dateFromDay(startDay + historyStart(windows, offset)), dateFromDay(cut - 1)],
      labels: [dateFromDay(cut), dateFromDay(cut + windows.horizonDays - 1)],
    };
  });
}

/** One line for people: every window when there are few, else the rule and the span it covers. */
export function summarizeWindows(windows: WindowConfig, startDay: number): string {
  const described = describeWindows(windows, startDay);
  if (windows.historyDays === undefined || described.length <= 4) {
    return described.map((w) => `history ${w.history[0]}..${w.history[1]} → labels ${w.labels[0]}..${w.labels[1]}`).join('; ');
  }
  const first = described[0]!;
  const last = described.at(-1)!;
  const cap = windows.maxCutsPerUser === undefined ? '' : `, at most ${windows.maxCutsPerUser} per user`;
  return `${described.length} rolling cuts every ${windows.cutEveryDays ?? '?'} day(s) from ${first.cut} to ${last.cut} (history ${windows.historyDays} days, labels ${windows.horizonDays} days${cap}), covering ${first.history[0]}..${last.labels[1]}`;
}

export interface WindowCoverage {
  events: number;
  /** Events in no history or label window: the examples never read them. */
  outside: number;
  /** Share of the events some window reads, 0..1 (1 when there are none). */
  usedShare: number;
}

/** How many of the events (their days, offsets from the windows' first day) any window reads. */
export function windowCoverage(windows: WindowConfig, eventOffsets: Iterable<number>): WindowCoverage {
  const covered = (d: number) => windows.cutOffsets.some((cut) => d >= historyStart(windows, cut) && d < cut + windows.horizonDays);
  let events = 0;
  let outside = 0;
  const memo = new Map<number, boolean>();
  for (const d of eventOffsets) {
    events++;
    let c = memo.get(d);
    if (c === undefined) memo.set(d, (c = covered(d)));
    if (!c) outside++;
  }
  return { events, outside, usedShare: events === 0 ? 1 : (events - outside) / events };
}

/** The loud warning a run that reads under half its events prints, or null. */
export function coverageWarning(coverage: WindowCoverage, summary: string): string | null {
  if (coverage.usedShare >= 0.5) return null;
  return `WARNING: the windows read only ${(coverage.usedShare * 100).toFixed(1)}% of the events (${coverage.outside} of ${coverage.events} fall outside every window: ${summary}); set --history-days, --horizon-days or --cut-every to cover the data`;
}

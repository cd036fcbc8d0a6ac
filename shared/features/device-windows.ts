/**
 * The model's time windows on one device. A dataset anchors its windows on its own first day; a
 * device has no dataset, so it anchors them on its own clock: the last label window ends today
 * (or on the device's latest event day, should a clock run behind its events). A cut then has a
 * training example when the device has events in its history part, between the windows' first
 * day and the day before the cut; a label window may be empty (nothing bought), as in a dataset.
 * When there is no example, `exampleReadiness` says in plain words what the device waits for.
 * Rolling windows (`historyDays` set) read only the `historyDays` before each cut, and a device
 * gives at most `maxCutsPerUser` examples, as a dataset's user does (shared/features/windows.ts).
 */
import type { BehaviourEvent } from './events.ts';
import { dateFromDay } from './events.ts';
import { examplesPerUser, historyStart } from './windows.ts';
import type { WindowConfig } from './windows.ts';

/** Days from the windows' first day to the end of the last label window. */
export function windowSpan(windows: WindowConfig): number {
  return Math.max(...windows.cutOffsets) + windows.horizonDays;
}

export interface DeviceWindows {
  /** Day the last label window ends on (inclusive). */
  anchorDay: number;
  /** First day of every history window. */
  startDay: number;
  /** Cut days, ascending: history is [startDay, cut), labels [cut, cut + horizonDays). */
  cutDays: number[];
}

/** The windows of a device whose clock reads `today` (UTC days since the epoch). */
export function deviceWindows(windows: WindowConfig, today: number, latestEventDay = today): DeviceWindows {
  const anchorDay = Math.max(today, latestEventDay);
  const startDay = anchorDay + 1 - windowSpan(windows);
  return { anchorDay, startDay, cutDays: [...windows.cutOffsets].sort((a, b) => a - b).map((o) => startDay + o) };
}

/** The events the windows read: from their first day to the end of the last label window. */
export function eventsInWindows(events: readonly BehaviourEvent[], w: DeviceWindows): BehaviourEvent[] {
  return events.filter((e) => e.day >= w.startDay && e.day <= w.anchorDay);
}

export interface ExampleReadiness {
  /** Training examples the device has now: cuts with at least one event in their history. */
  examples: number;
  /** Why there is none, in words for the shopper; null when there is one. */
  waitingFor: string | null;
  /** The day the first example will be ready if the device keeps its events, when that is known. */
  readyDay: number | null;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "today", "yesterday", "3 days ago" near `today`, else the date. */
export function relativeDay(day: number, today: number): string {
  const ago = today - day;
  if (ago === 0) return 'today';
  if (ago === 1) return 'yesterday';
  if (ago === -1) return 'tomorrow';
  if (ago > 1 && ago < 7) return `${ago} days ago`;
  return dateFromDay(day);
}

function listDays(days: readonly number[], today: number): string {
  const words = days.map((d) => relativeDay(d, today));
  if (words.length <= 2) return words.join(' and ');
  if (words.length <= 4) return `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
  return `${relativeDay(days[0]!, today)} to ${relativeDay(days.at(-1)!, today)}`;
}

/**
 * How many examples the model's `windows` give a device with events on `eventDays` whose clock
 * reads `today`, and, when none, what it waits for (computed from the windows and the days).
 */
export function exampleReadiness(eventDays: readonly number[], windows: WindowConfig, today: number): ExampleReadiness {
  const days = [...new Set(eventDays)].sort((a, b) => a - b);
  const w = deviceWindows(windows, today, days.at(-1) ?? today);
  const withHistory = w.cutDays.filter((cut) => days.some((d) => d >= w.startDay + historyStart(windows, cut - w.startDay) && d < cut)).length;
  const examples = Math.min(withHistory, examplesPerUser(windows));
  if (examples > 0) return { examples, waitingFor: null, readyDay: null };
  const horizon = windows.horizonDays;
  const lastCut = w.cutDays.at(-1)!;
  // An event counts once a cut after it still has its whole label window by the anchor day:
  // it must be at least `horizon` days old, and no older than the windows' first day.
  const oldest = w.anchorDay - w.startDay;
  const rule = `a training example is what you did before a day plus what you did in the ${plural(horizon, 'day')} from it, so it needs events from ${horizon} to ${oldest} days ago`;
  if (days.length === 0) return { examples: 0, waitingFor: `no training example yet: there are no events on this device (${rule})`, readyDay: null };
  const recent = days.filter((d) => d >= lastCut);
  if (recent.length > 0) {
    // The earliest recent day is in a history window once the last cut has moved past it.
    const readyDay = recent[0]! + (w.anchorDay - lastCut + 1);
    const inDays = readyDay - today;
    const when = inDays <= 0 ? 'as soon as the day changes' : `on ${dateFromDay(readyDay)} (${inDays === 1 ? 'tomorrow' : `in ${inDays} days`})`;
    return {
      examples: 0,
      waitingFor: `no training example yet: ${rule}; you have events on ${plural(recent.length, 'day')} (${listDays(recent, today)}). Your first example is ready ${when}, if you keep them`,
      readyDay,
    };
  }
  return {
    examples: 0,
    waitingFor: `no training example yet: ${rule}; your events (${listDays(days, today)}) are older than that. New events start a new window`,
    readyDay: null,
  };
}

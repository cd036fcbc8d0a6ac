/**
 * Turns users into time-windowed examples: one per cut day where the user has history (in the
 * rolling kind, history within `historyDays` before the cut), at most `maxCutsPerUser` of them
 * by the seeded, evenly spread sample of shared/features/windows.ts.
 */
import type { UserRecord } from './dataset.ts';
import type { EventSequence, ExampleLabels, FeatureContext } from './extract.ts';
import { extractFeatures, extractLabels, extractSequence, historyBefore } from './extract.ts';
import { historyStart, sampleCuts } from './windows.ts';
import type { WindowConfig } from './windows.ts';

export interface Example {
  userId: string;
  cutDay: number;
  features: Float32Array;
  sequence?: EventSequence;
  labels: ExampleLabels;
}

export interface ExampleOptions {
  windows: WindowConfig;
  /** When set, also extract the last `sequenceLength` events for the GRU. */
  sequenceLength?: number;
}

export function userExamples(user: UserRecord, ctx: FeatureContext, options: ExampleOptions): Example[] {
  const { windows } = options;
  const withHistory: { cutDay: number; history: UserRecord['events'] }[] = [];
  for (const offset of windows.cutOffsets) {
    const cutDay = ctx.startDay + offset;
    const before = historyBefore(user.events, cutDay);
    const history = windows.historyDays === undefined ? before : before.filter((e) => e.day >= ctx.startDay + historyStart(windows, offset));
    if (history.length > 0) withHistory.push({ cutDay, history });
  }
  return sampleCuts(withHistory, windows.maxCutsPerUser, user.userId).map(({ cutDay, history }) => {
    const future = user.events.filter((e) => e.day >= cutDay && e.day < cutDay + windows.horizonDays);
    const example: Example = {
      userId: user.userId,
      cutDay,
      features: extractFeatures(history, cutDay, ctx),
      labels: extractLabels(future, user.labels, ctx),
    };
    if (options.sequenceLength !== undefined) example.sequence = extractSequence(history, cutDay, options.sequenceLength, ctx);
    return example;
  });
}

export function buildExamples(users: Iterable<UserRecord>, ctx: FeatureContext, options: ExampleOptions): Example[] {
  const out: Example[] = [];
  for (const user of users) out.push(...userExamples(user, ctx, options));
  return out;
}

/**
 * Turns users into time-windowed examples: one per cut day where the user has history.
 */
import type { UserRecord } from './dataset.ts';
import type { EventSequence, ExampleLabels, FeatureContext } from './extract.ts';
import { extractFeatures, extractLabels, extractSequence, historyBefore } from './extract.ts';
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
  const examples: Example[] = [];
  for (const offset of options.windows.cutOffsets) {
    const cutDay = ctx.startDay + offset;
    const history = historyBefore(user.events, cutDay);
    if (history.length === 0) continue;
    const future = user.events.filter((e) => e.day >= cutDay && e.day < cutDay + options.windows.horizonDays);
    const example: Example = {
      userId: user.userId,
      cutDay,
      features: extractFeatures(history, cutDay, ctx),
      labels: extractLabels(future, user.labels, ctx),
    };
    if (options.sequenceLength !== undefined) example.sequence = extractSequence(history, cutDay, options.sequenceLength, ctx);
    examples.push(example);
  }
  return examples;
}

export function buildExamples(users: Iterable<UserRecord>, ctx: FeatureContext, options: ExampleOptions): Example[] {
  const out: Example[] = [];
  for (const user of users) out.push(...userExamples(user, ctx, options));
  return out;
}

/**
 * What the browser device computes from its own stored events, pure: training examples for the
 * model version of a round (features and labels on the device; the profile labels are unknown
 * here, so only the behavioural heads learn from a browser).
 * The windows are anchored so the last one ends on the device's latest day of events.
 */
import type { UserRecord } from '../../shared/features/dataset.ts';
import type { BehaviourEvent } from '../../shared/features/events.ts';
import { sortEvents } from '../../shared/features/events.ts';
import type { Example } from '../../shared/features/examples.ts';
import { userExamples } from '../../shared/features/examples.ts';
import { featureContext } from '../../shared/features/extract.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';

/** The user id every event carries on the device: the page never needs to know who the shopper is. */
export const DEVICE_USER = 'self';

/** First day of the training windows such that the latest window's labels end on the last event day. */
export function deviceStartDay(events: readonly BehaviourEvent[], config: ModelConfig): number {
  const lastDay = events.reduce((m, e) => Math.max(m, e.day), 0);
  const span = Math.max(...config.windows.cutOffsets) + config.windows.horizonDays;
  return lastDay + 1 - span;
}

export function deviceExamples(events: readonly BehaviourEvent[], config: ModelConfig): Example[] {
  if (events.length === 0) return [];
  const user: UserRecord = { userId: DEVICE_USER, events: sortEvents([...events]), labels: {} };
  const startDay = deviceStartDay(events, config);
  return userExamples(user, featureContext(config.vocabulary, startDay), { windows: config.windows });
}

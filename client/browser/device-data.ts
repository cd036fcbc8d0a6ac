/**
 * What the browser device computes from its own stored events, pure: training examples for the
 * model version of a round (features and labels on the device; the profile labels are unknown
 * here, so only the behavioural heads learn from a browser), and, when there is none, what the
 * device is waiting for. The model's windows are anchored on the device's clock: the last label
 * window ends today (shared/features/device-windows.ts).
 */
import type { UserRecord } from '../../shared/features/dataset.ts';
import { deviceWindows, eventsInWindows, exampleReadiness } from '../../shared/features/device-windows.ts';
import type { DeviceWindows, ExampleReadiness } from '../../shared/features/device-windows.ts';
import type { BehaviourEvent } from '../../shared/features/events.ts';
import { dayFromMs, sortEvents } from '../../shared/features/events.ts';
import type { Example } from '../../shared/features/examples.ts';
import { userExamples } from '../../shared/features/examples.ts';
import { featureContext } from '../../shared/features/extract.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';

/** The user id every event carries on the device: the page never needs to know who the shopper is. */
export const DEVICE_USER = 'self';

/** The device's UTC day (events' `day` is in UTC days too). */
export const dayOf = dayFromMs;

/** The model's windows on this device, whose clock reads `today`. */
export function deviceWindowsFor(events: readonly BehaviourEvent[], config: ModelConfig, today: number): DeviceWindows {
  return deviceWindows(config.windows, today, events.reduce((m, e) => Math.max(m, e.day), today));
}

export function deviceExamples(events: readonly BehaviourEvent[], config: ModelConfig, today: number): Example[] {
  const windows = deviceWindowsFor(events, config, today);
  // Older events are outside every history window the model was trained on.
  const inWindows = eventsInWindows(events, windows);
  if (inWindows.length === 0) return [];
  const user: UserRecord = { userId: DEVICE_USER, events: sortEvents(inWindows), labels: {} };
  return userExamples(user, featureContext(config.vocabulary, windows.startDay), { windows: config.windows });
}

/** How many examples the device has, and what it waits for when it has none. */
export function deviceReadiness(events: readonly BehaviourEvent[], config: ModelConfig, today: number): ExampleReadiness {
  return exampleReadiness(events.map((e) => e.day), config.windows, today);
}

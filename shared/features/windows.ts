/**
 * Time windows that turn one user's event history into several supervised examples: features
 * from the days before a cut day, labels from the `horizonDays` days starting at it. Several
 * cut days give every user more than one local training example. The windows are part of the
 * dataset config and are printed with every result.
 */
import { z } from 'zod';
import { dateFromDay } from './events.ts';

export const WindowConfigSchema = z
  .object({
    /** Cut days as offsets from the dataset's first day: history is [start, cut), labels [cut, cut+horizon). */
    cutOffsets: z.array(z.number().int().min(1)).min(1),
    horizonDays: z.number().int().min(1),
  })
  .strict();

export type WindowConfig = z.infer<typeof WindowConfigSchema>;

/** For the 10-day Tianchi layout: four cuts, three label days each, the last ending on day 10. */
export const DEFAULT_WINDOWS: WindowConfig = { cutOffsets: [4, 5, 6, 7], horizonDays: 3 };

export function validateWindows(windows: WindowConfig, datasetDays: number): WindowConfig {
  const parsed = WindowConfigSchema.parse(windows);
  for (const cut of parsed.cutOffsets) {
    if (cut + parsed.horizonDays > datasetDays) {
      throw new RangeError(`"cutOffsets" entry ${cut} with horizonDays ${parsed.horizonDays} runs past the dataset's ${datasetDays} days`);
    }
  }
  return parsed;
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
      history: [dateFromDay(startDay), dateFromDay(cut - 1)],
      labels: [dateFromDay(cut), dateFromDay(cut + windows.horizonDays - 1)],
    };
  });
}

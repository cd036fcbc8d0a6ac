/**
 * Dataset specs as the CLI takes them: `synthetic:USERS[:SEED[:DAYS]]` (DAYS: the span, default
 * 10 like Tianchi; longer spans get rolling windows, shared/features/windows.ts), `tianchi:DIR`,
 * `events:FILE[:LABELS_FILE]` (JSONL or CSV with a header).
 */
import type { Dataset } from '../../shared/features/dataset.ts';
import { SYNTHETIC_LIMITS, syntheticDataset } from '../../shared/features/synthetic.ts';
import { loadEventsFile } from './events-file.ts';
import { loadTianchi } from './tianchi.ts';

export const DEFAULT_SYNTHETIC_SEED = 7;

export async function loadDataset(spec: string): Promise<Dataset> {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const rest = colon < 0 ? '' : spec.slice(colon + 1);
  switch (kind) {
    case 'synthetic': {
      const [usersText = '', seedText, daysText] = rest.split(':');
      const users = Number(usersText);
      const seed = seedText === undefined ? DEFAULT_SYNTHETIC_SEED : Number(seedText);
      if (!Number.isInteger(users) || users < 1) throw new RangeError(`"dataset" synthetic:USERS expected a positive integer, got ${JSON.stringify(usersText)}`);
      if (!Number.isInteger(seed)) throw new RangeError(`"dataset" synthetic seed expected an integer, got ${JSON.stringify(seedText)}`);
      if (daysText === undefined) return syntheticDataset({ users, seed });
      const days = Number(daysText);
      if (!Number.isInteger(days) || days < 1 || days > SYNTHETIC_LIMITS.maxDays) throw new RangeError(`"dataset" synthetic:USERS:SEED:DAYS expected DAYS an integer in 1..${SYNTHETIC_LIMITS.maxDays}, got ${JSON.stringify(daysText)}`);
      return syntheticDataset({ users, seed, days });
    }
    case 'tianchi':
      if (!rest) throw new RangeError('"dataset" tianchi:DIR needs a directory');
      return loadTianchi(rest);
    case 'events': {
      const [file = '', labels] = rest.split(':');
      if (!file) throw new RangeError('"dataset" events:FILE needs a file');
      return loadEventsFile(file, labels ? { labelsPath: labels } : {});
    }
    default:
      throw new RangeError(`"dataset" expected synthetic:USERS, tianchi:DIR or events:FILE, got ${JSON.stringify(spec)}`);
  }
}

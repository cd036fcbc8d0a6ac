/**
 * Dataset specs as the CLI takes them: `synthetic:USERS[:SEED]`, `tianchi:DIR`,
 * `events:FILE[:LABELS_FILE]` (JSONL or CSV with a header).
 */
import type { Dataset } from '../../shared/features/dataset.ts';
import { syntheticDataset } from '../../shared/features/synthetic.ts';
import { loadEventsFile } from './events-file.ts';
import { loadTianchi } from './tianchi.ts';

export const DEFAULT_SYNTHETIC_SEED = 7;

export async function loadDataset(spec: string): Promise<Dataset> {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const rest = colon < 0 ? '' : spec.slice(colon + 1);
  switch (kind) {
    case 'synthetic': {
      const [usersText = '', seedText] = rest.split(':');
      const users = Number(usersText);
      const seed = seedText === undefined ? DEFAULT_SYNTHETIC_SEED : Number(seedText);
      if (!Number.isInteger(users) || users < 1) throw new RangeError(`"dataset" synthetic:USERS expected a positive integer, got ${JSON.stringify(usersText)}`);
      if (!Number.isInteger(seed)) throw new RangeError(`"dataset" synthetic seed expected an integer, got ${JSON.stringify(seedText)}`);
      return syntheticDataset({ users, seed });
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

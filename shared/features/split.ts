/**
 * The fixed, seeded user-level split: a user's whole history lands in exactly one of train,
 * validation or test, decided by a hash of (seed, userId), so test users are never seen in
 * training and the split is the same on every machine and for every importer order.
 */
import { mix32 } from './seeded-random.ts';
import { hashString } from './vocabulary.ts';

export type SplitName = 'train' | 'validation' | 'test';

export interface SplitConfig {
  seed: number;
  validationShare: number;
  testShare: number;
}

export const DEFAULT_SPLIT: SplitConfig = { seed: 17, validationShare: 0.1, testShare: 0.2 };

export function splitOf(userId: string, config: SplitConfig): SplitName {
  // mix32 spreads FNV's weak high bits before thresholding.
  const u = mix32(hashString(`${config.seed}:${userId}`)) / 2 ** 32;
  if (u < config.testShare) return 'test';
  if (u < config.testShare + config.validationShare) return 'validation';
  return 'train';
}

export function splitUsers<T extends { userId: string }>(users: Iterable<T>, config: SplitConfig): Record<SplitName, T[]> {
  const out: Record<SplitName, T[]> = { train: [], validation: [], test: [] };
  for (const u of users) out[splitOf(u.userId, config)].push(u);
  return out;
}

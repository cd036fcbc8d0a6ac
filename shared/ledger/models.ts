/**
 * Models and ledger agree: every published model version must have been released by a ledger
 * entry naming it. The write-ahead rule (docs/ledger.md) makes this hold on an honest
 * coordinator whatever crashes: the release entry (round id, `modelVersionOut`) is committed
 * before the round's sum is decoded and its version stored. A version without one means the
 * release entry was removed (a truncated ledger) or the model was put in the store outside a
 * round. The one exception is version 1 when it has no round and no parent: the initial model,
 * built from a seed before any round, from no one's data.
 */
import type { LedgerEntry } from './entry.ts';

/** What the check needs of a model record (server/storage's ModelRecord has these fields). */
export interface PublishedModel {
  version: number;
  roundId: number | null;
  parentVersion: number | null;
}

export function isInitialModel(model: PublishedModel): boolean {
  return model.version === 1 && model.roundId === null && model.parentVersion === null;
}

/** For each published version no release entry accounts for, the reason; empty when they agree. */
export function unreleasedModels(models: readonly PublishedModel[], entries: readonly LedgerEntry[]): { version: number; reason: string }[] {
  const releases = new Map<number, Set<number>>();
  for (const entry of entries) {
    if (entry.kind !== 'round' || entry.round.outcome !== 'released' || entry.round.modelVersionOut === null) continue;
    const rounds = releases.get(entry.round.modelVersionOut) ?? new Set<number>();
    rounds.add(entry.round.roundId);
    releases.set(entry.round.modelVersionOut, rounds);
  }
  const problems: { version: number; reason: string }[] = [];
  for (const model of [...models].sort((a, b) => a.version - b.version)) {
    if (isInitialModel(model)) continue;
    const rounds = releases.get(model.version);
    if (model.roundId === null) {
      problems.push({ version: model.version, reason: `model version ${model.version} is published without a round: only version 1, the initial model, may be` });
    } else if (!rounds?.has(model.roundId)) {
      problems.push({
        version: model.version,
        reason: `model version ${model.version} (round ${model.roundId}) is published, but no ledger entry released it${rounds ? ` (the release entries naming version ${model.version} are of round ${[...rounds].join(', ')})` : ''}: its release entry was removed, or the model was stored outside a round`,
      });
    }
  }
  return problems;
}

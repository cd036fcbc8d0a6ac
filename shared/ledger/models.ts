/**
 * Models and ledger agree: every published model version must have been released by a ledger
 * entry naming it. The write-ahead rule (docs/ledger.md) makes this hold on an honest
 * coordinator whatever crashes: the release entry (round id, `modelVersionOut`) is committed
 * before the round's sum is decoded and its version stored. A version without one means the
 * release entry was removed (a truncated ledger) or the model was put in the store outside a
 * round. The one exception is version 1 when it has no round and no parent: the initial model,
 * built from a seed before any round, from no one's data.
 *
 * And each version's files are the ones published: a `publication` entry (entry.ts) binds the
 * version to the SHA-256 of its files, so files swapped under the same version number are caught
 * by comparing that digest with the files as stored (or as served). A ledger holding no
 * publication entry at all comes from before they existed: its versions are checked by version
 * only, and the result says so.
 */
import type { LedgerEntry, PublicationEntry } from './entry.ts';

/** What the check needs of a model record (server/storage's ModelRecord has these fields). */
export interface PublishedModel {
  version: number;
  roundId: number | null;
  parentVersion: number | null;
  /** A bootstrap version: the analytics rounds its vocabulary was built from. */
  derivedFrom?: readonly number[];
}

/** Rounds whose analytics query (a release entry naming a query, no model version) the ledger released. */
export function releasedQueries(entries: readonly LedgerEntry[]): Set<number> {
  const out = new Set<number>();
  for (const entry of entries) if (entry.kind === 'round' && entry.round.outcome === 'released' && entry.round.query) out.add(entry.round.roundId);
  return out;
}

/**
 * Why a version with no training round is not accounted for, or null when it is: the seed model
 * (version 1), or a bootstrap version whose every source round released an analytics query.
 */
export function roundlessProblem(model: { version: number; parentVersion: number | null; derivedFrom?: readonly number[] | undefined }, queries: ReadonlySet<number>): string | null {
  if (model.version === 1 && model.parentVersion === null && !model.derivedFrom) return null;
  const from = model.derivedFrom ?? [];
  if (from.length === 0) return `model version ${model.version} is published without a round: only version 1, the initial model, or a bootstrap version built from released analytics queries may be`;
  const missing = from.filter((id) => !queries.has(id));
  return missing.length === 0 ? null : `model version ${model.version} is a bootstrap version built from analytics round(s) ${from.join(', ')}, but no ledger entry released the query of round ${missing.join(', ')}`;
}

export function isInitialModel(model: PublishedModel): boolean {
  return model.version === 1 && model.roundId === null && model.parentVersion === null && !model.derivedFrom;
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
  const queries = releasedQueries(entries);
  for (const model of [...models].sort((a, b) => a.version - b.version)) {
    if (isInitialModel(model)) continue;
    const rounds = releases.get(model.version);
    if (model.roundId === null) {
      const problem = roundlessProblem(model, queries);
      if (problem) problems.push({ version: model.version, reason: problem });
    } else if (!rounds?.has(model.roundId)) {
      problems.push({
        version: model.version,
        reason: `model version ${model.version} (round ${model.roundId}) is published, but no ledger entry released it${rounds ? ` (the release entries naming version ${model.version} are of round ${[...rounds].join(', ')})` : ''}: its release entry was removed, or the model was stored outside a round`,
      });
    }
  }
  return problems;
}

/** A published version with the SHA-256 of its files as stored or served (null: they cannot be read). */
export interface StoredModel extends PublishedModel {
  sha256: string | null;
}

export interface DigestCheck {
  problems: { version: number; reason: string }[];
  /** Versions checked by version only: the ledger predates publication entries. */
  versionOnly: number[];
}

/** The publication entry of each model version. */
export function publicationEntries(entries: readonly LedgerEntry[]): Map<number, PublicationEntry> {
  const out = new Map<number, PublicationEntry>();
  for (const entry of entries) if (entry.kind === 'publication') out.set(entry.publication.modelVersion, entry);
  return out;
}

/** Each version's files against the digest its publication entry binds; empty problems when they agree. */
export function modelDigestProblems(models: readonly StoredModel[], entries: readonly LedgerEntry[]): DigestCheck {
  const publications = publicationEntries(entries);
  const problems: DigestCheck['problems'] = [];
  const versionOnly: number[] = [];
  for (const model of [...models].sort((a, b) => a.version - b.version)) {
    const entry = publications.get(model.version);
    if (!entry) {
      if (publications.size === 0) versionOnly.push(model.version);
      else problems.push({ version: model.version, reason: `model version ${model.version} has no publication entry binding its digest (a coordinator stopped between the commit and the entry enters it at its next start)` });
      continue;
    }
    const p = entry.publication;
    if (p.roundId !== model.roundId) problems.push({ version: model.version, reason: `model version ${model.version} is stored as of round ${model.roundId ?? 'none'}, but its publication entry (seq ${entry.seq}) names round ${p.roundId ?? 'none'}` });
    else if (model.sha256 === null) problems.push({ version: model.version, reason: `model version ${model.version}'s files cannot be read, so they cannot be checked against its publication entry (seq ${entry.seq})` });
    else if (model.sha256 !== p.sha256) problems.push({ version: model.version, reason: `model version ${model.version}'s files have SHA-256 ${model.sha256}, but its publication entry (seq ${entry.seq}) binds ${p.sha256}: the files were replaced after publication` });
  }
  return { problems, versionOnly };
}

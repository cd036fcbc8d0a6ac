/**
 * The round runner's view of the ledger: `beforeStart` refuses a round whose projection already
 * passes a cap, before any device trains for it; `beforeRelease` enters a round that is about to
 * decode its sum (write-ahead; it throws and nothing is released when the deployment cap or the
 * round's launch cap would be exceeded) and returns the entry's receipt, which a SecAgg+ round's
 * survivors check before they send their unmask shares; `afterAbort` enters a round that ended without a release
 * (zero spend) or failed after it. The entry is built from the round record as the RoundStore
 * holds it at that point. `afterCommit` binds the version the round committed to its digest (a
 * `publication` entry); at start, `enterUnrecordedPublications` checks every stored version's files
 * against its publication and enters those missing (crash recovery), and `isPublished` answers for
 * the model routes from what was checked then and published since, with the digest each
 * publication binds (`publishedDigest`), which the model routes hold every file they serve to.
 */
import type { BudgetCap } from '../../shared/ledger/bundle.ts';
import type { LedgerReceipt } from '../../shared/ledger/receipt.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import type { RoundEntry } from '../../shared/ledger/entry.ts';
import { publicationEntries, unreleasedModels } from '../../shared/ledger/models.ts';
import { UnreleasedModelError } from './models.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import type { ModelRecord, RoundRecord } from '../../shared/protocol/messages.ts';
import { modelDigest } from '../storage/model-digest.ts';
import type { ModelStore, RoundStore } from '../storage/stores.ts';
import { pendingPrivacyRecord } from '../rounds/accounting.ts';
import { planQuery } from '../../shared/analytics/queries.ts';
import { canonicalJson } from '../../shared/ledger/canonical.ts';
import { sha256Hex } from '../../shared/ledger/digest.ts';
import { projectedRoundRdp } from './budget.ts';
import { BudgetExceededError } from './ledger.ts';
import type { PrivacyLedger, RoundSpendInput } from './ledger.ts';

export interface RoundLedger {
  /** Before check-in opens: throws BUDGET_EXCEEDED when the round, projected at full release, would already pass a cap. */
  beforeStart(record: RoundRecord, dimension: number): Promise<void>;
  /** Enters the release (durable when it resolves) and returns its receipt for the devices (shared/ledger/receipt.ts). */
  beforeRelease(roundId: number): Promise<LedgerReceipt>;
  afterAbort(roundId: number, reason: string): Promise<void>;
  /** Enters the publication of the version a round just committed (durable when it resolves). */
  afterCommit(model: ModelRecord): Promise<void>;
  /** RFC 9162 Sec. 2.1.4.1: the consistency proof between two tree sizes, for a device that kept an earlier head. */
  consistency(first: number, second: number): Promise<string[]>;
}

export async function spendInput(record: RoundRecord, outcome: 'released' | 'aborted', reason: string | null, modelVersionOut: number | null): Promise<RoundSpendInput> {
  const p = record.privacy ?? pendingPrivacyRecord(record.config.privacy ?? null);
  const query = record.config.task === 'analytics' && record.config.query ? record.config.query : null;
  return {
    roundId: record.id,
    outcome,
    reason,
    modelVersionIn: record.baseModelVersion,
    modelVersionOut,
    mode: p.mode,
    mechanism: p.mode === 'none' ? 'none' : p.mode === 'distributed' ? 'distributed-discrete-gaussian' : 'discrete-gaussian',
    secagg: p.secagg === 'off' ? 'off' : 'on',
    clip: p.clip,
    noiseMultiplier: p.noiseMultiplier,
    samplingMethod: p.samplingMethod ?? record.selection?.method ?? null,
    q: p.q,
    cohortSize: record.selected,
    survivors: record.participants,
    t: p.t,
    delta: p.delta,
    population: p.population,
    l2Sensitivity: p.l2Sensitivity,
    shareVariance: p.shareVariance,
    shares: p.shares,
    paddedDimension: p.paddedDimension,
    startedAt: record.startedAt,
    ...(query ? { query: { ...planQuery(query), sha256: await sha256Hex(canonicalJson(query)) } } : {}),
  };
}

/** The cap `round launch --epsilon-cap` set on this round: at the round's own delta; null: none. */
export function launchCap(record: RoundRecord): BudgetCap | null {
  const epsilon = record.config.epsilonCap;
  const delta = record.config.privacy?.delta;
  return epsilon === undefined || delta === undefined ? null : { epsilon, delta };
}

export class LedgerRoundHook implements RoundLedger {
  /** Rounds already entered as released by this process (an abort after release adds a zero-spend note). */
  private readonly released = new Set<number>();
  /** Versions whose files were checked against their publication at start, or published since, with the SHA-256 their publication binds. */
  private readonly published = new Map<number, string>();

  constructor(
    private readonly ledger: PrivacyLedger,
    private readonly rounds: RoundStore,
    private readonly nextModelVersion: () => Promise<number>,
  ) {}

  /**
   * The same hook (one set of published versions and released rounds) as a cluster leader's
   * runner sees it: each round entry first runs `guard`, its lease check (server/cluster/lease.ts),
   * inside the ledger's lock, so a deposed leader enters nothing.
   */
  guarded(guard: () => Promise<void>): RoundLedger {
    return {
      beforeStart: (record, dimension) => this.beforeStart(record, dimension),
      beforeRelease: (roundId) => this.beforeRelease(roundId, guard),
      afterAbort: (roundId, reason) => this.afterAbort(roundId, reason, guard),
      afterCommit: (model) => this.afterCommit(model),
      consistency: (first, second) => this.consistency(first, second),
    };
  }

  private async record(roundId: number): Promise<RoundRecord> {
    const record = await this.rounds.get(roundId);
    if (!record) throw new ProtocolError('NOT_FOUND', `round ${roundId} does not exist`);
    return record;
  }

  /**
   * The launch check projected this round after the rounds pending then; if those spent more
   * than projected (a Poisson cohort larger than clientsPerRound), the round could no longer be
   * released. Refusing it here spares its devices the training and the spend they record in their
   * own ledgers before their updates leave; the release check stays the one that binds.
   */
  async beforeStart(record: RoundRecord, dimension: number): Promise<void> {
    try {
      this.ledger.checkCaps(projectedRoundRdp(record.config, dimension, this.ledger.orders), launchCap(record), `round ${record.id} would bring`);
    } catch (err) {
      if (err instanceof BudgetExceededError) throw new ProtocolError('BUDGET_EXCEEDED', `privacy budget: at its projection, ${err.message}; not started`);
      throw err;
    }
  }

  async beforeRelease(roundId: number, guard?: () => Promise<void>): Promise<LedgerReceipt> {
    const record = await this.record(roundId);
    let entry: RoundEntry;
    try {
      // An analytics round publishes no model version: it releases its query's sum.
      const versionOut = record.config.task === 'analytics' ? null : await this.nextModelVersion();
      entry = await this.ledger.recordRound(await spendInput(record, 'released', null, versionOut), launchCap(record), guard);
    } catch (err) {
      if (err instanceof BudgetExceededError) throw new ProtocolError('BUDGET_EXCEEDED', `privacy budget: ${err.message}; nothing was released`);
      throw err;
    }
    this.released.add(roundId);
    return this.ledger.receipt(entry);
  }

  /**
   * At start: enters every aborted round the ledger lacks (e.g. marked aborted by a restart after
   * a crash), at zero spend; a release entry such a round already has stands. Returns how many.
   */
  async enterUnrecordedAborts(): Promise<number> {
    const outcome = new Map<number, 'released' | 'aborted'>();
    for (const raw of await this.ledger.all()) {
      const entry = LedgerEntrySchema.parse(raw);
      if (entry.kind === 'round' && outcome.get(entry.round.roundId) !== 'aborted') outcome.set(entry.round.roundId, entry.round.outcome);
    }
    const missing = (await this.rounds.list(Number.MAX_SAFE_INTEGER)).filter((r) => r.status === 'aborted' && outcome.get(r.id) !== 'aborted').reverse();
    for (const r of missing) {
      const reason = r.reason ?? 'aborted';
      await this.ledger.recordRound(await spendInput(r, 'aborted', outcome.get(r.id) === 'released' ? `${reason} (after its release was entered: that spend stands)` : reason, null));
    }
    return missing.length;
  }

  /** Enters the publication of a bootstrap version (fresh weights on a vocabulary from released analytics queries). */
  async afterBootstrap(model: ModelRecord): Promise<void> {
    if (!model.derivedFrom || model.derivedFrom.length === 0) throw new RangeError(`"derivedFrom" expected the analytics rounds model version ${model.version} was built from, got none`);
    await this.ledger.recordPublication({ modelVersion: model.version, roundId: null, parentVersion: model.parentVersion, sha256: model.sha256, bytes: model.bytes, entered: 'at-bootstrap', derivedFrom: model.derivedFrom });
    this.published.set(model.version, model.sha256);
  }

  async afterCommit(model: ModelRecord): Promise<void> {
    if (model.roundId === null) throw new RangeError(`"roundId" expected the round that committed model version ${model.version}, got null`);
    await this.ledger.recordPublication({ modelVersion: model.version, roundId: model.roundId, parentVersion: model.parentVersion, sha256: model.sha256, bytes: model.bytes, entered: 'at-commit' });
    this.published.set(model.version, model.sha256);
  }

  /** Whether `version`'s files are published: checked at start, or entered by this process since. */
  isPublished(version: number): boolean {
    return this.published.has(version);
  }

  /** The SHA-256 that `version`'s publication binds (its files as served), or undefined when it is not published. */
  publishedDigest(version: number): string | undefined {
    return this.published.get(version);
  }

  /**
   * At start: hashes every stored version's files (as served: server/storage/model-digest.ts) and
   * checks them against its publication entry; a version without one (the seed model, a crash
   * between the commit and the entry, a version from before these entries) is entered now, if its
   * files still match the digest its model record kept at commit and a release entry names it.
   * Throws UnreleasedModelError, entering nothing, when any version was not released or disagrees. Returns how many
   * were entered.
   */
  async enterUnrecordedPublications(models: ModelStore): Promise<number> {
    const entries = (await this.ledger.all()).map((raw) => LedgerEntrySchema.parse(raw));
    const stored = [...(await models.list())].sort((a, b) => a.version - b.version);
    // First, every version must have been released (the same check audit verify makes).
    const unreleased = unreleasedModels(stored, entries);
    if (unreleased.length > 0) throw new UnreleasedModelError(unreleased);
    const publications = publicationEntries(entries);
    const problems: { version: number; reason: string }[] = [];
    const missing: ModelRecord[] = [];
    for (const record of stored) {
      const files = await models.files(record.version);
      const digest = files ? modelDigest(files).sha256 : null;
      const entry = publications.get(record.version);
      const bound = entry?.publication.sha256 ?? record.sha256;
      const where = entry ? `its publication entry (seq ${entry.seq})` : 'its model record (it has no publication entry yet)';
      if (digest === null) problems.push({ version: record.version, reason: `model version ${record.version} has no files to check against ${where}` });
      else if (digest !== bound) problems.push({ version: record.version, reason: `model version ${record.version}'s files have SHA-256 ${digest}, but ${where} binds ${bound}: the files were replaced after publication` });
      else if (!entry) missing.push(record);
    }
    if (problems.length > 0) throw new UnreleasedModelError(problems);
    for (const record of missing) await this.ledger.recordPublication({ modelVersion: record.version, roundId: record.roundId, parentVersion: record.parentVersion, sha256: record.sha256, bytes: record.bytes, entered: 'at-start', ...(record.derivedFrom ? { derivedFrom: record.derivedFrom } : {}) });
    const bound = publicationEntries((await this.ledger.all()).map((raw) => LedgerEntrySchema.parse(raw)));
    for (const record of await models.list()) this.published.set(record.version, bound.get(record.version)?.publication.sha256 ?? record.sha256);
    return missing.length;
  }

  async consistency(first: number, second: number): Promise<string[]> {
    return (await this.ledger.consistency(first, second)).proof;
  }

  async afterAbort(roundId: number, reason: string, guard?: () => Promise<void>): Promise<void> {
    const record = await this.record(roundId);
    const note = this.released.has(roundId) ? `${reason} (after its release was entered: that spend stands)` : reason;
    await this.ledger.recordRound(await spendInput(record, 'aborted', note, null), null, guard);
  }

  /**
   * In a cluster, other nodes publish versions (a leader's commit, a bootstrap): the ledger's
   * publication entries are the record of which versions may be served, read again on each
   * model announcement. Returns the versions newly known.
   */
  async learnPublications(): Promise<number[]> {
    await this.ledger.exclusive(async () => undefined);
    const learned: number[] = [];
    for (const [version, entry] of publicationEntries((await this.ledger.all()).map((raw) => LedgerEntrySchema.parse(raw)))) {
      if (!this.published.has(version)) (this.published.set(version, entry.publication.sha256), learned.push(version));
    }
    return learned;
  }
}

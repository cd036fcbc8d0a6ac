/**
 * `POST /api/v1/models/bootstrap`: a new model version whose vocabulary comes from three
 * committed analytics rounds (category counts, log-price moments, the spend histogram) instead
 * of shoppers' raw events (shared/analytics/bootstrap.ts). The version gets fresh weights, is
 * stored like any other, published in the ledger naming the rounds it was derived from (so
 * `audit verify` accounts for it), made current and announced to the devices.
 */
import { z } from 'zod';
import { headsForVocabulary, vocabularyFromAnalytics } from '../shared/analytics/bootstrap.ts';
import type { BootstrapReport } from '../shared/analytics/bootstrap.ts';
import type { AnalyticsStatistic } from '../shared/analytics/queries.ts';
import { DEFAULT_DATA_CONFIG } from '../shared/features/prepare.ts';
import type { Vocabulary } from '../shared/features/vocabulary.ts';
import { makeModelConfig } from '../shared/model/spec.ts';
import { ProtocolError } from '../shared/protocol/errors.ts';
import { describeIssues } from '../shared/protocol/messages.ts';
import type { AnalyticsResult, ModelRecord, RoundRecord } from '../shared/protocol/messages.ts';
import type { LedgerRoundHook } from './ledger/round-hook.ts';
import type { ModelRegistry } from './registry.ts';
import type { RoundRunner } from './rounds/runner.ts';
import type { RoundStore } from './storage/stores.ts';

const RoundId = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

export const BootstrapRequestSchema = z
  .object({
    /** The committed analytics rounds whose released results the vocabulary is built from. */
    rounds: z.object({ categories: RoundId, prices: RoundId, spend: RoundId }).strict(),
    /** Categories with their own slot; default the serving vocabulary's count (the data default, 50, when it names none). */
    topK: z.number().int().min(1).max(10_000).optional(),
    /** Seed of the fresh weights. */
    seed: z.number().int().min(0).max(2 ** 32 - 1).default(1),
  })
  .strict();

export interface BootstrapReply {
  model: ModelRecord;
  vocabulary: Vocabulary;
  report: BootstrapReport;
  /** The serving version it replaced. */
  replaced: number;
}

export interface BootstrapDeps {
  rounds: RoundStore;
  registry: ModelRegistry;
  runner: RoundRunner;
  ledger?: LedgerRoundHook;
  announce: () => void;
  clock: () => number;
}

async function analyticsResult(rounds: RoundStore, id: number, statistic: AnalyticsStatistic, field: string): Promise<AnalyticsResult> {
  const record: RoundRecord | undefined = await rounds.get(id);
  if (!record) throw new ProtocolError('NOT_FOUND', `"rounds.${field}": round ${id} does not exist`);
  if (record.config.task !== 'analytics' || record.config.query?.statistic !== statistic) throw new ProtocolError('INVALID_ARGUMENT', `"rounds.${field}": round ${id} is not a ${statistic} analytics round`);
  if (record.status !== 'committed' || !record.result) throw new ProtocolError('INVALID_ARGUMENT', `"rounds.${field}": round ${id} is ${record.status}, not committed with a released result`);
  return record.result;
}

export async function bootstrapModel(deps: BootstrapDeps, body: unknown): Promise<BootstrapReply> {
  const parsed = BootstrapRequestSchema.safeParse(body);
  if (!parsed.success) throw new ProtocolError('INVALID_ARGUMENT', describeIssues(parsed.error));
  const { rounds: ids, seed } = parsed.data;
  // A round in flight trains the current version, and a pending one was projected on its
  // dimension at launch: the version must not change under either.
  const waiting = await deps.rounds.unfinished();
  if (waiting.length > 0) throw new ProtocolError('WRONG_STAGE', `${waiting.map((r) => `round ${r.id} is ${r.status}`).join(', ')}: bootstrap a new version when no round is pending or running`);
  const sources = {
    categories: await analyticsResult(deps.rounds, ids.categories, 'category-counts', 'categories'),
    prices: await analyticsResult(deps.rounds, ids.prices, 'log-price-moments', 'prices'),
    spend: await analyticsResult(deps.rounds, ids.spend, 'spend-histogram', 'spend'),
  };
  const serving = deps.registry.current;
  const { sensitiveHeads: _derived, ...config } = serving.config;
  // A hash-space start names no category: the data default then, as a catalog's vocabulary takes.
  const topK = parsed.data.topK ?? (serving.config.vocabulary.categories.length || DEFAULT_DATA_CONFIG.topK);
  let built: ReturnType<typeof vocabularyFromAnalytics>;
  try {
    built = vocabularyFromAnalytics(sources, { topK, hashBuckets: serving.config.vocabulary.hashBuckets, fallback: serving.config.vocabulary });
  } catch (err) {
    throw new ProtocolError('INVALID_ARGUMENT', err instanceof Error ? err.message : String(err));
  }
  const derivedFrom = [...new Set([ids.categories, ids.prices, ids.spend])].sort((a, b) => a - b);
  // After a hash-space start the named categories bring the interests head (their outputs) back.
  const heads = headsForVocabulary(config.heads, serving.config.vocabulary, built.vocabulary);
  const model = await deps.registry.bootstrap(makeModelConfig({ ...config, heads, vocabulary: built.vocabulary }), seed, derivedFrom, new Date(deps.clock()).toISOString());
  // Published before it is announced: a device never fetches a version the ledger does not hold.
  await deps.ledger?.afterBootstrap(model);
  deps.announce();
  return { model, vocabulary: built.vocabulary, report: built.report, replaced: serving.record.version };
}

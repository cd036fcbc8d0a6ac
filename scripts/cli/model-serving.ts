/**
 * `portrait model list|bootstrap|compare|promote|rollout`: the production path of issue 18 over
 * the coordinator's REST API. `bootstrap` runs the three analytics rounds a vocabulary needs
 * (category counts, log-price moments, the spend histogram) and builds a version from their
 * released results; `compare A B` reads (or runs) a paired federated evaluation; `promote V`
 * makes V the serving version when that evaluation shows it better (or by an operator's override);
 * `rollout V --fraction f` stages V for a share of devices.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { DISCOVERY_KIND } from '../../shared/analytics/heavy-hitters.ts';
import { catalogCategoryIds, parseCatalog } from '../../shared/features/shop-catalog.ts';
import type { EvaluateSummary, MetricDifference } from '../../shared/analytics/federated-evaluation.ts';
import type { LaunchRequest, ModelRecord, RoundRecord, ServingPointer } from '../../shared/protocol/messages.ts';
import type { BootstrapReply } from '../../server/bootstrap.ts';
import { callApi, DEFAULT_DATA_DIR, DEFAULT_SERVER, resolveToken } from './api-client.ts';
import { readInputFile } from './inputs.ts';
import { action, CliError, emit, log, parseInteger, parseNumber } from './output.ts';
import { describeRound, waitForRounds } from './round.ts';

export interface ServerOptions {
  server: string;
  token?: string;
  dataDir?: string;
  json?: boolean;
}

export interface RoundShape {
  clientsPerRound: string;
  minClients?: string;
  noiseMultiplier: string;
  delta?: string;
  population?: string;
  checkinMs: string;
  trainingMs: string;
}

export function withServer(command: Command, role: 'operator' | 'auditor'): Command {
  return command
    .option('--server <url>', 'coordinator URL', DEFAULT_SERVER)
    .option('--token <token>', `${role} API token (or PORTRAIT_TOKEN; default: from --data-dir)`)
    .option('--data-dir <dir>', "read the token from this server data directory's api-tokens.json", DEFAULT_DATA_DIR)
    .option('--json', 'print JSON');
}

export function withRoundShape(command: Command): Command {
  return command
    .option('--clients-per-round <K>', 'devices per analytics round', '100')
    .option('--min-clients <T>', 'abort a round with fewer answers (default 80% of K)')
    .option('--noise-multiplier <z>', 'distributed DP noise multiplier of each query', '1')
    .option('--delta <d>', 'DP delta (default 1e-6)')
    .option('--population <n>', 'devices that could ever take part (default 100000)')
    .option('--checkin-ms <ms>', 'check-in window', '10000')
    .option('--training-ms <ms>', 'answer deadline', '60000');
}

/** One distributed-DP + SecAgg+ analytics round of `query`, shaped by the flags. */
export function analyticsLaunch(shape: RoundShape, query: LaunchRequest['query']): LaunchRequest {
  return {
    rounds: 1,
    task: 'analytics',
    query,
    clientsPerRound: parseInteger('clients-per-round', shape.clientsPerRound),
    ...(shape.minClients === undefined ? {} : { minClients: parseInteger('min-clients', shape.minClients) }),
    deadlines: { checkinMs: parseInteger('checkin-ms', shape.checkinMs), trainingMs: parseInteger('training-ms', shape.trainingMs) },
    privacy: {
      mode: 'distributed',
      noiseMultiplier: parseNumber('noise-multiplier', shape.noiseMultiplier),
      ...(shape.delta === undefined ? {} : { delta: parseNumber('delta', shape.delta) }),
      ...(shape.population === undefined ? {} : { population: parseInteger('population', shape.population) }),
    },
  };
}

export async function runRound(options: ServerOptions, token: string, request: LaunchRequest): Promise<RoundRecord> {
  const { rounds } = await callApi<{ rounds: RoundRecord[] }>(options.server, token, 'POST', '/rounds', request);
  const [done] = await waitForRounds(options.server, token, rounds.map((r) => r.id), false);
  if (!done || done.status !== 'committed') throw new CliError('ABORTED', `round ${done?.id ?? '?'} did not commit: ${done?.reason ?? 'unknown'}`);
  log(describeRound(done));
  return done;
}

/**
 * `--categories FILE` of `model bootstrap`: the ids of a discovery document, or of a shop catalog
 * file (CSV or JSON, docs/catalog.md).
 */
export function readCategoryList(file: string, argument = 'categories'): string[] {
  const text = readInputFile(argument, file);
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    document = undefined;
  }
  try {
    if (typeof document === 'object' && document !== null && (document as { kind?: unknown }).kind === DISCOVERY_KIND) {
      const categories = (document as { categories?: unknown }).categories;
      if (!Array.isArray(categories) || !categories.every((c) => typeof (c as { category?: unknown })?.category === 'string')) throw new RangeError('expected "categories" as a list of {category, ...}');
      const ids = categories.map((c: { category: string }) => c.category);
      if (ids.length === 0) throw new RangeError('the discovery found no category (lower --threshold-sigmas or --min-count, or select more devices per level)');
      return ids;
    }
    return catalogCategoryIds(parseCatalog(text));
  } catch (err) {
    throw new CliError('INVALID_ARGUMENT', `"--${argument}" ${path.resolve(file)}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const fmt = (d: MetricDifference | undefined): string => (!d || d.value === null ? 'n/a' : `${d.value >= 0 ? '+' : ''}${d.value.toFixed(4)}${d.interval ? ` [${d.interval[0].toFixed(4)}, ${d.interval[1].toFixed(4)}]` : ''}`);

/** The paired comparison of a committed evaluate round, one line per head and metric. */
export function describeComparison(round: RoundRecord): string {
  const summary = round.result?.summary as EvaluateSummary | undefined;
  const d = summary?.difference;
  if (!summary || summary.statistic !== 'evaluate' || !d) return `round ${round.id} is not a paired federated evaluation`;
  const lines = [`v${d.candidate} − v${d.baseline} on ${round.participants} devices (round ${round.id}, noise σ=${round.result?.noiseStd.toFixed(2)} per cell; 95% intervals):`];
  for (const [head, metrics] of Object.entries(d.heads)) {
    for (const [metric, diff] of Object.entries(metrics ?? {})) lines.push(`  ${`${head}.${metric}`.padEnd(24)} ${fmt(diff)}`);
  }
  return lines.join('\n');
}

export function registerServingCommands(model: Command): void {
  withServer(model.command('list').description('model versions, the latest and the serving one'), 'auditor').action(
    action(async (options: ServerOptions) => {
      const token = resolveToken(options, 'auditor');
      const reply = await callApi<{ current: number; serving: ServingPointer | null; models: ModelRecord[] }>(options.server, token, 'GET', '/models');
      emit(options, reply, () =>
        [
          `latest v${reply.current}; serving ${reply.serving ? `v${reply.serving.version} (${reply.serving.reason})` : `v${reply.current} (the latest: none promoted yet)`}${reply.serving?.candidate ? `; rollout of v${reply.serving.candidate.version} to ${(reply.serving.candidate.fraction * 100).toFixed(1)}% of devices` : ''}`,
          ...reply.models.map((m) => `v${m.version} ${m.createdAt} ${m.derivedFrom ? `bootstrap from analytics rounds ${m.derivedFrom.join(', ')}` : m.roundId === null ? 'seed' : `round ${m.roundId} (from v${m.parentVersion})`}, ${m.parameters} parameters`),
        ].join('\n'),
      );
    }),
  );

  withRoundShape(withServer(model.command('bootstrap').description("a version whose vocabulary comes from DP analytics rounds on the devices (no shopper's events on the server)"), 'operator'))
    .option('--top-k <K>', 'categories with their own slot (default: the serving vocabulary\'s count)')
    .option('--seed <n>', 'seed of the fresh weights', '1')
    .option('--rounds <C,P,S>', 'use these committed analytics rounds (category-counts, log-price-moments, spend-histogram) instead of running them')
    .option('--categories <file>', "count over these category ids: a `portrait vocabulary discover` result or a catalog file (default: the server's catalog, else its vocabulary's categories)")
    .action(
      action(async (options: ServerOptions & RoundShape & { topK?: string; seed: string; rounds?: string; categories?: string }) => {
        const token = resolveToken(options, 'operator');
        let ids: { categories: number; prices: number; spend: number };
        if (options.rounds !== undefined && options.categories !== undefined) throw new CliError('INVALID_ARGUMENT', '"--categories" goes with running the rounds, not with --rounds (whose category-counts round has its list)');
        const categoryList = options.categories === undefined ? undefined : readCategoryList(options.categories);
        if (options.rounds !== undefined) {
          const [categories, prices, spend] = options.rounds.split(',').map((v) => parseInteger('rounds', v.trim()));
          if (categories === undefined || prices === undefined || spend === undefined) throw new CliError('INVALID_ARGUMENT', '"--rounds" expected three round ids: category-counts,log-price-moments,spend-histogram');
          ids = { categories, prices, spend };
        } else {
          log('bootstrap: three federated analytics rounds (distributed DP + SecAgg+, each in the privacy ledger)');
          ids = {
            categories: (await runRound(options, token, analyticsLaunch(options, { statistic: 'category-counts', ...(categoryList ? { categories: categoryList } : {}) }))).id,
            prices: (await runRound(options, token, analyticsLaunch(options, { statistic: 'log-price-moments' }))).id,
            spend: (await runRound(options, token, analyticsLaunch(options, { statistic: 'spend-histogram' }))).id,
          };
        }
        const reply = await callApi<BootstrapReply>(options.server, token, 'POST', '/models/bootstrap', { rounds: ids, seed: parseInteger('seed', options.seed), ...(options.topK === undefined ? {} : { topK: parseInteger('top-k', options.topK) }) });
        emit(options, { rounds: ids, ...reply }, () => {
          const r = reply.report;
          return [
            `model v${reply.model.version} bootstrapped from analytics rounds ${reply.model.derivedFrom?.join(', ')} (replacing v${reply.replaced} for training; serve it with portrait model promote)`,
            `  top categories: ${r.categories.slice(0, 10).map((c) => c.category).join(', ')}${r.categories.length > 10 ? `, … (${r.categories.length})` : ''}`,
            `  log1p price mean ${reply.vocabulary.logPriceMean.toFixed(3)}${r.logPriceMean.fallback ? ' (kept: too noisy)' : ''}, std ${reply.vocabulary.logPriceStd.toFixed(3)}${r.logPriceStd.fallback ? ' (kept: too noisy)' : ''}`,
            `  spending tiers at log1p price ${reply.vocabulary.spendingBounds.map((b) => b.toFixed(3)).join(' and ')}`,
          ].join('\n');
        });
      }),
    );

  withRoundShape(withServer(model.command('compare <a> <b>').description('B - A per metric with intervals, from a paired federated evaluation (run one with --run)'), 'operator'))
    .option('--round <id>', 'the evaluate round to read (default: the newest committed one comparing A with B)')
    .option('--run', 'run a paired federated evaluation round now')
    .action(
      action(async (a: string, b: string, options: ServerOptions & RoundShape & { round?: string; run?: boolean }) => {
        const versions = [parseInteger('a', a), parseInteger('b', b)];
        const token = resolveToken(options, options.run ? 'operator' : 'auditor');
        let round: RoundRecord | undefined;
        if (options.run) round = await runRound(options, token, analyticsLaunch(options, { statistic: 'evaluate', versions }));
        else if (options.round !== undefined) round = await callApi<RoundRecord>(options.server, token, 'GET', `/rounds/${parseInteger('round', options.round)}`);
        else {
          const { rounds } = await callApi<{ rounds: RoundRecord[] }>(options.server, token, 'GET', '/rounds?limit=1000');
          round = rounds.find((r) => r.status === 'committed' && r.config.query?.statistic === 'evaluate' && JSON.stringify(r.config.query.versions) === JSON.stringify(versions));
          if (!round) throw new CliError('NOT_FOUND', `no committed federated evaluation of v${versions[0]} and v${versions[1]}; run one with --run (or portrait round launch --task analytics --query evaluate --versions ${versions.join(',')})`);
        }
        emit(options, { round: round.id, difference: (round.result?.summary as EvaluateSummary | undefined)?.difference ?? null, versions: (round.result?.summary as EvaluateSummary | undefined)?.versions ?? [] }, () => describeComparison(round as RoundRecord));
      }),
    );

  withServer(model.command('promote <version>').description('make V the version devices profile with, when a paired federated evaluation shows it better than the serving one'), 'operator')
    .option('--evidence <round>', 'the committed evaluate round comparing the serving version (first) with V (second)')
    .option('--metric <head.metric>', 'the metric whose 95% interval of V minus serving must lie above 0', 'interests.microAuc')
    .option('--force', "an operator's override of the evidence rule (needs --reason; recorded)")
    .option('--reason <text>', 'why (recorded with the serving pointer)')
    .action(
      action(async (version: string, options: ServerOptions & { evidence?: string; metric: string; force?: boolean; reason?: string }) => {
        const token = resolveToken(options, 'operator');
        const body = {
          version: parseInteger('version', version),
          metric: options.metric,
          ...(options.evidence === undefined ? {} : { evidence: parseInteger('evidence', options.evidence) }),
          ...(options.force ? { force: true } : {}),
          ...(options.reason === undefined ? {} : { reason: options.reason }),
        };
        const { serving } = await callApi<{ serving: ServingPointer }>(options.server, token, 'POST', '/models/promote', body);
        emit(options, { serving }, () => `serving model v${serving.version}: ${serving.reason}`);
      }),
    );

  withServer(model.command('rollout <version>').description('stage V for a share of devices (deterministic per device); --fraction 0 ends it'), 'operator')
    .requiredOption('--fraction <f>', 'share of devices that profile with V, in [0, 1]')
    .action(
      action(async (version: string, options: ServerOptions & { fraction: string }) => {
        const token = resolveToken(options, 'operator');
        const { serving } = await callApi<{ serving: ServingPointer }>(options.server, token, 'POST', '/models/rollout', { version: parseInteger('version', version), fraction: parseNumber('fraction', options.fraction) });
        emit(options, { serving }, () => (serving.candidate ? `rollout: ${(serving.candidate.fraction * 100).toFixed(1)}% of devices profile with v${serving.candidate.version}, the rest with v${serving.version}` : `no rollout: every device profiles with v${serving.version}`));
      }),
    );
}

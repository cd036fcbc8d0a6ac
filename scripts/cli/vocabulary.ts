/**
 * `portrait vocabulary discover`: the shop's category ids found on the devices when the server has
 * no catalog (a `--category-hash-space` start), by federated heavy-hitter discovery
 * (shared/analytics/heavy-hitters.ts) over the REST API: one `category-prefixes` analytics round
 * per level of the trie, each released through distributed DP + SecAgg+ with its ledger entry,
 * the next level's candidates chosen from the released counts. It writes the discovered ids with
 * their noisy counts, the rounds and the epsilon they spent; `portrait model bootstrap
 * --categories FILE` then counts over that list and builds the vocabulary (docs/analytics.md,
 * "Starting without a catalog").
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { advanceDiscovery, DEFAULT_DISCOVERY, discoveredCategories, discoveryEpsilon, DISCOVERY_KIND, levelQuery, startDiscovery } from '../../shared/analytics/heavy-hitters.ts';
import type { DiscoveredCategory, DiscoveryLevel, DiscoveryOptions, DiscoveryState } from '../../shared/analytics/heavy-hitters.ts';
import type { LaunchRequest, RoundRecord } from '../../shared/protocol/messages.ts';
import { resolveToken } from './api-client.ts';
import { analyticsLaunch, runRound, withRoundShape, withServer } from './model-serving.ts';
import type { RoundShape, ServerOptions } from './model-serving.ts';
import { action, CliError, emit, log, parseInteger, parseNumber } from './output.ts';

/** What `vocabulary discover` writes (`--out`) and prints (`--json`). */
export interface DiscoveryDocument {
  kind: typeof DISCOVERY_KIND;
  /** The discovered ids, the largest released counts first. */
  categories: DiscoveredCategory[];
  levels: DiscoveryLevel[];
  rounds: number[];
  stopped: 'exhausted' | 'levels';
  /** Prefixes still open at the level limit: ids under them longer than the levels reached are not found. */
  unfinished: string[];
  /**
   * `sum`: the levels' epsilons added (basic composition, an upper bound on what discovery spent);
   * `deployment`: the deployment's cumulative epsilon after the last level, every released round
   * composed by the ledger's accountant; both at `delta`. Null without DP.
   */
  epsilon: { sum: number | null; deployment: number | null; delta: number | null };
  options: DiscoveryOptions & { privacy: 'distributed' | 'none' };
}

interface DiscoverOptions extends ServerOptions, RoundShape {
  levels: string;
  thresholdSigmas: string;
  minCount: string;
  maxCandidates: string;
  alphabet: string;
  maxCategoriesPerDevice: string;
  dp: string;
  out?: string;
}

const FLAGS: Record<keyof DiscoveryOptions, string> = { levels: '--levels', thresholdSigmas: '--threshold-sigmas', minCount: '--min-count', maxCandidates: '--max-candidates', alphabet: '--alphabet', maxCategoriesPerDevice: '--max-categories-per-device' };

function discoveryOptions(options: DiscoverOptions): DiscoveryOptions {
  return {
    levels: parseInteger('levels', options.levels, 1),
    thresholdSigmas: parseNumber('threshold-sigmas', options.thresholdSigmas),
    minCount: parseNumber('min-count', options.minCount),
    maxCandidates: parseInteger('max-candidates', options.maxCandidates, 1),
    alphabet: options.alphabet,
    maxCategoriesPerDevice: parseInteger('max-categories-per-device', options.maxCategoriesPerDevice, 1),
  };
}

/** One level's launch: the round shape's distributed DP + SecAgg+, or no DP (a baseline, on a server that allows it). */
function levelLaunch(options: DiscoverOptions, query: LaunchRequest['query']): LaunchRequest {
  const launch = analyticsLaunch(options, query);
  return options.dp === 'none' ? { ...launch, privacy: { mode: 'none' } } : launch;
}

export function registerVocabularyCommands(program: Command): void {
  const vocabulary = program.command('vocabulary').description("the shop's category vocabulary when its catalog is unknown");
  withRoundShape(withServer(vocabulary.command('discover').description('find the category ids many devices hold, by federated heavy-hitter discovery (one DP analytics round per symbol of the ids)'), 'operator'))
    .option('--levels <N>', 'at most this many rounds; ids of n symbols are found at level n + 1', String(DEFAULT_DISCOVERY.levels))
    .option('--threshold-sigmas <k>', 'keep a prefix whose released count is at least k noise std', String(DEFAULT_DISCOVERY.thresholdSigmas))
    .option('--min-count <n>', 'and at least n devices', String(DEFAULT_DISCOVERY.minCount))
    .option('--max-candidates <n>', 'at most n prefixes per level (the largest counts): the query has n x (symbols + 1) cells', String(DEFAULT_DISCOVERY.maxCandidates))
    .option('--alphabet <symbols>', 'the symbols category ids are made of; an id with another symbol is not found', DEFAULT_DISCOVERY.alphabet)
    .option('--max-categories-per-device <m>', "a device counts its m most active categories (the query's bound is sqrt(m))", String(DEFAULT_DISCOVERY.maxCategoriesPerDevice))
    .option('--dp <mode>', 'distributed (DP + SecAgg+) or none (a baseline, on a server started with --allow-no-dp)', 'distributed')
    .option('--out <file>', 'write the discovered categories (JSON) here, for portrait model bootstrap --categories')
    .action(
      action(async (options: DiscoverOptions) => {
        if (options.dp !== 'distributed' && options.dp !== 'none') throw new CliError('INVALID_ARGUMENT', `"--dp" expected distributed or none, got ${options.dp}`);
        const token = resolveToken(options, 'operator');
        const settings = discoveryOptions(options);
        let state: DiscoveryState;
        try {
          state = startDiscovery(settings);
        } catch (err) {
          // The pure core names its options; the operator typed flags.
          if (!(err instanceof RangeError)) throw err;
          throw new CliError('INVALID_ARGUMENT', err.message.replace(/^"(\w+)"/, (whole, name: string) => (name in FLAGS ? `"${FLAGS[name as keyof DiscoveryOptions]}"` : whole)));
        }
        const rounds: RoundRecord[] = [];
        log(`vocabulary discover: up to ${settings.levels} category-prefixes rounds (${options.dp === 'none' ? 'no DP' : 'distributed DP + SecAgg+'}, each in the privacy ledger), keeping prefixes at >= ${settings.thresholdSigmas} noise std and >= ${settings.minCount} devices, at most ${settings.maxCandidates} per level`);
        while (state.stopped === null) {
          const query = levelQuery(state);
          const round = await runRound(options, token, levelLaunch(options, query));
          if (!round.result) throw new CliError('INTERNAL', `round ${round.id} committed without a released result`);
          rounds.push(round);
          state = advanceDiscovery(state, { summary: round.result.summary, noiseStd: round.result.noiseStd, roundId: round.id, epsilon: round.privacy?.epsilonRound ?? null });
          const level = state.levels.at(-1) as DiscoveryLevel;
          log(`level ${level.level}: ${level.prefixes} prefixes (${level.dimension} cells), threshold ${level.threshold.toFixed(1)} (noise std ${level.noiseStd.toFixed(2)}): ${level.found} ids found, ${level.kept} prefixes go on${level.dropped > 0 ? `, ${level.dropped} over --max-candidates dropped` : ''}`);
        }
        const last = rounds.at(-1)?.privacy;
        const document: DiscoveryDocument = {
          kind: DISCOVERY_KIND,
          categories: discoveredCategories(state),
          levels: [...state.levels],
          rounds: rounds.map((r) => r.id),
          stopped: state.stopped,
          unfinished: [...state.unfinished],
          epsilon: { sum: options.dp === 'none' ? null : discoveryEpsilon(state), deployment: last?.epsilonCumulative ?? null, delta: options.dp === 'none' ? null : (last?.delta ?? null) },
          options: { ...settings, privacy: options.dp },
        };
        if (options.out !== undefined) {
          try {
            fs.writeFileSync(options.out, `${JSON.stringify(document, null, 2)}\n`);
          } catch (err) {
            throw new CliError('INVALID_ARGUMENT', `"--out": cannot write ${path.resolve(options.out)}: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
        emit(options, document, () => {
          const e = document.epsilon;
          const shown = document.categories.slice(0, 20).map((c) => `${c.category} ${c.count.value?.toFixed(0)}${c.count.interval ? ` [${c.count.interval[0].toFixed(0)}, ${c.count.interval[1].toFixed(0)}]` : ''}`);
          return [
            `${document.categories.length} categories discovered in ${document.levels.length} levels (rounds ${document.rounds.join(', ')}; ${document.stopped === 'exhausted' ? 'no prefix left' : `stopped at --levels with ${document.unfinished.length} prefixes open`})`,
            `  ${shown.join(', ')}${document.categories.length > 20 ? ', …' : ''}`,
            e.sum === null ? '  no DP (a baseline)' : `  epsilon ${e.sum.toFixed(3)} over the levels (basic composition) at delta ${e.delta}; the deployment's total is now ${e.deployment === null ? 'unbounded' : e.deployment.toFixed(3)}`,
            options.out === undefined ? '' : `  written to ${path.resolve(options.out)}; build a vocabulary with: portrait model bootstrap --categories ${options.out}`,
          ]
            .filter(Boolean)
            .join('\n');
        });
      }),
    );
}

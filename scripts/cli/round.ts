/**
 * `portrait round launch|status`: launch rounds on a coordinator over its REST API and watch
 * them. Waiting shows a progress bar (stage, clients reporting, time left) on a terminal and
 * plain lines otherwise, always on stderr; `--json` prints the final round records on stdout.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { DEFAULT_TRAIN } from '../../shared/protocol/messages.ts';
import type { AnalyticsResult, LaunchBudget, LaunchRequest, RoundRecord } from '../../shared/protocol/messages.ts';
import { ANALYTICS_STATISTICS } from '../../shared/analytics/queries.ts';
import type { AnalyticsQueryInput, Estimate } from '../../shared/analytics/queries.ts';
import { catalogCategoryIds, parseCatalog } from '../../shared/features/shop-catalog.ts';
import { LARGE_ROUND_EPSILON } from '../../shared/protocol/privacy.ts';
import { callApi, DEFAULT_DATA_DIR, DEFAULT_SERVER, resolveToken } from './api-client.ts';
import { action, CliError, emit, log, parseInteger, parseNumber } from './output.ts';

interface LaunchOptions {
  server: string;
  task: string;
  query?: string;
  categories?: string;
  maxCategoriesPerDevice?: string;
  maxEventsPerCategory?: string;
  maxEventsPerDevice?: string;
  bins?: string;
  versions?: string;
  rounds: string;
  clientsPerRound: string;
  minClients?: string;
  selection: string;
  samplingRate?: string;
  epochs: string;
  batchSize: string;
  learningRate: string;
  localOptimizer: string;
  serverOptimizer: string;
  serverLearningRate?: string;
  exampleCap: string;
  maxUpdateNorm?: string;
  checkinMs: string;
  trainingMs: string;
  dp?: string;
  noiseMultiplier?: string;
  clip?: string;
  delta?: string;
  survivors?: string;
  population?: string;
  secagg?: string;
  secaggK?: string;
  secaggT?: string;
  secaggDropout?: string;
  secaggCorrupt?: string;
  secaggStageMs?: string;
  epsilonCap?: string;
  token?: string;
  dataDir?: string;
  wait?: boolean;
  exitStatus?: boolean;
  json?: boolean;
}

/** `--secagg` and its tuning flags as the launch's `secagg` field; undefined leaves the server's default. */
function secaggRequest(options: LaunchOptions): LaunchRequest['secagg'] {
  const tuned = options.secaggK !== undefined || options.secaggT !== undefined || options.secaggDropout !== '0.1' || options.secaggCorrupt !== '0.1' || options.secaggStageMs !== '10000';
  if (options.secagg === undefined && !tuned) return undefined;
  if (options.secagg !== undefined && options.secagg !== 'on' && options.secagg !== 'off') throw new CliError('INVALID_ARGUMENT', `"--secagg" expected on or off, got ${options.secagg}`);
  if (options.secagg === 'off') return 'off';
  return {
    mode: 'on',
    dropoutRate: parseNumber('secagg-dropout', options.secaggDropout ?? '0.1'),
    corruptFraction: parseNumber('secagg-corrupt', options.secaggCorrupt ?? '0.1'),
    stageMs: parseInteger('secagg-stage-ms', options.secaggStageMs ?? '10000'),
    ...(options.secaggK === undefined ? {} : { k: parseInteger('secagg-k', options.secaggK) }),
    ...(options.secaggT === undefined ? {} : { t: parseInteger('secagg-t', options.secaggT) }),
  };
}

/** `--task analytics --query STATISTIC` and the query's own flags as the launch's `query`; undefined for training. */
function queryRequest(options: LaunchOptions): AnalyticsQueryInput | undefined {
  if (options.task !== 'train' && options.task !== 'analytics') throw new CliError('INVALID_ARGUMENT', `"--task" expected train or analytics, got ${options.task}`);
  if (options.task === 'train') {
    if (options.query !== undefined) throw new CliError('INVALID_ARGUMENT', '"--query" goes with --task analytics');
    return undefined;
  }
  const statistic = options.query;
  if (statistic === undefined) throw new CliError('INVALID_ARGUMENT', `"--query" is required with --task analytics: one of ${ANALYTICS_STATISTICS.join(', ')}`);
  const int = (name: string, value: string | undefined) => (value === undefined ? {} : { [name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())]: parseInteger(name, value) });
  switch (statistic) {
    case 'category-counts':
      return { statistic, ...(options.categories === undefined ? {} : { categories: readCategories(options.categories) }), ...int('max-categories-per-device', options.maxCategoriesPerDevice), ...int('max-events-per-category', options.maxEventsPerCategory) };
    case 'log-price-moments':
      return { statistic, ...int('max-events-per-device', options.maxEventsPerDevice) };
    case 'spend-histogram':
      return { statistic, ...int('bins', options.bins) };
    case 'evaluate': {
      if (options.versions === undefined) throw new CliError('INVALID_ARGUMENT', '"--versions" is required with --query evaluate: one version, or two (serving,candidate) for a paired comparison');
      const versions = options.versions.split(',').map((v) => parseInteger('versions', v.trim()));
      return { statistic, versions, ...int('bins', options.bins) };
    }
    default:
      throw new CliError('INVALID_ARGUMENT', `"--query" expected one of ${ANALYTICS_STATISTICS.join(', ')}, got ${statistic}`);
  }
}

/** `--categories FILE`: the category ids of a shop catalog file (docs/catalog.md), bad rows refused with their lines. */
function readCategories(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError('INVALID_ARGUMENT', `"--categories" ${file} cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return catalogCategoryIds(parseCatalog(text));
  } catch (err) {
    throw new CliError('INVALID_ARGUMENT', `"--categories" ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const fmt = (v: number | null, digits = 1): string => (v === null ? 'n/a' : v.toFixed(digits));
const interval = (e: Estimate, digits = 1): string => (e.interval ? `${fmt(e.value, digits)} [${fmt(e.interval[0], digits)}, ${fmt(e.interval[1], digits)}]` : fmt(e.value, digits));

/** One line of an analytics round's released numbers, with their 95 % intervals. */
export function describeResult(result: AnalyticsResult): string {
  const s = result.summary;
  const head = `${s.statistic} from ${result.survivors} devices, noise σ=${result.noiseStd.toFixed(2)} per cell`;
  switch (s.statistic) {
    case 'category-counts':
      return `${head}; top ${Math.min(5, s.categories.length)} of ${s.categories.length}: ${s.categories.slice(0, 5).map((c) => `${c.category} ${interval(c.count)}`).join(', ')}`;
    case 'category-prefixes':
      return `${head}; ${s.cells.length} cells, largest: ${s.cells.slice(0, 5).map((c) => `${c.symbol === null ? `${c.prefix}$` : c.extension} ${interval(c.count)}`).join(', ')}`;
    case 'log-price-moments':
      return `${head}; ${interval(s.events, 0)} priced events, log1p price mean ${interval(s.mean, 3)}, std ${interval(s.std, 3)}`;
    case 'spend-histogram':
      return `${head}; ${interval(s.buyers, 0)} buyers, ${s.quantiles.map((q) => `q${q.q.toFixed(2)} ${interval(q.logPrice, 3)}`).join(', ')} (log1p price)`;
    case 'segments': {
      const shown = s.cells.filter((c) => !c.suppressed);
      return `${head}; ${interval(s.devices, 0)} devices by ${s.by.join(' × ')}: ${shown.slice(0, 6).map((c) => `${c.labels.join('/')} ${interval(c.count, 0)}`).join(', ')}${shown.length > 6 ? ', …' : ''} (${s.cells.length - shown.length} of ${s.cells.length} cells below ${s.minCount}, suppressed)`;
    }
    case 'evaluate': {
      const metric = (value: number | null | undefined, range: [number, number] | null | undefined) => (value == null ? 'n/a' : `${value.toFixed(4)}${range ? ` [${range[0].toFixed(4)}, ${range[1].toFixed(4)}]` : ''}`);
      const versions = s.versions.map((v) => `v${v.version}: interests microAUC ${metric(v.heads.interests?.microAuc, v.intervals.interests?.microAuc)}, recall@5 ${metric(v.heads.interests?.recallAt5, v.intervals.interests?.recallAt5)}, purchase AUC ${metric(v.heads.purchase?.auc, v.intervals.purchase?.auc)}`);
      const d = s.difference;
      const diff = d ? `; v${d.candidate} − v${d.baseline}: interests microAUC ${metric(d.heads.interests?.microAuc?.value, d.heads.interests?.microAuc?.interval)}, purchase AUC ${metric(d.heads.purchase?.auc?.value, d.heads.purchase?.auc?.interval)}` : '';
      return `${head}; ${versions.join('; ')}${diff}`;
    }
  }
}

interface StatusOptions {
  server: string;
  token?: string;
  dataDir?: string;
  watch?: boolean;
  limit: string;
  json?: boolean;
}

const FINISHED = new Set(['committed', 'aborted']);

function metricSummary(r: RoundRecord): string {
  const heads = r.metrics?.heads;
  if (!heads) return '';
  const parts: string[] = [];
  const interests = heads.interests;
  if (interests?.microAuc != null) parts.push(`interests microAUC ${interests.microAuc.toFixed(4)}`);
  if (interests?.recallAt5 != null) parts.push(`recall@5 ${interests.recallAt5.toFixed(4)}`);
  const purchase = heads.purchase;
  if (purchase?.auc != null) parts.push(`purchase AUC ${purchase.auc.toFixed(4)}`);
  return parts.join(', ');
}

/**
 * The launch warning when one round alone spends more than LARGE_ROUND_EPSILON (the coordinator's
 * projection, at the round's delta); null otherwise, and for rounds without DP, whose launch line
 * already says "no DP".
 */
export function largeEpsilonWarning(round: (RoundRecord & { projectedEpsilonRound?: number | null }) | undefined): string | null {
  const epsilon = round?.projectedEpsilonRound;
  if (typeof epsilon !== 'number' || !(epsilon > LARGE_ROUND_EPSILON)) return null;
  const p = round?.privacy;
  return `warning: each of these rounds spends epsilon ${epsilon.toFixed(2)} at delta ${p?.delta ?? round?.config.privacy?.delta} on its own, above ${LARGE_ROUND_EPSILON}: a weak guarantee per round; a larger --noise-multiplier, a smaller --sampling-rate (Poisson) or a larger population lowers it (portrait privacy epsilon shows the trade-off)`;
}

export function describeRound(r: RoundRecord): string {
  const live = r.live && !FINISHED.has(r.status) ? ` ${r.live.stage}: ${r.live.reported}/${r.live.selected} reported, ${r.live.checkedIn} checked in, ${(r.live.stageEndsInMs / 1000).toFixed(1)} s left` : '';
  const released = r.status === 'committed' && r.result ? ` → ${describeResult(r.result)}, ${r.durationMs} ms` : null;
  const outcome = released ?? (r.status === 'committed' ? ` → model v${r.modelVersion}, ${r.participants} participants, ${r.durationMs} ms${metricSummary(r) ? `; ${metricSummary(r)}` : ''}` : r.status === 'aborted' ? `: ${r.reason ?? 'no reason'}` : '');
  const p = r.privacy;
  const cap = r.config.epsilonCap === undefined ? '' : `, launch cap ε≤${r.config.epsilonCap}`;
  const privacy = !p ? '' : p.mode === 'none' ? ' [no DP]' : ` [${p.mode} DP, z=${p.noiseMultiplier}, C=${p.clip}, t=${p.t}${p.epsilonRound != null ? `, ε=${p.epsilonRound.toFixed(3)} (total ${p.epsilonCumulative == null ? 'unbounded: a model was released without DP' : p.epsilonCumulative.toFixed(3)}) at δ=${p.delta}` : ''}${cap}]`;
  const sa = r.secagg;
  const secagg = sa ? ` [SecAgg+ n=${sa.n} k=${sa.k} t=${sa.t}, ${sa.survivors} survivors${sa.abortedStage ? `, fell short at ${sa.abortedStage}` : ''}]` : '';
  const declined = r.declined && r.status === 'committed' ? ` [declined by ${Object.entries(r.declined).map(([code, n]) => `${n} ${code}`).join(', ')}]` : '';
  const task = r.config.task === 'analytics' ? ` [analytics: ${r.config.query?.statistic}]` : '';
  return `round ${r.id}${task} ${r.status}${live}${outcome}${privacy}${secagg}${declined}`;
}

/**
 * Polls until every round has finished, reporting progress on stderr. `logFinished` also logs each
 * finished round's line there: only with `--json`, since otherwise stdout prints the same result
 * and a terminal would show it twice.
 */
export async function waitForRounds(server: string, token: string, ids: readonly number[], logFinished: boolean): Promise<RoundRecord[]> {
  const done: RoundRecord[] = [];
  const tty = process.stderr.isTTY === true;
  const bar = tty ? new cliProgress.SingleBar({ format: 'rounds {bar} {value}/{total} | round {round} {stage} | {reported}/{selected} reported | {left}s left', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic) : null;
  bar?.start(ids.length, 0, { round: ids[0], stage: 'pending', reported: 0, selected: 0, left: '-' });
  try {
    for (const id of ids) {
      let lastLine = '';
      for (;;) {
        const r = await callApi<RoundRecord>(server, token, 'GET', `/rounds/${id}`);
        if (FINISHED.has(r.status)) {
          done.push(r);
          bar?.update(done.length, { round: id, stage: r.status, reported: r.participants, selected: r.selected, left: '0' });
          if (!tty && logFinished) log(describeRound(r));
          break;
        }
        const stage = r.live?.stage ?? r.status;
        bar?.update(done.length, { round: id, stage, reported: r.live?.reported ?? 0, selected: r.live?.selected ?? 0, left: r.live ? (r.live.stageEndsInMs / 1000).toFixed(1) : '-' });
        const line = `round ${id} ${stage}${r.live ? ` ${r.live.reported}/${r.live.selected} reported` : ''}`;
        if (!tty && line !== lastLine) log(line);
        lastLine = line;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  } finally {
    bar?.stop();
  }
  return done;
}

export function registerRoundCommands(program: Command): void {
  const round = program.command('round').description('launch and watch federated rounds');
  round
    .command('launch')
    .description('queue R rounds on a coordinator')
    .option('--server <url>', 'coordinator URL', DEFAULT_SERVER)
    .option('--rounds <R>', 'number of rounds', '1')
    .option('--task <task>', 'train (a model update) | analytics (a federated analytics query, released through the same DP, SecAgg+ and ledger)', 'train')
    .option('--query <statistic>', `with --task analytics: ${ANALYTICS_STATISTICS.join(' | ')}`)
    .option('--categories <file>', 'category-counts: a catalog file whose categories are counted (default: the server\'s catalog, else its model\'s vocabulary)')
    .option('--max-categories-per-device <m>', 'category-counts: a device counts at most its m most active categories (default 8)')
    .option('--max-events-per-category <c>', 'category-counts: each counts at most c events (default 1: shoppers per category)')
    .option('--max-events-per-device <m>', 'log-price-moments: a device counts at most its m most recent priced events (default 16)')
    .option('--bins <n>', 'spend-histogram: bins over the log1p price scale (default 64); evaluate: score bins (default 32)')
    .option('--versions <A[,B]>', 'evaluate: the model version(s) the devices score; two make a paired comparison (B - A)')
    .requiredOption('--clients-per-round <K>', 'cohort size (fixed) or expected size (poisson)')
    .option('--min-clients <T>', 'abort a round with fewer updates than this')
    .option('--selection <method>', 'fixed | poisson', 'fixed')
    .option('--sampling-rate <q>', 'poisson sampling rate (default K / checked-in clients)')
    .option('--epochs <E>', 'local epochs', String(DEFAULT_TRAIN.epochs))
    .option('--batch-size <B>', 'local minibatch size', String(DEFAULT_TRAIN.batchSize))
    .option('--learning-rate <lr>', 'local learning rate', String(DEFAULT_TRAIN.learningRate))
    .option('--local-optimizer <name>', 'sgd | adam', DEFAULT_TRAIN.optimizer)
    .option('--server-optimizer <name>', 'fedavg | fedadam', 'fedavg')
    .option('--server-learning-rate <eta>', 'server learning rate (default 1 for fedavg, 0.01 for fedadam)')
    .option('--example-cap <n>', 'cap on one client\'s FedAvg weight (examples)', '64')
    .option('--max-update-norm <N>', 'rounds without DP: each plaintext update is clipped to this L2 norm (default 100)')
    .option('--checkin-ms <ms>', 'check-in window', '10000')
    .option('--training-ms <ms>', 'update deadline after the config is sent', '60000')
    .option('--dp <mode>', 'privacy mode: distributed | central | local | none (central and none need the server\'s opt-in)', 'distributed')
    .option('--noise-multiplier <z>', 'noise std of the released sum / its sensitivity (default 1)')
    .option('--clip <C>', 'L2 clipping norm of each client\'s update (default 1)')
    .option('--delta <d>', 'DP delta, below 1/population (default 1e-6)')
    .option('--survivors <t>', 'survivors whose noise is counted (default --min-clients)')
    .option('--population <n>', 'users who could ever take part (default 100000)')
    .option('--secagg <on|off>', 'SecAgg+ secure aggregation (required with --dp distributed; off by default otherwise)')
    .option('--secagg-k <k>', 'SecAgg+ neighbour degree (default: chosen from the cohort, dropout and collusion rates)')
    .option('--secagg-t <t>', 'SecAgg+ Shamir threshold (default: chosen, see docs/secagg.md)')
    .option('--secagg-dropout <rate>', 'dropout rate SecAgg+ must tolerate', '0.1')
    .option('--secagg-corrupt <rate>', 'fraction of clients that may collude with the coordinator', '0.1')
    .option('--secagg-stage-ms <ms>', 'deadline of each SecAgg+ stage after advertise-keys', '10000')
    .option('--epsilon-cap <E>', "this launch's budget: refused if the deployment's cumulative epsilon at --delta would pass E; each round is checked again before it starts and before release")
    .option('--token <token>', 'operator API token (or PORTRAIT_TOKEN; default: from --data-dir)')
    .option('--data-dir <dir>', "read the operator token from this server data directory's api-tokens.json", DEFAULT_DATA_DIR)
    .option('--wait', 'wait for the rounds to finish')
    .option('--exit-status', 'with --wait: exit 1 when any of the rounds aborted (the output is the same)')
    .option('--json', 'print the round records as JSON')
    .action(
      action(async (options: LaunchOptions) => {
        if (options.exitStatus && !options.wait) throw new CliError('INVALID_ARGUMENT', '"--exit-status" goes with --wait');
        const token = resolveToken(options, 'operator');
        const query = queryRequest(options);
        const request: LaunchRequest = {
          rounds: parseInteger('rounds', options.rounds),
          ...(query ? { task: 'analytics' as const, query } : {}),
          clientsPerRound: parseInteger('clients-per-round', options.clientsPerRound),
          selection: options.selection as 'fixed' | 'poisson',
          train: { epochs: parseInteger('epochs', options.epochs), batchSize: parseInteger('batch-size', options.batchSize), learningRate: parseNumber('learning-rate', options.learningRate), optimizer: options.localOptimizer as 'sgd' | 'adam' },
          aggregation: {
            serverOptimizer: options.serverOptimizer as 'fedavg' | 'fedadam',
            exampleCap: parseInteger('example-cap', options.exampleCap),
            ...(options.maxUpdateNorm === undefined ? {} : { maxUpdateNorm: parseNumber('max-update-norm', options.maxUpdateNorm) }),
            ...(options.serverLearningRate === undefined ? {} : { serverLearningRate: parseNumber('server-learning-rate', options.serverLearningRate) }),
          },
          deadlines: { checkinMs: parseInteger('checkin-ms', options.checkinMs), trainingMs: parseInteger('training-ms', options.trainingMs) },
          ...(options.minClients === undefined ? {} : { minClients: parseInteger('min-clients', options.minClients) }),
          ...(options.samplingRate === undefined ? {} : { samplingRate: parseNumber('sampling-rate', options.samplingRate) }),
          ...(options.epsilonCap === undefined ? {} : { epsilonCap: parseNumber('epsilon-cap', options.epsilonCap) }),
          privacy: {
            mode: options.dp as 'distributed' | 'central' | 'local' | 'none',
            ...(options.noiseMultiplier === undefined ? {} : { noiseMultiplier: parseNumber('noise-multiplier', options.noiseMultiplier) }),
            ...(options.clip === undefined ? {} : { clip: parseNumber('clip', options.clip) }),
            ...(options.delta === undefined ? {} : { delta: parseNumber('delta', options.delta) }),
            ...(options.survivors === undefined ? {} : { t: parseInteger('survivors', options.survivors) }),
            ...(options.population === undefined ? {} : { population: parseInteger('population', options.population) }),
          },
        };
        const secagg = secaggRequest(options);
        if (secagg !== undefined) request.secagg = secagg;
        const { rounds, budget } = await callApi<{ rounds: (RoundRecord & { projectedEpsilonRound?: number | null })[]; budget?: LaunchBudget[] }>(options.server, token, 'POST', '/rounds', request);
        // On stderr even with --json: a large spend per round is worth a look before the rounds run.
        const warning = largeEpsilonWarning(rounds[0]);
        if (warning) log(warning);
        if (!options.json) {
          // Say the privacy each round runs with, so a default (distributed DP) is never a surprise.
          const first = rounds[0];
          const p = first?.privacy;
          const mode = !p || p.mode === 'none' ? 'no DP (mode none)' : `${p.mode} DP, z=${p.noiseMultiplier}, C=${p.clip}, delta=${p.delta}`;
          const cap = first?.config.epsilonCap === undefined ? '' : `; launch cap epsilon ${first.config.epsilonCap} at delta ${p?.delta}`;
          log(`launched rounds ${rounds.map((r) => r.id).join(', ')}: ${mode}; SecAgg+ ${first?.config.secagg ? 'on' : 'off'}${cap}`);
          for (const b of budget ?? []) log(`budget: cumulative epsilon at delta ${b.cap.delta} projected to ${b.projected?.toFixed(4)} once these run, against the ${b.kind === 'deployment' ? 'deployment cap' : "launch's cap"} of ${b.cap.epsilon} (spent so far: ${b.spent === null ? 'unbounded' : b.spent.toFixed(4)})`);
        }
        const result = options.wait ? await waitForRounds(options.server, token, rounds.map((r) => r.id), options.json === true) : rounds;
        emit(options, budget ? { rounds: result, budget } : { rounds: result }, () => result.map(describeRound).join('\n'));
        // For scripts (as `gh run watch --exit-status`): a launch whose rounds aborted is a failure when asked.
        if (options.exitStatus && result.some((r) => r.status === 'aborted')) process.exitCode = 1;
      }),
    );
  round
    .command('status [id]')
    .description('show one round, or the most recent rounds')
    .option('--server <url>', 'coordinator URL', DEFAULT_SERVER)
    .option('--token <token>', 'API token (or PORTRAIT_TOKEN; default: from --data-dir)')
    .option('--data-dir <dir>', "read the auditor token from this server data directory's api-tokens.json", DEFAULT_DATA_DIR)
    .option('--limit <n>', 'rounds to list without an id', '20')
    .option('--watch', 'follow until the round (or the newest round) finishes')
    .option('--json', 'print JSON')
    .action(
      action(async (id: string | undefined, options: StatusOptions) => {
        const token = resolveToken(options, 'auditor');
        if (id !== undefined) {
          const roundId = parseInteger('id', id);
          const record = options.watch ? ((await waitForRounds(options.server, token, [roundId], options.json === true))[0] as RoundRecord) : await callApi<RoundRecord>(options.server, token, 'GET', `/rounds/${roundId}`);
          emit(options, record, () => describeRound(record));
          return;
        }
        let { rounds } = await callApi<{ rounds: RoundRecord[] }>(options.server, token, 'GET', `/rounds?limit=${parseInteger('limit', options.limit)}`);
        if (options.watch) {
          const open = rounds.filter((r) => !FINISHED.has(r.status)).map((r) => r.id).sort((a, b) => a - b);
          if (open.length > 0) await waitForRounds(options.server, token, open, options.json === true);
          ({ rounds } = await callApi<{ rounds: RoundRecord[] }>(options.server, token, 'GET', `/rounds?limit=${parseInteger('limit', options.limit)}`));
        }
        emit(options, { rounds }, () => (rounds.length === 0 ? 'no rounds yet' : rounds.map(describeRound).join('\n')));
      }),
    );
}

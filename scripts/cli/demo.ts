/**
 * `portrait demo` (what `npm start` runs): the embedded coordinator, its dashboard, and a
 * simulated fleet on the synthetic population (one device per training user; the test users are
 * the coordinator's held-out evaluation set). Private by default: it launches R rounds of
 * distributed DP with SecAgg+, Poisson-sampled over the whole fleet at a recorded rate, with the
 * noise multiplier calibrated so that the R rounds spend a target epsilon, under a deployment cap
 * that the signed ledger enforces. It prints the untrained model's held-out metrics (round 0), each
 * round's as it finishes, and the cumulative epsilon, then leaves the server and fleet up until
 * Ctrl-C (`--exit` stops after the rounds; `--json` prints `{ initial, rounds, privacy }`).
 * Non-private rounds run only when asked for (`--baseline-rounds`). Port 8080 unless
 * given; when 8080 is taken and no port was asked for, a free one. A temporary data directory it
 * made is removed on exit.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { runFleet } from '../../client/node/simulator.ts';
import type { EmbeddedOptions, startEmbeddedCoordinator } from '../../server/embedded.ts';
import { defaultMinClients } from '../../shared/protocol/messages.ts';
import type { LaunchRequest, RoundRecord } from '../../shared/protocol/messages.ts';
import type { EvaluateSummary } from '../../shared/analytics/federated-evaluation.ts';
import type { EvaluationMetric } from '../../shared/analytics/evaluation.ts';
import type { HeadName } from '../../shared/model/spec.ts';
import { calibrateNoise } from '../../shared/privacy/calibrate.ts';
import { LARGE_ROUND_EPSILON } from '../../shared/protocol/privacy.ts';
import { buildPrivacyConfig, roundsEpsilon } from '../../shared/privacy/config.ts';
import { readApiTokens } from '../../server/auth/bootstrap-tokens.ts';
import { loadDataset } from '../import/resolve.ts';
import { dataConfig, modelConfigFor } from '../lib/central-config.ts';
import { callApi } from './api-client.ts';
import { action, CliError, emit, log, parseInteger, parseNumber } from './output.ts';
import { fleetUsers, prepareFleetData } from './simulate.ts';

interface DemoOptions {
  federatedEvaluation: boolean;
  rounds: string;
  epsilon: string;
  epsilonCap: string;
  delta: string;
  baselineRounds: string;
  exit?: boolean;
  port: string;
  dataDir?: string;
  users: string;
  clientsPerRound: string;
  clip: string;
  epochs: string;
  learningRate: string;
  serverLearningRate: string;
  dropout?: string;
  backend?: string;
  json?: boolean;
}

/**
 * The demo model's MLP trunk. Smaller than the centralised baseline's [64, 32]: distributed DP
 * adds noise of the same size to every coordinate of the sum, so at a fixed epsilon and cohort the
 * signal-to-noise ratio of a round's mean update falls with the square root of the dimension
 * (about 12,600 parameters at [64, 32], 2,900 at [16, 8]); measured with the in-process simulator
 * on this population, 3 private rounds at epsilon 4 learned about as much as 3 non-private rounds
 * with the small trunk and nothing with the large one (docs/privacy.md, "The demo's private rounds").
 */
export const DEMO_HIDDEN_UNITS: [number, number] = [16, 8];

/**
 * The demo's default budget: 5 rounds spend epsilon 2.4 together at delta 1e-6 (noise multiplier
 * about 1.0 on the default fleet), which keeps one round alone below LARGE_ROUND_EPSILON (1.93), so
 * the demo's own launch is not one the CLI and the dashboard warn about. Measured on this machine
 * (2 cores): about 90 s in all, interests micro-AUC 0.8549 (round 0) to 0.8583 (round 5).
 */
export const DEMO_EPSILON = 2.4;

/** The private rounds' plan: Poisson rate, survivors counted, noise multiplier and the epsilon it spends. */
export interface PrivatePlan {
  spec: Omit<LaunchRequest, 'rounds'>;
  /** Devices the rounds sample from: the accountant's population. */
  population: number;
  samplingRate: number;
  t: number;
  noiseMultiplier: number;
  /** Epsilon of all the rounds together at `delta` (RDP of the subsampled distributed discrete Gaussian). */
  epsilon: number;
  /** Epsilon of one round alone at `delta`. */
  epsilonPerRound: number;
  /**
   * The same rounds without amplification by sampling (q = 1): the guarantee against the
   * coordinator itself, which picks the cohort and so knows who was sampled; the amplified figures
   * hold against whoever sees only the released models.
   */
  epsilonUnamplified: number;
  delta: number;
}

export interface PrivatePlanInput {
  /** Devices in the fleet, every one eligible for every round. */
  population: number;
  /** The expected cohort: Poisson rate q = clientsPerRound / population. */
  clientsPerRound: number;
  rounds: number;
  /** Target epsilon of the `rounds` together. */
  epsilon: number;
  delta: number;
  clip: number;
  /** Parameters of the model (the noise is sized on its padded dimension). */
  dimension: number;
  train: { epochs: number; learningRate: number };
  serverLearningRate: number;
}

/**
 * Sizes the private rounds. Amplification by sampling is claimed honestly: every device of the
 * fleet is eligible in every round and the coordinator keeps each checked-in device independently
 * with the recorded probability q (Poisson sampling; Mironov, Talwar, Zhang 2019, Sec. 3), so the
 * accountant counts q over the fleet as its population. t, the survivors whose noise shares are
 * counted, sits three standard deviations below the expected cohort, so a round rarely aborts for
 * want of survivors; z is the smallest noise multiplier for which the rounds spend at most the
 * target epsilon together and one round at most LARGE_ROUND_EPSILON (calibrateNoise over
 * roundsEpsilon, the accountant the ledger uses). A device that misses check-in is sampled with
 * probability 0, below q, which the bound covers. Amplification holds against observers of the
 * released models, not against the coordinator, which picks the cohort: `epsilonUnamplified`
 * (q = 1) is the guarantee against it.
 * Server optimiser: FedAdam (Reddi et al. 2021, Alg. 2) at tau 1e-4, near the noise per weight.
 */
export function planPrivateRounds(input: PrivatePlanInput): PrivatePlan {
  const { population, clientsPerRound, rounds, delta, clip, dimension } = input;
  if (clientsPerRound > population) throw new RangeError(`"clients-per-round" expected at most the ${population} devices of the fleet, got ${clientsPerRound}`);
  if (!(delta < 1 / population)) throw new RangeError(`"delta" expected below 1/population = ${1 / population}, got ${delta}`);
  const q = clientsPerRound / population;
  const t = Math.max(3, Math.floor(clientsPerRound - 3 * Math.sqrt(clientsPerRound * (1 - q))));
  const config = (noiseMultiplier: number) =>
    buildPrivacyConfig({ mode: 'distributed', clip, noiseMultiplier, minSurvivors: t, delta, population, dimension, samplingRate: q, poissonSampling: true, expectedClients: clientsPerRound, rotation: true });
  // The larger of two noise levels: the rounds spend at most the target together, and one round
  // alone at most LARGE_ROUND_EPSILON (short runs would otherwise be launches the CLI warns about).
  const total = calibrateNoise(input.epsilon, (z) => roundsEpsilon(config(z), rounds), 1e-4).noiseMultiplier;
  // 5 % below the threshold: the ledger accounts each round at its actual cohort, whose grid step differs a little.
  const single = calibrateNoise(0.95 * LARGE_ROUND_EPSILON, (z) => roundsEpsilon(config(z), 1), 1e-4).noiseMultiplier;
  const calibrated = Math.max(total, single);
  // Three significant digits, rounded up: never less noise than calibrated.
  const digits = 10 ** (2 - Math.floor(Math.log10(calibrated)));
  const noiseMultiplier = Math.ceil(calibrated * digits) / digits;
  const unamplified = buildPrivacyConfig({ mode: 'distributed', clip, noiseMultiplier, minSurvivors: t, delta, population, dimension, samplingRate: 1, poissonSampling: false, expectedClients: clientsPerRound, rotation: true });
  const spec: Omit<LaunchRequest, 'rounds'> = {
    clientsPerRound,
    minClients: t,
    selection: 'poisson',
    samplingRate: q,
    train: { epochs: input.train.epochs, batchSize: 16, learningRate: input.train.learningRate, optimizer: 'sgd' },
    aggregation: { serverOptimizer: 'fedadam', serverLearningRate: input.serverLearningRate, exampleCap: 64, beta1: 0.9, beta2: 0.99, tau: 1e-4 },
    // Check-in closes as soon as every connected device has answered; the long window is for a
    // loaded machine, where a fleet of thousands answers slowly and a short window shrinks the pool.
    deadlines: { checkinMs: 30_000, trainingMs: 90_000 },
    privacy: { mode: 'distributed', clip, noiseMultiplier, delta, t, population },
    secagg: 'on',
  };
  return {
    spec,
    population,
    samplingRate: q,
    t,
    noiseMultiplier,
    epsilon: roundsEpsilon(config(noiseMultiplier), rounds).epsilon,
    epsilonPerRound: roundsEpsilon(config(noiseMultiplier), 1).epsilon,
    epsilonUnamplified: roundsEpsilon(unamplified, rounds).epsilon,
    delta,
  };
}

/**
 * Non-private baseline rounds (`--baseline-rounds`, mode `none`, opted into on this coordinator only
 * when asked for): FedAdam at tau 1e-6 over fixed cohorts. Every model released after one has an
 * unbounded cumulative epsilon, and the ledger and the compliance page say so.
 */
export function demoBaselineRoundSpec(clientsPerRound: number, epochs: number, learningRate: number): Omit<LaunchRequest, 'rounds'> {
  return {
    clientsPerRound,
    minClients: Math.max(1, Math.floor(clientsPerRound / 2)),
    train: { epochs, batchSize: 16, learningRate, optimizer: 'sgd' },
    aggregation: { serverOptimizer: 'fedadam', serverLearningRate: 0.01, exampleCap: 64, beta1: 0.9, beta2: 0.99, tau: 1e-6 },
    deadlines: { checkinMs: 10_000, trainingMs: 60_000 },
    privacy: { mode: 'none' },
  };
}

const fmt = (v: number | null | undefined) => (typeof v === 'number' ? v.toFixed(4) : '-');

export const ROUND_TABLE_HEADER = 'round  status     clients  seconds  interests microAUC  recall@5  purchase AUC  privacy';

/** The demo's default port, the same as `portrait server`'s. */
export const DEMO_PORT = 8080;

function isAddressInUse(err: unknown): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
}

/**
 * Starts the coordinator on `port`; a busy port falls back to a free one when the port was only
 * the default, and is refused as UNAVAILABLE (naming the port and `--port 0`) when it was asked for.
 */
export async function startOnPort(options: EmbeddedOptions & { port: number }, explicit: boolean): Promise<Awaited<ReturnType<typeof startEmbeddedCoordinator>>> {
  try {
    const embedded = await import('../../server/embedded.ts');
    const coordinator = await embedded.startEmbeddedCoordinator({ ...options, freePortIfBusy: !explicit });
    if (options.port !== 0 && coordinator.port !== options.port) log(`port ${options.port} is in use; listening on free port ${coordinator.port} instead (--port picks one)`);
    return coordinator;
  } catch (err) {
    if (!isAddressInUse(err)) throw err;
    throw new CliError('UNAVAILABLE', `port ${options.port} is already in use: stop what listens there, pick another --port, or pass --port 0 for a free one`);
  }
}

/** The `round launch` line printed for the user: more rounds like the demo's private ones, against its coordinator. */
export function launchHint(url: string, dataDir: string, spec: Omit<LaunchRequest, 'rounds'>): string {
  const k = spec.clientsPerRound;
  const p = spec.privacy;
  const t = spec.minClients ?? defaultMinClients(k, 'distributed');
  const flags = [`--server ${url}`, `--data-dir ${dataDir}`, `--clients-per-round ${k}`, `--min-clients ${t}`];
  if (spec.selection === 'poisson') flags.push(`--selection poisson${spec.samplingRate === undefined ? '' : ` --sampling-rate ${Number(spec.samplingRate.toPrecision(6))}`}`);
  flags.push(`--dp distributed --clip ${p?.clip} --noise-multiplier ${p?.noiseMultiplier}`);
  if (p?.delta !== undefined) flags.push(`--delta ${p.delta}`);
  if (p?.population !== undefined) flags.push(`--population ${p.population}`);
  if (spec.aggregation?.serverOptimizer) flags.push(`--server-optimizer ${spec.aggregation.serverOptimizer}${spec.aggregation.serverLearningRate === undefined ? '' : ` --server-learning-rate ${spec.aggregation.serverLearningRate}`}`);
  flags.push('--secagg on --wait');
  return `npx portrait round launch ${flags.join(' ')}`;
}

function privacyCell(r: RoundRecord): string {
  const p = r.privacy;
  if (!p || p.mode === 'none') return 'none (no DP)';
  const eps = p.epsilonRound == null ? '' : ` eps ${p.epsilonRound.toFixed(2)} (total ${p.epsilonCumulative == null ? 'unbounded: a model was released without DP' : p.epsilonCumulative.toFixed(2)})`;
  return `${p.mode} DP z=${p.noiseMultiplier}${eps}${r.secagg ? ` + SecAgg+ ${r.secagg.survivors}/${r.secagg.n}` : ''}`;
}

type Heads = NonNullable<NonNullable<RoundRecord['metrics']>['heads']>;

function metricCells(h: Heads | undefined): string[] {
  return [fmt(h?.interests?.microAuc).padStart(18), fmt(h?.interests?.recallAt5).padStart(8), fmt(h?.purchase?.auc).padStart(12)];
}

export function roundRow(r: RoundRecord): string {
  const cells = [String(r.id).padEnd(5), r.status.padEnd(9), String(r.participants).padStart(7), ((r.durationMs ?? 0) / 1000).toFixed(1).padStart(7), ...metricCells(r.metrics?.heads), privacyCell(r)];
  return `${cells.join('  ')}${r.status === 'aborted' ? `  (${r.reason ?? 'no reason'})` : ''}`;
}

/** Round 0: the untrained model's held-out metrics, the line every later round is read against. */
export function initialRow(heads: Heads): string {
  return ['0'.padEnd(5), 'untrained'.padEnd(9), '-'.padStart(7), '-'.padStart(7), ...metricCells(heads), 'model v1 before any round'].join('  ');
}

/** NaN metrics (AUC with one class present) become null, as in the round records. */
function jsonHeads(scores: Record<string, Record<string, number> | undefined>): Heads {
  const out: Heads = {};
  for (const [head, metrics] of Object.entries(scores)) out[head] = Object.fromEntries(Object.entries(metrics ?? {}).map(([k, v]) => [k, Number.isFinite(v) ? v : null]));
  return out;
}

/** Epsilon the demo's federated evaluation round spends (amplified by its sampling), at the demo's delta. */
export const DEMO_EVALUATION_EPSILON = 1;

/**
 * The demo's federated evaluation round: more devices than a training round (each sampled with
 * q = min(1, 3K / devices)), one example each (the contribution's bound, hence the noise, is that
 * of one example) and 16 score bins, with the noise multiplier for which the round alone spends
 * DEMO_EVALUATION_EPSILON. Signal grows with the devices while the noise does not: a training
 * round's cohort under its own noise leaves every metric below the noise.
 */
export function planEvaluationRound(input: { population: number; clientsPerRound: number; delta: number; version: number }): Omit<LaunchRequest, 'rounds'> {
  const { population, delta } = input;
  const q = Math.min(1, (3 * input.clientsPerRound) / population);
  const expected = Math.max(3, Math.round(q * population));
  const t = Math.max(3, Math.floor(expected - 3 * Math.sqrt(expected * (1 - q))));
  // The epsilon of one round does not depend on the clip (the noise scales with it) and barely on the dimension (the slack term).
  const config = (noiseMultiplier: number) =>
    buildPrivacyConfig({ mode: 'distributed', clip: 1, noiseMultiplier, minSurvivors: t, delta, population, dimension: 2048, samplingRate: q, poissonSampling: q < 1, expectedClients: expected, rotation: true });
  const calibrated = calibrateNoise(DEMO_EVALUATION_EPSILON, (z) => roundsEpsilon(config(z), 1), 1e-4).noiseMultiplier;
  const noiseMultiplier = Math.ceil(calibrated * 100) / 100;
  return {
    task: 'analytics',
    query: { statistic: 'evaluate', versions: [input.version], examplesPerDevice: 1, bins: 16 },
    clientsPerRound: expected,
    minClients: t,
    selection: 'poisson',
    samplingRate: q,
    deadlines: { checkinMs: 30_000, trainingMs: 90_000 },
    privacy: { mode: 'distributed', noiseMultiplier, delta, t, population },
    // The simulated fleet computes every device's SecAgg+ shares on this machine's cores (a real
    // device computes only its own): a cohort three times a training round's needs longer stages.
    secagg: { mode: 'on', stageMs: 60_000 },
  };
}

/**
 * The federated evaluation's lines: what the devices measured on their own data (with the 95 %
 * interval the DP noise and the sample give) beside the same version's held-out numbers.
 */
export function federatedRows(evaluation: RoundRecord, trained: RoundRecord): string[] {
  if (evaluation.status !== 'committed') return [`federated evaluation (round ${evaluation.id}) ${evaluation.status}: ${evaluation.reason ?? 'no reason'}`];
  const v = (evaluation.result?.summary as EvaluateSummary | undefined)?.versions[0];
  const held = trained.metrics?.heads;
  const cell = (head: string, metric: string): string => {
    const value = v?.heads[head as HeadName]?.[metric as EvaluationMetric];
    const range = v?.intervals[head as HeadName]?.[metric as EvaluationMetric];
    return `${fmt(value)}${range ? ` [${range[0].toFixed(2)}, ${range[1].toFixed(2)}]` : ''} (held-out ${fmt(held?.[head]?.[metric])})`;
  };
  return [
    `federated evaluation of v${trained.modelVersion} by ${evaluation.participants} devices on their own data (round ${evaluation.id}, ${privacyCell(evaluation)}, 95% intervals):`,
    `  interests microAUC ${cell('interests', 'microAuc')}, recall@5 ${cell('interests', 'recallAt5')}, purchase AUC ${cell('purchase', 'auc')}`,
  ];
}

async function waitForRound(server: string, token: string, id: number): Promise<RoundRecord> {
  for (;;) {
    const r = await callApi<RoundRecord>(server, token, 'GET', `/rounds/${id}`);
    if (r.status === 'committed' || r.status === 'aborted') return r;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('coordinator + dashboard + simulated fleet on a synthetic population; runs private rounds (distributed DP + SecAgg+) and prints held-out metrics and the epsilon spent')
    .option('--rounds <N>', 'private rounds (distributed DP + SecAgg+, each entered in the signed privacy ledger)', '5')
    .option('--epsilon <E>', 'epsilon the N rounds spend together, at --delta (the noise multiplier is calibrated to it)', String(DEMO_EPSILON))
    .option('--epsilon-cap <CAP>', "the deployment's cap on its cumulative epsilon at --delta, enforced before every release (the compliance page shows the spend against it)", '8')
    .option('--delta <d>', 'DP delta, below 1/(devices in the fleet)', '1e-6')
    .option('--baseline-rounds <M>', 'then M non-private baseline rounds (DP mode none; an explicit opt-in: every model released after them has unbounded epsilon)', '0')
    .option('--exit', 'stop after the rounds instead of serving until Ctrl-C')
    .option('--port <port>', `TCP port (0 picks a free one; the default ${DEMO_PORT} falls back to a free one when taken)`, String(DEMO_PORT))
    .option('--data-dir <dir>', 'keep rounds and models here (default: a fresh temporary directory)')
    .option('--users <n>', 'synthetic population size (about 68% are training devices, the rest held out)', '5000')
    .option('--clients-per-round <K>', 'expected cohort: each device is sampled with probability K / devices (Poisson)', '140')
    .option('--clip <C>', "L2 clipping norm of each device's update", '0.1')
    .option('--epochs <E>', 'local epochs', '1')
    .option('--learning-rate <lr>', 'local SGD learning rate', '0.02')
    .option('--server-learning-rate <eta>', 'FedAdam server learning rate', '0.1')
    .option('--dropout <p>', 'per round, each device vanishes with probability p')
    .option('--backend <name>', 'tfjs backend: node-gpu | node | wasm | cpu')
    .option('--no-federated-evaluation', 'skip the federated evaluation round of the last version (devices score it on their own data, under DP + SecAgg+)')
    .option('--json', 'print { initial, rounds, federatedEvaluation, privacy } as JSON')
    .action(
      action(async (options: DemoOptions, command: Command) => {
        const int = parseInteger;
        const num = parseNumber;
        const rounds = int('rounds', options.rounds, 1);
        const baselineRounds = int('baseline-rounds', options.baselineRounds, 0);
        const epsilon = num('epsilon', options.epsilon);
        const cap = { epsilon: num('epsilon-cap', options.epsilonCap), delta: num('delta', options.delta) };
        if (!(epsilon > 0) || !(cap.epsilon >= epsilon)) throw new CliError('INVALID_ARGUMENT', `"epsilon" expected a number in (0, --epsilon-cap ${cap.epsilon}], got ${epsilon}`);
        const port = int('port', options.port, 0);
        const clientsPerRound = int('clients-per-round', options.clientsPerRound, 3);
        const train = { epochs: int('epochs', options.epochs, 1), learningRate: num('learning-rate', options.learningRate) };
        const dropout = options.dropout === undefined ? undefined : num('dropout', options.dropout);

        const [{ useNodeBackend }, simulator, { buildModel }, { parameterCount }] = await Promise.all([
          import('../../client/node/tfjs-backend.ts'),
          import('../../client/node/simulator.ts'),
          import('../../shared/model/build.ts'),
          import('../../shared/model/weights.ts'),
        ]);
        await useNodeBackend(options.backend);
        const dataset = await loadDataset(`synthetic:${int('users', options.users, 20)}`);
        const prepared = prepareFleetData(dataset);
        const users = fleetUsers(prepared, new Set(prepared.examples.train.map((e) => e.userId)).size);
        const modelConfig = modelConfigFor(prepared, dataConfig(), 'mlp', false, DEMO_HIDDEN_UNITS);
        const probe = buildModel(modelConfig, 1);
        const dimension = parameterCount(probe);
        probe.dispose();
        let plan: PrivatePlan;
        try {
          plan = planPrivateRounds({ population: users.length, clientsPerRound, rounds, epsilon, delta: cap.delta, clip: num('clip', options.clip), dimension, train, serverLearningRate: num('server-learning-rate', options.serverLearningRate) });
        } catch (err) {
          throw new CliError('INVALID_ARGUMENT', err instanceof Error ? err.message : String(err));
        }
        if (plan.epsilonPerRound > LARGE_ROUND_EPSILON) log(`warning: each round spends epsilon ${plan.epsilonPerRound.toFixed(2)} on its own at delta ${plan.delta}, above ${LARGE_ROUND_EPSILON} (more rounds, or a smaller --epsilon, lowers it)`);
        const temporary = options.dataDir === undefined;
        const dataDir = path.resolve(options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-demo-')));
        const removeTemporary = () => {
          if (temporary) fs.rmSync(dataDir, { recursive: true, force: true });
        };
        let coordinator: Awaited<ReturnType<typeof startOnPort>>;
        try {
          fs.mkdirSync(dataDir, { recursive: true });
          const explicitPort = command.getOptionValueSource('port') !== 'default';
          coordinator = await startOnPort(
            {
              dataDir,
              port,
              initialModel: { config: modelConfig, seed: 1 },
              evaluation: { users: prepared.users.test, startDay: dataset.startDay },
              simulationDataset: `synthetic:${options.users}`,
              // A cap admits no release without DP, so opted-in baseline rounds run without one.
              ...(baselineRounds > 0 ? { allowNoDp: true } : { epsilonCap: cap }),
              demoShopTokens: true,
              log: () => undefined,
            },
            explicitPort,
          );
        } catch (err) {
          removeTemporary();
          throw err;
        }
        let fleet: Awaited<ReturnType<typeof runFleet>> | undefined;
        try {
          const tokens = readApiTokens(dataDir);
          if (!tokens) throw new CliError('INTERNAL', `no API tokens in ${dataDir}`);
          fleet = await simulator.runFleet({
            serverUrl: coordinator.url,
            operatorToken: tokens.operator,
            users,
            startDay: dataset.startDay,
            ...(dropout === undefined ? {} : { faults: { dropout } }),
            ...(options.backend ? { backend: options.backend } : {}),
          });
          log(`coordinator on ${coordinator.url}; ${fleet.size} simulated devices in ${fleet.workers} worker threads; ${prepared.users.test.length} held-out users`);
          await fleet.waitConnected(fleet.size, 120_000);
          const initial = jsonHeads(coordinator.registry.evaluate(prepared.examples.test));
          const { rounds: launched } = await callApi<{ rounds: RoundRecord[] }>(coordinator.url, tokens.operator, 'POST', '/rounds', { ...plan.spec, rounds });
          log(
            `launched ${rounds} private rounds: distributed DP (clip ${plan.spec.privacy?.clip}, noise multiplier ${plan.noiseMultiplier}, t ${plan.t}) with SecAgg+, ` +
              `Poisson sampling of each of the ${plan.population} devices at q ${plan.samplingRate.toFixed(4)} (about ${clientsPerRound} a round); ` +
              `epsilon ${plan.epsilonPerRound.toFixed(2)} a round, ${plan.epsilon.toFixed(2)} for the ${rounds} at delta ${plan.delta}${baselineRounds > 0 ? '' : `, under the deployment cap ${cap.epsilon}`} ` +
              `(against whoever sees the released models; against the coordinator, which knows whom it sampled, ${plan.epsilonUnamplified.toFixed(2)} for the ${rounds}); ` +
              `each round entered in the signed privacy ledger before its sum is unmasked`,
          );
          if (baselineRounds > 0) {
            const baseline = demoBaselineRoundSpec(clientsPerRound, train.epochs, train.learningRate);
            const { rounds: plain } = await callApi<{ rounds: RoundRecord[] }>(coordinator.url, tokens.operator, 'POST', '/rounds', { ...baseline, rounds: baselineRounds });
            launched.push(...plain);
            log(`then ${baselineRounds} non-private baseline round(s) (--baseline-rounds): every model released after them has unbounded epsilon, and the ledger says so; no deployment cap (--epsilon-cap) is set, since no cap admits them`);
          }
          const print = (line: string) => (options.json ? log(line) : process.stdout.write(`${line}\n`));
          print(ROUND_TABLE_HEADER);
          print(initialRow(initial));
          const records: RoundRecord[] = [];
          for (const r of launched) {
            const record = await waitForRound(coordinator.url, tokens.auditor, r.id);
            records.push(record);
            print(roundRow(record));
          }
          // Federated evaluation of the last private version: the devices score it on their own
          // examples and send only the metrics' sufficient statistics, under the same DP + SecAgg+.
          const lastPrivate = [...records].reverse().find((r) => r.status === 'committed' && r.privacy?.mode === 'distributed' && r.modelVersion !== null);
          let federated: RoundRecord | null = null;
          if (options.federatedEvaluation && lastPrivate?.modelVersion) {
            const evaluationSpec = planEvaluationRound({ population: plan.population, clientsPerRound, delta: cap.delta, version: lastPrivate.modelVersion });
            const { rounds: [evaluation] } = await callApi<{ rounds: RoundRecord[] }>(coordinator.url, tokens.operator, 'POST', '/rounds', { ...evaluationSpec, rounds: 1 });
            federated = await waitForRound(coordinator.url, tokens.auditor, (evaluation as RoundRecord).id);
            records.push(federated);
            for (const line of federatedRows(federated, lastPrivate)) print(line);
          }
          // A model committed without DP makes every later total unbounded, as the ledger counts it.
          const withoutDp = records.some((r) => r.status === 'committed' && (!r.privacy || r.privacy.mode === 'none'));
          const last = [...records].reverse().find((r) => r.privacy?.released);
          const cumulative = withoutDp ? null : (last?.privacy?.epsilonCumulative ?? null);
          const spent = last || withoutDp ? (cumulative === null ? 'unbounded (a model was released without DP)' : cumulative.toFixed(2)) : '0';
          print(`privacy: cumulative epsilon ${spent} at delta ${cap.delta}, ${baselineRounds > 0 ? 'no deployment cap (baseline rounds)' : `deployment cap ${cap.epsilon}`}`);
          if (options.json) emit(options, { initial: { modelVersion: 1, metrics: { heads: initial } }, rounds: records.filter((r) => r !== federated), federatedEvaluation: federated, privacy: { epsilonCumulative: last || withoutDp ? cumulative : 0, delta: cap.delta, cap: baselineRounds > 0 ? null : cap, plan: { noiseMultiplier: plan.noiseMultiplier, samplingRate: plan.samplingRate, population: plan.population, t: plan.t, epsilonPerRound: plan.epsilonPerRound, epsilon: plan.epsilon, epsilonUnamplified: plan.epsilonUnamplified } } }, () => '');
          if (options.exit) return;
          const dashboard = `${coordinator.url}/dashboard/#token=${tokens.auditor}`;
          log(`serving on ${coordinator.url} (data in ${dataDir}${temporary ? ', removed on exit; --data-dir keeps it' : ''}); dashboard: ${dashboard}`);
          log(`open the demo shop: ${coordinator.url}/shop  (a real browser joins the rounds; its portrait is computed on the device)`);
          log(`compliance page (privacy ledger): ${coordinator.url}/dashboard/compliance/#token=${tokens.auditor}`);
          log(`launch more private rounds: ${launchHint(coordinator.url, dataDir, plan.spec)}`);
          log('Ctrl-C to stop');
          await new Promise<void>((resolve) => {
            process.once('SIGINT', () => resolve());
            process.once('SIGTERM', () => resolve());
          });
          log('shutting down');
        } finally {
          await fleet?.stop();
          await coordinator.close();
          removeTemporary();
        }
      }),
    );
}

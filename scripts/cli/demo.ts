/**
 * `portrait demo` (what `npm start` runs): the embedded coordinator, its dashboard, and a
 * simulated fleet on the synthetic population (one device per training user; the test users are
 * the coordinator's held-out evaluation set). Launches R non-private rounds, then P private ones
 * (distributed DP + SecAgg+, entered in the signed privacy ledger), prints each round's metrics on
 * the held-out users as it finishes, then leaves the server and fleet up until Ctrl-C (`--exit`
 * stops after the rounds; `--json` prints `{ rounds: [...] }`). Port 8080 unless given; when 8080
 * is taken and no port was asked for, a free one. A temporary data directory it made is removed
 * on exit.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { runFleet } from '../../client/node/simulator.ts';
import type { EmbeddedOptions, startEmbeddedCoordinator } from '../../server/embedded.ts';
import { defaultMinClients, SECAGG_MIN_COHORT } from '../../shared/protocol/messages.ts';
import type { LaunchRequest, RoundRecord } from '../../shared/protocol/messages.ts';
import { readApiTokens } from '../../server/auth/bootstrap-tokens.ts';
import { loadDataset } from '../import/resolve.ts';
import { dataConfig, modelConfigFor } from '../lib/central-config.ts';
import { callApi } from './api-client.ts';
import { action, CliError, emit, log, parseInteger, parseNumber } from './output.ts';
import { fleetUsers, prepareFleetData } from './simulate.ts';

interface DemoOptions {
  rounds: string;
  privateRounds: string;
  privateClients: string;
  exit?: boolean;
  port: string;
  dataDir?: string;
  users: string;
  clientsPerRound: string;
  epochs: string;
  learningRate: string;
  serverLearningRate: string;
  dropout?: string;
  backend?: string;
  json?: boolean;
}

/**
 * Defaults chosen so that five rounds visibly improve the held-out metrics within a minute on two
 * cores: FedAdam on the server (Reddi et al. 2021, Alg. 2) with τ = 1e-6, well below the size of
 * an averaged update coordinate (at τ = 1e-3 it damped every step), over one epoch of local SGD at
 * lr 0.02 (lr 0.1 already gives update norms ~15 on the 50-label interests loss; 0.3 diverges).
 * The demo's rounds are explicitly non-private (`none`, refused unless the server opts in): a
 * 600-user population cannot carry distributed DP noise (docs/privacy.md, privacy-utility table).
 */
export function demoRoundSpec(clientsPerRound: number, epochs: number, learningRate: number, serverLearningRate: number): Omit<LaunchRequest, 'rounds'> {
  return {
    clientsPerRound,
    minClients: Math.max(1, Math.floor(clientsPerRound / 2)),
    train: { epochs, batchSize: 16, learningRate, optimizer: 'sgd' },
    aggregation: { serverOptimizer: 'fedadam', serverLearningRate, exampleCap: 64, beta1: 0.9, beta2: 0.99, tau: 1e-6 },
    deadlines: { checkinMs: 5_000, trainingMs: 60_000 },
    privacy: { mode: 'none' },
  };
}

/**
 * The demo's private rounds: distributed discrete-Gaussian DP with SecAgg+ (the product default),
 * noise multiplier 0.5 at clip 0.1 over a cohort of K. On a 600-user population this spends a
 * large epsilon per round (shown in the table and on the compliance page) and learns little: it
 * shows the whole private pipeline, not private quality (docs/privacy.md has that table). FedAdam
 * tau 1e-4 sits near the noise per weight, so the noise is not amplified into the model.
 */
export function demoPrivateRoundSpec(clientsPerRound: number, learningRate: number, serverLearningRate: number): Omit<LaunchRequest, 'rounds'> {
  return {
    clientsPerRound,
    minClients: Math.max(SECAGG_MIN_COHORT, Math.floor(clientsPerRound * 0.75)),
    train: { epochs: 1, batchSize: 16, learningRate, optimizer: 'sgd' },
    aggregation: { serverOptimizer: 'fedadam', serverLearningRate, exampleCap: 64, beta1: 0.9, beta2: 0.99, tau: 1e-4 },
    deadlines: { checkinMs: 5_000, trainingMs: 60_000 },
    privacy: { mode: 'distributed', clip: 0.1, noiseMultiplier: 0.5, delta: 1e-6 },
    secagg: 'on',
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

/** The `round launch` line printed for the user, with the flags of the demo's own private rounds. */
export function launchHint(url: string, dataDir: string, spec: Omit<LaunchRequest, 'rounds'>): string {
  const k = spec.clientsPerRound;
  const flags = [`--server ${url}`, `--data-dir ${dataDir}`, `--clients-per-round ${k}`, `--min-clients ${defaultMinClients(k, 'distributed')}`, `--dp distributed --clip ${spec.privacy?.clip} --noise-multiplier ${spec.privacy?.noiseMultiplier}`, '--secagg on --wait'];
  return `npx portrait round launch ${flags.join(' ')}`;
}

function privacyCell(r: RoundRecord): string {
  const p = r.privacy;
  if (!p || p.mode === 'none') return 'none (no DP)';
  const eps = p.epsilonRound == null ? '' : ` eps ${p.epsilonRound.toFixed(2)} (total ${p.epsilonCumulative == null ? 'unbounded after the no-DP rounds' : p.epsilonCumulative.toFixed(2)})`;
  return `${p.mode} DP z=${p.noiseMultiplier}${eps}${r.secagg ? ` + SecAgg+ ${r.secagg.survivors}/${r.secagg.n}` : ''}`;
}

export function roundRow(r: RoundRecord): string {
  const h = r.metrics?.heads;
  const cells = [
    String(r.id).padEnd(5),
    r.status.padEnd(9),
    String(r.participants).padStart(7),
    ((r.durationMs ?? 0) / 1000).toFixed(1).padStart(7),
    fmt(h?.interests?.microAuc).padStart(18),
    fmt(h?.interests?.recallAt5).padStart(8),
    fmt(h?.purchase?.auc).padStart(12),
    privacyCell(r),
  ];
  return `${cells.join('  ')}${r.status === 'aborted' ? `  (${r.reason ?? 'no reason'})` : ''}`;
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
    .description('coordinator + dashboard + simulated fleet on a synthetic population; runs rounds and prints held-out metrics')
    .option('--rounds <N>', 'non-private rounds to run', '5')
    .option('--private-rounds <P>', 'then this many distributed-DP + SecAgg+ rounds (entered in the privacy ledger)', '1')
    .option('--private-clients <K>', 'cohort size of the private rounds', '40')
    .option('--exit', 'stop after the rounds instead of serving until Ctrl-C')
    .option('--port <port>', `TCP port (0 picks a free one; the default ${DEMO_PORT} falls back to a free one when taken)`, String(DEMO_PORT))
    .option('--data-dir <dir>', 'keep rounds and models here (default: a fresh temporary directory)')
    .option('--users <n>', 'synthetic population size', '600')
    .option('--clients-per-round <K>', 'cohort size', '100')
    .option('--epochs <E>', 'local epochs', '1')
    .option('--learning-rate <lr>', 'local SGD learning rate', '0.02')
    .option('--server-learning-rate <eta>', 'FedAdam server learning rate', '0.01')
    .option('--dropout <p>', 'per round, each device vanishes with probability p')
    .option('--backend <name>', 'tfjs backend: node-gpu | node | wasm | cpu')
    .option('--json', 'print { rounds: [...] } as JSON')
    .action(
      action(async (options: DemoOptions, command: Command) => {
        const int = parseInteger;
        const rounds = int('rounds', options.rounds, 1);
        const privateRounds = int('private-rounds', options.privateRounds, 0);
        const privateSpec = demoPrivateRoundSpec(int('private-clients', options.privateClients, 4), parseNumber('learning-rate', options.learningRate), parseNumber('server-learning-rate', options.serverLearningRate));
        const port = int('port', options.port, 0);
        const clientsPerRound = int('clients-per-round', options.clientsPerRound, 1);
        const spec = demoRoundSpec(clientsPerRound, int('epochs', options.epochs, 1), parseNumber('learning-rate', options.learningRate), parseNumber('server-learning-rate', options.serverLearningRate));
        const dropout = options.dropout === undefined ? undefined : parseNumber('dropout', options.dropout);

        const [{ useNodeBackend }, simulator] = await Promise.all([import('../../client/node/tfjs-backend.ts'), import('../../client/node/simulator.ts')]);
        await useNodeBackend(options.backend);
        const dataset = await loadDataset(`synthetic:${int('users', options.users, 20)}`);
        const prepared = prepareFleetData(dataset);
        const users = fleetUsers(prepared, new Set(prepared.examples.train.map((e) => e.userId)).size);
        if (users.length < clientsPerRound) throw new CliError('INVALID_ARGUMENT', `"clients-per-round" expected at most ${users.length} (devices in the population), got ${clientsPerRound}`);
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
              initialModel: { config: modelConfigFor(prepared, dataConfig(), 'mlp', false), seed: 1 },
              evaluation: { users: prepared.users.test, startDay: dataset.startDay },
              allowNoDp: true,
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
          const { rounds: launched } = await callApi<{ rounds: RoundRecord[] }>(coordinator.url, tokens.operator, 'POST', '/rounds', { ...spec, rounds });
          log(`launched ${rounds} rounds: ${clientsPerRound} clients per round, ${spec.train?.epochs} local epochs (SGD, lr ${spec.train?.learningRate}), FedAdam server lr ${spec.aggregation?.serverLearningRate}; no differential privacy (mode none)`);
          if (privateRounds > 0) {
            const { rounds: privately } = await callApi<{ rounds: RoundRecord[] }>(coordinator.url, tokens.operator, 'POST', '/rounds', { ...privateSpec, rounds: privateRounds });
            launched.push(...privately);
            log(`then ${privateRounds} private round(s): ${privateSpec.clientsPerRound} clients, distributed DP (z ${privateSpec.privacy?.noiseMultiplier}, clip ${privateSpec.privacy?.clip}) with SecAgg+, each entered in the signed privacy ledger before its sum is unmasked`);
          }
          const print = (line: string) => (options.json ? log(line) : process.stdout.write(`${line}\n`));
          print(ROUND_TABLE_HEADER);
          const records: RoundRecord[] = [];
          for (const r of launched) {
            const record = await waitForRound(coordinator.url, tokens.auditor, r.id);
            records.push(record);
            print(roundRow(record));
          }
          if (options.json) emit(options, { rounds: records }, () => '');
          if (options.exit) return;
          const dashboard = `${coordinator.url}/dashboard/#token=${tokens.auditor}`;
          log(`serving on ${coordinator.url} (data in ${dataDir}${temporary ? ', removed on exit; --data-dir keeps it' : ''}); dashboard: ${dashboard}`);
          log(`open the demo shop: ${coordinator.url}/shop  (a real browser joins the rounds; its portrait is computed on the device)`);
          log(`compliance page (privacy ledger): ${coordinator.url}/dashboard/compliance/#token=${tokens.auditor}`);
          log(`launch more private rounds: ${launchHint(coordinator.url, dataDir, privateSpec)}`);
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

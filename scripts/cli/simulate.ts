/**
 * `portrait simulate [--server URL] --clients N --dataset SPEC [--dropout P] ...`: a fleet of
 * simulated devices (one training user's data each, in worker threads) connected to a running
 * coordinator until Ctrl-C or `--duration`; then the fleet's counts (JSON with `--json`).
 */
import type { Command } from 'commander';
import { DROP_STAGES } from '../../client/core/drop-stages.ts';
import type { DropStage } from '../../client/core/drop-stages.ts';
import { checkEpsilonCap } from '../../client/core/privacy-ledger.ts';
import type { FleetFaults, FleetStats } from '../../client/node/simulator.ts';
import type { Dataset, UserRecord } from '../../shared/features/dataset.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import { chooseWindows } from '../../shared/features/windows.ts';
import type { PreparedData } from '../../shared/features/prepare.ts';
import { dataConfig } from '../lib/central-config.ts';
import { DEFAULT_DATA_DIR, DEFAULT_SERVER, resolveToken } from './api-client.ts';
import { loadDatasetArg } from './inputs.ts';
import { action, CliError, emit, log, parseNumber } from './output.ts';

interface SimulateOptions {
  server: string;
  clients: string;
  dataset: string;
  dropout?: string;
  dropAt?: string;
  dropFraction: string;
  slowFraction?: string;
  slowMs: string;
  vanishMidUpload?: string;
  rejoinMs: string;
  workers?: string;
  duration?: string;
  seed: string;
  token?: string;
  dataDir?: string;
  backend?: string;
  epsilonCap?: string;
  capDelta: string;
  json?: boolean;
}

/** The training users of the dataset's standard split that have at least one example: one device each. */
export function fleetUsers(prepared: PreparedData, count: number): UserRecord[] {
  const withExamples = new Set(prepared.examples.train.map((e) => e.userId));
  const users = prepared.users.train.filter((u) => withExamples.has(u.userId));
  if (count > users.length) throw new RangeError(`"clients" expected at most ${users.length} (training users with examples in this dataset), got ${count}`);
  return users.slice(0, count);
}

export function prepareFleetData(dataset: Dataset): PreparedData {
  // Windows from the dataset's own span, as the server chooses them for the same dataset.
  const data = dataConfig({ windows: chooseWindows(dataset.days) });
  return prepareData(dataset.users, dataset.startDay, dataset.days, data, false);
}

function probability(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const p = parseNumber(name, text);
  if (p < 0 || p > 1) throw new CliError('INVALID_ARGUMENT', `"${name}" expected a probability in [0, 1], got ${p}`);
  return p;
}

export function faultsFromOptions(options: Pick<SimulateOptions, 'dropout' | 'dropAt' | 'dropFraction' | 'slowFraction' | 'slowMs' | 'vanishMidUpload' | 'rejoinMs'>): FleetFaults {
  const faults: FleetFaults = { rejoinAfterMs: parseNumber('rejoin-ms', options.rejoinMs) };
  const dropout = probability('dropout', options.dropout);
  if (dropout !== undefined) faults.dropout = dropout;
  if (options.dropAt !== undefined) {
    if (!(DROP_STAGES as readonly string[]).includes(options.dropAt)) throw new CliError('INVALID_ARGUMENT', `"drop-at" expected one of ${DROP_STAGES.join(', ')}, got ${JSON.stringify(options.dropAt)}`);
    faults.dropAt = { stage: options.dropAt as DropStage, fraction: probability('drop-fraction', options.dropFraction) ?? 0 };
  }
  const slow = probability('slow-fraction', options.slowFraction);
  if (slow !== undefined) faults.slow = { fraction: slow, delayMs: parseNumber('slow-ms', options.slowMs) };
  const vanish = probability('vanish-mid-upload', options.vanishMidUpload);
  if (vanish !== undefined) faults.vanishMidUpload = vanish;
  return faults;
}

export function describeFleet(stats: FleetStats): string {
  const e = (k: string) => stats.events[k] ?? 0;
  const dropped = Object.entries(stats.dropped).map(([s, n]) => `${s} ${n}`).join(', ') || 'none';
  return `${stats.devices} devices in ${stats.workers} workers (${stats.backend}): ${e('checked-in')} check-ins, ${e('selected')} selections, ${e('trained')} trainings, ${e('update-sent')} updates accepted, ${e('secagg-finished')} SecAgg+ sessions ended, ${e('update-refused')} refused, ${e('deadline-missed')} late; dropped: ${dropped}`;
}

export function registerSimulateCommand(program: Command): void {
  program
    .command('simulate')
    .description('run a fleet of simulated devices (one user each, in worker threads) against a coordinator')
    .option('--server <url>', 'coordinator URL', DEFAULT_SERVER)
    .requiredOption('--clients <N>', 'number of simulated devices')
    .option('--dataset <spec>', 'synthetic:USERS | tianchi:DIR (devices are its training users)', 'synthetic:200')
    .option('--dropout <p>', 'per round, each device vanishes with probability p at a random stage')
    .option('--drop-at <stage>', `a fraction of devices vanish once at this stage: ${DROP_STAGES.join(' | ')}`)
    .option('--drop-fraction <f>', 'fraction of devices for --drop-at', '0.1')
    .option('--slow-fraction <f>', 'fraction of slow devices')
    .option('--slow-ms <ms>', 'delay before a slow device uploads', '5000')
    .option('--vanish-mid-upload <f>', 'fraction of devices that vanish mid-upload and never return')
    .option('--rejoin-ms <ms>', 'how long a dropped device stays away', '500')
    .option('--workers <W>', 'worker threads (default: one per core)')
    .option('--duration <s>', 'stop after this many seconds (default: until Ctrl-C)')
    .option('--seed <n>', 'fault assignment seed', '1')
    .option('--token <token>', 'operator API token to enroll the devices (or PORTRAIT_TOKEN; default: from --data-dir)')
    .option('--data-dir <dir>', "read the operator token from this server data directory's api-tokens.json", DEFAULT_DATA_DIR)
    .option('--backend <name>', 'tfjs backend in the workers: node-gpu | node | wasm | cpu')
    .option('--epsilon-cap <e>', "each device's own privacy cap: it refuses rounds that would take it past e")
    .option('--cap-delta <d>', 'delta of --epsilon-cap', '1e-6')
    .option('--json', 'print the fleet counts as JSON at the end')
    .action(
      action(async (options: SimulateOptions) => {
        const clients = parseNumber('clients', options.clients);
        if (!Number.isInteger(clients) || clients < 1) throw new CliError('INVALID_ARGUMENT', `"clients" expected a positive integer, got ${options.clients}`);
        const token = resolveToken(options, 'operator');
        const dataset = await loadDatasetArg(options.dataset);
        const users = fleetUsers(prepareFleetData(dataset), clients);
        const { runFleet } = await import('../../client/node/simulator.ts');
        const fleet = await runFleet({
          serverUrl: options.server,
          operatorToken: token,
          users,
          startDay: dataset.startDay,
          faults: faultsFromOptions(options),
          seed: parseNumber('seed', options.seed),
          ...(options.workers === undefined ? {} : { workers: parseNumber('workers', options.workers) }),
          ...(options.backend ? { backend: options.backend } : {}),
          ...(options.epsilonCap === undefined ? {} : { epsilonCap: checkEpsilonCap({ epsilon: parseNumber('epsilon-cap', options.epsilonCap), delta: parseNumber('cap-delta', options.capDelta) }) }),
          onEvent: (i, e) => {
            if (e.type === 'dropped') log(`device ${i} vanished at ${e.stage} (round ${e.roundId})`);
          },
        });
        log(`${fleet.size} simulated devices in ${fleet.workers} worker threads connecting to ${options.server}`);
        await fleet.waitConnected(fleet.size, 120_000);
        log('all devices connected; Ctrl-C to stop');
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
          if (options.duration !== undefined) setTimeout(resolve, parseNumber('duration', options.duration) * 1000).unref();
        });
        const stats = await fleet.stop();
        emit(options, stats, () => describeFleet(stats));
      }),
    );
}

/**
 * `portrait server [--port] [--host] [--data-dir] [--dataset]`: the coordinator on the embedded
 * default (SQLite and model files under the data directory). The dataset gives the initial
 * model's vocabulary (used only while the model store is empty) and the held-out test users the
 * server scores each new version on. Runs until SIGINT/SIGTERM.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { prepareData } from '../../shared/features/prepare.ts';
import { API_TOKENS_FILE } from '../../server/auth/bootstrap-tokens.ts';
import { parsePlatformPublicKey } from '../../server/auth/platform-key.ts';
import { loadDatasetArg } from './inputs.ts';
import { dataConfig, modelConfigFor } from '../lib/central-config.ts';
import { startOnPort } from './demo.ts';
import { action, emit, log, parseNumber } from './output.ts';

interface ServerOptions {
  port: string;
  host: string;
  dataDir: string;
  dataset: string;
  evaluation: boolean;
  seed: string;
  backend?: string;
  allowCentralDp?: boolean;
  allowNoDp?: boolean;
  demoShop?: boolean;
  platformPublicKey?: string;
  epsilonCap?: string;
  delta?: string;
  ledgerKey?: string;
  json?: boolean;
}

export function registerServerCommand(program: Command): void {
  program
    .command('server')
    .description('run the federated learning coordinator (Socket.IO + REST + model registry)')
    .option('--port <port>', 'TCP port (0 picks a free one)', '8080')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--data-dir <dir>', 'rounds, models, keys and API tokens', './data')
    .option('--dataset <spec>', 'initial vocabulary and held-out users: synthetic:USERS | tianchi:DIR | events:FILE', 'synthetic:200')
    .option('--no-evaluation', 'do not score new versions on held-out users')
    .option('--seed <n>', 'initial model seed', '1')
    .option('--backend <name>', 'tfjs backend: node-gpu | node | wasm | cpu')
    .option('--allow-central-dp', 'accept rounds in central DP mode (this server is trusted to add the noise)')
    .option('--allow-no-dp', 'accept rounds without differential privacy (baselines only; marked in every record)')
    .option('--epsilon-cap <e>', 'deployment privacy budget: launches and releases past this epsilon (at --delta) are refused')
    .option('--delta <d>', 'delta of the epsilon cap', '1e-5')
    .option('--demo-shop', 'let the demo shop page (/shop) fetch enrollment tokens itself, standing in for the shop platform')
    .option('--platform-public-key <hex|file>', 'verify enrollment tokens with the shop platform\'s key (64 hex characters or a `portrait platform keygen` file); this server then issues none')
    .option('--ledger-key <file>', 'the privacy ledger\'s signing key (JSON or PKCS#8 PEM; written when the ledger is created), kept outside the data directory in production (default: PORTRAIT_LEDGER_KEY_FILE, else ledger-key.json in --data-dir)')
    .option('--json', 'print the address as one JSON document')
    .action(
      action(async (options: ServerOptions) => {
        const { useNodeBackend } = await import('../../client/node/tfjs-backend.ts');
        await useNodeBackend(options.backend);
        const port = parseNumber('port', options.port);
        const dataset = await loadDatasetArg(options.dataset);
        const data = dataConfig();
        const prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, false);
        const dataDir = path.resolve(options.dataDir);
        // A coordinator's port is what its clients are configured with: a busy one is refused
        // (UNAVAILABLE, naming --port 0), never swapped for another.
        const coordinator = await startOnPort({
          dataDir,
          port,
          host: options.host,
          initialModel: { config: modelConfigFor(prepared, data, 'mlp', false), seed: parseNumber('seed', options.seed) },
          ...(options.evaluation ? { evaluation: { users: prepared.users.test, startDay: dataset.startDay } } : {}),
          allowCentralDp: options.allowCentralDp === true,
          allowNoDp: options.allowNoDp === true,
          demoShopTokens: options.demoShop === true,
          ...(options.platformPublicKey !== undefined ? { platformPublicKey: parsePlatformPublicKey(options.platformPublicKey) } : {}),
          ...(options.ledgerKey !== undefined ? { ledgerKeyFile: path.resolve(options.ledgerKey) } : {}),
          ...(options.epsilonCap !== undefined ? { epsilonCap: { epsilon: parseNumber('epsilon-cap', options.epsilonCap), delta: parseNumber('delta', options.delta ?? '1e-5') } } : {}),
          log,
        }, true);
        emit(options, { url: coordinator.url, port: coordinator.port, dataDir, apiTokens: path.join(dataDir, API_TOKENS_FILE), modelVersion: coordinator.registry.current.record.version }, () =>
          `coordinator listening on ${coordinator.url} (data in ${dataDir}; API tokens in ${path.join(dataDir, API_TOKENS_FILE)})`,
        );
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        log('shutting down');
        await coordinator.close();
      }),
    );
}

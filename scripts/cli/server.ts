/**
 * `portrait server [--port] [--host] [--data-dir] [--dataset | --catalog | --category-hash-space]
 * [--production]`: the coordinator on the embedded default (SQLite and model files under the data
 * directory). The initial model's vocabulary (used only while the model store is empty) comes from
 * the shop's public catalogue (`--catalog`), from nothing but N category hash buckets when the
 * catalogue is unknown (`--category-hash-space`; heavy-hitter discovery and `model bootstrap` name
 * the categories later, docs/analytics.md), or, in a simulation, from a dataset of user events,
 * whose held-out test users the server then scores each new version on. `--production` refuses every
 * option that would put shoppers' events (or trust in their raw updates) on this server; see
 * docs/catalog.md. Runs until SIGINT/SIGTERM.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { prepareData } from '../../shared/features/prepare.ts';
import { hashSpaceVocabulary, headsForVocabulary, MAX_HASH_BUCKETS } from '../../shared/analytics/bootstrap.ts';
import { CatalogError, catalogCategoryIds, catalogVocabulary, parseCatalog } from '../../shared/features/shop-catalog.ts';
import type { CatalogFormat } from '../../shared/features/shop-catalog.ts';
import { makeModelConfig } from '../../shared/model/spec.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';
import type { EmbeddedOptions } from '../../server/embedded.ts';
import { API_TOKENS_FILE } from '../../server/auth/bootstrap-tokens.ts';
import { parsePlatformPublicKey } from '../../server/auth/platform-key.ts';
import { loadDatasetArg, readInputFile } from './inputs.ts';
import { dataConfig, modelConfigFor, modelConfigForVocabulary } from '../lib/central-config.ts';
import type { DataConfig } from '../../shared/features/prepare.ts';
import { addWindowOptions, windowLines, windowsFromFlags } from './central.ts';
import type { WindowFlags } from './central.ts';
import { startOnPort } from './demo.ts';
import { action, CliError, emit, log, parseInteger, parseNumber } from './output.ts';

const DEFAULT_DATASET = 'synthetic:200';

interface ServerOptions extends WindowFlags {
  port: string;
  host: string;
  dataDir: string;
  dataset?: string;
  catalog?: string;
  categoryHashSpace?: string;
  production?: boolean;
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
  postgres?: string;
  redis?: string;
  nodeId?: string;
  advertiseUrl?: string;
  leaseTtl?: string;
  json?: boolean;
}

/**
 * Cluster mode: `--postgres URL --redis URL` (or PORTRAIT_POSTGRES_URL / PORTRAIT_REDIS_URL), both
 * or neither; null for the embedded default.
 */
function clusterUrls(options: ServerOptions): { postgresUrl: string; redisUrl: string } | null {
  const postgresUrl = options.postgres ?? (process.env.PORTRAIT_POSTGRES_URL || undefined);
  const redisUrl = options.redis ?? (process.env.PORTRAIT_REDIS_URL || undefined);
  if (postgresUrl === undefined && redisUrl === undefined) return null;
  if (postgresUrl === undefined || redisUrl === undefined) throw new CliError('INVALID_ARGUMENT', `a cluster node needs both "--postgres" and "--redis" (or PORTRAIT_POSTGRES_URL and PORTRAIT_REDIS_URL); got only ${postgresUrl === undefined ? '--redis' : '--postgres'}`);
  return { postgresUrl, redisUrl };
}

/**
 * What `--production` refuses, and why. Each would put shoppers' events on this server, or let it
 * see or release what distributed DP with secure aggregation keeps from it.
 */
const REFUSED_IN_PRODUCTION: readonly { flag: string; given: (o: ServerOptions, command: Command) => boolean; why: string }[] = [
  { flag: '--dataset', given: (o, command) => o.dataset !== undefined && command.getOptionValueSource('dataset') !== 'default', why: "it puts user events on this server; a shop's initial vocabulary comes from its public catalog (--catalog FILE), or from a category hash space when the catalog is unknown (--category-hash-space N)" },
  { flag: '--allow-no-dp', given: (o) => o.allowNoDp === true, why: 'it lets this server release models trained without differential privacy, which can memorise single shoppers' },
  { flag: '--allow-central-dp', given: (o) => o.allowCentralDp === true, why: "it trusts this server to add the noise, so this server would see the sum of shoppers' unnoised updates" },
];

function checkProduction(options: ServerOptions, command: Command): void {
  for (const refused of REFUSED_IN_PRODUCTION) {
    if (refused.given(options, command)) throw new CliError('INVALID_ARGUMENT', `"${refused.flag}" is refused with --production: ${refused.why}`);
  }
  if (options.catalog === undefined && options.categoryHashSpace === undefined) throw new CliError('INVALID_ARGUMENT', '"--catalog" is required with --production: the initial vocabulary comes from the shop\'s public catalog (CSV or JSON; see docs/catalog.md), since a production server holds no user events; when the catalog is unknown, start from --category-hash-space N and discover the categories (docs/analytics.md, "Starting without a catalog")');
}

/**
 * `--category-hash-space N`: the initial model config when the catalogue is unknown: no named
 * category, N hash buckets, and no interests head until a bootstrap names categories
 * (hashSpaceVocabulary in shared/analytics/bootstrap.ts).
 */
function hashSpaceModelConfig(text: string, data: DataConfig): ModelConfig {
  const buckets = parseInteger('category-hash-space', text);
  if (buckets < 1 || buckets > MAX_HASH_BUCKETS) throw new CliError('INVALID_ARGUMENT', `"--category-hash-space" expected an integer in [1, ${MAX_HASH_BUCKETS}], got ${buckets}`);
  const vocabulary = hashSpaceVocabulary(buckets);
  const { sensitiveHeads: _derived, ...config } = modelConfigForVocabulary(vocabulary, data, 'mlp', false);
  log(`initial vocabulary: no named category, ${buckets} category hash buckets (no catalog); the model has no interests head until portrait vocabulary discover and portrait model bootstrap name the categories`);
  return makeModelConfig({ ...config, heads: headsForVocabulary(config.heads, vocabulary, vocabulary), vocabulary });
}

function catalogFormatOf(file: string): CatalogFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  return ext === '.csv' ? 'csv' : ext === '.json' ? 'json' : undefined;
}

/**
 * The initial model config from `--catalog FILE`, parsed before tfjs loads so a bad catalogue
 * fails at once, and the catalogue's categories (what category-counts analytics queries count over).
 */
function catalogModelConfig(file: string, data: DataConfig): { config: ModelConfig; categories: string[] } {
  const text = readInputFile('catalog', file);
  try {
    const format = catalogFormatOf(file);
    const catalog = format === undefined ? parseCatalog(text) : parseCatalog(text, format);
    const vocabulary = catalogVocabulary(catalog, { topK: data.topK, hashBuckets: data.hashBuckets });
    log(`initial vocabulary from catalog ${path.resolve(file)}: ${vocabulary.categories.length} of ${catalog.categories.length} categories, ${catalog.prices.length} product${catalog.prices.length === 1 ? '' : 's'} with a list price`);
    if (catalog.prices.length === 0) log('warning: the catalog lists no prices, so the price features and the spending tier carry no information (add a "price" column; see docs/catalog.md)');
    return { config: modelConfigForVocabulary(vocabulary, data, 'mlp', false), categories: catalogCategoryIds(catalog) };
  } catch (err) {
    if (err instanceof CatalogError) throw new CliError('INVALID_ARGUMENT', `"catalog" ${path.resolve(file)}: ${err.message}`);
    throw err;
  }
}

export function registerServerCommand(program: Command): void {
  addWindowOptions(program
    .command('server')
    .description('run the federated learning coordinator (Socket.IO + REST + model registry)')
    .option('--port <port>', 'TCP port (0 picks a free one)', '8080')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--data-dir <dir>', 'rounds, models, keys and API tokens', './data')
    .option('--dataset <spec>', 'simulation only: initial vocabulary and held-out users from user events: synthetic:USERS | tianchi:DIR | events:FILE', DEFAULT_DATASET)
    .option('--catalog <file>', "initial vocabulary from the shop's public catalog (CSV or JSON; docs/catalog.md), with no user events on this server")
    .option('--category-hash-space <N>', `when the shop's catalog is unknown: an initial vocabulary of no named category and N hash buckets (1-${MAX_HASH_BUCKETS}), no interests head until \`portrait vocabulary discover\` and \`portrait model bootstrap\` name the categories (docs/analytics.md)`)
    .option('--production', 'a shop\'s deployment: requires --catalog (or --category-hash-space); refuses --dataset, --allow-no-dp and --allow-central-dp; no held-out evaluation; new versions are served only once promoted')
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
    .option('--postgres <url>', 'run as one node of a cluster: rounds, models, ledger and tokens in this PostgreSQL database (default: PORTRAIT_POSTGRES_URL); needs --redis; --data-dir is then the deployment\'s key directory, the same on every node (docs/cluster.md)')
    .option('--redis <url>', 'a cluster node\'s Redis, joining the nodes\' Socket.IO servers (default: PORTRAIT_REDIS_URL); needs --postgres')
    .option('--node-id <id>', 'a cluster node\'s name (default: host name, process id and a random suffix)')
    .option('--advertise-url <url>', 'the address other nodes and operators reach this cluster node at, shown in the cluster view (default: PORTRAIT_ADVERTISE_URL, else its listening address)')
    .option('--lease-ttl <ms>', 'a cluster\'s rounds lease: how long a dead leader\'s rounds wait before another node takes them over', '6000')
    .option('--json', 'print the address as one JSON document'))
    .action(
      action(async (options: ServerOptions, command: Command) => {
        const production = options.production === true;
        if (production) checkProduction(options, command);
        const explicitDataset = command.getOptionValueSource('dataset') !== 'default';
        const sources = [options.catalog !== undefined && '--catalog', options.categoryHashSpace !== undefined && '--category-hash-space', explicitDataset && '--dataset'].filter((s): s is string => s !== false);
        if (sources.length > 1) throw new CliError('INVALID_ARGUMENT', `"${sources[0]}" and "${sources[1]}" both give the initial vocabulary: pass one`);
        const port = parseNumber('port', options.port);
        const data = dataConfig();
        const catalog = options.catalog === undefined ? undefined : catalogModelConfig(options.catalog, data);
        // Without user events: the catalog's vocabulary, or a hash space when the catalog is unknown.
        const eventFreeConfig = catalog?.config ?? (options.categoryHashSpace === undefined ? undefined : hashSpaceModelConfig(options.categoryHashSpace, data));
        const { useNodeBackend } = await import('../../client/node/tfjs-backend.ts');
        await useNodeBackend(options.backend);
        let config: ModelConfig;
        let evaluation: Pick<EmbeddedOptions, 'evaluation' | 'simulationDataset'> = {};
        const windowFlag = ([['historyDays', '--history-days'], ['horizonDays', '--horizon-days'], ['cutEvery', '--cut-every'], ['maxCutsPerUser', '--max-cuts-per-user']] as const).find(([key]) => options[key] !== undefined)?.[1];
        if (eventFreeConfig !== undefined && windowFlag !== undefined) throw new CliError('INVALID_ARGUMENT', `"${windowFlag}" sets the windows from a dataset's span: it goes with --dataset, not with a catalog or a hash space`);
        if (eventFreeConfig !== undefined) config = eventFreeConfig;
        else {
          const spec = options.dataset ?? DEFAULT_DATASET;
          log(`--dataset ${spec} puts ${spec.startsWith('synthetic:') ? 'simulated ' : ''}user events on this server (simulation only; use --production --catalog FILE for a shop)`);
          const dataset = await loadDatasetArg(spec);
          // Windows from the dataset's own span (and the window flags), as train-central chooses them.
          const windowed = dataConfig({ windows: windowsFromFlags(options, dataset) });
          const prepared = prepareData(dataset.users, dataset.startDay, dataset.days, windowed, false);
          for (const line of windowLines(prepared)) log(line);
          config = modelConfigFor(prepared, windowed, 'mlp', false);
          evaluation = { simulationDataset: spec, ...(options.evaluation ? { evaluation: { users: prepared.users.test, startDay: dataset.startDay } } : {}) };
        }
        if (production) log(`production mode: no user events on this server (vocabulary from ${catalog ? 'the catalog' : 'a category hash space'}, no held-out evaluation); rounds without DP or under central DP are refused`);
        const dataDir = path.resolve(options.dataDir);
        const urls = clusterUrls(options);
        const common = {
          port,
          host: options.host,
          initialModel: { config, seed: parseNumber('seed', options.seed) },
          ...evaluation,
          allowCentralDp: options.allowCentralDp === true,
          allowNoDp: options.allowNoDp === true,
          demoShopTokens: options.demoShop === true,
          ...(catalog ? { catalogCategories: catalog.categories } : {}),
          // A shop's devices profile with a promoted version only (portrait model promote).
          ...(production ? { servingPolicy: 'promoted' as const } : {}),
          ...(options.platformPublicKey !== undefined ? { platformPublicKey: parsePlatformPublicKey(options.platformPublicKey) } : {}),
          ...(options.ledgerKey !== undefined ? { ledgerKeyFile: path.resolve(options.ledgerKey) } : {}),
          ...(options.epsilonCap !== undefined ? { epsilonCap: { epsilon: parseNumber('epsilon-cap', options.epsilonCap), delta: parseNumber('delta', options.delta ?? '1e-5') } } : {}),
          log,
        };
        // A coordinator's port is what its clients are configured with: a busy one is refused
        // (UNAVAILABLE, naming --port 0), never swapped for another.
        const coordinator = urls
          ? await (await import('../../server/cluster/node.ts')).startClusterNode({ ...common, ...urls, keyDir: dataDir, leaseTtlMs: parseNumber('lease-ttl', options.leaseTtl ?? '6000'), ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}), ...((options.advertiseUrl ?? process.env.PORTRAIT_ADVERTISE_URL) ? { advertiseUrl: (options.advertiseUrl ?? process.env.PORTRAIT_ADVERTISE_URL)! } : {}) })
          : await startOnPort({ ...common, dataDir }, true);
        // The initial config only seeds an empty model store: a data directory that already holds a
        // model (say, from a simulation) keeps that model's vocabulary, which the operator should know.
        const served = coordinator.registry.current;
        if (catalog !== undefined && JSON.stringify(served.config.vocabulary) !== JSON.stringify(catalog.config.vocabulary)) {
          log(`warning: ${dataDir} already holds model version ${served.record.version}, whose vocabulary is not this catalog's; it is kept (the catalog's vocabulary seeds an empty data directory only)`);
        }
        const node = coordinator.cluster?.nodeId;
        emit(options, { url: coordinator.url, port: coordinator.port, dataDir, apiTokens: path.join(dataDir, API_TOKENS_FILE), modelVersion: coordinator.registry.current.record.version, production, ...(node !== undefined ? { nodeId: node } : {}) }, () =>
          node !== undefined
            ? `cluster node ${node}${production ? ' (production mode)' : ''} listening on ${coordinator.url} (keys in ${dataDir}; API tokens in ${path.join(dataDir, API_TOKENS_FILE)})`
            : `coordinator${production ? ' (production mode)' : ''} listening on ${coordinator.url} (data in ${dataDir}; API tokens in ${path.join(dataDir, API_TOKENS_FILE)})`,
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

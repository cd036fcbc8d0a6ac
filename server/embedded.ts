/**
 * The embedded default deployment: one process, SQLite and model files under the data directory,
 * the platform's enrollment key beside them, and API tokens bootstrapped on first start (an
 * operator and an auditor token written once to `api-tokens.json`, mode 0600; only their hashes
 * are stored in the database).
 */
import net from 'node:net';
import { createApiToken } from './auth/api-tokens.ts';
import { writeApiTokens } from './auth/bootstrap-tokens.ts';
import { loadOrCreatePlatformKey } from './auth/platform-key.ts';
import { startCoordinator } from './coordinator.ts';
import type { Coordinator, CoordinatorOptions } from './coordinator.ts';
import { dataDirWriteProbe } from './storage/readiness.ts';
import { openSqliteStores } from './storage/sqlite.ts';
import { acquireDataDirLock } from './data-dir-lock.ts';
import type { BudgetCap } from '../shared/ledger/bundle.ts';
import { openDataDirLedger, writeBudgetCap } from './ledger/data-dir.ts';

export { API_TOKENS_FILE, readApiTokens } from './auth/bootstrap-tokens.ts';
export type { BootstrapTokens } from './auth/bootstrap-tokens.ts';

export interface EmbeddedOptions extends Omit<CoordinatorOptions, 'rounds' | 'models' | 'tokens' | 'platformPublicKey' | 'platformSecretKey' | 'onClose' | 'ledger' | 'storageProbe'> {
  dataDir: string;
  /** Deployment privacy budget: launches and releases beyond this epsilon at delta are refused. */
  epsilonCap?: BudgetCap;
  /**
   * The shop platform's public key, when the platform is separate: tokens are verified with it and
   * this coordinator holds no platform secret (it issues no tokens). Default: the data directory's
   * own key pair (the coordinator is also the platform).
   */
  platformPublicKey?: Uint8Array;
  /**
   * The ledger signing key's file, kept apart from the data directory in production (default:
   * PORTRAIT_LEDGER_KEY_FILE, else ledger-key.json in the data directory; docs/ledger.md).
   */
  ledgerKeyFile?: string;
}

/** Resolves when `port` can be listened on, or rejects with listen's own error (EADDRINUSE when busy). */
function checkPortFree(port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

export async function startEmbeddedCoordinator(options: EmbeddedOptions): Promise<Coordinator & { dataDir: string }> {
  const { dataDir, epsilonCap, platformPublicKey, ledgerKeyFile, ...rest } = options;
  if (platformPublicKey && rest.demoShopTokens) throw new RangeError('"demoShopTokens" needs the platform secret key: it cannot be combined with an external "platformPublicKey"');
  // A busy port is refused before the data directory is touched: a start that fails there leaves
  // no lock, database, keys or token file behind. (Only a race can still take it before listen.)
  if (options.port && !options.freePortIfBusy) await checkPortFree(options.port, options.host ?? '127.0.0.1');
  const release = acquireDataDirLock(dataDir);
  let stores: ReturnType<typeof openSqliteStores> | undefined;
  let ledgerStore: { close(): void } | undefined;
  try {
    stores = openSqliteStores(dataDir);
    const { ledger, store } = await openDataDirLedger(dataDir, { cap: epsilonCap ?? null, ...(options.clock ? { clock: options.clock } : {}), ...(ledgerKeyFile !== undefined ? { keyFile: ledgerKeyFile } : {}), ...(options.log ? { log: options.log } : {}) });
    ledgerStore = store;
    writeBudgetCap(dataDir, epsilonCap ?? null);
    if ((await stores.tokens.all()).length === 0) {
      const now = new Date().toISOString();
      const operator = await createApiToken(stores.tokens, 'bootstrap operator', 'operator', now);
      const auditor = await createApiToken(stores.tokens, 'bootstrap auditor', 'auditor', now);
      const file = writeApiTokens(dataDir, { operator: operator.token, auditor: auditor.token });
      options.log?.(`API tokens written to ${file}`);
    }
    const key = platformPublicKey ? { publicKey: platformPublicKey } : loadOrCreatePlatformKey(dataDir);
    const coordinator = await startCoordinator({
      ...rest,
      rounds: stores.rounds,
      models: stores.models,
      tokens: stores.tokens,
      platformPublicKey: key.publicKey,
      ...('secretKey' in key ? { platformSecretKey: key.secretKey } : {}),
      ledger,
      // Readiness (/readyz) probes the data directory with a small write: a full disk answers 503.
      storageProbe: dataDirWriteProbe(dataDir),
      onClose: () => {
        stores?.close();
        store.close();
        release();
      },
    });
    return { ...coordinator, dataDir };
  } catch (err) {
    stores?.close();
    ledgerStore?.close();
    release();
    throw err;
  }
}

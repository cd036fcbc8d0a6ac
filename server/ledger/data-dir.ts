/**
 * The embedded default's ledger under the data directory: `ledger.db` (SqliteLedgerStore) and
 * its signing key (key.ts): `ledger-key.json` in the data directory unless a key file is named
 * (`keyFile`, else PORTRAIT_LEDGER_KEY_FILE). In production the key lives apart from the data:
 * whoever holds both can re-sign a history, and only a head an auditor kept exposes it
 * (docs/ledger.md). The crash-test seam is wired in when its variable is set, and key rotation
 * runs in the order that survives a crash (new key file, signed entry, rename).
 */
import fs from 'node:fs';
import path from 'node:path';
import { BudgetCapSchema, checkBudgetCap } from '../../shared/ledger/bundle.ts';
import type { BudgetCap } from '../../shared/ledger/bundle.ts';
import { crashHookFromEnv } from './crash-seam.ts';
import { commitNextKey, generateLedgerKey, LEDGER_KEY_FILE, nextKeyFile, resolveLedgerKey, stageNextKey } from './key.ts';
import { PrivacyLedger } from './ledger.ts';
import { SqliteLedgerStore } from './sqlite.ts';

export function softwareVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return `${pkg.name}/${pkg.version}`;
}

/** The deployment cap the coordinator last ran with, for offline audits of the data directory. */
export const BUDGET_CAP_FILE = 'budget-cap.json';

/** Records the cap this coordinator runs with (null: none), replacing the file atomically. */
export function writeBudgetCap(dataDir: string, cap: BudgetCap | null): void {
  const file = path.join(dataDir, BUDGET_CAP_FILE);
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify({ cap, since: new Date().toISOString() })}\n`);
  fs.renameSync(tmp, file);
}

/** The cap recorded by `writeBudgetCap`, or null when none was (or the file is unreadable). */
export function readBudgetCap(dataDir: string): BudgetCap | null {
  try {
    const body = JSON.parse(fs.readFileSync(path.join(dataDir, BUDGET_CAP_FILE), 'utf8')) as { cap?: unknown };
    return BudgetCapSchema.nullable().catch(null).parse(body.cap ?? null);
  } catch {
    return null;
  }
}

/** Names the ledger key file kept outside the data directory (`portrait server --ledger-key` does too). */
export const LEDGER_KEY_FILE_ENV = 'PORTRAIT_LEDGER_KEY_FILE';

export interface DataDirLedgerOptions {
  cap?: BudgetCap | null;
  clock?: () => number;
  /** Where the crash seam and PORTRAIT_LEDGER_KEY_FILE are read from; default process.env. */
  env?: Record<string, string | undefined>;
  /** The ledger key file; default PORTRAIT_LEDGER_KEY_FILE, else ledger-key.json in the data directory. */
  keyFile?: string;
  /** Write a new key when the key file is absent (a first start); false: refuse (audit commands). Default true. */
  createKey?: boolean;
  log?: (line: string) => void;
}

/** The ledger key file `options` name for `dataDir`, absolute. */
export function ledgerKeyFile(dataDir: string, options: Pick<DataDirLedgerOptions, 'keyFile' | 'env'> = {}): string {
  const named = options.keyFile ?? (options.env ?? process.env)[LEDGER_KEY_FILE_ENV];
  return path.resolve(named !== undefined && named !== '' ? named : path.join(dataDir, LEDGER_KEY_FILE));
}

export async function openDataDirLedger(dataDir: string, options: DataDirLedgerOptions = {}): Promise<{ ledger: PrivacyLedger; store: SqliteLedgerStore; keyFile: string }> {
  if (options.cap) checkBudgetCap(options.cap);
  const env = options.env ?? process.env;
  const crash = crashHookFromEnv(env);
  const keyFile = ledgerKeyFile(dataDir, { ...options, env });
  const inDataDir = path.join(path.resolve(dataDir), LEDGER_KEY_FILE);
  if (keyFile !== inDataDir && fs.existsSync(inDataDir)) {
    options.log?.(`warning: the ledger key is read from ${keyFile}, but ${inDataDir} is still in the data directory: whoever holds both the data directory and a ledger key can re-sign its history; once the coordinator runs with ${keyFile}, delete the copy in the data directory`);
  }
  const store = SqliteLedgerStore.inDataDir(dataDir, crash ? (entry) => entry.kind === 'round' && crash('mid-ledger-write') : undefined);
  try {
    // open() verifies the stored chain once and hands over its current key to resolve the key file.
    // A key is created only with the ledger: an existing ledger whose key file is not where we look
    // needs its key named, never a fresh one (which could not sign for it anyway).
    const key = (currentKey: string | null) => {
      if (currentKey !== null && !fs.existsSync(keyFile) && !fs.existsSync(nextKeyFile(keyFile))) {
        throw new RangeError(`"ledger key" expected at ${keyFile}, found none, but the ledger in ${path.resolve(dataDir)} exists (its current key is ${currentKey}): name its key file with --ledger-key FILE or ${LEDGER_KEY_FILE_ENV}`);
      }
      return resolveLedgerKey(keyFile, currentKey, (options.createKey ?? true) && currentKey === null);
    };
    const ledger = await PrivacyLedger.open({ store, key, software: softwareVersion(), cap: options.cap ?? null, ...(options.clock ? { clock: options.clock } : {}), ...(crash ? { crash } : {}) });
    return { ledger, store, keyFile };
  } catch (err) {
    store.close();
    throw err;
  }
}

/** Rotates the ledger key kept in `keyFile`: returns the new public key (hex). */
export async function rotateLedgerKeyFile(keyFile: string, ledger: PrivacyLedger, reason: string): Promise<string> {
  const next = generateLedgerKey();
  stageNextKey(keyFile, next);
  await ledger.rotateKey(next, reason);
  commitNextKey(keyFile);
  return ledger.publicKey;
}

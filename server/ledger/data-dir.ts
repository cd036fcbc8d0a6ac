/**
 * The embedded default's ledger under the data directory: `ledger.db` (SqliteLedgerStore) and
 * `ledger-key.json` (key.ts), with the crash-test seam wired in when its variable is set, and
 * key rotation in the order that survives a crash (new key file, signed entry, rename).
 */
import fs from 'node:fs';
import path from 'node:path';
import { BudgetCapSchema, checkBudgetCap } from '../../shared/ledger/bundle.ts';
import type { BudgetCap } from '../../shared/ledger/bundle.ts';
import { crashHookFromEnv } from './crash-seam.ts';
import { generateLedgerKey, LEDGER_KEY_FILE, NEXT_LEDGER_KEY_FILE, resolveLedgerKey, writeKeyFile } from './key.ts';
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

export interface DataDirLedgerOptions {
  cap?: BudgetCap | null;
  clock?: () => number;
  /** Where the crash seam is read from; default process.env. */
  env?: Record<string, string | undefined>;
}

export async function openDataDirLedger(dataDir: string, options: DataDirLedgerOptions = {}): Promise<{ ledger: PrivacyLedger; store: SqliteLedgerStore }> {
  if (options.cap) checkBudgetCap(options.cap);
  const crash = crashHookFromEnv(options.env ?? process.env);
  const store = SqliteLedgerStore.inDataDir(dataDir, crash ? (entry) => entry.kind === 'round' && crash('mid-ledger-write') : undefined);
  try {
    // open() verifies the stored chain once and hands over its current key to resolve the key file.
    const key = (currentKey: string | null) => resolveLedgerKey(dataDir, currentKey);
    const ledger = await PrivacyLedger.open({ store, key, software: softwareVersion(), cap: options.cap ?? null, ...(options.clock ? { clock: options.clock } : {}), ...(crash ? { crash } : {}) });
    return { ledger, store };
  } catch (err) {
    store.close();
    throw err;
  }
}

/** Rotates the ledger key of a data directory: returns the new public key (hex). */
export async function rotateDataDirKey(dataDir: string, ledger: PrivacyLedger, reason: string): Promise<string> {
  const next = generateLedgerKey();
  writeKeyFile(path.join(dataDir, NEXT_LEDGER_KEY_FILE), next);
  await ledger.rotateKey(next, reason);
  fs.renameSync(path.join(dataDir, NEXT_LEDGER_KEY_FILE), path.join(dataDir, LEDGER_KEY_FILE));
  return ledger.publicKey;
}

/**
 * The app client: one device, one user's data from an events file (JSONL or CSV, as the events
 * importer reads them), running the platform-free FL client of client/core in Node. The events
 * never leave this process; only weight deltas do.
 * Note: it reuses the events importer of scripts/import (an outward import, kept to one place).
 */
import type { UserRecord } from '../../shared/features/dataset.ts';
import { userExamples } from '../../shared/features/examples.ts';
import { featureContext } from '../../shared/features/extract.ts';
import { loadEventsFile } from '../../scripts/import/events-file.ts';
import fs from 'node:fs';
import path from 'node:path';
import { FederatedClient } from '../core/client.ts';
import { ClientPrivacyLedger, textLedgerStorage } from '../core/privacy-ledger.ts';
import type { ClientEpsilonCap, ClientLedgerStorage } from '../core/privacy-ledger.ts';
import type { FederatedClientOptions } from '../core/client.ts';
import { useNodeBackend } from './tfjs-backend.ts';

export interface AppClientOptions extends Omit<FederatedClientOptions, 'examples'> {
  eventsFile: string;
  /** Which user of the file this device is; required when the file holds several. */
  userId?: string;
  /**
   * First day of the training windows (UTC days since the epoch). The model config does not carry
   * it, so by default it is the first day of this file, which shifts the cut days if the file
   * starts later than the population's data.
   */
  startDay?: number;
  /** This device's own privacy cap: rounds that would take it past are refused (client/core/privacy-ledger.ts). */
  epsilonCap?: ClientEpsilonCap;
  /** Where the device's privacy ledger is kept (JSON); default `<eventsFile>.privacy-ledger.json`. */
  ledgerFile?: string;
}

/** The device ledger in a JSON file, replaced atomically (temp file, rename), mode 0600. */
export function fileLedgerStorage(file: string): ClientLedgerStorage {
  return textLedgerStorage(
    async () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null),
    async (text) => {
      // Durable before the update leaves the device: write, fsync, rename, fsync the directory.
      const fd = fs.openSync(`${file}.tmp`, 'w', 0o600);
      try {
        fs.writeSync(fd, text);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(`${file}.tmp`, file);
      const dir = fs.openSync(path.dirname(path.resolve(file)), 'r');
      try {
        fs.fsyncSync(dir);
      } finally {
        fs.closeSync(dir);
      }
    },
  );
}

export async function loadDeviceUser(eventsFile: string, userId?: string): Promise<{ user: UserRecord; startDay: number }> {
  const dataset = await loadEventsFile(eventsFile);
  const users = userId === undefined ? dataset.users : dataset.users.filter((u) => u.userId === userId);
  if (users.length !== 1) {
    throw new RangeError(userId === undefined ? `"eventsFile" expected one user's events, found ${dataset.users.length} users (pass userId)` : `"userId" ${JSON.stringify(userId)} not found in ${eventsFile}`);
  }
  return { user: users[0] as UserRecord, startDay: dataset.startDay };
}

/** Starts the device: features are built with the vocabulary and windows of each model version it trains. */
export async function startAppClient(options: AppClientOptions): Promise<FederatedClient> {
  await useNodeBackend();
  const { eventsFile, userId, startDay: fixedStart, epsilonCap, ledgerFile, ...rest } = options;
  const privacyLedger = epsilonCap ? await ClientPrivacyLedger.open(fileLedgerStorage(ledgerFile ?? `${eventsFile}.privacy-ledger.json`), epsilonCap) : rest.privacyLedger;
  const loaded = await loadDeviceUser(eventsFile, userId);
  const { user } = loaded;
  const startDay = fixedStart ?? loaded.startDay;
  return new FederatedClient({ ...rest, ...(privacyLedger ? { privacyLedger } : {}), examples: (config) => userExamples(user, featureContext(config.vocabulary, startDay), { windows: config.windows }), analyticsEvents: () => user.events }).start();
}

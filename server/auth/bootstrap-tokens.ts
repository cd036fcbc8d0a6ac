/**
 * The bootstrap tokens file, `api-tokens.json` in a data directory: the operator and auditor
 * tokens the embedded coordinator writes once at its first start (mode 0600). Kept apart from
 * server/embedded.ts so the CLI's client commands read it without loading the coordinator.
 */
import fs from 'node:fs';
import path from 'node:path';

export const API_TOKENS_FILE = 'api-tokens.json';

export interface BootstrapTokens {
  operator: string;
  auditor: string;
}

export function readApiTokens(dataDir: string): BootstrapTokens | undefined {
  const file = path.join(dataDir, API_TOKENS_FILE);
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, 'utf8')) as BootstrapTokens;
}

export function writeApiTokens(dataDir: string, tokens: BootstrapTokens): string {
  const file = path.join(dataDir, API_TOKENS_FILE);
  fs.writeFileSync(file, `${JSON.stringify(tokens, null, 2)}\n`, { mode: 0o600 });
  return file;
}

/**
 * The coordinator's Ed25519 ledger key (tweetnacl) in `ledger-key.json` under the data
 * directory, mode 0600, written atomically. A rotation first writes the new key to
 * `ledger-key.next.json`, then appends the signed rotation entry, then renames the new key over
 * the old: after a crash in between, `resolveLedgerKey` keeps whichever key the ledger names.
 */
import fs from 'node:fs';
import path from 'node:path';
import nacl from 'tweetnacl';
import { fromHex, toHex } from '../../shared/ledger/digest.ts';
import type { SigningKey } from '../../shared/ledger/entry.ts';
import type { RandomSource } from '../../shared/privacy/random.ts';
import { cryptoRandomSource } from '../../shared/privacy/random.ts';

export const LEDGER_KEY_FILE = 'ledger-key.json';
export const NEXT_LEDGER_KEY_FILE = 'ledger-key.next.json';

export function generateLedgerKey(random: RandomSource = cryptoRandomSource()): SigningKey {
  const seed = random(new Uint8Array(nacl.sign.seedLength));
  const pair = nacl.sign.keyPair.fromSeed(seed);
  seed.fill(0);
  return { publicKey: pair.publicKey, secretKey: pair.secretKey };
}

export function writeKeyFile(file: string, key: SigningKey): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, `${JSON.stringify({ publicKey: toHex(key.publicKey), secretKey: toHex(key.secretKey) })}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function readKeyFile(file: string): SigningKey | undefined {
  if (!fs.existsSync(file)) return undefined;
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { publicKey?: unknown; secretKey?: unknown };
  const key = { publicKey: fromHex('publicKey', raw.publicKey, 32), secretKey: fromHex('secretKey', raw.secretKey, 64) };
  if (toHex(key.secretKey.subarray(32)) !== toHex(key.publicKey)) throw new RangeError(`"${file}" holds a secret key that does not match its public key`);
  return key;
}

export function loadOrCreateLedgerKey(dataDir: string, random?: RandomSource): SigningKey {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, LEDGER_KEY_FILE);
  const existing = readKeyFile(file);
  if (existing) return existing;
  const key = generateLedgerKey(random);
  writeKeyFile(file, key);
  return key;
}

/**
 * After a crash mid-rotation: if the ledger already names the pending next key, it becomes the
 * key; otherwise the rotation never happened and the pending key is discarded.
 */
export function resolveLedgerKey(dataDir: string, ledgerCurrentKey: string | null): SigningKey {
  const file = path.join(dataDir, LEDGER_KEY_FILE);
  const nextFile = path.join(dataDir, NEXT_LEDGER_KEY_FILE);
  const next = readKeyFile(nextFile);
  if (next && ledgerCurrentKey === toHex(next.publicKey)) fs.renameSync(nextFile, file);
  else if (next) fs.rmSync(nextFile);
  return loadOrCreateLedgerKey(dataDir);
}

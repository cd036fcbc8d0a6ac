/**
 * The platform's Ed25519 enrollment key. In the embedded default the coordinator process is also
 * the platform, so the key pair lives in the data directory (created on first start, mode 0600);
 * a deployment that separates them gives the coordinator only the public key.
 */
import fs from 'node:fs';
import path from 'node:path';
import nacl from 'tweetnacl';
import { cryptoRandomBytes, type RandomBytes } from '../../shared/protocol/enrollment.ts';

export const PLATFORM_KEY_FILE = 'platform-ed25519.json';

export interface PlatformKey {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** Loads the key pair, or creates one from a 32-byte seed drawn from `getRandomValues` (WebCrypto by default). */
export function loadOrCreatePlatformKey(dataDir: string, getRandomValues: RandomBytes = cryptoRandomBytes): PlatformKey {
  const file = path.join(dataDir, PLATFORM_KEY_FILE);
  if (fs.existsSync(file)) {
    const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as { secretKey?: unknown };
    if (typeof stored.secretKey !== 'string') throw new TypeError(`"secretKey" in ${file} expected a base64 string`);
    const secretKey = new Uint8Array(Buffer.from(stored.secretKey, 'base64'));
    if (secretKey.length !== nacl.sign.secretKeyLength) throw new RangeError(`"secretKey" in ${file} expected ${nacl.sign.secretKeyLength} bytes, got ${secretKey.length}`);
    return nacl.sign.keyPair.fromSecretKey(secretKey);
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const seed = getRandomValues(new Uint8Array(nacl.sign.seedLength));
  const pair = nacl.sign.keyPair.fromSeed(seed);
  seed.fill(0);
  const body = JSON.stringify({ publicKey: Buffer.from(pair.publicKey).toString('base64'), secretKey: Buffer.from(pair.secretKey).toString('base64') });
  fs.writeFileSync(file, body, { mode: 0o600, flag: 'wx' });
  return pair;
}

/**
 * The platform's Ed25519 enrollment key. In the embedded default the coordinator process is also
 * the platform, so the key pair lives in the data directory (created on first start, mode 0600).
 * A deployment that separates them keeps the pair with the shop platform (`portrait platform
 * keygen`) and gives the coordinator only the public key (`portrait server --platform-public-key`).
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

/** Reads a key pair file written by `createPlatformKeyFile`. */
export function readPlatformKeyFile(file: string): PlatformKey {
  const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as { secretKey?: unknown };
  if (typeof stored.secretKey !== 'string') throw new TypeError(`"secretKey" in ${file} expected a base64 string`);
  const secretKey = new Uint8Array(Buffer.from(stored.secretKey, 'base64'));
  if (secretKey.length !== nacl.sign.secretKeyLength) throw new RangeError(`"secretKey" in ${file} expected ${nacl.sign.secretKeyLength} bytes, got ${secretKey.length}`);
  return nacl.sign.keyPair.fromSecretKey(secretKey);
}

/** Creates a key pair from a 32-byte seed drawn from `getRandomValues` (WebCrypto by default); never overwrites. */
export function createPlatformKeyFile(file: string, getRandomValues: RandomBytes = cryptoRandomBytes): PlatformKey {
  const seed = getRandomValues(new Uint8Array(nacl.sign.seedLength));
  const pair = nacl.sign.keyPair.fromSeed(seed);
  seed.fill(0);
  const body = JSON.stringify({ publicKey: Buffer.from(pair.publicKey).toString('base64'), publicKeyHex: Buffer.from(pair.publicKey).toString('hex'), secretKey: Buffer.from(pair.secretKey).toString('base64') });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${body}\n`, { mode: 0o600, flag: 'wx' });
  return pair;
}

/** Loads the data directory's key pair, or creates it on first start. */
export function loadOrCreatePlatformKey(dataDir: string, getRandomValues: RandomBytes = cryptoRandomBytes): PlatformKey {
  const file = path.join(dataDir, PLATFORM_KEY_FILE);
  return fs.existsSync(file) ? readPlatformKeyFile(file) : createPlatformKeyFile(file, getRandomValues);
}

/**
 * A platform public key as an operator gives it: 64 hex characters, or the path of a key file
 * (`portrait platform keygen` output, or any JSON with `publicKeyHex` or base64 `publicKey`).
 */
export function parsePlatformPublicKey(value: string): Uint8Array {
  const hex = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(hex)) return new Uint8Array(Buffer.from(hex, 'hex'));
  if (!fs.existsSync(value)) throw new RangeError(`"platform-public-key" expected 64 hex characters or a key file, got ${JSON.stringify(value)}`);
  const stored = JSON.parse(fs.readFileSync(value, 'utf8')) as { publicKeyHex?: unknown; publicKey?: unknown };
  const key = typeof stored.publicKeyHex === 'string' ? Buffer.from(stored.publicKeyHex, 'hex') : typeof stored.publicKey === 'string' ? Buffer.from(stored.publicKey, 'base64') : Buffer.alloc(0);
  if (key.length !== nacl.sign.publicKeyLength) throw new RangeError(`"platform-public-key" file ${value} holds no ${nacl.sign.publicKeyLength}-byte publicKeyHex or publicKey`);
  return new Uint8Array(key);
}

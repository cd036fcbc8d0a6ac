/**
 * The coordinator's Ed25519 ledger key in a file: by default `ledger-key.json` under the data
 * directory (the embedded default and the demo), in production a file outside it
 * (`portrait server --ledger-key FILE` or PORTRAIT_LEDGER_KEY_FILE), e.g. mounted from the
 * operator's secret store. Either our JSON (hex publicKey and secretKey) or a PKCS#8 PEM Ed25519
 * private key (RFC 8410, as `openssl genpkey -algorithm ed25519` writes it). Written mode 0600,
 * atomically. A rotation first writes the new key beside the current one (`<name>.next.json`, or
 * `.next.pem`), then appends the signed rotation entry, then renames the new key over the old:
 * after a crash in between, `resolveLedgerKey` keeps whichever key the ledger names.
 */
import { createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import nacl from 'tweetnacl';
import { fromHex, toHex } from '../../shared/ledger/digest.ts';
import type { SigningKey } from '../../shared/ledger/entry.ts';
import type { RandomSource } from '../../shared/privacy/random.ts';
import { cryptoRandomSource } from '../../shared/privacy/random.ts';

export const LEDGER_KEY_FILE = 'ledger-key.json';

type KeyFileFormat = 'json' | 'pem';

export function generateLedgerKey(random: RandomSource = cryptoRandomSource()): SigningKey {
  const seed = random(new Uint8Array(nacl.sign.seedLength));
  const pair = nacl.sign.keyPair.fromSeed(seed);
  seed.fill(0);
  return { publicKey: pair.publicKey, secretKey: pair.secretKey };
}

/** Where a rotation stages the next key: `ledger-key.json` -> `ledger-key.next.json`. */
export function nextKeyFile(file: string): string {
  const ext = path.extname(file);
  return ext === '' ? `${file}.next` : `${file.slice(0, -ext.length)}.next${ext}`;
}

/** The format of the key in `file`: what it holds, else what its name says (`.pem`), else JSON. */
function formatOf(file: string): KeyFileFormat {
  try {
    return fs.readFileSync(file, 'utf8').trimStart().startsWith('-----BEGIN') ? 'pem' : 'json';
  } catch {
    return path.extname(file) === '.pem' ? 'pem' : 'json';
  }
}

function encodeKey(key: SigningKey, format: KeyFileFormat): string {
  if (format === 'json') return `${JSON.stringify({ publicKey: toHex(key.publicKey), secretKey: toHex(key.secretKey) })}\n`;
  const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
  // RFC 8410 Sec. 7: the PKCS#8 private key of Ed25519 is its 32-byte seed (the first half of tweetnacl's secret key).
  const keyObject = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64url(key.secretKey.subarray(0, 32)), x: b64url(key.publicKey) }, format: 'jwk' });
  return keyObject.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function decodeKey(file: string, text: string): SigningKey {
  if (text.trimStart().startsWith('-----BEGIN')) {
    const key = createPrivateKey(text);
    if (key.asymmetricKeyType !== 'ed25519') throw new RangeError(`"${file}" holds a key of type ${key.asymmetricKeyType ?? 'unknown'}, expected an Ed25519 private key`);
    const jwk = key.export({ format: 'jwk' }) as { d?: string; x?: string };
    const seed = new Uint8Array(Buffer.from(jwk.d ?? '', 'base64url'));
    const pair = nacl.sign.keyPair.fromSeed(seed);
    seed.fill(0);
    return { publicKey: pair.publicKey, secretKey: pair.secretKey };
  }
  const raw = JSON.parse(text) as { publicKey?: unknown; secretKey?: unknown };
  return { publicKey: fromHex('publicKey', raw.publicKey, 32), secretKey: fromHex('secretKey', raw.secretKey, 64) };
}

export function writeKeyFile(file: string, key: SigningKey, format: KeyFileFormat = formatOf(file)): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, encodeKey(key, format));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function readKeyFile(file: string): SigningKey | undefined {
  if (!fs.existsSync(file)) return undefined;
  const key = decodeKey(file, fs.readFileSync(file, 'utf8'));
  if (toHex(key.secretKey.subarray(32)) !== toHex(key.publicKey)) throw new RangeError(`"${file}" holds a secret key that does not match its public key`);
  return key;
}

/** The key in `file`; a new one written there when absent and `create`, else a RangeError naming the file. */
export function loadOrCreateKeyFile(file: string, create = true, random?: RandomSource): SigningKey {
  const existing = readKeyFile(file);
  if (existing) return existing;
  if (!create) throw new RangeError(`"ledger key" expected a key file at ${file}, found none`);
  const key = generateLedgerKey(random);
  writeKeyFile(file, key);
  return key;
}

/**
 * The key in `file` once a crash mid-rotation is settled: if the ledger already names the staged
 * next key, it becomes the key; otherwise the rotation never happened and the staged key is
 * discarded.
 */
export function resolveLedgerKey(file: string, ledgerCurrentKey: string | null, create = true): SigningKey {
  const staged = nextKeyFile(file);
  const next = readKeyFile(staged);
  if (next && ledgerCurrentKey === toHex(next.publicKey)) fs.renameSync(staged, file);
  else if (next) fs.rmSync(staged);
  return loadOrCreateKeyFile(file, create);
}

/** Rotation step 1: stages `key` beside `file`, in the same format. */
export function stageNextKey(file: string, key: SigningKey): void {
  writeKeyFile(nextKeyFile(file), key, formatOf(file));
}

/** Rotation step 3: the staged key replaces the current one. */
export function commitNextKey(file: string): void {
  fs.renameSync(nextKeyFile(file), file);
}

/**
 * Node's native (OpenSSL) Ed25519 for the coordinator and the CLI, with keys in tweetnacl's layout:
 * signing enrollment tokens (64-byte secret keys: the 32-byte seed, then the public key; the
 * signatures are tweetnacl's, Ed25519 being deterministic, RFC 8032 Sec. 5.1.6) and verifying
 * tokens, SecAgg+ advertisements and ledger entries, each about a hundred times faster than
 * tweetnacl here. The isomorphic code in shared/ takes them as injected functions.
 */
import { createPrivateKey, createPublicKey, sign, verify as nodeVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { Ed25519Sign } from '../../shared/protocol/enrollment.ts';
import type { Ed25519Verify } from '../../shared/secagg/keys.ts';

/** DER PKCS#8 prefix of a raw 32-byte Ed25519 seed (RFC 8410, Sec. 7). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

const keys = new WeakMap<Uint8Array, KeyObject>();

export const nodeEd25519Sign: Ed25519Sign = (message, secretKey) => {
  if (secretKey.length !== 64) throw new RangeError(`"secretKey" expected 64 bytes, got ${secretKey.length}`);
  let key = keys.get(secretKey);
  if (!key) {
    key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, secretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
    keys.set(secretKey, key);
  }
  return new Uint8Array(sign(null, message, key));
};

/** DER SubjectPublicKeyInfo prefix of a raw 32-byte Ed25519 key (RFC 8410, Sec. 4). */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Verification (a malformed key or signature is false, never a throw): ~0.1 ms against tweetnacl's ~17 ms here. */
export const nodeEd25519Verify: Ed25519Verify = (message, signature, publicKey) => {
  try {
    return nodeVerify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
};

/** Recently used verify keys (the ledger's, a round's cohort), by their bytes: building a KeyObject costs more than the check. */
const publicKeys = new Map<string, KeyObject>();
const PUBLIC_KEY_CACHE = 4_096;

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey).toString('base64');
  let key = publicKeys.get(id);
  if (!key) {
    key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    if (publicKeys.size >= PUBLIC_KEY_CACHE) publicKeys.delete(publicKeys.keys().next().value as string);
    publicKeys.set(id, key);
  }
  return key;
}

/**
 * Client enrollment tokens: the platform signs `{ sub, iat, exp }` with its Ed25519 key
 * (tweetnacl's `sign.detached`), the coordinator verifies with the platform's public key. `sub`
 * is a random pseudonym chosen at enrollment, never a user identity, so the coordinator can tell
 * clients apart within a round without learning who they are.
 * Format: base64url(JSON payload) "." base64url(signature over the first part's ASCII bytes).
 */
import nacl from 'tweetnacl';
import { ProtocolError } from './errors.ts';
import type { Ed25519Verify } from '../secagg/keys.ts';

export interface EnrollmentClaims {
  v: 1;
  /** Pseudonymous client id (random, 16 bytes base64url). */
  sub: string;
  /** Issued / expires at, in ms since the epoch. */
  iat: number;
  exp: number;
}

const MAX_TOKEN_LENGTH = 1024;

export function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new RangeError('"text" expected base64url characters');
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  const binary = atob(padded);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** A fresh random id or nonce, 16 bytes from the injected source (crypto.getRandomValues by default). */
export type RandomBytes = (array: Uint8Array) => Uint8Array;

export const cryptoRandomBytes: RandomBytes = (array) => {
  crypto.getRandomValues(array as Uint8Array<ArrayBuffer>);
  return array;
};

export function randomId(getRandomValues: RandomBytes = cryptoRandomBytes): string {
  return toBase64Url(getRandomValues(new Uint8Array(16)));
}

/**
 * An Ed25519 signature of `message` under a 64-byte tweetnacl secret key: tweetnacl's by default;
 * the coordinator passes Node's native signer (a batch of 10,000 tokens took 141 s in tweetnacl).
 */
export type Ed25519Sign = (message: Uint8Array, secretKey: Uint8Array) => Uint8Array;

export function issueEnrollmentToken(
  platformSecretKey: Uint8Array,
  options: { ttlMs: number; now: number; clientId?: string; getRandomValues?: RandomBytes; sign?: Ed25519Sign },
): string {
  if (!(platformSecretKey instanceof Uint8Array)) throw new TypeError('"platformSecretKey" expected a Uint8Array');
  if (platformSecretKey.length !== nacl.sign.secretKeyLength) throw new RangeError(`"platformSecretKey" expected ${nacl.sign.secretKeyLength} bytes, got ${platformSecretKey.length}`);
  if (!Number.isFinite(options.ttlMs) || options.ttlMs <= 0) throw new RangeError(`"ttlMs" expected a positive number, got ${options.ttlMs}`);
  const claims: EnrollmentClaims = { v: 1, sub: options.clientId ?? randomId(options.getRandomValues), iat: options.now, exp: options.now + options.ttlMs };
  const body = toBase64Url(new TextEncoder().encode(JSON.stringify(claims)));
  const signature = (options.sign ?? nacl.sign.detached)(new TextEncoder().encode(body), platformSecretKey);
  return `${body}.${toBase64Url(signature)}`;
}

/** Limits of one batch of tokens (the coordinator's REST endpoint and `portrait platform token`). */
export const ENROLLMENT_BATCH_LIMITS = { maxCount: 10_000, defaultTtlSeconds: 86_400, maxTtlSeconds: 366 * 86_400 } as const;

/** `count` tokens valid for `ttlSeconds` from `now`, and when they expire; the limits above are the caller's to check. */
export function issueEnrollmentTokens(platformSecretKey: Uint8Array, options: { count: number; ttlSeconds: number; now: number; sign?: Ed25519Sign }): { tokens: string[]; expiresAt: string } {
  const ttlMs = options.ttlSeconds * 1000;
  const tokens = Array.from({ length: options.count }, () => issueEnrollmentToken(platformSecretKey, { ttlMs, now: options.now, ...(options.sign ? { sign: options.sign } : {}) }));
  return { tokens, expiresAt: new Date(options.now + ttlMs).toISOString() };
}

/**
 * Verifies signature and expiry; throws `UNAUTHENTICATED` or `TOKEN_EXPIRED`. `verify` is the Ed25519 check: tweetnacl by default (isomorphic); the coordinator passes Node's
 * native one (~0.1 ms instead of ~39 ms here), since every device handshake runs it on the event loop.
 */
export function verifyEnrollmentToken(token: unknown, platformPublicKey: Uint8Array, now: number, verify: Ed25519Verify = (m, s, k) => nacl.sign.detached.verify(m, s, k)): EnrollmentClaims {
  if (typeof token !== 'string' || token.length === 0) throw new ProtocolError('UNAUTHENTICATED', 'an enrollment token is required');
  if (token.length > MAX_TOKEN_LENGTH) throw new ProtocolError('UNAUTHENTICATED', 'enrollment token too long');
  const parts = token.split('.');
  if (parts.length !== 2) throw new ProtocolError('UNAUTHENTICATED', 'enrollment token is not of the form payload.signature');
  const [body, sig] = parts as [string, string];
  let claims: unknown;
  try {
    const signature = fromBase64Url(sig);
    if (signature.length !== nacl.sign.signatureLength || !verify(new TextEncoder().encode(body), signature, platformPublicKey)) {
      throw new ProtocolError('UNAUTHENTICATED', 'enrollment token signature does not verify');
    }
    claims = JSON.parse(new TextDecoder().decode(fromBase64Url(body)));
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError('UNAUTHENTICATED', 'enrollment token is not well-formed');
  }
  const c = claims as Partial<EnrollmentClaims> | null;
  if (!c || c.v !== 1 || typeof c.sub !== 'string' || !/^[A-Za-z0-9_-]{8,64}$/.test(c.sub) || typeof c.exp !== 'number' || typeof c.iat !== 'number') {
    throw new ProtocolError('UNAUTHENTICATED', 'enrollment token claims are malformed');
  }
  if (now >= c.exp) throw new ProtocolError('TOKEN_EXPIRED', 'enrollment token has expired');
  return c as EnrollmentClaims;
}

/**
 * Bearer tokens of the REST API: 32 random bytes, shown once, stored only as their SHA-256,
 * checked by comparing hashes in constant time (node:crypto `timingSafeEqual`) against every
 * stored hash, so neither the lookup nor the comparison leaks how much of a guess was right. A
 * token may carry an expiry and may be revoked (`portrait token create --ttl`, `token revoke`);
 * either makes it UNAUTHENTICATED, with a message saying which.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { cryptoRandomBytes, toBase64Url, type RandomBytes } from '../../shared/protocol/enrollment.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import type { ApiRole, ApiTokenRecord, ApiTokenStore } from '../storage/stores.ts';

/** An api_tokens row as the SQLite (server/storage/sqlite-tokens.ts) and PostgreSQL (server/storage/postgres.ts) stores read it; PostgreSQL returns its BIGINT id as a string. */
export interface TokenRow {
  id: number | string;
  name: string;
  role: ApiRole;
  hash: Buffer;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

export function tokenRecord(r: TokenRow): ApiTokenRecord {
  return { id: Number(r.id), name: r.name, role: r.role, createdAt: r.created_at, expiresAt: r.expires_at, revokedAt: r.revoked_at };
}

export const TOKEN_PREFIX = 'pt_';

export function hashToken(token: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(token, 'utf8').digest());
}

/**
 * Creates a token (32 bytes from `getRandomValues`, WebCrypto by default), stores its hash, and
 * returns the plain token (the only time it exists). `expiresAt` (ISO time) null: it never expires.
 */
export async function createApiToken(store: ApiTokenStore, name: string, role: ApiRole, createdAt: string, getRandomValues: RandomBytes = cryptoRandomBytes, expiresAt: string | null = null): Promise<{ token: string; record: ApiTokenRecord }> {
  const token = `${TOKEN_PREFIX}${toBase64Url(getRandomValues(new Uint8Array(32)))}`;
  const record = await store.add(name, role, hashToken(token), createdAt, expiresAt);
  return { token, record };
}

/** Resolves an `Authorization` header value to its token record at time `now` (ms); throws UNAUTHENTICATED for an unknown, revoked or expired token. */
/** Whether a token is active at `now`, or why not: the one rule `authenticate` and `portrait token list` apply. */
export function tokenStatus(record: { expiresAt: string | null; revokedAt: string | null }, now: number): 'active' | 'expired' | 'revoked' {
  if (record.revokedAt !== null) return 'revoked';
  if (record.expiresAt !== null && !(Date.parse(record.expiresAt) > now)) return 'expired';
  return 'active';
}

export async function authenticate(store: ApiTokenStore, header: string | undefined, now: number = Date.now()): Promise<ApiTokenRecord> {
  const match = /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(header ?? '');
  if (!match) throw new ProtocolError('UNAUTHENTICATED', 'expected "Authorization: Bearer <token>"');
  const presented = Buffer.from(hashToken(match[1] as string));
  let found: ApiTokenRecord | undefined;
  for (const t of await store.all()) {
    const equal = timingSafeEqual(presented, Buffer.from(t.hash));
    if (equal && !found) found = { id: t.id, name: t.name, role: t.role, createdAt: t.createdAt, expiresAt: t.expiresAt, revokedAt: t.revokedAt };
  }
  if (!found) throw new ProtocolError('UNAUTHENTICATED', 'unknown API token');
  const which = `API token ${found.id} (${JSON.stringify(found.name)})`;
  const status = tokenStatus(found, now);
  if (status === 'revoked') throw new ProtocolError('UNAUTHENTICATED', `${which} was revoked at ${found.revokedAt}`);
  if (status === 'expired') throw new ProtocolError('UNAUTHENTICATED', `${which} expired at ${found.expiresAt}`);
  return found;
}

const ROLE_ALLOWS: Record<ApiRole, readonly ('read' | 'launch')[]> = { operator: ['read', 'launch'], auditor: ['read'] };

/** Throws FORBIDDEN naming what was refused (`described`, default the permission itself). */
export function requireRole(record: ApiTokenRecord, action: 'read' | 'launch', described: string = action): void {
  if (!ROLE_ALLOWS[record.role].includes(action)) throw new ProtocolError('FORBIDDEN', `role "${record.role}" may not ${described}`);
}

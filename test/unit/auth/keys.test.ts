/**
 * The coordinator's own secrets (platform enrollment key, API tokens) come from the injected
 * WebCrypto source: the same seed gives the same key, and nothing else feeds it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { authenticate, createApiToken, hashToken } from '../../../server/auth/api-tokens.ts';
import { loadOrCreatePlatformKey, PLATFORM_KEY_FILE } from '../../../server/auth/platform-key.ts';
import { openDatabase, SqliteApiTokenStore } from '../../../server/storage/sqlite.ts';

const counting = (fill: number) => {
  let calls = 0;
  const source = (array: Uint8Array): Uint8Array => {
    calls++;
    return array.fill(fill);
  };
  return { source, calls: () => calls };
};

describe('platform key', () => {
  it('derives the key pair from 32 bytes of the injected source, stores it 0600, and reloads the same pair', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-key-'));
    const random = counting(7);
    const created = loadOrCreatePlatformKey(dir, random.source);
    expect(random.calls()).toBe(1);
    expect(created.publicKey).toEqual(nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7)).publicKey);
    expect(fs.statSync(path.join(dir, PLATFORM_KEY_FILE)).mode & 0o777).toBe(0o600);
    const again = loadOrCreatePlatformKey(dir, counting(9).source);
    expect(again.secretKey).toEqual(created.secretKey);
  });
});

describe('API tokens', () => {
  it('draws 32 bytes from the injected source and stores only the hash (real SQLite file)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-tokens-'));
    const db = openDatabase(dir);
    const store = new SqliteApiTokenStore(db);
    const random = counting(1);
    const { token } = await createApiToken(store, 'ci', 'operator', '2026-11-27T00:00:00Z', random.source);
    expect(random.calls()).toBe(1);
    expect(token).toBe(`pt_${Buffer.alloc(32, 1).toString('base64url')}`);
    const stored = await store.all();
    expect(stored[0]!.hash).toEqual(hashToken(token));
    // Neither the database nor its write-ahead log holds the token itself.
    for (const file of fs.readdirSync(dir)) expect(fs.readFileSync(path.join(dir, file)).includes(token.slice(3))).toBe(false);
    expect((await authenticate(store, `Bearer ${token}`)).name).toBe('ci');
    db.close();
  });
});

describe("the coordinator's native Ed25519 check of enrollment tokens", () => {
  it('accepts and refuses exactly the tokens tweetnacl does', async () => {
    const { issueEnrollmentToken, verifyEnrollmentToken } = await import('../../../shared/protocol/enrollment.ts');
    const { nodeEd25519Verify } = await import('../../../server/auth/native-ed25519.ts');
    const pair = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
    const other = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(8));
    const token = issueEnrollmentToken(pair.secretKey, { ttlMs: 1000, now: 0 });
    const [body, sig] = token.split('.') as [string, string];
    const flipped = `${body.slice(0, -2)}${body.endsWith('A') ? 'B' : 'A'}${body.slice(-1)}.${sig}`;
    const outcome = (t: string, key: Uint8Array, verify?: typeof nodeEd25519Verify) => {
      try {
        return verifyEnrollmentToken(t, key, 1, verify).sub;
      } catch (err) {
        return (err as { code?: string }).code;
      }
    };
    for (const [t, key] of [[token, pair.publicKey], [token, other.publicKey], [flipped, pair.publicKey]] as const) {
      expect(outcome(t, key, nodeEd25519Verify)).toBe(outcome(t, key));
    }
    expect(outcome(token, pair.publicKey, nodeEd25519Verify)).toMatch(/^[A-Za-z0-9_-]{8,}$/);
    expect(outcome(token, other.publicKey, nodeEd25519Verify)).toBe('UNAUTHENTICATED');
  });
});

describe("the coordinator's native Ed25519 signing of enrollment tokens", () => {
  it('gives the very signatures tweetnacl gives (Ed25519 is deterministic), for tokens that verify', async () => {
    const { issueEnrollmentToken, verifyEnrollmentToken } = await import('../../../shared/protocol/enrollment.ts');
    const { nodeEd25519Sign } = await import('../../../server/auth/native-ed25519.ts');
    for (let seed = 1; seed <= 5; seed++) {
      const pair = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(seed));
      const message = new TextEncoder().encode(`message ${seed}`.repeat(seed));
      expect(nodeEd25519Sign(message, pair.secretKey)).toEqual(nacl.sign.detached(message, pair.secretKey));
      const fixed = { ttlMs: 1000, now: 0, clientId: `client-id-${seed}` };
      const token = issueEnrollmentToken(pair.secretKey, { ...fixed, sign: nodeEd25519Sign });
      expect(token).toBe(issueEnrollmentToken(pair.secretKey, fixed));
      expect(verifyEnrollmentToken(token, pair.publicKey, 1).sub).toBe(`client-id-${seed}`);
    }
    expect(() => nodeEd25519Sign(new Uint8Array(1), new Uint8Array(32))).toThrow(RangeError);
  });
});

/**
 * A shop platform separate from the coordinator: `portrait platform keygen` makes its key pair,
 * `portrait platform token` signs enrollment tokens, and a coordinator started with only the
 * platform's public key admits those tokens, refuses tokens signed by any other key, holds no
 * platform secret and issues no tokens itself.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import nacl from 'tweetnacl';
import { issueEnrollmentToken } from '../../shared/protocol/enrollment.ts';
import { parsePlatformPublicKey, PLATFORM_KEY_FILE } from '../../server/auth/platform-key.ts';
import { readApiTokens, startEmbeddedCoordinator } from '../../server/embedded.ts';
import { api, rawSocket, syntheticPopulation, tempDataDir } from './harness.ts';

const BIN = path.resolve('bin/portrait.js');

function portrait<T>(...args: string[]): { status: number | null; body: T } {
  const r = spawnSync(process.execPath, [BIN, ...args, '--json'], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, body: JSON.parse(r.stdout) as T };
}

describe('separate shop platform', () => {
  it('the coordinator admits the platform tokens with only its public key, and issues none', async () => {
    const work = tempDataDir();
    const keyFile = path.join(work, 'platform.json');
    const keygen = portrait<{ keyFile: string; publicKey: string }>('platform', 'keygen', '--out', keyFile);
    expect(keygen.status).toBe(0);
    expect(keygen.body.publicKey).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(portrait<{ error: { code: string } }>('platform', 'keygen', '--out', keyFile).body.error.code).toBe('INVALID_ARGUMENT');
    const issued = portrait<{ tokens: string[] }>('platform', 'token', '--key', keyFile, '--count', '2', '--ttl-seconds', '600');
    expect(issued.status).toBe(0);
    expect(issued.body.tokens).toHaveLength(2);
    // The same batch limits as the coordinator's own endpoint.
    expect(portrait<{ error: { code: string } }>('platform', 'token', '--key', keyFile, '--ttl-seconds', String(367 * 86_400)).body.error.code).toBe('INVALID_ARGUMENT');
    expect(portrait<{ error: { code: string } }>('platform', 'token', '--key', keyFile, '--count', '10001').body.error.code).toBe('INVALID_ARGUMENT');

    // The key as an operator passes it: hex or the key file give the same key.
    const publicKey = parsePlatformPublicKey(keygen.body.publicKey);
    expect(parsePlatformPublicKey(keyFile)).toEqual(publicKey);

    const pop = await syntheticPopulation();
    const dataDir = tempDataDir();
    const base = { dataDir, initialModel: { config: pop.config, seed: 1 }, platformPublicKey: publicKey };
    await expect(startEmbeddedCoordinator({ ...base, demoShopTokens: true })).rejects.toThrow(/demoShopTokens/);
    const coordinator = await startEmbeddedCoordinator(base);
    try {
      const socket = await rawSocket(coordinator, issued.body.tokens[0]);
      expect(socket.connected).toBe(true);
      socket.disconnect();
      // A token signed by another key (a would-be platform) is refused.
      const forged = issueEnrollmentToken(nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(9)).secretKey, { ttlMs: 600_000, now: Date.now() });
      await expect(rawSocket(coordinator, forged)).rejects.toMatchObject({ data: { code: 'UNAUTHENTICATED' } });
      // No platform secret in the data directory, and no token issuing here.
      expect(fs.existsSync(path.join(dataDir, PLATFORM_KEY_FILE))).toBe(false);
      const res = await api<{ code: string }>(coordinator, readApiTokens(dataDir)!.operator, 'POST', '/api/v1/enrollment-tokens', {});
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('UNAVAILABLE');
    } finally {
      await coordinator.close();
    }
  }, 120_000);
});

/**
 * API tokens with an expiry and revocation (issue 17: they never expired), through the real
 * `portrait token` binary against a running coordinator's data directory: a token created with
 * `--ttl` authenticates until it expires, `token revoke` ends one from the coordinator's next
 * request, each refusal is UNAUTHENTICATED saying which, and the command does not load tfjs.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { parseTtl } from '../../scripts/cli/token.ts';
import type { ErrorBody } from '../../shared/protocol/errors.ts';
import type { TestCoordinator } from './harness.ts';
import { api, startTestCoordinator, tempDataDir } from './harness.ts';
import { loadsTfjs, portraitWatchingTfjs } from './cli-process.ts';

const portrait = portraitWatchingTfjs;

interface CreatedToken {
  id: number;
  role: string;
  expiresAt: string | null;
  token: string;
}

describe('portrait token', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator;

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(dataDir);
  });

  afterAll(async () => {
    await coordinator?.close();
  });

  const read = (token: string) => api<ErrorBody>(coordinator, token, 'GET', '/api/v1/rounds');

  it('creates tokens with an expiry that authenticate until they expire, and revokes them while the coordinator runs', async () => {
    const created = await portrait(['token', 'create', '--role', 'auditor', '--name', 'quarterly audit', '--ttl', '30d', '--data-dir', dataDir, '--json']);
    expect(created.code, created.stderr).toBe(0);
    expect(loadsTfjs(created)).toBe(false);
    const auditor = JSON.parse(created.stdout) as CreatedToken;
    expect(auditor).toMatchObject({ role: 'auditor', name: 'quarterly audit', revokedAt: null });
    expect(Date.parse(auditor.expiresAt as string) - Date.now()).toBeGreaterThan(29.9 * 86_400_000);
    expect((await read(auditor.token)).status).toBe(200);
    // An auditor token may read, not launch.
    expect((await api<ErrorBody>(coordinator, auditor.token, 'POST', '/api/v1/rounds', { clientsPerRound: 2 })).body.code).toBe('FORBIDDEN');

    const brief = JSON.parse((await portrait(['token', 'create', '--role', 'operator', '--ttl', '1s', '--data-dir', dataDir, '--json'])).stdout) as CreatedToken;
    expect((await read(brief.token)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_200));
    const expired = await read(brief.token);
    expect([expired.status, expired.body.code]).toEqual([401, 'UNAUTHENTICATED']);
    expect(expired.body.message).toBe(`API token ${brief.id} ("operator") expired at ${brief.expiresAt}`);

    const revoked = await portrait(['token', 'revoke', String(auditor.id), '--data-dir', dataDir, '--json']);
    expect(revoked.code, revoked.stderr).toBe(0);
    const revokedAt = (JSON.parse(revoked.stdout) as { revokedAt: string }).revokedAt;
    const refused = await read(auditor.token);
    expect([refused.status, refused.body.code]).toEqual([401, 'UNAUTHENTICATED']);
    expect(refused.body.message).toBe(`API token ${auditor.id} ("quarterly audit") was revoked at ${revokedAt}`);
    // The bootstrap tokens are untouched.
    expect((await read(coordinator.operator)).status).toBe(200);

    const listed = JSON.parse((await portrait(['token', 'list', '--data-dir', dataDir, '--json'])).stdout) as { tokens: { id: number; status: string; hash?: unknown }[] };
    expect(listed.tokens.map((t) => [t.id, t.status])).toEqual([
      [1, 'active'],
      [2, 'active'],
      [auditor.id, 'revoked'],
      [brief.id, 'expired'],
    ]);
    expect(listed.tokens.every((t) => t.hash === undefined)).toBe(true);
  });

  it('refuses a bad role, duration, id or data directory by code', async () => {
    const code = async (args: string[]) => (JSON.parse((await portrait([...args, '--json'])).stdout) as { error: ErrorBody }).error.code;
    expect(await code(['token', 'create', '--role', 'root', '--data-dir', dataDir])).toBe('INVALID_ARGUMENT');
    expect(await code(['token', 'create', '--role', 'auditor', '--ttl', 'forever', '--data-dir', dataDir])).toBe('INVALID_ARGUMENT');
    expect(await code(['token', 'revoke', '999', '--data-dir', dataDir])).toBe('NOT_FOUND');
    expect(await code(['token', 'list', '--data-dir', path.join(dataDir, 'missing')])).toBe('NOT_FOUND');
    expect([parseTtl('30d'), parseTtl('12h'), parseTtl('90m'), parseTtl('1s')]).toEqual([2_592_000, 43_200, 5_400, 1]);
    for (const bad of ['0s', '30', '1y', '-1d', '3651d']) expect(() => parseTtl(bad)).toThrow(/"ttl" expected a duration/);
  });
});

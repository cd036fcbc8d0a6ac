/**
 * The coordinator is never frozen by one request (issue 17): while it signs the documented
 * maximum of 10,000 enrollment tokens, /healthz and a device handshake are answered, each started
 * after the batch request reached the server and answered before the batch is. The batch still
 * comes as one JSON document of tokens that verify. Real coordinator on port 0, real clients; the
 * assertions are about order, not milliseconds.
 */
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { loadOrCreatePlatformKey } from '../../server/auth/platform-key.ts';
import { nodeEd25519Verify } from '../../server/auth/native-ed25519.ts';
import { verifyEnrollmentToken } from '../../shared/protocol/enrollment.ts';
import { rawSocket, startTestCoordinator, tempDataDir, waitFor } from './harness.ts';

const HEALTH_CHECKS = 5;

describe('never frozen', () => {
  it('answers /healthz and a device handshake while 10,000 enrollment tokens are signed, then all of them in one document', async () => {
    const dataDir = tempDataDir();
    const coordinator = await startTestCoordinator(dataDir);
    try {
      const deviceToken = coordinator.token();
      let batchArrived = false;
      // Before express routes it (routing rewrites req.url).
      coordinator.io.httpServer.prependListener('request', (req: { url?: string }) => {
        if (req.url === '/api/v1/enrollment-tokens') batchArrived = true;
      });
      let batchAnswered = false;
      const batch = fetch(`${coordinator.url}/api/v1/enrollment-tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${coordinator.operator}`, 'content-type': 'application/json' },
        body: JSON.stringify({ count: 10_000 }),
      }).then((res) => {
        batchAnswered = true;
        return res;
      });
      await waitFor(() => batchArrived, 10_000, 'the batch request to reach the coordinator');

      const answeredBeforeBatch: boolean[] = [];
      for (let i = 0; i < HEALTH_CHECKS; i++) {
        const health = await fetch(`${coordinator.url}/healthz`);
        expect(await health.json()).toEqual({ ok: true });
        answeredBeforeBatch.push(!batchAnswered);
      }
      const socket = await rawSocket(coordinator, deviceToken);
      const connectedBeforeBatch = !batchAnswered;
      socket.close();
      expect({ answeredBeforeBatch, connectedBeforeBatch }).toEqual({ answeredBeforeBatch: Array(HEALTH_CHECKS).fill(true), connectedBeforeBatch: true });

      const res = await batch;
      expect(res.status).toBe(201);
      const body = (await res.json()) as { tokens: string[]; expiresAt: string };
      expect(body.tokens).toHaveLength(10_000);
      expect(new Set(body.tokens).size).toBe(10_000);
      const { publicKey } = loadOrCreatePlatformKey(dataDir);
      const now = Date.now();
      const subs = new Set(body.tokens.map((t) => verifyEnrollmentToken(t, publicKey, now, nodeEd25519Verify).sub));
      expect(subs.size).toBe(10_000);
      // The isomorphic check (tweetnacl) agrees on a sample.
      for (const t of body.tokens.filter((_, i) => i % 2_500 === 0)) expect(verifyEnrollmentToken(t, publicKey, now, (m, s, k) => nacl.sign.detached.verify(m, s, k)).sub).toMatch(/^[A-Za-z0-9_-]{8,}$/);
      const expiresAt = Date.parse(body.expiresAt);
      expect(expiresAt).toBe(verifyEnrollmentToken(body.tokens[0]!, publicKey, now, nodeEd25519Verify).exp);
    } finally {
      await coordinator.close();
    }
  }, 120_000);
});

/**
 * The REST API against a real coordinator: bearer tokens with roles (operator launches, auditor
 * only reads), tokens stored hashed, `{code, message}` errors with their HTTP status (a body in an
 * unknown encoding or charset 415, one that does not decompress 400), and enrollment tokens issued
 * by the platform key that then authenticate a Socket.IO client.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { ErrorBody } from '../../shared/protocol/errors.ts';
import type { RoundRecord } from '../../shared/protocol/messages.ts';
import { DATABASE_FILE } from '../../server/storage/sqlite.ts';
import type { TestCoordinator } from './harness.ts';
import { api, rawSocket, startTestCoordinator, tempDataDir } from './harness.ts';

describe('REST API', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator;

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(dataDir);
  });

  afterAll(async () => {
    await coordinator?.close();
  });

  it('authenticates bearer tokens and enforces roles', async () => {
    const launch = { clientsPerRound: 2, deadlines: { checkinMs: 100, trainingMs: 1000 }, privacy: { mode: 'local' as const } };
    const none = await api<ErrorBody>(coordinator, undefined, 'GET', '/api/v1/rounds');
    expect([none.status, none.body.code]).toEqual([401, 'UNAUTHENTICATED']);
    const wrong = await api<ErrorBody>(coordinator, 'pt_not-a-real-token', 'GET', '/api/v1/rounds');
    expect([wrong.status, wrong.body.code]).toEqual([401, 'UNAUTHENTICATED']);
    const auditorLaunch = await api<ErrorBody>(coordinator, coordinator.auditor, 'POST', '/api/v1/rounds', launch);
    expect([auditorLaunch.status, auditorLaunch.body.code]).toEqual([403, 'FORBIDDEN']);
    const ok = await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', launch);
    expect(ok.status).toBe(201);
    const read = await api<RoundRecord>(coordinator, coordinator.auditor, 'GET', `/api/v1/rounds/${ok.body.rounds[0]!.id}`);
    expect(read.status).toBe(200);
    expect(read.body.config.clientsPerRound).toBe(2);
    // Only hashes are stored: the plain tokens appear nowhere in the database files.
    for (const file of fs.readdirSync(dataDir).filter((f) => f.startsWith(DATABASE_FILE))) {
      const bytes = fs.readFileSync(path.join(dataDir, file)).toString('latin1');
      expect(bytes.includes(coordinator.operator)).toBe(false);
      expect(bytes.includes(coordinator.auditor)).toBe(false);
    }
  });

  it('answers bad requests with a code and the right status', async () => {
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/api/v1/rounds', { clientsPerRound: 2, minClients: 3 }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/api/v1/rounds', { clientsPerRound: 0 }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/api/v1/rounds', { clientsPerRound: 2, bogus: 1 }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/api/v1/rounds', { clientsPerRound: 2, samplingRate: 0.5 }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/api/v1/rounds', { clientsPerRound: 2, padding: 'x'.repeat(100_000) }, 413, 'PAYLOAD_TOO_LARGE'],
      ['GET', '/api/v1/rounds/999', undefined, 404, 'NOT_FOUND'],
      ['GET', '/api/v1/rounds/abc', undefined, 400, 'INVALID_ARGUMENT'],
      ['GET', '/api/v1/models/42', undefined, 404, 'NOT_FOUND'],
      ['GET', '/api/v1/nothing-here', undefined, 404, 'NOT_FOUND'],
      ['GET', '/models/42/model.json', undefined, 404, 'NOT_FOUND'],
      ['GET', '/models/1/secret.txt', undefined, 404, 'NOT_FOUND'],
    ];
    for (const [method, pathname, body, status, code] of cases) {
      const res = await api<ErrorBody>(coordinator, coordinator.operator, method, pathname, body);
      expect([pathname, res.status, res.body.code]).toEqual([pathname, status, code]);
      expect(typeof res.body.message).toBe('string');
    }
    const malformed = await fetch(`${coordinator.url}/api/v1/rounds`, { method: 'POST', headers: { authorization: `Bearer ${coordinator.operator}`, 'content-type': 'application/json' }, body: '{"clientsPerRound":' });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as ErrorBody).code).toBe('MALFORMED_MESSAGE');
  });

  it('issues enrollment tokens to operators that authenticate clients', async () => {
    const issued = await api<{ tokens: string[] }>(coordinator, coordinator.operator, 'POST', '/api/v1/enrollment-tokens', { count: 2, ttlSeconds: 60 });
    expect(issued.status).toBe(201);
    expect(issued.body.tokens).toHaveLength(2);
    const socket = await rawSocket(coordinator, issued.body.tokens[0]);
    expect(socket.connected).toBe(true);
    socket.close();
    const denied = await api<ErrorBody>(coordinator, coordinator.auditor, 'POST', '/api/v1/enrollment-tokens', { count: 1 });
    expect(denied.status).toBe(403);
    const models = await api<{ current: number }>(coordinator, coordinator.auditor, 'GET', '/api/v1/models');
    expect(models.body.current).toBe(1);
    const status = await api<{ model: { version: number } }>(coordinator, coordinator.auditor, 'GET', '/api/v1/status');
    expect(status.body.model.version).toBe(1);
  });

  it('answers a body it cannot read 415 or 400, never 500, and a count that is not a JSON integer 400', async () => {
    const post = async (headers: Record<string, string>, body: BodyInit) => {
      const res = await fetch(`${coordinator.url}/api/v1/enrollment-tokens`, { method: 'POST', headers: { authorization: `Bearer ${coordinator.operator}`, 'content-type': 'application/json', ...headers }, body });
      return [res.status, ((await res.json()) as ErrorBody).code];
    };
    expect(await post({ 'content-encoding': 'x-foo' }, '{"count":1}')).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    expect(await post({ 'content-type': 'application/json; charset=latin1' }, '{"count":1}')).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    for (const encoding of ['gzip', 'deflate', 'br']) expect(await post({ 'content-encoding': encoding }, '{"count":1}')).toEqual([400, 'MALFORMED_MESSAGE']);
    // A body that is what its label says is read.
    expect(await post({ 'content-encoding': 'gzip' }, new Uint8Array(zlib.gzipSync('{"count":1}')))).toEqual([201, undefined]);
    for (const body of ['{"count":[5]}', '{"count":"5"}', '{"count":2.5}', '{"count":true}', '{"ttlSeconds":[60]}']) {
      const res = await api<ErrorBody>(coordinator, coordinator.operator, 'POST', '/api/v1/enrollment-tokens', JSON.parse(body));
      expect([body, res.status, res.body.code]).toEqual([body, 400, 'INVALID_ARGUMENT']);
      expect(res.body.message).toMatch(/^"(count|ttlSeconds)" expected an integer in \[1, \d+\]/);
    }
  });

  it('hands the demo shop page no enrollment token unless the coordinator was started as the demo', async () => {
    const res = await api<ErrorBody>(coordinator, undefined, 'POST', '/shop/enrollment-token');
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('UNAVAILABLE');
    expect(res.body.message).toMatch(/does not issue demo shop tokens/);
  });
});

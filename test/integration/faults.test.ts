/**
 * Bad input and faults against a real coordinator (port 0, SQLite in a temp dir) with real
 * socket.io-client sockets: unauthenticated, forged and expired tokens, and handshake auth that is
 * not an object; malformed, oversized and ack-less messages; wrong-length and non-finite weight
 * vectors; stale and unknown round ids; replays and duplicates; updates from outside the cohort;
 * and clients that vanish at every stage. Each refusal carries its error code, the round still commits (or aborts saying why),
 * and the next round runs. A payload over the protocol's own limit (below Socket.IO's transport
 * limit) is refused with PAYLOAD_TOO_LARGE in the ack and the socket stays up; a device without
 * training examples declines check-in instead of holding the round until its deadline.
 */
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { ClientSocket } from '../../client/core/client.ts';
import { issueEnrollmentToken, randomId } from '../../shared/protocol/enrollment.ts';
import type { ErrorBody } from '../../shared/protocol/errors.ts';
import type { Ack, RoundConfigMessage } from '../../shared/protocol/messages.ts';
import { encodeWeights } from '../../shared/protocol/weights.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { FAST, launch, rawSocket, startClients, startTestCoordinator, stopAll, tempDataDir, waitFor, waitForRound } from './harness.ts';

async function connectError(url: string, auth: unknown): Promise<ErrorBody> {
  const { io } = await import('socket.io-client');
  // `auth` is typed an object; a string or an array is what a broken or hostile client sends.
  const socket = io(url, { auth: auth as Record<string, unknown>, transports: ['websocket'], reconnection: false, forceNew: true });
  try {
    return await new Promise<ErrorBody>((resolve, reject) => {
      socket.once('connect', () => reject(new Error('connected without valid credentials')));
      socket.once('connect_error', (err) => resolve((err as Error & { data: ErrorBody }).data));
    });
  } finally {
    socket.close();
  }
}

function send(socket: ClientSocket, event: 'checkin' | 'update', payload: unknown): Promise<Ack> {
  // Deliberately untyped: these tests put malformed payloads on the wire.
  return (socket as unknown as { timeout(ms: number): { emitWithAck(e: string, p: unknown): Promise<Ack> } }).timeout(5000).emitWithAck(event, payload);
}

function code(ack: Ack): string {
  return ack.ok ? 'ok' : ack.error.code;
}

describe('bad input and faults', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator;
  let honest: TestClient[] = [];

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(dataDir);
  });

  afterAll(async () => {
    stopAll(honest);
    await coordinator?.close();
  });

  it('refuses missing, forged and expired enrollment tokens at the handshake', async () => {
    expect((await connectError(coordinator.url, {})).code).toBe('UNAUTHENTICATED');
    expect((await connectError(coordinator.url, { token: 'not.a-token' })).code).toBe('UNAUTHENTICATED');
    const forged = issueEnrollmentToken(nacl.sign.keyPair().secretKey, { ttlMs: 60_000, now: Date.now() });
    expect((await connectError(coordinator.url, { token: forged })).code).toBe('UNAUTHENTICATED');
    const expired = coordinator.token(1_000, Date.now() - 5_000);
    expect((await connectError(coordinator.url, { token: expired })).code).toBe('TOKEN_EXPIRED');
    // An auth payload that is not an object is refused with a code too (socket.io-parser used to drop the connection unexplained).
    expect(await connectError(coordinator.url, coordinator.token())).toEqual({ code: 'UNAUTHENTICATED', message: "the handshake's auth must be an object {token}, got a string" });
    expect(await connectError(coordinator.url, [coordinator.token()])).toEqual({ code: 'UNAUTHENTICATED', message: "the handshake's auth must be an object {token}, got an array" });
    expect(coordinator.sockets.connectedClients()).toBe(0);
    // A well-formed handshake on the same coordinator still connects.
    (await rawSocket(coordinator, coordinator.token())).close();
  });

  it('refuses malformed, ack-less, unknown and oversized messages and stays up', async () => {
    const socket = await rawSocket(coordinator, coordinator.token());
    const errors: ErrorBody[] = [];
    socket.on('protocol:error', (e) => errors.push(e));
    expect(code(await send(socket, 'checkin', { roundId: 'one', nonce: randomId() }))).toBe('MALFORMED_MESSAGE');
    expect(code(await send(socket, 'checkin', { roundId: 1, nonce: randomId(), extra: true }))).toBe('MALFORMED_MESSAGE');
    // A decline's reason is a code, and only with a decline: free text or a reason alone is refused.
    expect(code(await send(socket, 'checkin', { roundId: 1, nonce: randomId(), reason: 'NO_EXAMPLES' }))).toBe('MALFORMED_MESSAGE');
    expect(code(await send(socket, 'checkin', { roundId: 1, nonce: randomId(), decline: true, reason: 'my budget ran out on Tuesday' }))).toBe('MALFORMED_MESSAGE');
    expect(code(await send(socket, 'update', { roundId: 1, nonce: randomId(), examples: 3, delta: 'AAAA' }))).toBe('MALFORMED_MESSAGE');
    expect(code(await send(socket, 'checkin', null))).toBe('MALFORMED_MESSAGE');
    expect(code(await send(socket, 'checkin', { roundId: 1, nonce: randomId() }))).toBe('UNKNOWN_ROUND');
    (socket as unknown as { emit(e: string, p: unknown): void }).emit('checkin', { roundId: 1, nonce: randomId() });
    (socket as unknown as { emit(e: string, p: unknown): void }).emit('steal-model', {});
    await waitFor(() => errors.length >= 2, 5000, 'protocol errors');
    expect(errors.map((e) => e.code)).toEqual(['MALFORMED_MESSAGE', 'MALFORMED_MESSAGE']);

    const closed = new Promise<string>((resolve) => socket.once('disconnect', (reason) => resolve(reason)));
    const huge = new Uint8Array(4 << 20);
    (socket as unknown as { emit(e: string, p: unknown): void }).emit('update', { roundId: 1, nonce: randomId(), examples: 1, delta: huge });
    expect(await closed).toMatch(/transport (close|error)/);
    const healthy = await fetch(`${coordinator.url}/healthz`);
    expect(healthy.status).toBe(200);
  });

  it('refuses bad updates by code while the round commits, and the next round runs', async () => {
    honest = await startClients(coordinator, 4);
    // A warm-up round so that "stale" has an earlier round to point at.
    const [warm] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 3, ...FAST });
    expect((await waitForRound(coordinator, warm!.id)).status).toBe('committed');
    const evil = await rawSocket(coordinator, coordinator.token());
    // Checks in and never reports, so the round stays open (until its deadline) after evil's valid update.
    const sleeper = await rawSocket(coordinator, coordinator.token());
    sleeper.on('round:open', (m) => void send(sleeper, 'checkin', { roundId: m.roundId, nonce: randomId() }));
    const params = coordinator.registry.parameters;
    const codes: string[] = [];
    let configured: RoundConfigMessage | undefined;
    evil.on('round:open', (m) => {
      void (async () => {
        codes.push(`update-in-checkin:${code(await send(evil, 'update', { roundId: m.roundId, nonce: randomId(), examples: 1, delta: encodeWeights(new Float32Array(params)) }))}`);
        codes.push(`checkin:${code(await send(evil, 'checkin', { roundId: m.roundId, nonce: randomId() }))}`);
      })();
    });
    evil.on('round:config', (m) => {
      configured = m;
      void (async () => {
        const good = new Float32Array(params);
        const nan = good.slice();
        nan[7] = Number.NaN;
        const inf = good.slice();
        inf[params - 1] = Number.POSITIVE_INFINITY;
        const update = (delta: Uint8Array, roundId = m.roundId) => ({ roundId, nonce: randomId(), examples: 2, delta });
        codes.push(`short:${code(await send(evil, 'update', update(encodeWeights(good.subarray(1)))))}`);
        codes.push(`long:${code(await send(evil, 'update', update(encodeWeights(new Float32Array(params + 1)))))}`);
        codes.push(`odd-bytes:${code(await send(evil, 'update', update(new Uint8Array(params * 4 - 1))))}`);
        codes.push(`nan:${code(await send(evil, 'update', update(encodeWeights(nan))))}`);
        codes.push(`inf:${code(await send(evil, 'update', update(encodeWeights(inf))))}`);
        codes.push(`unknown:${code(await send(evil, 'update', update(encodeWeights(good), m.roundId + 100)))}`);
        codes.push(`stale:${code(await send(evil, 'update', update(encodeWeights(good), m.roundId - 1)))}`);
        const valid = update(encodeWeights(good));
        codes.push(`valid:${code(await send(evil, 'update', valid))}`);
        codes.push(`replay:${code(await send(evil, 'update', valid))}`);
        codes.push(`duplicate:${code(await send(evil, 'update', update(encodeWeights(good))))}`);
      })();
    });
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 6, minClients: 5, ...FAST, deadlines: { checkinMs: 3000, trainingMs: 2000 } });
    const record = await waitForRound(coordinator, r!.id);
    await waitFor(() => codes.length >= 12, 5000, 'all answers');
    expect(configured?.roundId).toBe(r!.id);
    expect(codes).toEqual([
      'update-in-checkin:WRONG_STAGE',
      'checkin:ok',
      'short:WEIGHTS_LENGTH',
      'long:WEIGHTS_LENGTH',
      'odd-bytes:WEIGHTS_LENGTH',
      'nan:WEIGHTS_NOT_FINITE',
      'inf:WEIGHTS_NOT_FINITE',
      'unknown:UNKNOWN_ROUND',
      'stale:STALE_ROUND',
      'valid:ok',
      'replay:REPLAYED_MESSAGE',
      'duplicate:DUPLICATE_UPDATE',
    ]);
    expect(record.status).toBe('committed');
    expect(record.selected).toBe(6);
    expect(record.participants).toBe(5);
    expect(record.metrics?.aggregate?.examples).toBe(2 + 4 * 4);

    // Not selected (it never checked in): its update is refused. A selected client that never
    // reports holds the training stage open until its deadline, so the refusal cannot race the
    // round's end however loaded the machine is.
    const outsider = await rawSocket(coordinator, coordinator.token());
    const holder = await rawSocket(coordinator, coordinator.token());
    holder.on('round:open', (m) => void send(holder, 'checkin', { roundId: m.roundId, nonce: randomId() }));
    evil.close();
    sleeper.close();
    try {
      const [next] = await launch(coordinator, { rounds: 1, clientsPerRound: 5, minClients: 4, ...FAST, deadlines: { checkinMs: 1500, trainingMs: 4000 } });
      await waitFor(() => coordinator.runner.current?.roundId === next!.id && coordinator.runner.current.stage === 'training', 10_000, 'training stage');
      const outsiderCode = code(await send(outsider, 'update', { roundId: next!.id, nonce: randomId(), examples: 1, delta: encodeWeights(new Float32Array(params)) }));
      expect(outsiderCode).toBe('NOT_IN_COHORT');
      const nextRecord = await waitForRound(coordinator, next!.id);
      expect(nextRecord.status).toBe('committed');
      expect(nextRecord.participants).toBe(4);
      expect(nextRecord.modelVersion).toBe((record.modelVersion as number) + 1);
    } finally {
      outsider.close();
      holder.close();
    }
  });

  it('survives clients vanishing at every stage: aborts below the minimum, then runs the next round with them back', async () => {
    stopAll(honest);
    await waitFor(() => coordinator.sockets.connectedClients() === 0, 5000, 'honest clients gone');
    const stages = ['checkin', 'config', 'training', 'upload'] as const;
    honest = await startClients(coordinator, 7, (i) => (i < stages.length ? { faults: { dropAt: stages[i], rejoinAfterMs: 300 } } : {}));
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 7, minClients: 5, ...FAST });
    const record = await waitForRound(coordinator, r!.id);
    expect(record.status).toBe('aborted');
    expect(record.reason).toMatch(/too few updates: [34] of [67] selected clients reported/);
    for (const [i, stage] of stages.entries()) expect(honest[i]!.events.some((e) => e.type === 'dropped' && e.stage === stage)).toBe(true);
    await waitFor(() => coordinator.sockets.connectedClients() === 7, 5000, 'droppers rejoin');
    const [again] = await launch(coordinator, { rounds: 1, clientsPerRound: 7, minClients: 5, ...FAST });
    const recovered = await waitForRound(coordinator, again!.id);
    expect(recovered.status).toBe('committed');
    expect(recovered.participants).toBe(7);
  });
});

describe('application-level message limit', () => {
  it('refuses a payload over the protocol limit with PAYLOAD_TOO_LARGE in the ack, and the socket stays up', async () => {
    // The real coordinator: its Socket.IO transport limit sits well above the protocol's, so
    // Socket.IO never has to close the socket and the refusal carries an error code.
    await useNodeBackend();
    const coordinator = await startTestCoordinator(tempDataDir(), { maxMessageBytes: 1 << 20 });
    const socket = await rawSocket(coordinator, coordinator.token());
    try {
      const errors: ErrorBody[] = [];
      socket.on('protocol:error', (e) => errors.push(e));
      const big = { roundId: 1, nonce: randomId(), examples: 1, delta: new Uint8Array(2 << 20) };
      const ack = await send(socket, 'update', big);
      expect(code(ack)).toBe('PAYLOAD_TOO_LARGE');
      expect(ack.ok ? '' : ack.error.message).toMatch(/over the protocol limit of 1048576 bytes/);
      // Without an ack callback the refusal comes as a protocol:error event.
      (socket as unknown as { emit(e: string, p: unknown): void }).emit('secagg', { roundId: 1, message: { maskedInput: 'A'.repeat(3 << 19) } });
      await waitFor(() => errors.length >= 1, 5000, 'protocol error');
      expect(errors[0]!.code).toBe('PAYLOAD_TOO_LARGE');
      expect(socket.connected).toBe(true);
      // The same socket still gets answers (no round is running: UNKNOWN_ROUND, not a closed socket).
      expect(code(await send(socket, 'checkin', { roundId: 1, nonce: randomId() }))).toBe('UNKNOWN_ROUND');
      expect(coordinator.sockets.refusals.get('PAYLOAD_TOO_LARGE')).toBe(2);
    } finally {
      socket.close();
      await coordinator.close();
    }
  });
});

describe('a device without training examples', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('leaves a round once it finds it has nothing to train on, then declines check-in; no round waits for its deadline', async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(dataDir);
    clients = await startClients(coordinator, 4, (i) => (i === 3 ? { examples: () => [] } : {}));
    const trainingMs = 30_000;
    const request = { rounds: 1, clientsPerRound: 4, minClients: 3, ...FAST, deadlines: { checkinMs: 3_000, trainingMs } };
    // First round: no model cached yet, so the device checks in; once selected and the model loaded, it leaves.
    const [first] = await launch(coordinator, request);
    const left = await waitForRound(coordinator, first!.id, 40_000);
    expect(left.status, left.reason).toBe('committed');
    expect(left.checkedIn).toBe(4);
    expect(left.participants).toBe(3);
    expect(left.durationMs!).toBeLessThan(trainingMs);
    expect(clients[3]!.events.some((e) => e.type === 'declined' && e.roundId === first!.id)).toBe(true);
    expect(left.declined).toEqual({ NO_EXAMPLES: 1 });
    // Second round: it knows, and declines check-in (which therefore closes early too).
    const [second] = await launch(coordinator, request);
    const declined = await waitForRound(coordinator, second!.id, 40_000);
    expect(declined.status, declined.reason).toBe('committed');
    expect(declined.checkedIn).toBe(3);
    expect(declined.timings.checkinMs!).toBeLessThan(request.deadlines.checkinMs);
    expect(declined.durationMs!).toBeLessThan(trainingMs);
    expect(clients[3]!.events.some((e) => e.type === 'declined' && e.roundId === second!.id)).toBe(true);
    expect(clients[3]!.events.some((e) => e.type === 'checked-in' && e.roundId === second!.id)).toBe(false);
    expect(declined.declined).toEqual({ NO_EXAMPLES: 1 });
  }, 60_000);
});

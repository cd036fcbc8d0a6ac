/**
 * The device validates what the coordinator sends: a real FederatedClient connects to a real
 * Socket.IO server that plays a hostile coordinator (a model URL on another origin, a negative
 * check-in window, an unknown field). Each message is dropped with a `malformed` event; the
 * client neither checks in, fetches nor trains.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { afterAll, describe, expect, it } from 'vitest';
import { FederatedClient } from '../../client/core/client.ts';
import type { ClientEvent } from '../../client/core/client.ts';
import { EVENTS } from '../../shared/protocol/events.ts';
import { waitFor } from './harness.ts';

describe('coordinator messages are validated on the device', () => {
  const httpServer = createServer();
  const io = new Server(httpServer, { serveClient: false });
  let client: FederatedClient | undefined;

  afterAll(async () => {
    client?.stop();
    await new Promise<void>((resolve) => void io.close(() => resolve()));
  });

  it('drops a malformed round:open, round:config and round:closed without acting on them', async () => {
    const received: string[] = [];
    io.on('connection', (socket) => {
      socket.onAny((event: string) => received.push(event));
      socket.emit(EVENTS.roundOpen, { roundId: 1, checkinMs: -5 });
      socket.emit(EVENTS.roundConfig, { roundId: 1, modelVersion: 1, modelUrl: 'https://elsewhere.example/model.json', parameters: 10, train: { epochs: 1, batchSize: 16, learningRate: 0.02, optimizer: 'sgd' }, trainingMs: 1000, privacy: null, secagg: null });
      socket.emit(EVENTS.roundConfig, { roundId: 1, modelVersion: 1, modelUrl: '//elsewhere.example/model.json', parameters: 10, train: { epochs: 1, batchSize: 16, learningRate: 0.02, optimizer: 'sgd' }, trainingMs: 1000, privacy: null, secagg: null });
      socket.emit(EVENTS.roundClosed, { roundId: 1, status: 'committed', extra: 'field' });
    });
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const events: ClientEvent[] = [];
    client = new FederatedClient({
      serverUrl: `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`,
      token: 'not-checked-by-this-server',
      examples: () => [],
      onEvent: (e) => events.push(e),
    });
    client.start();
    await waitFor(() => events.filter((e) => e.type === 'malformed').length === 4, 5_000, 'four malformed messages');
    const malformed = events.filter((e): e is Extract<ClientEvent, { type: 'malformed' }> => e.type === 'malformed');
    expect(malformed.map((e) => e.event)).toEqual([EVENTS.roundOpen, EVENTS.roundConfig, EVENTS.roundConfig, EVENTS.roundClosed]);
    expect(malformed[1]!.message).toMatch(/modelUrl.*expected a path on the coordinator/);
    expect(events.some((e) => e.type === 'selected' || e.type === 'checked-in' || e.type === 'model-fetched' || e.type === 'round-closed')).toBe(false);
    expect(received).not.toContain(EVENTS.checkin);
  });
});

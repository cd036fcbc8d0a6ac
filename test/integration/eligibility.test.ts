/**
 * A device that is not eligible when a round's check-in opens (a busy page, a low battery) joins
 * the round when it becomes eligible while check-in is still open (`eligibilityChanged`), against
 * a real coordinator with real Socket.IO clients; without that call it sits the round out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { FAST, launch, startClients, startTestCoordinator, stopAll, tempDataDir, waitFor, waitForRound } from './harness.ts';

describe('late eligibility', () => {
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];
  let eligible = false;

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir());
    clients = await startClients(coordinator, 3, (i) => (i === 0 ? { eligible: () => eligible } : {}));
  });

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('checks in once the device becomes eligible while check-in is open, and the round does not wait for the deadline', async () => {
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 3, minClients: 3, ...FAST, deadlines: { checkinMs: 20_000, trainingMs: 10_000 } });
    await waitFor(() => clients.slice(1).every((c) => c.events.some((e) => e.type === 'checked-in' && e.roundId === r!.id)), 10_000, 'the eligible devices checked in');
    expect(clients[0]!.events.some((e) => e.type === 'checked-in')).toBe(false);
    clients[0]!.client.eligibilityChanged(); // still not eligible: nothing happens
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(clients[0]!.events.some((e) => e.type === 'checked-in')).toBe(false);
    eligible = true;
    clients[0]!.client.eligibilityChanged();
    const record = await waitForRound(coordinator, r!.id, 30_000);
    expect(record.status).toBe('committed');
    expect(record.participants).toBe(3);
    expect(clients[0]!.events.some((e) => e.type === 'checked-in' && e.roundId === r!.id)).toBe(true);
    // Check-in closed as soon as all three connected devices were in, long before its 20 s deadline.
    expect(record.timings?.checkinMs as number).toBeLessThan(15_000);
  });
});

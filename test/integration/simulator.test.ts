/**
 * The fleet simulator against a real coordinator (port 0, SQLite in a temp dir): sixteen simulated
 * devices in two worker threads, enrolled over REST. A round with random dropout still commits
 * with the survivors; a round where forced drops leave fewer updates than the minimum aborts and
 * says why; and the next round after it commits. Devices given their own privacy cap refuse a DP
 * round past it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { assignFaults, runFleet } from '../../client/node/simulator.ts';
import type { Fleet } from '../../client/node/simulator.ts';
import type { TestCoordinator } from './harness.ts';
import { FAST, launch, startTestCoordinator, syntheticPopulation, tempDataDir, waitFor, waitForRound } from './harness.ts';

const DEVICES = 16;

describe('fleet simulator', () => {
  let coordinator: TestCoordinator;
  let fleet: Fleet | undefined;

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir());
  });

  afterAll(async () => {
    await fleet?.stop();
    await coordinator?.close();
  });

  it('assigns faults reproducibly and checks them', () => {
    const a = assignFaults(100, { dropAt: { stage: 'training', fraction: 0.1 }, vanishMidUpload: 0.05, slow: { fraction: 0.2, delayMs: 50 } }, 3);
    expect(a).toEqual(assignFaults(100, { dropAt: { stage: 'training', fraction: 0.1 }, vanishMidUpload: 0.05, slow: { fraction: 0.2, delayMs: 50 } }, 3));
    expect(a.filter((f) => f.dropAt === 'training')).toHaveLength(10);
    expect(a.filter((f) => f.vanishMidUpload)).toHaveLength(5);
    expect(a.filter((f) => f.slowMs === 50).length).toBeGreaterThan(5);
    expect(() => assignFaults(10, { dropout: 1.5 }, 1)).toThrow(/"dropout" expected a probability/);
  });

  it('runs a round with random dropout to commit, then aborts a round whose drops exceed the minimum', async () => {
    const pop = await syntheticPopulation();
    // Devices with at least one training example (one with none would never report).
    const withExamples = new Set(pop.prepared.examples.train.map((e) => e.userId));
    const users = pop.prepared.users.train.filter((u) => withExamples.has(u.userId)).slice(0, DEVICES);
    expect(users).toHaveLength(DEVICES);

    // Every device vanishes with probability 0.25 in each round it checks in to, at a random stage.
    fleet = await runFleet({ serverUrl: coordinator.url, operatorToken: coordinator.operator, users, startDay: pop.dataset.startDay, workers: 2, faults: { dropout: 0.25, rejoinAfterMs: 300 }, seed: 5, reconnectionDelayMs: 100 });
    expect(fleet.workers).toBe(2);
    await fleet.waitConnected(DEVICES, 20_000);
    await waitFor(() => coordinator.sockets.connectedClients() === DEVICES, 10_000, 'coordinator sees the fleet');
    const [first] = await launch(coordinator, { rounds: 1, clientsPerRound: DEVICES, minClients: 4, ...FAST, deadlines: { checkinMs: 1_500, trainingMs: 8_000 } });
    const committed = await waitForRound(coordinator, first!.id, 25_000);
    // Acknowledged updates plus those whose sender vanished mid-upload account for every participant.
    const accounted = () => (fleet!.stats().events['update-sent'] ?? 0) + (fleet!.stats().dropped.upload ?? 0);
    await waitFor(() => accounted() >= committed.participants, 5_000, 'fleet events');
    const stats = fleet.stats();
    const dropped = Object.values(stats.dropped).reduce((a, b) => a + b, 0);
    expect(committed.status).toBe('committed');
    expect(dropped).toBeGreaterThan(0);
    expect(committed.participants).toBeGreaterThanOrEqual(4);
    expect(committed.participants).toBeLessThan(DEVICES);
    expect(committed.metrics?.heads?.interests?.microAuc).toEqual(expect.any(Number));
    expect(stats.events['update-sent']).toBeLessThanOrEqual(committed.participants);
    expect(stats.trainingMs).toBeGreaterThan(0);
    await fleet.stop();

    // Half the devices vanish after training: 8 updates at most, below a minimum of 12.
    await waitFor(() => coordinator.sockets.connectedClients() === 0, 10_000, 'first fleet gone');
    fleet = await runFleet({ serverUrl: coordinator.url, operatorToken: coordinator.operator, users, startDay: pop.dataset.startDay, workers: 2, faults: { dropAt: { stage: 'training', fraction: 0.5 }, rejoinAfterMs: 300 }, seed: 6, reconnectionDelayMs: 100 });
    await fleet.waitConnected(DEVICES, 20_000);
    await waitFor(() => coordinator.sockets.connectedClients() === DEVICES, 10_000, 'coordinator sees the second fleet');
    const [second] = await launch(coordinator, { rounds: 1, clientsPerRound: DEVICES, minClients: 12, ...FAST, deadlines: { checkinMs: 1_500, trainingMs: 8_000 } });
    const aborted = await waitForRound(coordinator, second!.id, 25_000);
    expect(aborted.status).toBe('aborted');
    expect(aborted.reason).toMatch(/too few updates: \d+ of 16 selected clients reported \(\d+ dropped\), fewer than minClients 12/);
    expect(aborted.participants).toBeLessThanOrEqual(8);
    // Workers forward their devices' events in batches: wait for the eighth drop to arrive.
    await waitFor(() => fleet?.stats().dropped.training === 8, 5_000, 'eight drops at training');

    // The droppers rejoin and the next round commits with everyone.
    await waitFor(() => coordinator.sockets.connectedClients() === DEVICES, 10_000, 'droppers rejoin');
    const [third] = await launch(coordinator, { rounds: 1, clientsPerRound: DEVICES, minClients: 12, ...FAST, deadlines: { checkinMs: 1_500, trainingMs: 8_000 } });
    const recovered = await waitForRound(coordinator, third!.id, 25_000);
    expect(recovered.status).toBe('committed');
    expect(recovered.participants).toBe(DEVICES);
  });

  it('gives every simulated device its own privacy cap: past it they refuse a DP round whatever the coordinator says', async () => {
    const pop = await syntheticPopulation();
    const withExamples = new Set(pop.prepared.examples.train.map((e) => e.userId));
    const users = pop.prepared.users.train.filter((u) => withExamples.has(u.userId)).slice(0, 6);
    await fleet?.stop();
    await waitFor(() => coordinator.sockets.connectedClients() === 0, 10_000, 'earlier fleet gone');
    fleet = await runFleet({ serverUrl: coordinator.url, operatorToken: coordinator.operator, users, startDay: pop.dataset.startDay, workers: 1, seed: 7, reconnectionDelayMs: 100, epsilonCap: { epsilon: 0.01, delta: 1e-6 } });
    await fleet.waitConnected(6, 20_000);
    await waitFor(() => coordinator.sockets.connectedClients() === 6, 10_000, 'coordinator sees the capped fleet');
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 6, minClients: 4, ...FAST, deadlines: { checkinMs: 1_500, trainingMs: 20_000 }, privacy: { clip: 0.5, noiseMultiplier: 1.5, delta: 1e-6 } });
    const record = await waitForRound(coordinator, r!.id, 25_000);
    expect(record.status).toBe('aborted');
    expect(record.participants).toBe(0);
    // The operator learns why: the devices declined on their own privacy (a code, not their budgets).
    expect(record.declined).toEqual({ PRIVACY_NOT_ACCEPTED: 6 });
    expect(record.reason).toMatch(/; declined by 6 device\(s\): 6 PRIVACY_NOT_ACCEPTED \(the device's privacy policy or its own privacy budget\)$/);
    // Workers forward their devices' events in batches: wait for all six refusals to arrive.
    await waitFor(() => fleet?.stats().events['privacy-refused'] === 6, 5_000, 'six privacy refusals');
    expect(fleet.stats().events['update-sent'] ?? 0).toBe(0);
    expect(fleet.stats().updateBytes).toBe(0);

    // The same devices without a cap: a distributed-DP round with SecAgg+ commits, and the fleet
    // counts the bytes of every SecAgg+ message its devices sent.
    await fleet.stop();
    await waitFor(() => coordinator.sockets.connectedClients() === 0, 10_000, 'capped fleet gone');
    fleet = await runFleet({ serverUrl: coordinator.url, operatorToken: coordinator.operator, users, startDay: pop.dataset.startDay, workers: 1, seed: 8, reconnectionDelayMs: 100 });
    await fleet.waitConnected(6, 20_000);
    await waitFor(() => coordinator.sockets.connectedClients() === 6, 10_000, 'coordinator sees the uncapped fleet');
    const [masked] = await launch(coordinator, { rounds: 1, clientsPerRound: 6, minClients: 4, ...FAST, deadlines: { checkinMs: 1_500, trainingMs: 20_000 }, privacy: { clip: 0.5, noiseMultiplier: 1.5, delta: 1e-6 } });
    const done = await waitForRound(coordinator, masked!.id, 25_000);
    expect(done.status, done.reason).toBe('committed');
    expect(done.secagg).toMatchObject({ survivors: 6 });
    await waitFor(() => fleet?.stats().events['secagg-finished'] === 6, 5_000, 'six SecAgg+ sessions reported');
    // Each device sent at least its masked input: 4 bytes per padded coordinate.
    const padded = done.privacy!.paddedDimension as number;
    expect(fleet.stats().updateBytes).toBeGreaterThan(6 * 4 * padded);
  }, 60_000);
});

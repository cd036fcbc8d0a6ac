/**
 * The coordinator hang of issue 21, scripted against a real coordinator (port 0, SQLite) and real
 * Socket.IO clients: a launch larger than the fleet aborts at selection, then a SecAgg+ round with a
 * cohort member that checked in and then stayed silent (connected, never advertising keys, as a
 * device that missed its training deadline did) must still end by its deadline, and the loop must
 * run the next launch. Before the fix the SecAgg+ stage waited for that member forever. Also: a
 * device whose training ends after the deadline says so (DEADLINE_MISSED), so the round closes early.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { ClientSocket } from '../../client/core/client.ts';
import type { LaunchRequest } from '../../shared/protocol/messages.ts';
import { randomId } from '../../shared/protocol/enrollment.ts';
import { cryptoRandomSource } from '../../shared/privacy/random.ts';
import { toBase64 } from '../../shared/secagg/bytes.ts';
import { generateSigningKeyPair } from '../../shared/secagg/keys.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { FAST, launch, rawSocket, startClients, startTestCoordinator, stopAll, tempDataDir, waitForRound } from './harness.ts';

const TRAIN = FAST.train;
const SECAGG_ROUND: LaunchRequest = {
  rounds: 1,
  clientsPerRound: 5,
  minClients: 3,
  // Generous for the four real devices on a loaded machine; the silent one waits all of it out.
  deadlines: { checkinMs: 3_000, trainingMs: 20_000 },
  train: TRAIN,
  privacy: { mode: 'distributed', clip: 0.5, noiseMultiplier: 1, delta: 1e-6, t: 3 },
  secagg: { mode: 'on', dropoutRate: 0.4, corruptFraction: 0, stageMs: 3_000 },
};

describe('rounds end by their deadlines', () => {
  let coordinator: TestCoordinator;
  let clients: TestClient[];
  let silent: ClientSocket;

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir());
    clients = await startClients(coordinator, 4);
    // A cohort member that checks in to every round (with its signing key) and then never answers.
    silent = await rawSocket(coordinator, coordinator.token());
    const keys = generateSigningKeyPair(cryptoRandomSource());
    silent.on('round:open', ({ roundId }) => {
      silent.emit('checkin', { roundId, nonce: randomId(), signingKey: toBase64(keys.publicKey) }, () => undefined);
    });
  });

  afterAll(async () => {
    silent?.disconnect();
    stopAll(clients ?? []);
    await coordinator?.close();
  });

  it('after an over-sized launch aborts, a SecAgg+ round with a silent member ends by its deadline, and the next round runs', async () => {
    const [oversized] = await launch(coordinator, { rounds: 1, clientsPerRound: 12, minClients: 10, ...FAST });
    const first = await waitForRound(coordinator, oversized!.id);
    expect(first.status).toBe('aborted');
    expect(first.reason).toMatch(/too few clients: 5 selected of 5 checked in, fewer than minClients 10/);

    const [secagg] = await launch(coordinator, SECAGG_ROUND);
    const record = await waitForRound(coordinator, secagg!.id, 60_000);
    expect(record.status).toBe('committed');
    // The silent member is dropped at advertise-keys (the stage it never answered); the rest survive.
    expect(record.secagg?.droppedPerStage['advertise-keys']).toBeGreaterThanOrEqual(1);
    expect(record.secagg!.survivors).toBeGreaterThanOrEqual(3);
    expect(record.secagg!.survivors + record.secagg!.droppedPerStage['advertise-keys']).toBeLessThanOrEqual(5);

    const [next] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 2, ...FAST });
    expect((await waitForRound(coordinator, next!.id, 30_000)).status).toMatch(/^(committed|aborted)$/);
  }, 90_000);
});

describe('a device that trained past the deadline', () => {
  let coordinator: TestCoordinator;
  let clients: TestClient[];

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir());
    // Device 0's clock jumps an hour once it is selected: its training ends after the deadline.
    let skew = 0;
    clients = await startClients(coordinator, 3, (i) =>
      i === 0
        ? {
            clock: () => Date.now() + skew,
            onEvent: (e) => {
              clients?.[0]?.events.push(e);
              if (e.type === 'selected') skew = 3_600_000;
            },
          }
        : {},
    );
  });

  afterAll(async () => {
    stopAll(clients ?? []);
    await coordinator?.close();
  });

  it('leaves with DEADLINE_MISSED, and the round closes without waiting out the deadline', async () => {
    const trainingMs = 30_000;
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 3, minClients: 2, ...FAST, deadlines: { checkinMs: 3_000, trainingMs } });
    const record = await waitForRound(coordinator, r!.id, 40_000);
    expect(record.status).toBe('committed');
    expect(record.participants).toBe(2);
    expect(record.declined).toEqual({ DEADLINE_MISSED: 1 });
    expect(record.timings?.trainingMs).toBeLessThan(trainingMs);
    expect(clients[0]!.events.some((e) => e.type === 'deadline-missed' && e.roundId === r!.id)).toBe(true);
  }, 60_000);
});

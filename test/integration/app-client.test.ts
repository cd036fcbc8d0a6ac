/** The app client: one user's events from a JSONL file take part in a real round next to other clients. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FederatedClient } from '../../client/core/client.ts';
import { startAppClient } from '../../client/node/app-client.ts';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { FAST, launch, startClients, startTestCoordinator, stopAll, syntheticPopulation, tempDataDir, waitFor, waitForRound } from './harness.ts';

describe('app client', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator;
  let others: TestClient[] = [];
  let app: FederatedClient | undefined;

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(dataDir);
  });

  afterAll(async () => {
    app?.stop();
    stopAll(others);
    await coordinator?.close();
  });

  it('trains on one user from an events file and its update is accepted', async () => {
    const pop = await syntheticPopulation();
    const user = pop.prepared.users.train.at(-1)!;
    const file = path.join(dataDir, 'device.jsonl');
    fs.writeFileSync(file, user.events.map((e) => JSON.stringify({ userId: user.userId, day: e.day, type: e.type, itemId: e.itemId, category: e.category, ...(e.price === undefined ? {} : { price: e.price }) })).join('\n'));
    app = await startAppClient({ serverUrl: coordinator.url, token: coordinator.token(), eventsFile: file, startDay: pop.dataset.startDay, reconnectionDelayMs: 100 });
    others = await startClients(coordinator, 2);
    await waitFor(() => coordinator.sockets.connectedClients() === 3, 5000, 'three clients');
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 3, minClients: 3, ...FAST });
    const record = await waitForRound(coordinator, r!.id);
    expect(record.status).toBe('committed');
    expect(record.participants).toBe(3);
    await waitFor(() => app!.stats.updatesAccepted === 1, 5000, 'app client ack');
  });
});

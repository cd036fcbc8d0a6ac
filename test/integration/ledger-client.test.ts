/**
 * Client-side budgets in a real round: a coordinator without a cap and four real DP clients,
 * one of which has a cap below one round's epsilon. That device refuses the round on its own
 * (a privacy-refused event, nothing recorded, no update sent), the others record the round in
 * their ledgers at the epsilon the coordinator's accountant gives for q = 1, and the round
 * commits without the refusing device, which left the cohort at once (no wait for its deadline).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { ClientPrivacyLedger, MemoryClientLedgerStorage } from '../../client/core/privacy-ledger.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { FAST, launch, startClients, startTestCoordinator, stopAll, tempDataDir, waitForRound } from './harness.ts';

describe('client-side privacy budget', () => {
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];
  const ledgers: ClientPrivacyLedger[] = [];
  const storages = Array.from({ length: 4 }, () => new MemoryClientLedgerStorage());

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir(), { allowNoDp: false });
    for (let i = 0; i < 4; i++) ledgers.push(await ClientPrivacyLedger.open(storages[i]!, { epsilon: i === 3 ? 0.01 : 100, delta: 1e-6 }));
    clients = await startClients(coordinator, 4, (i) => ({ privacyLedger: ledgers[i] as ClientPrivacyLedger }));
  });

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('a device past its own cap refuses the round whatever the coordinator says; the others record it', { timeout: 60_000 }, async () => {
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 3, deadlines: { checkinMs: 3_000, trainingMs: 30_000 }, train: FAST.train, privacy: { clip: 0.5, noiseMultiplier: 1.5, delta: 1e-6 } });
    const record = await waitForRound(coordinator, r!.id, 30_000);
    expect(record.status).toBe('committed');
    expect(record.participants).toBe(3);
    // SecAgg+ is on (the default with distributed DP) and the refusing device left the cohort at
    // once: the round did not sit out its 30 s training deadline waiting for it.
    expect(record.secagg).toMatchObject({ survivors: 3 });
    expect(record.durationMs as number).toBeLessThan(20_000);
    const refusals = clients[3]!.events.filter((e) => e.type === 'privacy-refused');
    expect(refusals).toHaveLength(1);
    expect(JSON.stringify(refusals[0])).toMatch(/above its own cap of 0\.01/);
    expect(clients[3]!.client.stats.updatesSent).toBe(0);
    expect(ledgers[3]!.rounds).toHaveLength(0);
    for (const ledger of ledgers.slice(0, 3)) {
      expect(ledger.rounds.map((x) => x.roundId)).toEqual([r!.id]);
      // Selection here is fixed (q = 1), so the device's conservative count equals the coordinator's.
      expect(ledger.spent).toBeCloseTo(record.privacy?.epsilonRound as number, 9);
    }
  });

  it('a device whose own cap is already spent declines at check-in, and is never selected', { timeout: 60_000 }, async () => {
    // Device 0's ledger reopened with its cap at exactly what it has spent: every round would pass it.
    const spent = ledgers[0]!.spent as number;
    const exhausted = await ClientPrivacyLedger.open(storages[0]!, { epsilon: spent, delta: 1e-6 });
    const [late] = await startClients(coordinator, 1, () => ({ privacyLedger: exhausted }));
    try {
      const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 3, deadlines: { checkinMs: 8_000, trainingMs: 30_000 }, train: FAST.train, privacy: { clip: 0.5, noiseMultiplier: 1.5, delta: 1e-6 } });
      const record = await waitForRound(coordinator, r!.id, 30_000);
      expect(record.status).toBe('committed');
      // Five connected: four checked in (check-in closed early, without waiting for the fifth), and
      // two declined: the spent device at check-in, device 3 once selected (its cap of 0.01).
      expect(record.checkedIn).toBe(4);
      expect(record.timings.checkinMs as number).toBeLessThan(8_000);
      expect(record.declined).toEqual({ PRIVACY_NOT_ACCEPTED: 2 });
      expect(late!.events.some((e) => e.type === 'declined' && e.roundId === r!.id && e.reason === 'declined at check-in: PRIVACY_NOT_ACCEPTED')).toBe(true);
      expect(late!.events.some((e) => e.type === 'checked-in')).toBe(false);
      expect(exhausted.rounds).toHaveLength(1);
    } finally {
      stopAll([late!]);
    }
  });
});

/**
 * Receipts in a DP round without SecAgg+ (local DP): a device's update leaves before the release
 * entry exists, so nothing can wait for the receipt; the coordinator sends it to every device whose
 * update it counted once the release is entered, and each device checks it against the key it
 * pinned and keeps it in its own privacy ledger, as a witness that the round was entered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientPrivacyLedger, textLedgerStorage } from '../../client/core/privacy-ledger.ts';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import { verifyReceipt } from '../../shared/ledger/receipt.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { api, FAST, launch, startClients, startTestCoordinator, stopAll, tempDataDir, waitFor, waitForRound } from './harness.ts';

const N = 3;

describe('receipts of a DP round without SecAgg+', () => {
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];
  const stored = new Map<number, string>();

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(tempDataDir(), { allowNoDp: false });
    const ledgers = await Promise.all(
      Array.from({ length: N }, (_, i) => ClientPrivacyLedger.open(textLedgerStorage(async () => stored.get(i) ?? null, async (text) => void stored.set(i, text)), { epsilon: 1e6, delta: 1e-6 })),
    );
    clients = await startClients(coordinator, N, (i) => ({ privacyLedger: ledgers[i]! }));
  });

  afterAll(async () => {
    stopAll(clients);
    await coordinator?.close();
  });

  it('reach every device whose update was counted after the release entry, which checks and keeps it', async () => {
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: N, minClients: N, deadlines: FAST.deadlines, train: FAST.train, privacy: { mode: 'local', clip: 0.5, noiseMultiplier: 1, delta: 1e-6 } });
    const record = await waitForRound(coordinator, r!.id, 30_000);
    expect(record.status, record.reason).toBe('committed');
    const ledger = (await api<{ entries: unknown[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger')).body.entries.map((e) => LedgerEntrySchema.parse(e));
    const release = ledger.find((e) => e.kind === 'round' && e.round.roundId === record.id && e.round.outcome === 'released')!;
    expect(release).toBeDefined();
    for (const [i, c] of clients.entries()) {
      await waitFor(() => c.client.receipts().length === 1, 5_000, `device ${i} keeping its receipt`);
      const receipt = c.client.receipts()[0]!;
      expect(receipt.entry).toEqual(release);
      expect(await verifyReceipt(receipt, { roundId: record.id, pinnedKeys: [release.keyId] })).toMatchObject({ ok: true });
      // After its update went (it could not wait for it), and kept durably in its privacy ledger.
      const types = c.events.filter((e) => 'roundId' in e && e.roundId === record.id).map((e) => e.type);
      expect(types.indexOf('update-sent'), types.join(', ')).toBeGreaterThan(-1);
      expect(types.indexOf('receipt-kept')).toBeGreaterThan(types.indexOf('update-sent'));
      expect((JSON.parse(stored.get(i)!) as { receipts: unknown[] }).receipts).toHaveLength(1);
    }
  });
});

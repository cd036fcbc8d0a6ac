/**
 * Device receipts in real SecAgg+ rounds: a coordinator on port 0 (SQLite in a temp dir, its own
 * ledger) and real Socket.IO clients, each keeping its privacy ledger in a JSON file. The release
 * entry is written before the unmask requests go out; every survivor receives the entry's receipt
 * (signed tree head, inclusion proof), checks it against the ledger key it pinned on first use and
 * keeps it in its own ledger before it sends its unmask shares. A round whose unmask stage falls
 * short after its release spends epsilon without publishing anything; cut from the ledger with the
 * coordinator stopped, the ledger still verifies (chain, signatures, models), and only the devices'
 * receipts expose it: `audit verify --receipt` fails naming the receipt. Devices handed a forged
 * receipt (the head re-signed by another key, altered on its way out of the coordinator) or none at
 * all withhold their unmask shares, and the round aborts with its spend entered.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Socket as ServerSocket } from 'socket.io';
import { ClientPrivacyLedger, textLedgerStorage } from '../../client/core/privacy-ledger.ts';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import type { LedgerEntry } from '../../shared/ledger/entry.ts';
import { verifyReceipt } from '../../shared/ledger/receipt.ts';
import type { LedgerReceipt } from '../../shared/ledger/receipt.ts';
import { signTreeHead } from '../../shared/ledger/tree-head.ts';
import type { RoundReceipt, RoundRecord } from '../../shared/protocol/messages.ts';
import { LEDGER_DATABASE_FILE } from '../../server/ledger/sqlite.ts';
import type { TestClient, TestCoordinator } from './harness.ts';
import { auditJson } from './audit-cli.ts';
import { api, launch, SECAGG_FIVE, startClients, startTestCoordinator, stopAll, tempDataDir, waitFor, waitForRound } from './harness.ts';

const N = 5;
const ROUND = SECAGG_FIVE;

const audit = (...args: string[]) => auditJson(...args);

describe('devices witness the ledger: receipts before unmask shares', () => {
  const dataDir = tempDataDir();
  const devices = tempDataDir();
  const ledgerFile = (i: number) => path.join(devices, `device-${i}.privacy-ledger.json`);
  let coordinator: TestCoordinator;
  let clients: TestClient[] = [];
  let genesisKey = '';
  let closed = false;
  /** Unmask shares the coordinator received, by round. */
  const unmaskSharesFrom = new Map<number, number>();
  const rounds: { committed?: RoundRecord; shortAfterRelease?: RoundRecord } = {};

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(dataDir, { allowNoDp: false });
    coordinator.io.on('connection', (socket: ServerSocket) =>
      socket.on('secagg', (upload: { roundId?: number; message?: { type?: string } }) => {
        if (upload?.message?.type === 'unmask-shares' && typeof upload.roundId === 'number') unmaskSharesFrom.set(upload.roundId, (unmaskSharesFrom.get(upload.roundId) ?? 0) + 1);
      }),
    );
    const key = await api<{ genesis: string }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger/public-key');
    genesisKey = key.body.genesis;
    const ledgers = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        ClientPrivacyLedger.open(
          textLedgerStorage(
            async () => (fs.existsSync(ledgerFile(i)) ? fs.readFileSync(ledgerFile(i), 'utf8') : null),
            async (text) => fs.writeFileSync(ledgerFile(i), text),
          ),
          { epsilon: 1e6, delta: 1e-6 },
        ),
      ),
    );
    // Device 0 is given the ledger key; the others pin it on first use.
    clients = await startClients(coordinator, N, (i) => ({ privacyLedger: ledgers[i]!, ...(i === 0 ? { ledgerPublicKey: genesisKey } : {}) }));
  });

  afterAll(async () => {
    stopAll(clients);
    if (!closed) await coordinator?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(devices, { recursive: true, force: true });
  });

  async function entries(): Promise<LedgerEntry[]> {
    const res = await api<{ entries: unknown[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/ledger');
    return res.body.entries.map((e) => LedgerEntrySchema.parse(e));
  }

  async function runRound(): Promise<RoundRecord> {
    await waitFor(() => coordinator.sockets.connectedClients() >= N && clients.every((c) => c.client.socket.connected && !c.client.busy), 10_000, 'every device connected and idle');
    const [r] = await launch(coordinator, ROUND);
    return waitForRound(coordinator, r!.id, 40_000);
  }

  const eventsOf = (c: TestClient, roundId: number) => c.events.filter((e) => 'roundId' in e && e.roundId === roundId);

  it('every survivor receives, checks and keeps the receipt of the release entry before its unmask shares go', async () => {
    const record = await runRound();
    expect(record.status, record.reason).toBe('committed');
    rounds.committed = record;
    const ledger = await entries();
    const release = ledger.find((e) => e.kind === 'round' && e.round.roundId === record.id && e.round.outcome === 'released')!;
    expect(release).toBeDefined();
    for (const [i, c] of clients.entries()) {
      const kept = c.client.receipts();
      expect(kept, `device ${i}`).toHaveLength(1);
      const receipt = kept[0] as LedgerReceipt;
      // The entry the device holds is the ledger's, byte for byte, and the head covered it when the shares were asked for.
      expect(receipt.entry).toEqual(release);
      expect(receipt).toMatchObject({ roundId: record.id, leafIndex: release.seq - 1, head: { genesisKey, keyId: genesisKey, treeSize: release.seq } });
      expect(await verifyReceipt(receipt, { roundId: record.id, pinnedKeys: [genesisKey] })).toMatchObject({ ok: true });
      // Kept before the shares left: the receipt event precedes the end of the device's SecAgg+ session.
      const types = eventsOf(c, record.id).map((e) => e.type);
      expect(types.indexOf('receipt-kept'), `device ${i}: ${types.join(', ')}`).toBeGreaterThan(-1);
      expect(types.indexOf('receipt-kept')).toBeLessThan(types.indexOf('secagg-finished'));
      expect(eventsOf(c, record.id).find((e) => e.type === 'secagg-finished')).toMatchObject({ status: 'done' });
      // And durably, in the device's own privacy ledger file.
      const file = JSON.parse(fs.readFileSync(ledgerFile(i), 'utf8')) as { receipts: { receipt: LedgerReceipt }[]; ledgerKeys: string[] };
      expect(file.receipts.map((k) => k.receipt)).toEqual([receipt]);
      expect(file.ledgerKeys).toEqual([genesisKey]);
    }
    expect(unmaskSharesFrom.get(record.id)).toBe(N);
  });

  it('a round whose unmask stage falls short after its release keeps its spend in the ledger, and its survivors their receipts', async () => {
    // Three of five vanish at the unmask stage, after checking and keeping the receipt: two shares of each mask are too few for t = 3.
    for (const c of clients.slice(0, 3)) c.client.dropOnceAt('unmask', 300);
    const record = await runRound();
    expect(record.status).toBe('aborted');
    expect(record.reason).toMatch(/SecAgg\+ unmask stage fell short/);
    expect(record.privacy).toMatchObject({ released: true });
    rounds.shortAfterRelease = record;
    const ledger = await entries();
    const forRound = ledger.filter((e) => e.kind === 'round' && e.round.roundId === record.id).map((e) => (e.kind === 'round' ? e.round.outcome : null));
    expect(forRound).toEqual(['released', 'aborted']);
    for (const c of clients) expect(c.client.receipts().map((r) => r.roundId)).toEqual([rounds.committed!.id, record.id]);
    expect(unmaskSharesFrom.get(record.id)).toBe(2);
  });

  it('devices given a forged receipt, or none, withhold their unmask shares: the round aborts with its spend entered', async () => {
    const sockets = coordinator.sockets;
    const send = sockets.sendReceipt.bind(sockets);
    const forger = nacl.sign.keyPair();
    // On its way out of the coordinator: the head re-signed by a key the ledger never held (two devices),
    // its root edited (two), nothing sent at all (one).
    let n = 0;
    sockets.sendReceipt = (clientId: string, message: RoundReceipt) => {
      const which = n++;
      const { keyId: _k, signature: _s, ...body } = message.receipt.head;
      if (which < 2) return send(clientId, { ...message, receipt: { ...message.receipt, head: signTreeHead(body, forger) } });
      if (which < 4) return send(clientId, { ...message, receipt: { ...message.receipt, head: { ...message.receipt.head, rootHash: 'ab'.repeat(32) } } });
    };
    try {
      const record = await runRound();
      expect(record.status).toBe('aborted');
      expect(record.reason).toMatch(/SecAgg\+ unmask stage fell short/);
      expect(record.privacy).toMatchObject({ released: true });
      expect(unmaskSharesFrom.get(record.id) ?? 0).toBe(0);
      const reasons = clients.map((c) => eventsOf(c, record.id).find((e) => e.type === 'receipt-refused'));
      expect(reasons.every((e) => e !== undefined)).toBe(true);
      const texts = reasons.map((e) => (e?.type === 'receipt-refused' ? e.reason : '')).sort();
      expect(texts.filter((t) => /^the tree head is signed by key [0-9a-f]{16}…, not by the ledger's key/.test(t))).toHaveLength(2);
      expect(texts.filter((t) => /^the signature of the tree head .* does not verify$/.test(t))).toHaveLength(2);
      expect(texts.filter((t) => t === `no ledger receipt for round ${record.id} came before its unmask request`)).toHaveLength(1);
      for (const c of clients) {
        expect(eventsOf(c, record.id).find((e) => e.type === 'secagg-finished')).toMatchObject({ status: 'refused', stage: 'unmask', reason: expect.stringMatching(/^RECEIPT_REFUSED: /) });
        expect(c.client.receipts().map((r) => r.roundId)).not.toContain(record.id);
      }
      // Write-ahead: the spend was entered before the unmask requests went out.
      const forRound = (await entries()).filter((e) => e.kind === 'round' && e.round.roundId === record.id).map((e) => (e.kind === 'round' ? e.round.outcome : null));
      expect(forRound).toEqual(['released', 'aborted']);
    } finally {
      sockets.sendReceipt = send;
    }
  });

  it("a ledger cut before a witnessed round verifies alone, and fails naming the device's receipt", async () => {
    const hidden = rounds.shortAfterRelease!;
    const release = (await entries()).find((e) => e.kind === 'round' && e.round.roundId === hidden.id && e.round.outcome === 'released')!;
    await coordinator.close();
    closed = true;
    expect(await audit('verify', '--data-dir', dataDir, '--public-key', genesisKey, '--receipt', ledgerFile(0), ledgerFile(4))).toMatchObject({ code: 0, ok: true, receipts: { checked: 4, failed: [] } });

    // The operator hides the round that spent epsilon but published nothing: cut at its release entry.
    const db = new Database(path.join(dataDir, LEDGER_DATABASE_FILE));
    db.prepare('DELETE FROM ledger_entries WHERE seq >= ?').run(release.seq);
    db.close();
    // Chain, signatures, epsilons and every published model still check out.
    const alone = await audit('verify', '--data-dir', dataDir, '--public-key', genesisKey);
    expect(alone).toMatchObject({ code: 0, ok: true, entries: release.seq - 1, models: { withoutRelease: [] } });

    const witnessed = await audit('verify', '--data-dir', dataDir, '--public-key', genesisKey, '--receipt', ledgerFile(3));
    expect(witnessed).toMatchObject({ code: 1, ok: false, firstBadEntry: release.seq, receipts: { checked: 2, failed: [{ name: `receipt 2 of 2 in ${ledgerFile(3)}`, roundId: hidden.id }] } });
    expect(witnessed.reason).toBe(
      `the ledger holds ${release.seq - 1} entries: round ${hidden.id}'s release entry (entry ${release.seq}), witnessed by receipt 2 of 2 in ${ledgerFile(3)} (round ${hidden.id}, entry ${release.seq}, tree head size ${release.seq}, root ${(clients[3]!.client.receipts()[1] as LedgerReceipt).head.rootHash.slice(0, 16)}…, signed ${new Date((clients[3]!.client.receipts()[1] as LedgerReceipt).head.timestamp).toISOString()}), is gone: the ledger was cut before it`,
    );
    // The receipts as the Node client exports them (a JSON array) read the same.
    const exported = path.join(devices, 'exported.json');
    fs.writeFileSync(exported, JSON.stringify(clients[1]!.client.receipts()));
    expect(await audit('verify', '--data-dir', dataDir, '--receipt', exported)).toMatchObject({ code: 1, ok: false, receipts: { failed: [{ name: `receipt 2 of 2 in ${exported}` }] } });
  });
});

/**
 * The browser client under faults, in real Chromium: the page survives the coordinator going
 * away and coming back; a tab closed mid-round is a dropout the (DP + SecAgg+) round survives; and
 * a round whose config breaks the page's own policy (`dp none` where DP is required, or more
 * epsilon than the device's own cap) is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext } from 'playwright-core';
import { chromiumAvailable, launchChromium } from '../browser-harness.ts';
import { FAST, launch, startClients, startTestCoordinator, stopAll, syntheticPopulation, tempDataDir, waitFor, waitForRound } from '../integration/harness.ts';
import type { TestClient, TestCoordinator } from '../integration/harness.ts';
import { historiesWithExamples, openShop } from './shop-harness.ts';
import type { ShopPage } from './shop-harness.ts';

const run = chromiumAvailable();

describe.runIf(run)('browser client resilience', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator;
  let context: BrowserContext;
  let nodeClients: TestClient[] = [];
  let histories: number[] = [];

  beforeAll(async () => {
    coordinator = await startTestCoordinator(dataDir, { demoShopTokens: true });
    context = await launchChromium();
    histories = historiesWithExamples((await syntheticPopulation()).config, 2);
  });

  afterAll(async () => {
    await context?.close();
    stopAll(nodeClients);
    await coordinator?.close();
  });

  it('survives the coordinator going away and coming back', async () => {
    const shop = await openShop(context, coordinator, 'restart');
    const stored = await shop.loadHistory(histories[0]!);
    await shop.waitStatus('s.modelVersion === 1');
    const port = coordinator.port;
    await coordinator.close();
    await shop.waitStatus('!s.connected && s.state === "offline"');
    // The page keeps working offline: events are stored, the portrait is computed on the device.
    const now = Date.now();
    expect(await shop.page.evaluate((ts) => (window as unknown as { portrait: { track(e: unknown): Promise<number> } }).portrait.track({ ts, type: 'click', itemId: 'i1-1', category: 'c1', price: 9.5 }), now)).toBe(stored + 1);
    expect((await shop.profile()).portrait).toMatchObject({ events: expect.any(Number) });
    coordinator = await startTestCoordinator(dataDir, { port, demoShopTokens: true });
    await shop.waitStatus('s.connected', 20_000);
    await shop.page.close();
  });

  it('a tab closed mid-round is a dropout the round survives', async () => {
    const shops: ShopPage[] = [];
    for (const i of histories) {
      const shop = await openShop(context, coordinator, `dropout-${i}`);
      await shop.loadHistory(i);
      shops.push(shop);
    }
    nodeClients = await startClients(coordinator, 2);
    // Close the first tab the moment its worker starts training for the round.
    let markClosed: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => {
      markClosed = resolve;
    });
    await shops[0]!.page.exposeFunction('__training', () => {
      void shops[0]!.page.close().then(markClosed);
    });
    await shops[0]!.page.evaluate(() => {
      const w = window as unknown as { portrait: { onStatus(l: (s: { state: string }) => void): void }; __training(): void };
      w.portrait.onStatus((s) => s.state === 'training' && w.__training());
    });
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 3, deadlines: { checkinMs: 15_000, trainingMs: 15_000 }, train: { ...FAST.train, epochs: 3 }, privacy: { mode: 'distributed', clip: 0.5, noiseMultiplier: 1, delta: 1e-6, t: 3 }, secagg: 'on' });
    await closed;
    const record = await waitForRound(coordinator, r!.id, 60_000);
    expect(record, record.reason).toMatchObject({ status: 'committed', participants: 3 });
    expect(record.secagg).toMatchObject({ n: 4, survivors: 3 });
    await shops[1]!.waitStatus('s.roundsContributed === 1');
    stopAll(nodeClients);
    nodeClients = [];
    await shops[1]!.page.close();
  });

  it('refuses a round without DP when the page requires DP', async () => {
    const page = await openShop(context, coordinator, 'refuse');
    try {
      await page.loadHistory(histories[0]!);
      // Only this page takes part (the earlier test's Node clients are gone).
      await waitFor(() => coordinator.sockets.connectedClients() === 1, 10_000, 'only the page connected');
      const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 1, minClients: 1, ...FAST, deadlines: { checkinMs: 15_000, trainingMs: 5_000 } });
      expect(r!.privacy).toMatchObject({ mode: 'none' });
      await page.waitStatus('/not accepted/.test(s.reason || "")', 20_000);
      const record = await waitForRound(coordinator, r!.id, 30_000);
      expect(record.status).toBe('aborted');
      expect((await page.status())!.roundsContributed).toBe(0);
      expect((await page.wire()).some((w) => w.name === 'update' || w.name === 'secagg')).toBe(false);
    } finally {
      await page.page.close();
    }
  });

  it('refuses a DP round that would take the device past its own privacy cap', async () => {
    const page = await openShop(context, coordinator, 'cap', '&cap=1');
    try {
      await page.loadHistory(histories[0]!);
      await waitFor(() => coordinator.sockets.connectedClients() === 1, 10_000, 'only the page connected');
      const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 1, minClients: 1, deadlines: { checkinMs: 15_000, trainingMs: 5_000 }, train: FAST.train, privacy: { mode: 'local', clip: 0.5, noiseMultiplier: 1, delta: 1e-6 } });
      await page.waitStatus('/above its own cap/.test(s.reason || "")', 20_000);
      const status = (await page.status())!;
      expect(status.privacy).toMatchObject({ epsilonSpent: 0, epsilonCap: 1, rounds: 0 });
      expect((await waitForRound(coordinator, r!.id, 30_000)).status).toBe('aborted');
      expect((await page.wire()).some((w) => w.name === 'update' || w.name === 'secagg')).toBe(false);
    } finally {
      await page.page.close();
    }
  });

  it('keeps events on the device within the retention window and size cap, and forgets them on request', async () => {
    const shop = await openShop(context, coordinator, 'store', '&retention=7&maxEvents=10');
    const today = Math.floor(Date.now() / 86_400_000);
    const event = (day: number, k: number) => ({ day, type: 'view', itemId: `i1-${k}`, category: 'c1', price: 1 + k });
    const track = (events: unknown[]) => shop.page.evaluate((e) => (window as unknown as { portrait: { track(e: unknown[]): Promise<number> } }).portrait.track(e), events);
    // A fresh browser's store is empty (shop.test.ts): nothing to clear first.
    expect(await track([event(today - 8, 0), event(today - 30, 1)])).toBe(0);
    expect(await track([event(today - 6, 2), event(today, 3)])).toBe(2);
    expect(await track(Array.from({ length: 12 }, (_, k) => event(today, 10 + k)))).toBe(10);
    await expect(track([{ day: today, type: 'teleport', itemId: 'x', category: 'c1' }])).rejects.toThrow(/type/);
    await shop.page.evaluate(() => (window as unknown as { portrait: { clear(): Promise<void> } }).portrait.clear());
    await shop.waitStatus('s.events === 0');
    await shop.page.close();
  });
});

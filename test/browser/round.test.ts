/**
 * Real Chromium pages on the demo shop and simulated Node clients complete a DP + SecAgg+ round together;
 * the browsers' portraits change with the new model; the page's main thread stays free of long
 * tasks while the worker trains; and nothing a page sends contains an event, feature, label or an
 * unmasked update. Saves a screenshot of the shop under artifacts/browser/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext } from 'playwright-core';
import { artifactPath, chromiumAvailable, launchChromium } from '../browser-harness.ts';
import { FAST, launch, startClients, startTestCoordinator, stopAll, syntheticPopulation, tempDataDir, waitForRound } from '../integration/harness.ts';
import type { TestClient, TestCoordinator } from '../integration/harness.ts';
import { sampleHistory } from '../../server/browser/routes.ts';
import { historiesWithExamples, openShop, plainFloatShare } from './shop-harness.ts';
import type { ShopPage } from './shop-harness.ts';

const run = chromiumAvailable();

/** The bytes of a SecAgg+ masked input sent as base64 in a Socket.IO text frame, if this is one. */
function maskedInputOf(frame: string): Buffer | null {
  const json = frame.replace(/^\d+/, '');
  if (!json.startsWith('[')) return null;
  const [event, body] = JSON.parse(json) as [string, { message?: { type?: string; maskedInput?: unknown } }];
  const m = body?.message;
  if (event !== 'secagg' || m?.type !== 'masked-input' || typeof m.maskedInput !== 'string') return null;
  return Buffer.from(m.maskedInput, 'base64');
}

describe.runIf(run)('browser clients in a DP + SecAgg+ round', () => {
  let coordinator: TestCoordinator;
  let context: BrowserContext;
  let nodeClients: TestClient[] = [];
  const shops: ShopPage[] = [];

  beforeAll(async () => {
    coordinator = await startTestCoordinator(tempDataDir(), { demoShopTokens: true });
    context = await launchChromium();
  });

  afterAll(async () => {
    await context?.close();
    stopAll(nodeClients);
    await coordinator?.close();
  });

  it('two pages and two Node clients complete a distributed-DP + SecAgg+ round; the pages\' portraits follow the new model', async () => {
    const histories = historiesWithExamples((await syntheticPopulation()).config, 2);
    for (const i of histories) {
      const shop = await openShop(context, coordinator, `round-${i}`);
      expect(await shop.loadHistory(i)).toBeGreaterThan(10);
      shops.push(shop);
    }
    nodeClients = await startClients(coordinator, 2);
    const before = await Promise.all(shops.map((s) => s.profile()));
    for (const b of before) expect(b).toMatchObject({ modelVersion: 1 });

    const roundStarted = await Promise.all(shops.map((s) => s.page.evaluate(() => performance.now())));
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 4, deadlines: { checkinMs: 15_000, trainingMs: 20_000 }, train: FAST.train, privacy: { mode: 'distributed', clip: 0.5, noiseMultiplier: 1, delta: 1e-6 }, secagg: 'on' });
    const record = await waitForRound(coordinator, r!.id, 60_000);
    expect(record, JSON.stringify({ reason: record.reason, statuses: await Promise.all(shops.map((s) => s.status())) })).toMatchObject({ status: 'committed', participants: 4 });
    expect(record.privacy).toMatchObject({ mode: 'distributed', released: true });
    expect(record.privacy).toMatchObject({ secagg: 'on' });
    expect(record.secagg).toMatchObject({ n: 4, survivors: 4 });

    for (const shop of shops) {
      await shop.waitStatus('s.announcedVersion === 2');
      const status = await shop.status();
      expect(status).toMatchObject({ roundsContributed: 1, privacy: { rounds: 1 } });
      expect(status!.privacy.epsilonSpent).toBeGreaterThan(0);
      expect(status!.privacy.epsilonSpent).toBeLessThan(status!.privacy.epsilonCap);
      expect((await shop.trainings()).length).toBe(1);
    }
    const after = await Promise.all(shops.map((s) => s.profile()));
    for (const [i, a] of after.entries()) {
      expect(a.modelVersion).toBe(2);
      expect(a.portrait).not.toBeNull();
      expect(a.portrait!.heads).not.toEqual(before[i]!.portrait!.heads);
    }

    // Training ran in the worker: the main thread had no task over 50 ms from the round on.
    for (const [i, shop] of shops.entries()) {
      const tasks = await shop.longTasks();
      const trainings = await shop.trainings();
      expect(trainings[0]!.ms).toBeGreaterThan(0);
      expect(tasks.filter((t) => t.duration > 50 && t.start >= roundStarted[i]!)).toEqual([]);
    }

    await shops[0]!.page.waitForFunction(() => document.querySelector('#portrait-view table') !== null && /model v2/.test(document.querySelector('#portrait-view')?.textContent ?? ''));
    await shops[0]!.page.screenshot({ path: artifactPath('browser', 'shop.png'), fullPage: true });
  });

  it('records every request and frame the pages sent: none carries an event, feature, label or unmasked update', async () => {
    // The item ids both pages stored: none may appear in anything sent.
    const histories = historiesWithExamples((await syntheticPopulation()).config, 2);
    const itemIds = new Set(histories.flatMap((i) => sampleHistory(i).events.map((e) => e.itemId)));
    let frames = 0;
    let updates = 0;
    for (const shop of shops) {
      for (const s of shop.sent) {
        if (s.kind === 'request') {
          // Only GETs and the demo token request, with no body at all.
          expect(s.method === 'GET' || s.url.endsWith('/shop/enrollment-token')).toBe(true);
          expect(s.binary === null || s.binary.byteLength === 0).toBe(true);
          continue;
        }
        frames++;
        if (s.text !== null) {
          for (const key of ['"itemId"', '"category"', '"price"', '"features"', '"labels"', '"interests"', '"day"']) expect(s.text).not.toContain(key);
          expect(s.text).not.toMatch(/"type":"(view|click|favourite|cart|buy)"/);
          const masked = maskedInputOf(s.text);
          if (masked) {
            updates++;
            expect(plainFloatShare(masked)).toBeLessThan(0.5);
          }
          for (const id of itemIds) expect(s.text).not.toContain(`"${id}"`);
          // No long numeric arrays (a feature vector or an update sent as JSON).
          expect(s.text).not.toMatch(/\[(-?[\d.e-]+,){16,}/);
        } else if (s.binary !== null && s.binary.byteLength > 1024) {
          // The update: residues mod 2^32 after rounding and noise, not a float delta.
          updates++;
          expect(plainFloatShare(s.binary)).toBeLessThan(0.5);
        }
      }
    }
    expect(frames).toBeGreaterThan(4);
    // Each model version was fetched once per page (the new one only after it was announced).
    for (const shop of shops) {
      const modelGets = shop.sent.filter((s) => s.kind === 'request' && /\/models\/\d+\//.test(s.url)).map((s) => new URL(s.url).pathname);
      expect(modelGets.sort()).toEqual(['/models/1/model.json', '/models/1/weights.bin', '/models/2/model.json', '/models/2/weights.bin']);
    }
    expect(updates).toBe(shops.length);
    // The page's own account of what left it matches in kind: protocol messages only.
    const wire = await shops[0]!.wire();
    const names = new Set(wire.filter((w) => w.kind === 'socket').map((w) => w.name));
    for (const name of names) expect(['connect (enrollment token)', 'checkin', 'update', 'secagg']).toContain(name);
    expect(names.has('update') || names.has('secagg')).toBe(true);
  });
});

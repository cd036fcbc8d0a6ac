/**
 * A real shop lives on its own origin: its page loads portrait.js from the coordinator, the
 * worker comes through the blob shim, and the model, weights and .wasm files are fetched across
 * origins. In real Chromium, from a shop page served by a second HTTP server (another port), the
 * client connects, fetches the model, computes the portrait and takes part in a round.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { chromiumAvailable, launchChromium } from '../browser-harness.ts';
import { FAST, launch, startTestCoordinator, syntheticPopulation, tempDataDir, waitFor, waitForRound } from '../integration/harness.ts';
import type { TestCoordinator } from '../integration/harness.ts';
import { sampleHistory } from '../../server/browser/routes.ts';
import { historiesWithExamples } from './shop-harness.ts';

const run = chromiumAvailable();

interface PortraitGlobal {
  portrait: {
    status(): { connected: boolean; modelVersion: number | null; backend: string | null; roundsContributed: number } | null;
    error(): string | null;
    track(events: unknown[]): Promise<number>;
    profile(): Promise<{ modelVersion: number | null; portrait: unknown }>;
  };
}

describe.runIf(run)('browser client embedded in a shop on another origin', () => {
  let coordinator: TestCoordinator;
  let context: BrowserContext;
  let shop: http.Server;
  let shopUrl = '';
  const failed: string[] = [];

  beforeAll(async () => {
    coordinator = await startTestCoordinator(tempDataDir());
    context = await launchChromium();
    const token = coordinator.token();
    // The shop's own page: nothing of it comes from the coordinator but the script tag's target.
    const html = `<!doctype html><title>another shop</title>
<script src="${coordinator.url}/portrait/portrait.js"></script>
<script>window.portrait = PortraitSDK.startPortrait(${JSON.stringify({ server: coordinator.url, token, database: 'cross-origin', idleAfterMs: 300, backend: 'wasm' })});</script>`;
    shop = http.createServer((_req, res) => {
      res.setHeader('Content-Type', 'text/html');
      res.end(html);
    });
    await new Promise<void>((resolve) => shop.listen(0, '127.0.0.1', resolve));
    // Same host, another port: another origin as far as the browser is concerned.
    shopUrl = `http://127.0.0.1:${(shop.address() as AddressInfo).port}/`;
  });

  afterAll(async () => {
    await context?.close();
    await new Promise<void>((resolve) => (shop?.listening ? shop.close(() => resolve()) : resolve()));
    await coordinator?.close();
  });

  const status = (page: Page) => page.evaluate(() => (window as unknown as PortraitGlobal).portrait?.status() ?? null);

  it('computes the portrait with the coordinator model and contributes to a round', async () => {
    const page = await context.newPage();
    page.on('requestfailed', (r) => failed.push(`${r.url()}: ${r.failure()?.errorText ?? ''}`));
    page.on('console', (m) => {
      if (m.type() === 'error') failed.push(m.text());
    });
    await page.goto(shopUrl);
    expect(new URL(page.url()).origin).not.toBe(new URL(coordinator.url).origin);
    await page.waitForFunction(() => (window as unknown as PortraitGlobal).portrait?.status()?.connected === true, null, { timeout: 30_000 });

    const [history] = historiesWithExamples((await syntheticPopulation()).config, 1);
    const events = sampleHistory(history!).events;
    expect(await page.evaluate((e) => (window as unknown as PortraitGlobal).portrait.track(e), events)).toBe(events.length);
    const profile = await page.evaluate(() => (window as unknown as PortraitGlobal).portrait.profile());
    expect(profile.modelVersion).toBe(1);
    expect(profile.portrait).toMatchObject({ events: events.length, heads: { interests: { top: expect.any(Array) } } });
    expect((await status(page))!.backend).toBe('wasm');

    await waitFor(() => coordinator.sockets.connectedClients() === 1, 10_000, 'the page connected');
    const [r] = await launch(coordinator, { rounds: 1, clientsPerRound: 1, minClients: 1, ...FAST, deadlines: { checkinMs: 20_000, trainingMs: 20_000 }, privacy: { mode: 'local', clip: 0.5, noiseMultiplier: 2, delta: 1e-6 } });
    const record = await waitForRound(coordinator, r!.id, 60_000);
    expect(record, record.reason).toMatchObject({ status: 'committed', participants: 1 });
    await page.waitForFunction(() => (window as unknown as PortraitGlobal).portrait.status()?.roundsContributed === 1, null, { timeout: 20_000 });
    expect(await page.evaluate(() => (window as unknown as PortraitGlobal).portrait.error())).toBeNull();
    expect(failed).toEqual([]);
    await page.close();
  });
});

/**
 * Wiring for the browser tests: a real coordinator (test/integration/harness.ts), real Chromium
 * pages on its demo shop, and a recorder of every request and WebSocket frame a page sends
 * (the worker's socket and fetches included). Nothing is mocked.
 */
import type { BrowserContext, Page } from 'playwright-core';
import { DEVICE_USER, dayOf, deviceExamples } from '../../client/browser/device-data.ts';
import type { ClientStatus, ProfileResult, WireEntry } from '../../client/browser/messages.ts';
import { parseEvent } from '../../shared/features/events.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';
import { sampleHistory } from '../../server/browser/routes.ts';

export interface SentRecord {
  kind: 'request' | 'frame';
  url: string;
  method?: string;
  /** Request body or frame payload. */
  text: string | null;
  binary: Buffer | null;
}

export interface ShopPage {
  page: Page;
  sent: SentRecord[];
  longTasks(): Promise<{ start: number; duration: number }[]>;
  status(): Promise<ClientStatus | null>;
  profile(): Promise<ProfileResult>;
  wire(): Promise<WireEntry[]>;
  trainings(): Promise<{ roundId: number; ms: number; backend: string }[]>;
  loadHistory(user: number): Promise<number>;
  waitStatus(test: string, timeoutMs?: number): Promise<void>;
}

interface PortraitWindow {
  portrait: {
    status(): ClientStatus | null;
    profile(): Promise<ProfileResult>;
    wire(): readonly WireEntry[];
    trainings(): readonly { roundId: number; ms: number; backend: string }[];
    track(events: unknown[]): Promise<number>;
  };
  __longTasks: { start: number; duration: number }[];
}

/** Opens the shop with a fresh IndexedDB database `db`; resolves once the client is connected. */
export async function openShop(context: BrowserContext, coordinator: { url: string }, db: string, query = ''): Promise<ShopPage> {
  const page = await context.newPage();
  const sent: SentRecord[] = [];
  page.on('request', (r) => {
    const body = r.postDataBuffer();
    sent.push({ kind: 'request', url: r.url(), method: r.method(), text: body ? body.toString('utf8') : null, binary: body });
  });
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => {
      const payload = f.payload;
      sent.push({ kind: 'frame', url: ws.url(), text: typeof payload === 'string' ? payload : null, binary: typeof payload === 'string' ? null : payload });
    });
  });
  await page.addInitScript(() => {
    const w = window as unknown as PortraitWindow;
    w.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  await page.goto(`${coordinator.url}/shop?idle=300&db=${encodeURIComponent(db)}${query}`);
  const shop: ShopPage = {
    page,
    sent,
    longTasks: () => page.evaluate(() => (window as unknown as PortraitWindow).__longTasks),
    status: () => page.evaluate(() => (window as unknown as PortraitWindow).portrait?.status() ?? null),
    profile: () => page.evaluate(() => (window as unknown as PortraitWindow).portrait.profile()),
    wire: () => page.evaluate(() => [...(window as unknown as PortraitWindow).portrait.wire()]),
    trainings: () => page.evaluate(() => [...(window as unknown as PortraitWindow).portrait.trainings()]),
    loadHistory: (user) =>
      page.evaluate(async (u) => {
        const { events } = (await (await fetch(`/shop/sample-history?user=${u}`)).json()) as { events: unknown[] };
        return (window as unknown as PortraitWindow).portrait.track(events);
      }, user),
    waitStatus: async (test, timeoutMs = 30_000) => {
      await page.waitForFunction(`(() => { const s = window.portrait && window.portrait.status(); return !!s && (${test}); })()`, null, { timeout: timeoutMs, polling: 50 });
    },
  };
  await shop.waitStatus('s.connected && s.announcedVersion !== null');
  return shop;
}

/** Share of float32 lanes that look like a plain model delta (finite, 1e-8 < |x| < 10). */
export function plainFloatShare(bytes: Buffer): number {
  const n = Math.floor(bytes.byteLength / 4);
  if (n === 0) return 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, n * 4);
  let plain = 0;
  for (let i = 0; i < n; i++) {
    const x = Math.abs(view.getFloat32(i * 4, true));
    if (x > 1e-8 && x < 10) plain++;
  }
  return plain / n;
}

/** Indices of demo sample histories that give the model at least `minExamples` training examples. */
export function historiesWithExamples(config: ModelConfig, count: number, minExamples = 2): number[] {
  const found: number[] = [];
  for (let i = 0; i < 200 && found.length < count; i++) {
    const events = sampleHistory(i).events.map((e) => parseEvent({ userId: DEVICE_USER, ...e }));
    if (deviceExamples(events, config, dayOf(Date.now())).length >= minExamples) found.push(i);
  }
  if (found.length < count) throw new Error(`only ${found.length} sample histories have ${minExamples} examples`);
  return found;
}

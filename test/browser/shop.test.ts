/**
 * The demo shop as a shopper meets it, in real Chromium against a real coordinator: a fresh
 * browser starts with no events; a device whose events cannot make a training example yet says
 * what it waits for; the portrait follows new events without "recompute"; "forget me" asks before
 * it erases; the catalogue reads like a shop; and pages with a plausible history (a sample loaded
 * through the page's own button; a few days of browsing last week) train in a committed private
 * round (distributed DP + SecAgg+, n = 5, t = 3) among its survivors. Screenshots land under
 * artifacts/browser/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext } from 'playwright-core';
import type { Socket as ServerSocket } from 'socket.io';
import type { RoundLogEntry } from '../../client/browser/messages.ts';
import { dateFromDay } from '../../shared/features/events.ts';
import type { ShopCatalogue } from '../../server/browser/routes.ts';
import { artifactPath, chromiumAvailable, launchChromium } from '../browser-harness.ts';
import { FAST, launch, startClients, startTestCoordinator, stopAll, tempDataDir, waitForRound } from '../integration/harness.ts';
import type { TestClient, TestCoordinator } from '../integration/harness.ts';
import { openShop } from './shop-harness.ts';
import type { ShopPage } from './shop-harness.ts';

const run = chromiumAvailable();
const MS_PER_DAY = 86_400_000;
/** No main-thread task this long: training or a portrait on the main thread would take seconds. */
const MAIN_THREAD_BOUND_MS = 500;

interface ShopWindow {
  portrait: { track(events: unknown[]): Promise<number>; rounds(): readonly RoundLogEntry[] };
}

/** What the store holds now: `track([])` adds nothing and answers the stored count. */
const storedEvents = (shop: ShopPage) => shop.page.evaluate(() => (window as unknown as ShopWindow).portrait.track([]));
const text = async (shop: ShopPage, selector: string) => (await shop.page.textContent(selector)) ?? '';
/** Clicks like a shopper, then takes the pointer off the products (resting on one is a view). */
async function clickButton(shop: ShopPage, card: number, type: string): Promise<void> {
  await shop.page.click(`#products .product:nth-child(${card}) button[data-type="${type}"]`);
  await shop.page.mouse.move(5, 5);
}

// One retry: about one run in eight on this 2-core machine, a page's sample history never reaches
// its worker within 30 s (the tests after it on that run time out waiting for its events); not yet
// explained, noted in the issue. A retry runs the test again; it never hides a failing assertion twice.
describe.runIf(run)('the demo shop', { retry: 1 }, () => {
  let coordinator: TestCoordinator;
  let context: BrowserContext;
  let nodeClients: TestClient[] = [];
  /** Every message the coordinator received, with whether it came from a browser's socket. */
  const received: { browser: boolean; event: string; args: unknown[] }[] = [];
  let waitingShop: ShopPage | undefined;

  beforeAll(async () => {
    coordinator = await startTestCoordinator(tempDataDir(), { demoShopTokens: true });
    coordinator.io.on('connection', (socket: ServerSocket) => {
      const browser = /Chrome/.test(String(socket.handshake.headers['user-agent'] ?? ''));
      socket.onAny((event: string, ...args: unknown[]) => received.push({ browser, event, args }));
    });
    context = await launchChromium();
  });

  afterAll(async () => {
    await context?.close();
    stopAll(nodeClients);
    await coordinator?.close();
  });

  it('a fresh browser starts with no events, products on screen and all, and says it has none', async () => {
    const shop = await openShop(context, coordinator, 'fresh');
    waitingShop = shop;
    await shop.page.waitForSelector('body[data-ready="true"]');
    await shop.waitStatus('s.training !== null');
    // Long enough for any tracking of the products on screen to have landed.
    await shop.page.waitForTimeout(1_500);
    expect(await storedEvents(shop)).toBe(0);
    expect((await shop.status())!.events).toBe(0);
    expect(await text(shop, '#events-stored')).toBe('0');
    expect(await text(shop, '#waiting')).toMatch(/^no training example yet: there are no events on this device/);
    expect(await text(shop, '#portrait-view')).toMatch(/no events on this device yet/);
  });

  it('a device whose events are all from today says what it waits for, computed from its days and the model\'s windows', async () => {
    const shop = waitingShop!;
    for (const card of [1, 2, 3]) await clickButton(shop, card, 'buy');
    await shop.waitStatus('s.events === 3 && s.training && s.training.examples === 0');
    const today = Math.floor(Date.now() / MS_PER_DAY);
    const { training } = (await shop.status())!;
    expect(training!.readyDay).toBe(today + 3);
    expect(training!.waitingFor).toBe(
      'no training example yet: a training example is what you did before a day plus what you did in the 3 days from it, so it needs events from 3 to 9 days ago; ' +
        `you have events on 1 day (today). Your first example is ready on ${dateFromDay(today + 3)} (in 3 days), if you keep them`,
    );
    expect(await text(shop, '#waiting')).toBe(training!.waitingFor);
    // One event from four days ago is enough for an example: the message goes.
    expect(await shop.page.evaluate((day) => (window as unknown as ShopWindow).portrait.track([{ day, type: 'click', itemId: 'i1-1', category: 'c1', price: 9.5 }]), today - 4)).toBe(4);
    await shop.waitStatus('s.training && s.training.examples === 2 && s.training.waitingFor === null');
    expect(await text(shop, '#waiting')).toBe('');
    // Back to a device with nothing but today's events (kept open: it declines the private round below).
    await shop.page.evaluate(() => (window as unknown as { portrait: { clear(): Promise<void> } }).portrait.clear());
    for (const card of [4, 5]) await clickButton(shop, card, 'cart');
    await shop.waitStatus('s.events === 2 && s.training && s.training.examples === 0');
  });

  it('recomputes the portrait in the worker after new events, without "recompute"', async () => {
    const shop = await openShop(context, coordinator, 'portrait');
    await shop.page.waitForSelector('body[data-ready="true"]');
    await shop.page.click('#load-history');
    await shop.page.mouse.move(5, 5);
    await shop.waitStatus('s.events > 10');
    const loaded = (await shop.status())!.events;
    await shop.page.waitForFunction((n) => document.querySelector('#portrait-header')?.textContent === `model v1, ${n} events on this device`, loaded, { timeout: 20_000 });
    const started = await shop.page.evaluate(() => performance.now());
    for (const card of [1, 2, 3]) await clickButton(shop, card, 'buy');
    await shop.waitStatus(`s.events >= ${loaded + 3}`);
    // The header follows the store (debounced, 1 s after the last buy), recompute never pressed.
    await shop.page.waitForFunction(
      () => document.querySelector('#portrait-header')?.textContent === `model v1, ${(window as unknown as { portrait: { status(): { events: number } } }).portrait.status().events} events on this device`,
      null,
      { timeout: 15_000, polling: 100 },
    );
    expect(Number(/, (\d+) events/.exec(await text(shop, '#portrait-header'))![1])).toBeGreaterThanOrEqual(loaded + 3);
    // The recompute runs in the worker: on the main thread it would be a task of seconds. The bound
    // is well above 50 ms, which garbage collection or layout alone can pass on a loaded machine
    // (the 50 ms budget is measured in bench:browser, not asserted here).
    const tasks = await shop.longTasks();
    expect(tasks.filter((t) => t.duration > MAIN_THREAD_BOUND_MS && t.start >= started)).toEqual([]);
    await shop.page.close();
  });

  it('shows why this portrait, computed in the worker, in the page\'s language, and sends none of it', async () => {
    const shop = await openShop(context, coordinator, 'why', '&lang=zh');
    await shop.page.waitForSelector('body[data-ready="true"]');
    await shop.page.click('#load-history');
    await shop.page.mouse.move(5, 5);
    await shop.waitStatus('s.events > 10');
    // Computed on demand: opening the panel asks the worker.
    await shop.page.click('#why-panel summary');
    await shop.page.waitForSelector('#why-view .why-head[data-head="interests"] li', { timeout: 30_000 });
    const heads = await shop.page.$$eval('#why-view .why-head', (els) => els.map((el) => (el as HTMLElement).dataset.head));
    // The demo's model has no sensitive heads enabled: none is explained.
    expect(heads.sort()).toEqual(['interests', 'purchase', 'spending']);
    const sentences = await shop.page.$$eval('#why-view li', (els) => els.map((el) => el.textContent ?? ''));
    expect(sentences.length).toBeGreaterThanOrEqual(3);
    expect(sentences.some((t) => /[\u4e00-\u9fff]/.test(t))).toBe(true);
    // Through the page API too, and nothing leaves the device while it is computed.
    const wireBefore = await shop.page.evaluate(() => (window as unknown as { portrait: { wire(): unknown[] } }).portrait.wire().length);
    const sentBefore = received.filter((r) => r.browser).length;
    const explained = await shop.page.evaluate(() => (window as unknown as { portrait: { explain(o: object): Promise<{ explanation: { heads: Record<string, { completenessError: number; top: unknown[] }> } | null }> } }).portrait.explain({ language: 'en' }));
    expect(explained.explanation).not.toBeNull();
    for (const h of Object.values(explained.explanation!.heads)) expect(h.completenessError).toBeLessThanOrEqual(1e-3 + 1e-9);
    expect(await shop.page.evaluate(() => (window as unknown as { portrait: { wire(): unknown[] } }).portrait.wire().length)).toBe(wireBefore);
    expect(received.filter((r) => r.browser).length - sentBefore).toBe(0);
    // Every request and WebSocket frame this page sent in its whole session: no explanation sentence, in either language.
    const texts = [...sentences, ...Object.values(explained.explanation!.heads).flatMap((h) => (h.top as { text: string }[]).map((g) => g.text))];
    const leaked = shop.sent.filter((m) => texts.some((t) => (m.text ?? '').includes(t) || (m.binary ? Buffer.from(m.binary).toString('utf8').includes(t) : false)));
    expect(leaked).toEqual([]);
    await shop.page.close();
  });

  it('asks before "forget me" erases: keeping (or Escape) keeps every event; erase deletes them', async () => {
    const shop = await openShop(context, coordinator, 'forget');
    await shop.page.waitForSelector('body[data-ready="true"]');
    await shop.page.click('#load-history');
    await shop.page.mouse.move(5, 5);
    await shop.waitStatus('s.events > 10');
    const stored = await storedEvents(shop);

    await shop.page.click('#forget');
    await shop.page.waitForSelector('#forget-dialog[open]');
    expect(await text(shop, '#forget-question')).toContain(`Erase the ${stored} events stored on this device`);
    await shop.page.click('#forget-keep');
    await shop.page.waitForSelector('#forget-dialog:not([open])', { state: 'attached' });
    await shop.page.waitForTimeout(500);
    expect(await storedEvents(shop)).toBe(stored);
    expect(await text(shop, '#message')).toBe('nothing was deleted');

    await shop.page.click('#forget');
    await shop.page.waitForSelector('#forget-dialog[open]');
    await shop.page.keyboard.press('Escape');
    await shop.page.waitForSelector('#forget-dialog:not([open])', { state: 'attached' });
    await shop.page.waitForTimeout(500);
    expect(await storedEvents(shop)).toBe(stored);

    await shop.page.click('#forget');
    await shop.page.click('#forget-erase');
    await shop.waitStatus('s.events === 0');
    expect(await storedEvents(shop)).toBe(0);
    expect(await text(shop, '#message')).toBe('deleted every event on this device');
    await shop.page.close();
  });

  it('looks like a shop: readable names in the page\'s language, buttons on one line, the portrait in view while scrolling', async () => {
    const catalogue = (await (await fetch(`${coordinator.url}/shop/catalogue.json`)).json()) as ShopCatalogue;
    for (const lang of ['en', 'zh'] as const) {
      const shop = await openShop(context, coordinator, `looks-${lang}`, `&lang=${lang}`);
      const page = shop.page;
      await page.setViewportSize({ width: 1280, height: 720 });
      await page.waitForSelector('body[data-ready="true"]');
      expect(await page.getAttribute('html', 'lang')).toBe(lang === 'zh' ? 'zh-CN' : 'en');
      const cards = await page.$$eval('#products .product', (els) =>
        els.map((el) => {
          const buttons = [...el.querySelectorAll('.actions button')] as HTMLElement[];
          return {
            itemId: (el as HTMLElement).dataset.itemId!,
            name: el.querySelector('h3')!.textContent!,
            category: el.querySelector('.cat')!.textContent!,
            buttonTops: buttons.map((b) => Math.round(b.getBoundingClientRect().top)),
            buttonHeights: buttons.map((b) => Math.round(b.getBoundingClientRect().height)),
            clipped: buttons.some((b) => b.scrollWidth > b.clientWidth) || el.scrollWidth > el.clientWidth,
          };
        }),
      );
      expect(cards).toHaveLength(catalogue.products.length);
      for (const [i, card] of cards.entries()) {
        const product = catalogue.products[i]!;
        expect(card.itemId).toBe(product.itemId);
        expect(card.category).toBe(catalogue.categoryNames[product.category]![lang]);
        expect(card.name).toBe(product.names[lang]);
        expect(card.category).not.toMatch(/^c\d+$/);
        if (lang === 'zh') expect(card.name).toMatch(/[\u4e00-\u9fff]/);
        else expect(card.name).toMatch(/^[A-Z][A-Za-z' &-]+ no\. \d+$/);
        // The three buttons sit on one line, each one line high, none clipped.
        expect(new Set(card.buttonTops).size, card.name).toBe(1);
        expect(Math.max(...card.buttonHeights), card.name).toBeLessThan(32);
        expect(card.clipped, card.name).toBe(false);
      }
      // Scrolled to the last product, the portrait is still on screen.
      await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
      await page.waitForTimeout(200);
      const view = await page.evaluate(() => ({ scrolled: window.scrollY, top: document.querySelector('#portrait-panel')!.getBoundingClientRect().top, height: window.innerHeight }));
      expect(view.scrolled).toBeGreaterThan(200);
      expect(view.top).toBeGreaterThanOrEqual(0);
      expect(view.top).toBeLessThan(view.height / 2);
      if (lang === 'en') {
        // A product counts as viewed once the pointer rests on it, not when it is merely shown.
        expect(await storedEvents(shop)).toBe(0);
        await page.hover('#products .product:nth-last-child(1) h3');
        await shop.waitStatus('s.events === 1', 5_000);
      }
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: artifactPath('browser', `shop-${lang}.png`) });
      await page.close();
    }
  });

  it('pages with a plausible history (the sample button; a few days of real browsing last week) train in a committed distributed-DP + SecAgg+ round as survivors', async () => {
    // One shopper loads the demo's sample history through the page's own button.
    const sample = await openShop(context, coordinator, 'private-sample');
    await sample.page.waitForSelector('body[data-ready="true"]');
    await sample.page.click('#load-history');
    await sample.page.mouse.move(5, 5);
    // The other browsed the shop on three days last week and has not been back: its events are
    // stored as the page stores a shopper's clicks (ts of those days), nothing from today.
    const browsing = await openShop(context, coordinator, 'private-browsing');
    const catalogue = (await (await fetch(`${coordinator.url}/shop/catalogue.json`)).json()) as ShopCatalogue;
    const today = Math.floor(Date.now() / MS_PER_DAY);
    const visits = [6, 5, 4].flatMap((ago, v) =>
      (['view', 'click', 'click', 'favourite', 'cart', 'buy'] as const).map((type, k) => {
        const p = catalogue.products[(v * 7 + k * 3) % catalogue.products.length]!;
        // Mid-morning UTC of that day, a minute between clicks.
        return { ts: (today - ago) * MS_PER_DAY + 10 * 3_600_000 + k * 60_000, type, itemId: p.itemId, category: p.category, ...(p.brand ? { brand: p.brand } : {}), price: p.price };
      }),
    );
    expect(await browsing.page.evaluate((events) => (window as unknown as ShopWindow).portrait.track(events), visits)).toBe(18);
    const shops = [sample, browsing];
    // Windows anchored on the device's clock (cuts 5 to 2 days ago): an example at every cut for
    // both. Anchored on the latest event (4 days ago), the visits would give none: their last cut
    // would be 6 days ago, with nothing before it.
    await sample.waitStatus('s.events > 10 && s.training && s.training.examples === 4 && s.training.waitingFor === null');
    await browsing.waitStatus('s.training && s.training.examples === 4 && s.training.waitingFor === null');
    nodeClients = await startClients(coordinator, 3);

    const started = await Promise.all(shops.map((s) => s.page.evaluate(() => performance.now())));
    const [r] = await launch(coordinator, {
      rounds: 1,
      clientsPerRound: 5,
      minClients: 3,
      deadlines: { checkinMs: 15_000, trainingMs: 20_000 },
      train: FAST.train,
      privacy: { mode: 'distributed', clip: 0.5, noiseMultiplier: 1, delta: 1e-6, t: 3 },
      secagg: { mode: 'on', dropoutRate: 0.4, corruptFraction: 0 },
    });
    const record = await waitForRound(coordinator, r!.id, 90_000);
    const log = async (s: ShopPage) => (await s.page.evaluate(() => [...(window as unknown as ShopWindow).portrait.rounds()])).filter((e) => e.roundId === r!.id);
    const why = JSON.stringify({ reason: record.reason, logs: await Promise.all(shops.map(log)), statuses: await Promise.all(shops.map((s) => s.status())) });
    expect(record, why).toMatchObject({ status: 'committed', participants: 5 });
    expect(record.privacy).toMatchObject({ mode: 'distributed', secagg: 'on', released: true });
    expect(record.secagg).toMatchObject({ n: 5, t: 3, survivors: 5 });

    for (const shop of shops) {
      // The page's own round log: selected, trained in the worker, SecAgg+ finished done.
      await shop.page.waitForFunction((id) => (window as unknown as ShopWindow).portrait.rounds().some((e) => e.roundId === id && e.event === 'secagg-finished'), r!.id, { timeout: 20_000 });
      const steps = await log(shop);
      expect(steps.map((e) => e.event)).toEqual(expect.arrayContaining(['checked-in', 'selected', 'trained', 'secagg-finished']));
      expect(steps.find((e) => e.event === 'secagg-finished')).toMatchObject({ status: 'done', stage: 'done' });
      expect((await shop.trainings()).map((t) => t.roundId)).toEqual([r!.id]);
      await shop.page.waitForFunction((id) => document.querySelector(`#rounds tr[data-round="${id}"]`)?.textContent?.includes('secure aggregation done'), r!.id);
      const status = (await shop.status())!;
      expect(status.privacy.rounds).toBe(1);
      expect(status.privacy.epsilonSpent).toBeGreaterThan(0);
    }

    // The coordinator got one masked input per page, from browsers' sockets, and unmask shares from them.
    const fromBrowsers = received.filter((m) => m.browser && m.event === 'secagg' && (m.args[0] as { roundId?: number }).roundId === r!.id);
    const stagesSent = fromBrowsers.map((m) => (m.args[0] as { message: { type: string } }).message.type);
    expect(stagesSent.filter((t) => t === 'masked-input')).toHaveLength(2);
    expect(stagesSent.filter((t) => t === 'unmask-shares')).toHaveLength(2);

    // The page with only today's events declined, saying what it waits for.
    expect(record.declined).toEqual({ NO_EXAMPLES: 1 });
    const declined = (await log(waitingShop!)).find((e) => e.event === 'declined');
    expect(declined?.reason).toMatch(/^no training example yet: .* you have events on 1 day \(today\)\. Your first example is ready on /);
    expect((await waitingShop!.status())!.reason).toBe(declined!.reason);

    // Training and the portrait stayed in the workers.
    for (const [i, shop] of shops.entries()) expect((await shop.longTasks()).filter((t) => t.duration > MAIN_THREAD_BOUND_MS && t.start >= started[i]!)).toEqual([]);
    await sample.page.waitForFunction(() => /model v2/.test(document.querySelector('#portrait-header')?.textContent ?? ''), null, { timeout: 20_000 });
    await sample.page.screenshot({ path: artifactPath('browser', 'shop-private-round.png') });

    // "Forget me" erases the events, not the device's privacy ledger: after a reload the spend is still counted.
    const spent = (await sample.status())!.privacy.epsilonSpent;
    const uploaded = (await sample.status())!.today.uploadBytes;
    expect(uploaded).toBeGreaterThan(1_000);
    await sample.page.evaluate(() => (window as unknown as { portrait: { clear(): Promise<void> } }).portrait.clear());
    await sample.page.reload();
    await sample.page.waitForSelector('body[data-ready="true"]');
    await sample.waitStatus('s.events === 0');
    expect((await sample.status())!.privacy).toMatchObject({ epsilonSpent: spent, rounds: 1 });
    // The day's counters were erased too (the page may have sent a few bytes since the reload, not a masked update).
    const counters = (await sample.status())!.today;
    expect(counters.cpuMs).toBe(0);
    expect(counters.uploadBytes).toBeLessThan(uploaded / 10);
  });
});

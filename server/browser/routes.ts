/**
 * The coordinator's browser routes: the client bundle (`/portrait/portrait.js`, `/portrait/worker.js`)
 * and tfjs's .wasm files (`/portrait/wasm/*.wasm`), and the demo shop (`/shop`): its page, a
 * product catalogue from the synthetic population (with readable category names in Chinese and
 * English), a sample shopping history on the device's own days, and an enrollment
 * token endpoint that is the DEMO'S STAND-IN FOR THE SHOP PLATFORM (a real platform signs tokens
 * for its own signed-in shoppers; the coordinator only verifies them).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { DisplayName } from '../../shared/features/catalog-names.ts';
import { dayFromMs } from '../../shared/features/events.ts';
import { exampleReadiness } from '../../shared/features/device-windows.ts';
import { syntheticCategoryNames, syntheticDataset } from '../../shared/features/synthetic.ts';
import { DEFAULT_WINDOWS } from '../../shared/features/windows.ts';
import { issueEnrollmentToken } from '../../shared/protocol/enrollment.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import { BUNDLE_FILES, ensureBrowserBundle } from './bundle.ts';

export interface Product {
  itemId: string;
  /** English name (`names.en`). */
  name: string;
  names: DisplayName;
  /** Category id, as events and the model vocabulary carry it. */
  category: string;
  brand?: string;
  price: number;
}

export interface ShopCatalogue {
  products: Product[];
  /** Category ids of the products, most popular first. */
  categories: string[];
  /** Display names of every category of the synthetic catalogue (products' and the portrait's). */
  categoryNames: Record<string, DisplayName>;
}

export interface SampleEvent {
  day: number;
  type: string;
  itemId: string;
  category: string;
  brand?: string;
  price?: number;
}

const CATALOGUE_SEED = 1;
const SHOP_PAGE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'shop.html');
const WASM_FILES = new Set(['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']);
const WASM_DIR = path.join(path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
const DEMO_TOKEN_TTL_MS = 86_400_000;

let catalogue: { shop: ShopCatalogue; sample: ReturnType<typeof syntheticDataset>; plausible: number[] } | undefined;

/** The most popular categories of the synthetic population, a spread of prices in each. */
export function shopCatalogue(categories = 12, perCategory = 4): { shop: ShopCatalogue; sample: ReturnType<typeof syntheticDataset>; plausible: number[] } {
  if (catalogue) return catalogue;
  const sample = syntheticDataset({ users: 200, seed: CATALOGUE_SEED });
  const names = syntheticCategoryNames();
  const byCategory = new Map<string, Map<string, Product>>();
  for (const user of sample.users) {
    for (const e of user.events) {
      if (e.price === undefined) continue;
      const items = byCategory.get(e.category) ?? new Map<string, Product>();
      byCategory.set(e.category, items);
      if (!items.has(e.itemId)) items.set(e.itemId, { itemId: e.itemId, name: '', names: { zh: '', en: '' }, category: e.category, ...(e.brand ? { brand: e.brand } : {}), price: e.price });
    }
  }
  const top = [...byCategory.entries()].sort((a, b) => b[1].size - a[1].size).slice(0, categories);
  const products: Product[] = [];
  for (const [, items] of top) {
    const sorted = [...items.values()].sort((a, b) => a.price - b.price);
    for (let k = 0; k < perCategory && sorted.length > 0; k++) {
      const p = sorted[Math.floor(((k + 0.5) / perCategory) * sorted.length)] as Product;
      const category = names.get(p.category) ?? { zh: p.category, en: p.category };
      const model = p.itemId.split('-')[1] ?? String(k);
      const productNames = { zh: `${category.zh} ${model}号`, en: `${category.en} no. ${model}` };
      products.push({ ...p, name: productNames.en, names: productNames });
    }
  }
  // A sample history is plausible when, ending yesterday, every window of the model has history.
  const plausible = sample.users.flatMap((user, i) => {
    const days = user.events.map((e) => e.day);
    const lastDay = Math.max(...days);
    return days.length > 0 && exampleReadiness(days, DEFAULT_WINDOWS, lastDay + 1).examples === DEFAULT_WINDOWS.cutOffsets.length ? [i] : [];
  });
  catalogue = { shop: { products, categories: top.map(([c]) => c), categoryNames: Object.fromEntries(names) }, sample, plausible };
  return catalogue;
}

/** The device's UTC day now. */
function today(now = Date.now()): number {
  return dayFromMs(now);
}

/**
 * The `index`-th plausible synthetic shopper's events (demo only), moved so that the last day is
 * the day before `deviceToday`: a history that gives the model's windows an example at every cut
 * from the first training round on. `deviceToday` is the device's own day (its clock, not the
 * coordinator's).
 */
export function sampleHistory(index: number, deviceToday = today()): { events: SampleEvent[] } {
  const { sample, plausible } = shopCatalogue();
  const user = sample.users[plausible[Math.abs(index) % plausible.length] ?? 0];
  if (!user || user.events.length === 0) return { events: [] };
  const lastDay = user.events.reduce((m, e) => Math.max(m, e.day), 0);
  const shift = deviceToday - 1 - lastDay;
  return {
    events: user.events.map((e) => ({ day: e.day + shift, type: e.type, itemId: e.itemId, category: e.category, ...(e.brand ? { brand: e.brand } : {}), ...(e.price !== undefined ? { price: e.price } : {}) })),
  };
}

export function browserRouter(options: { platformSecretKey?: Uint8Array; clock: () => number }): express.Router {
  const router = express.Router();
  // Start building now so the first page load does not wait for it.
  ensureBrowserBundle().catch(() => undefined);

  router.get('/portrait/:file', async (req, res, next) => {
    try {
      const file = req.params.file;
      if (file !== BUNDLE_FILES.page && file !== BUNDLE_FILES.worker) throw new ProtocolError('NOT_FOUND', `no file ${JSON.stringify(file)} in the browser bundle`);
      const bundle = await ensureBrowserBundle();
      res.set('Cache-Control', 'no-cache').type('text/javascript').sendFile(path.join(bundle.dir, file));
    } catch (err) {
      next(err);
    }
  });

  router.get('/portrait/wasm/:file', (req, res, next) => {
    const file = req.params.file;
    if (!WASM_FILES.has(file)) {
      next(new ProtocolError('NOT_FOUND', `no wasm file ${JSON.stringify(file)}`));
      return;
    }
    res.set('Cache-Control', 'public, max-age=86400').type('application/wasm').sendFile(path.join(WASM_DIR, file));
  });

  router.get('/shop', (_req, res) => {
    res.set('Cache-Control', 'no-cache').type('text/html').send(fs.readFileSync(SHOP_PAGE, 'utf8'));
  });

  router.get('/shop/catalogue.json', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=3600').json(shopCatalogue().shop);
  });

  router.get('/shop/sample-history', (req, res, next) => {
    const index = typeof req.query.user === 'string' && /^\d{1,6}$/.test(req.query.user) ? Number(req.query.user) : Math.floor(options.clock() / 1000);
    // The page sends its own day, so the history ends the day before the device's today.
    let day = today(options.clock());
    if (req.query.today !== undefined) {
      if (typeof req.query.today !== 'string' || !/^\d{1,6}$/.test(req.query.today)) {
        next(new ProtocolError('INVALID_ARGUMENT', `"today" expected the device's UTC day (days since 1970-01-01), got ${JSON.stringify(req.query.today)}`));
        return;
      }
      day = Number(req.query.today);
    }
    res.set('Cache-Control', 'no-store').json(sampleHistory(index, day));
  });

  // DEMO STAND-IN FOR THE SHOP PLATFORM: issues a fresh pseudonymous enrollment token to any page.
  router.post('/shop/enrollment-token', (_req, res, next) => {
    if (!options.platformSecretKey) {
      next(new ProtocolError('UNAVAILABLE', 'this coordinator does not issue demo shop tokens (start it with `portrait demo` or `portrait server --demo-shop`); the shop platform issues tokens'));
      return;
    }
    const token = issueEnrollmentToken(options.platformSecretKey, { ttlMs: DEMO_TOKEN_TTL_MS, now: options.clock() });
    res.set('Cache-Control', 'no-store').json({ token });
  });

  return router;
}

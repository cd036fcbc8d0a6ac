/**
 * Browser client benchmark, in headless Chromium (Debian's /usr/bin/chromium via playwright-core)
 * against a real embedded coordinator: bundle size (raw, gzip), time to first portrait on page
 * load (cold: empty HTTP cache and IndexedDB; warm: reload), and for each tfjs backend that loads
 * in the worker, local training time per round and main-thread long tasks during DP + SecAgg+
 * rounds shared with three simulated Node clients. Writes its section of docs/benchmarks.md.
 * Usage: npx tsx scripts/bench/browser.ts [--rounds 3]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { FederatedClient } from '../../client/core/client.ts';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { userExamples } from '../../shared/features/examples.ts';
import { featureContext } from '../../shared/features/extract.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import { issueEnrollmentToken } from '../../shared/protocol/enrollment.ts';
import type { RoundRecord } from '../../shared/protocol/messages.ts';
import { loadOrCreatePlatformKey } from '../../server/auth/platform-key.ts';
import { BUNDLE_FILES, buildBrowserBundle } from '../../server/browser/bundle.ts';
import { sampleHistory } from '../../server/browser/routes.ts';
import { readApiTokens, startEmbeddedCoordinator } from '../../server/embedded.ts';
import { loadDataset } from '../import/resolve.ts';
import { dataConfig, modelConfigFor } from '../lib/central.ts';
import { markdownTable, writeBenchmark } from './report.ts';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1] ?? 3) || 3;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HISTORY_USER = 3;

interface PageApi {
  portrait?: {
    status(): { connected: boolean; backend: string | null; roundsContributed: number } | null;
    error(): string | null;
    profile(): Promise<{ portrait: unknown }>;
    track(events: unknown[]): Promise<number>;
    trainings(): { roundId: number; ms: number; backend: string }[];
  };
  __longTasks: { start: number; duration: number }[];
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function main(): Promise<void> {
  const bundle = await buildBrowserBundle({ force: true });
  const sizes = Object.entries(BUNDLE_FILES).map(([key, file]) => {
    const bytes = fs.readFileSync(path.join(bundle.dir, file));
    return { key, file, raw: bytes.byteLength, gzip: zlib.gzipSync(bytes, { level: 9 }).byteLength };
  });

  await useNodeBackend();
  const dataset = await loadDataset('synthetic:60');
  const data = dataConfig();
  const prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, false);
  const config = modelConfigFor(prepared, data, 'mlp', false);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-bench-browser-'));
  const coordinator = await startEmbeddedCoordinator({ dataDir, initialModel: { config, seed: 1 }, demoShopTokens: true });
  const tokens = readApiTokens(dataDir);
  if (!tokens) throw new Error('no API tokens');
  const key = loadOrCreatePlatformKey(dataDir);
  const nodeClients = prepared.users.train.slice(0, 3).map((user) =>
    new FederatedClient({
      serverUrl: coordinator.url,
      token: issueEnrollmentToken(key.secretKey, { ttlMs: 3_600_000, now: Date.now() }),
      examples: (c) => userExamples(user, featureContext(c.vocabulary, dataset.startDay), { windows: c.windows }),
    }).start(),
  );
  const history = sampleHistory(HISTORY_USER).events;

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-bench-chromium-'));
  const context: BrowserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  await context.addInitScript(() => {
    const w = window as unknown as PageApi;
    w.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });

  const firstPortrait = async (page: Page, track: boolean): Promise<number> =>
    page.evaluate(
      async ({ events, track: doTrack }) => {
        const w = window as unknown as PageApi;
        while (typeof w.portrait?.track !== 'function') await new Promise((r) => setTimeout(r, 5));
        if (doTrack) await w.portrait!.track(events);
        for (;;) {
          if (w.portrait!.error()) throw new Error(w.portrait!.error() ?? '');
          if ((await w.portrait!.profile()).portrait) return performance.now();
          await new Promise((r) => setTimeout(r, 20));
        }
      },
      { events: history, track },
    );

  // Time to first portrait: navigation start → a portrait computed in the worker.
  const loadPage = await context.newPage();
  await loadPage.goto(`${coordinator.url}/shop?db=bench-load`, { waitUntil: 'commit' });
  const cold = await firstPortrait(loadPage, true);
  const backendOfLoad = (await loadPage.evaluate(() => (window as unknown as PageApi).portrait?.status()?.backend)) ?? 'unknown';
  await loadPage.reload({ waitUntil: 'commit' });
  const warm = await firstPortrait(loadPage, false);
  await loadPage.close();

  const backendRows: (string | number)[][] = [];
  let roundsRun = 0;
  for (const backend of ['webgl', 'wasm', 'cpu']) {
    const page = await context.newPage();
    await page.goto(`${coordinator.url}/shop?db=bench-${backend}&backend=${backend}&idle=300`);
    let loaded = true;
    try {
      await page.waitForFunction(() => {
        const p = (window as unknown as PageApi).portrait;
        if (p?.error()) return true;
        return p?.status()?.connected === true;
      }, null, { timeout: 30_000 });
    } catch {
      loaded = false;
    }
    const error = await page.evaluate(() => (window as unknown as PageApi).portrait?.error() ?? null);
    if (!loaded || error) {
      backendRows.push([backend, `did not load: ${(error ?? 'timeout').slice(0, 90)}`, '-', '-', '-', '-']);
      await page.close();
      continue;
    }
    await page.evaluate((events) => (window as unknown as PageApi).portrait?.track(events), history);
    const longTasks: { duration: number }[] = [];
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const started = await page.evaluate(() => performance.now());
      const launch = await fetch(`${coordinator.url}/api/v1/rounds`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.operator}`, 'content-type': 'application/json' },
        body: JSON.stringify({ rounds: 1, clientsPerRound: 4, minClients: 3, deadlines: { checkinMs: 2_000, trainingMs: 30_000 }, train: { epochs: 3, batchSize: 16, learningRate: 0.05, optimizer: 'sgd' }, privacy: { mode: 'distributed', clip: 0.5, noiseMultiplier: 1, delta: 1e-6 }, secagg: 'on' }),
      });
      if (launch.status !== 201) throw new Error(`launch: HTTP ${launch.status} ${await launch.text()}`);
      const { rounds: [r] } = (await launch.json()) as { rounds: RoundRecord[] };
      for (;;) {
        const res = await fetch(`${coordinator.url}/api/v1/rounds/${r!.id}`, { headers: { authorization: `Bearer ${tokens.auditor}` } });
        const record = (await res.json()) as RoundRecord;
        if (record.status === 'committed' || record.status === 'aborted') break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      roundsRun++;
      const t = await page.evaluate(() => [...((window as unknown as PageApi).portrait?.trainings() ?? [])]);
      const mine = t.find((x) => x.roundId === r!.id);
      if (mine) times.push(mine.ms);
      const tasks = await page.evaluate((s) => (window as unknown as PageApi).__longTasks.filter((x) => x.start >= s), started);
      longTasks.push(...tasks);
    }
    const over50 = longTasks.filter((t) => t.duration > 50);
    backendRows.push([backend, `${times.length}/${rounds} rounds trained`, times.length ? median(times).toFixed(0) : '-', times.length ? Math.max(...times).toFixed(0) : '-', over50.length, longTasks.length ? Math.max(...longTasks.map((t) => t.duration)).toFixed(0) : '0']);
    await page.close();
  }

  await context.close();
  for (const c of nodeClients) c.stop();
  await coordinator.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  try {
    fs.rmSync(userDataDir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
  } catch {
    // Chromium may still hold the profile; the OS cleans temp.
  }

  const sizeTable = markdownTable(['file', 'raw', 'gzip -9'], sizes.map((s) => [s.file, kib(s.raw), kib(s.gzip)]));
  const loadTable = markdownTable(['page load', 'time to first portrait (ms)', 'backend (auto)'], [
    ['cold (empty HTTP cache and IndexedDB; 1 sample history tracked)', cold.toFixed(0), backendOfLoad],
    ['warm (reload: cached bundle and model, events in IndexedDB)', warm.toFixed(0), backendOfLoad],
  ]);
  const backendTable = markdownTable(['worker backend', 'rounds', 'training ms / round (median)', 'max', 'main-thread long tasks > 50 ms during rounds', 'longest main-thread task (ms)'], backendRows);
  const notes = [
    `Headless Chromium ${CHROMIUM} with --disable-gpu; model: MLP, ${config.vocabulary.categories.length} categories; page history: demo sample user ${HISTORY_USER} (${history.length} events); rounds: distributed DP + SecAgg+ with 3 Node clients (cohort of 4), 3 local epochs.`,
    'Auto selection skips software WebGL (SwiftShader/llvmpipe), so headless Chromium without a GPU picks wasm; `?backend=` forces one for the per-backend rows.',
    `Bundle built in ${Math.round(bundle.ms)} ms by esbuild (minified IIFE); ${roundsRun} rounds in all.`,
  ].join('\n');
  writeBenchmark({ key: 'browser-client', title: 'Browser client', tfjsBackend: 'browser worker: per row', table: [sizeTable, '', loadTable, '', backendTable].join('\n'), notes });
}

await main();

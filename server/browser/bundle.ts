/**
 * The browser client's bundle, built with esbuild in-process: `portrait.js` (the page API, global
 * `PortraitSDK`) and `worker.js` (FederatedClient + tfjs + IndexedDB store), both classic IIFE
 * scripts so the worker can also be loaded with importScripts. Built into the gitignored
 * `build/browser/` on first use and rebuilt only when a source file is newer than the output, so
 * a fresh clone needs no manual build step (`npm start`, `npm test`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUNDLE_DIR = path.join(REPO_ROOT, 'build', 'browser');
export const BUNDLE_FILES = { page: 'portrait.js', worker: 'worker.js' } as const;

const ENTRIES = { page: 'client/browser/entry-page.ts', worker: 'client/browser/worker.ts' } as const;
const SOURCE_DIRS = ['client/browser', 'client/core', 'shared'];

function newestSource(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
    }
  };
  for (const dir of SOURCE_DIRS) walk(path.join(REPO_ROOT, dir));
  newest = Math.max(newest, fs.statSync(path.join(REPO_ROOT, 'package.json')).mtimeMs, fs.statSync(fileURLToPath(import.meta.url)).mtimeMs);
  return newest;
}

function upToDate(outDir: string): boolean {
  const outputs = Object.values(BUNDLE_FILES).map((f) => path.join(outDir, f));
  if (!outputs.every((f) => fs.existsSync(f))) return false;
  const oldest = Math.min(...outputs.map((f) => fs.statSync(f).mtimeMs));
  return oldest >= newestSource();
}

export interface BundleResult {
  dir: string;
  built: boolean;
  ms: number;
  bytes: Record<keyof typeof BUNDLE_FILES, number>;
}

export async function buildBrowserBundle(options: { outDir?: string; force?: boolean; minify?: boolean } = {}): Promise<BundleResult> {
  const outDir = options.outDir ?? BUNDLE_DIR;
  const started = performance.now();
  let built = false;
  if (options.force || !upToDate(outDir)) {
    fs.mkdirSync(outDir, { recursive: true });
    // Build to temporary names, then rename: a concurrent reader never sees a half-written file.
    await Promise.all(
      (Object.keys(ENTRIES) as (keyof typeof ENTRIES)[]).map(async (key) => {
        const outfile = path.join(outDir, `${BUNDLE_FILES[key]}.${process.pid}.tmp`);
        await esbuild.build({
          entryPoints: [path.join(REPO_ROOT, ENTRIES[key])],
          outfile,
          bundle: true,
          format: 'iife',
          ...(key === 'page' ? { globalName: 'PortraitSDK' } : {}),
          platform: 'browser',
          target: ['chrome100', 'firefox100', 'safari15'],
          minify: options.minify ?? true,
          sourcemap: false,
          legalComments: 'none',
          logLevel: 'silent',
          define: { 'process.env.NODE_ENV': '"production"' },
        });
        fs.renameSync(outfile, path.join(outDir, BUNDLE_FILES[key]));
      }),
    );
    built = true;
  }
  const size = (f: string) => fs.statSync(path.join(outDir, f)).size;
  return { dir: outDir, built, ms: performance.now() - started, bytes: { page: size(BUNDLE_FILES.page), worker: size(BUNDLE_FILES.worker) } };
}

let shared: Promise<BundleResult> | undefined;

/** One build per process, started by the first caller (the coordinator's routes at start). */
export function ensureBrowserBundle(): Promise<BundleResult> {
  shared ??= buildBrowserBundle().catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}

/**
 * Compiles the `portrait` CLI to JavaScript in build/cli/ with esbuild, so a start loads
 * JavaScript instead of transpiling the TypeScript sources through tsx (seconds on two cores).
 * npm runs it on `npm install` / `npm ci` (the `prepare` script) and before `npm test`;
 * bin/portrait.js runs it when a source is newer than the build. `manifest.json` lists every
 * source file the build read and when the build started: that is how bin/portrait.js and this
 * script tell a fresh build from a stale one without reading the sources.
 *
 * Two entries, split into shared chunks: the CLI and the fleet simulator's worker thread (which
 * the compiled simulator starts from build/cli/ rather than through tsx). npm packages stay
 * imports (native and optional ones included), resolved from node_modules at run time; so tfjs
 * loads only when a command's action imports the modules that need it.
 *
 * Usage: npx tsx scripts/build-cli.ts [--force]   (without --force, a fresh build is left alone)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI_BUILD_DIR = path.join(REPO_ROOT, 'build', 'cli');
const MANIFEST_FILE = 'manifest.json';
/** How long a chunk of an earlier build is kept for the processes that may still import it. */
const STALE_CHUNK_MS = 60 * 60 * 1000;

const ENTRIES = { portrait: 'scripts/portrait.ts', 'simulator-worker': 'client/node/simulator-worker.ts' } as const;

export interface CliBuildManifest {
  /** Epoch ms when the build started: a source modified after it is newer than the build. */
  builtAt: number;
  /** Every source file the build read, relative to the repository root (this script included). */
  inputs: string[];
}

/** `to` as a relative URL from the directory `from`. */
function relativeUrl(from: string, to: string): string {
  return path.relative(from, to).split(path.sep).join('/');
}

/**
 * Every output lands in one directory, so a module's own source is at a fixed relative path from
 * its compiled code. `import.meta.url` is rewritten to that source's URL: the modules that find
 * files beside their source (the dashboard pages, package.json, the browser bundle's sources)
 * then find them from build/cli/ exactly as they do from the sources.
 */
function sourceUrlPlugin(outDir: string): esbuild.Plugin {
  return {
    name: 'source-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        const text = fs.readFileSync(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return undefined;
        return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(relativeUrl(outDir, args.path))}, import.meta.url).href`), loader: 'ts' };
      });
    },
  };
}

function readManifest(outDir: string): CliBuildManifest | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(outDir, MANIFEST_FILE), 'utf8')) as CliBuildManifest;
  } catch {
    return null;
  }
}

/** Why the build in `outDir` is out of date (missing, or a source newer than it), or null when it is fresh. The same check as bin/portrait.js. */
export function staleReason(outDir = CLI_BUILD_DIR): string | null {
  const manifest = readManifest(outDir);
  if (!manifest) return 'not built yet';
  for (const input of manifest.inputs) {
    const file = path.join(REPO_ROOT, input);
    if (!fs.existsSync(file)) return `${input} is gone`;
    if (fs.statSync(file).mtimeMs > manifest.builtAt) return `${input} changed`;
  }
  return null;
}

export interface CliBuildResult {
  dir: string;
  built: boolean;
  ms: number;
  files: number;
}

/**
 * Builds into a fresh temporary directory, then renames the files into `outDir`: chunks first,
 * the entries and the manifest last, so a CLI starting meanwhile (tests start many at once) sees
 * either the old build or the new one. Chunk names carry a content hash, so a process of the old
 * build that imports a chunk later still finds its own: files the new build does not have are
 * removed only once they are an hour old (`--force`: at once).
 */
export async function buildCli(options: { outDir?: string; force?: boolean } = {}): Promise<CliBuildResult> {
  const outDir = options.outDir ?? CLI_BUILD_DIR;
  const started = performance.now();
  if (!options.force && staleReason(outDir) === null) return { dir: outDir, built: false, ms: performance.now() - started, files: 0 };
  const builtAt = Date.now();
  fs.mkdirSync(outDir, { recursive: true });
  const staging = fs.mkdtempSync(path.join(path.dirname(outDir), `.${path.basename(outDir)}-`));
  try {
    const result = await esbuild.build({
      absWorkingDir: REPO_ROOT,
      entryPoints: ENTRIES,
      outdir: staging,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      chunkNames: 'chunk-[hash]',
      // Read by client/node/simulator.ts: start the compiled worker, not its source through tsx.
      define: { PORTRAIT_COMPILED_WORKER: JSON.stringify(relativeUrl(path.join(REPO_ROOT, 'client', 'node'), path.join(outDir, 'simulator-worker.js'))) },
      // No minify and no keepNames: the SecAgg+ workers run source text made from functions
      // (server/rounds/secagg-native-*.ts), which must stay self-contained.
      plugins: [sourceUrlPlugin(outDir)],
      metafile: true,
      logLevel: 'silent',
    });
    const outputs = fs.readdirSync(staging);
    const sweepBefore = options.force ? Infinity : Date.now() - STALE_CHUNK_MS;
    for (const file of fs.readdirSync(outDir)) {
      if (outputs.includes(file) || file === MANIFEST_FILE) continue;
      const stat = fs.statSync(path.join(outDir, file), { throwIfNoEntry: false });
      if (stat && stat.mtimeMs < sweepBefore) fs.rmSync(path.join(outDir, file), { recursive: true, force: true });
    }
    const entries = new Set(Object.keys(ENTRIES).map((name) => `${name}.js`));
    for (const file of [...outputs.filter((f) => !entries.has(f)), ...outputs.filter((f) => entries.has(f))]) fs.renameSync(path.join(staging, file), path.join(outDir, file));
    const inputs = [...Object.keys(result.metafile.inputs), path.relative(REPO_ROOT, fileURLToPath(import.meta.url))].map((p) => p.split(path.sep).join('/'));
    const manifest: CliBuildManifest = { builtAt, inputs: [...new Set(inputs)].sort() };
    const manifestStaging = path.join(staging, MANIFEST_FILE);
    fs.writeFileSync(manifestStaging, `${JSON.stringify(manifest, null, 2)}\n`);
    fs.renameSync(manifestStaging, path.join(outDir, MANIFEST_FILE));
    return { dir: outDir, built: true, ms: performance.now() - started, files: outputs.length };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const result = await buildCli({ force: process.argv.includes('--force') });
    process.stdout.write(`${result.built ? `built ${result.files} files` : 'up to date'}: ${path.relative(process.cwd(), result.dir) || '.'} in ${Math.round(result.ms)} ms\n`);
  } catch (err) {
    // esbuild's message ends with its errors, one per line (bin/portrait.js quotes the last line).
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

#!/usr/bin/env node
// Entry for `npx portrait`: runs the CLI compiled to build/cli/ by scripts/build-cli.ts (npm install
// and npm test build it). When a source is newer than that build (edited, not rebuilt), it is rebuilt
// first, with a one-line note on stderr; should that fail, the TypeScript sources run through tsx.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
const build = new URL('build/cli/', root);

/** Why build/cli/ is out of date, or null when it is fresh: the check of scripts/build-cli.ts's staleReason, kept here in plain JavaScript. */
function staleReason() {
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(new URL('manifest.json', build), 'utf8'));
  } catch {
    return 'not built yet';
  }
  for (const input of manifest.inputs) {
    const stat = fs.statSync(new URL(input, root), { throwIfNoEntry: false });
    if (!stat) return `${input} is gone`;
    if (stat.mtimeMs > manifest.builtAt) return `${input} changed`;
  }
  return null;
}

/** The last line of a failed build's message: the error itself (esbuild lists its errors after "Build failed"). */
function lastLine(text) {
  return (text ?? '').split('\n').map((line) => line.trim()).filter(Boolean).at(-1);
}

let stale = staleReason();
if (stale !== null) {
  process.stderr.write(`portrait: rebuilding the compiled CLI in build/cli (${stale})\n`);
  const rebuild = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('scripts/build-cli.ts', root))], { cwd: fileURLToPath(root), encoding: 'utf8' });
  stale = rebuild.status === 0 ? staleReason() : lastLine(rebuild.stderr) ?? rebuild.error?.message ?? `exit ${rebuild.status}`;
  if (stale !== null) process.stderr.write(`portrait: could not rebuild build/cli (${stale}; npm run build:cli shows all), running the TypeScript sources through tsx\n`);
}
if (stale === null) await import('../build/cli/portrait.js');
else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../scripts/portrait.ts');
}

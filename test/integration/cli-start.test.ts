/**
 * How the real `portrait` binary starts: from the compiled build (scripts/build-cli.ts), loading
 * tfjs only for the commands that compute with it. A resolve hook in the child process writes
 * every @tensorflow module it resolves to stderr; `profile` (which picks a backend before it finds
 * its inputs missing) shows the hook sees tfjs when it is loaded. Also the build's freshness check.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCli, staleReason } from '../../scripts/build-cli.ts';
import { loadsTfjs, portraitWatchingTfjs } from './cli-process.ts';

const portrait = portraitWatchingTfjs;


describe('portrait start', () => {
  it('loads tfjs only for the commands that use it', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-cli-start-'));
    const unreachable = ['--server', 'http://127.0.0.1:9', '--token', 'pt_none', '--json'];
    try {
      const [version, help, epsilon, verify, status, launch, profile] = await Promise.all([
        portrait(['--version']),
        portrait(['--help']),
        portrait(['privacy', 'epsilon', '--q', '0.01', '--noise-multiplier', '1.0', '--steps', '1000', '--delta', '1e-5', '--json']),
        portrait(['audit', 'verify', '--data-dir', empty, '--json']),
        portrait(['round', 'status', ...unreachable]),
        portrait(['round', 'launch', '--clients-per-round', '5', ...unreachable]),
        portrait(['profile', '--model', path.join(empty, 'no-model'), '--events', path.join(empty, 'no-events.jsonl'), '--json']),
      ]);
      expect(version).toMatchObject({ code: 0, stdout: '0.1.0\n' });
      expect(help.stdout).toMatch(/^Usage: portrait /);
      expect(JSON.parse(epsilon.stdout)).toMatchObject({ q: 0.01, steps: 1000 });
      expect(JSON.parse(verify.stdout)).toMatchObject({ error: { code: 'NOT_FOUND' } });
      for (const r of [status, launch]) expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'UNAVAILABLE' } });
      for (const r of [version, help, epsilon, verify, status, launch]) {
        expect(loadsTfjs(r)).toBe(false);
        expect(r.stderr).not.toMatch(/tfjs backend/);
      }
      expect(JSON.parse(profile.stdout)).toMatchObject({ error: { code: 'NOT_FOUND' } });
      expect(loadsTfjs(profile)).toBe(true);
      // One short line whatever this machine could install (its exact words: test/unit/model/backend.test.ts).
      expect(profile.stderr).toMatch(/^tfjs backend: (node-gpu|node|wasm|cpu)( \([^)\n]*\))?$/m);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  }, 60_000);

  it('knows a build from a source newer than it', async () => {
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-cli-build-'));
    try {
      expect(staleReason(outDir)).toBe('not built yet');
      const built = await buildCli({ outDir });
      expect(built.built).toBe(true);
      expect(fs.readdirSync(outDir)).toEqual(expect.arrayContaining(['portrait.js', 'simulator-worker.js', 'manifest.json']));
      expect(staleReason(outDir)).toBeNull();
      expect((await buildCli({ outDir })).built).toBe(false);
      // A build older than its sources is stale, naming a source that changed.
      const manifestFile = path.join(outDir, 'manifest.json');
      const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { builtAt: number; inputs: string[] };
      expect(manifest.inputs).toEqual(expect.arrayContaining(['scripts/portrait.ts', 'scripts/build-cli.ts', 'client/node/simulator-worker.ts']));
      fs.writeFileSync(manifestFile, JSON.stringify({ ...manifest, builtAt: 0 }));
      expect(staleReason(outDir)).toMatch(/^\S+\.ts changed$/);
      fs.writeFileSync(manifestFile, JSON.stringify({ ...manifest, inputs: [...manifest.inputs, 'scripts/no-such-file.ts'] }));
      expect(staleReason(outDir)).toBe('scripts/no-such-file.ts is gone');
    } finally {
      fs.rmSync(outDir, { recursive: true, force: true });
    }
  });
});

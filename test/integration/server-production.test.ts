/**
 * `portrait server --production --catalog FILE` through the real binary: it starts with no user
 * events, serves a first model whose vocabulary is the catalogue's categories, and says it runs
 * in production mode; `--production` refuses `--dataset` (and the other options that would put
 * shoppers' data or trust on the server) and a missing `--catalog`; a malformed catalogue is
 * refused naming its line, before anything is written to the data directory.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/portrait.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-production-'));

const CATALOG = ['category,parent,price,name', 'apparel,,,"Apparel, all"', 'sneakers,apparel,59.90,Sneakers', 'sneakers,apparel,89,', 'boots,apparel,120,"Boots ""winter"""', 'tea,,12.5,Tea', ''].join('\n');

function writeFile(name: string, text: string): string {
  const file = path.join(work, name);
  fs.writeFileSync(file, text);
  return file;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function portrait(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, maxBuffer: 1 << 24, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** The `--json` error document of a failed run. */
function jsonError(r: Run): { code: string; message: string } {
  expect(r.code).not.toBe(0);
  return (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
}

interface Started {
  child: ChildProcessWithoutNullStreams;
  url: string;
  production: boolean;
  stderr: () => string;
}

function startServer(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, [BIN, 'server', '--port', '0', '--json', ...args], { cwd: ROOT });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        const { url, production } = JSON.parse(out) as { url: string; production: boolean };
        resolve({ child, url, production, stderr: () => err });
      } catch {
        // Not the whole document yet.
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${out} ${err}`)));
  });
}

function stop(child: ChildProcessWithoutNullStreams): Promise<void> {
  // Exited, normally or by a signal (a process killed by one has a null exitCode and its 'exit' is past).
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

const servers: ChildProcessWithoutNullStreams[] = [];

afterAll(async () => {
  await Promise.all(servers.map(stop));
  fs.rmSync(work, { recursive: true, force: true });
});

describe('portrait server --production', () => {
  it('starts from the catalog alone and serves a model whose vocabulary is its categories', async () => {
    const catalog = writeFile('catalog.csv', CATALOG);
    const server = await startServer(['--data-dir', path.join(work, 'production'), '--production', '--catalog', catalog]);
    servers.push(server.child);
    expect(server.production).toBe(true);
    expect(server.stderr()).toContain('production mode');
    expect(server.stderr()).not.toContain('--dataset');

    const current = (await (await fetch(`${server.url}/models/current`)).json()) as { version: number; modelUrl: string };
    expect(current.version).toBe(1);
    const modelJson = (await (await fetch(new URL(current.modelUrl, server.url))).json()) as { userDefinedMetadata: { portrait: { vocabulary: { categories: string[]; popularity: number[] } } } };
    const { vocabulary } = modelJson.userDefinedMetadata.portrait;
    // Most products first, the inner category (apparel has children) after the leaves.
    expect(vocabulary.categories).toEqual(['sneakers', 'boots', 'tea', 'apparel']);
    expect(vocabulary.popularity).toEqual([3 / 8, 2 / 8, 2 / 8, 1 / 8]);
    await stop(server.child);
  });

  it('refuses --dataset, --allow-no-dp, --allow-central-dp and a missing --catalog, naming the flag, before writing anything', async () => {
    const catalog = writeFile('refusals.csv', CATALOG);
    const dataDir = path.join(work, 'refused');
    const base = ['server', '--port', '0', '--json', '--data-dir', dataDir, '--production'];
    const [dataset, noDp, centralDp, noCatalog] = await Promise.all([
      portrait([...base, '--catalog', catalog, '--dataset', 'synthetic:50']),
      portrait([...base, '--catalog', catalog, '--allow-no-dp']),
      portrait([...base, '--catalog', catalog, '--allow-central-dp']),
      portrait(base),
    ]);
    expect(jsonError(dataset)).toEqual({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^"--dataset" is refused with --production: it puts user events on this server/) });
    expect(jsonError(noDp)).toEqual({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^"--allow-no-dp" is refused with --production/) });
    expect(jsonError(centralDp)).toEqual({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^"--allow-central-dp" is refused with --production/) });
    expect(jsonError(noCatalog)).toEqual({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^"--catalog" is required with --production/) });
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('chooses a simulation server\'s windows from its dataset\'s span (rolling over 90 days), and refuses window flags without a dataset', async () => {
    const started = await startServer(['--data-dir', path.join(work, 'span90'), '--dataset', 'synthetic:100:1:90']);
    servers.push(started.child);
    expect(started.stderr()).toMatch(/^windows: \d+ rolling cuts every 7 day\(s\) .*\(history 28 days, labels 7 days/m);
    const read = /the windows read ([\d.]+)%/.exec(started.stderr());
    expect(Number(read?.[1])).toBeGreaterThan(50);
    const catalog = writeFile('windows.csv', CATALOG);
    const refused = await portrait(['server', '--port', '0', '--json', '--data-dir', path.join(work, 'windows-refused'), '--production', '--catalog', catalog, '--history-days', '28']);
    expect(jsonError(refused)).toEqual({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^"--history-days" sets the windows from a dataset's span: it goes with --dataset/) });
    expect(fs.existsSync(path.join(work, 'windows-refused'))).toBe(false);
  });

  it('refuses a malformed catalog naming its lines, and a missing one as NOT_FOUND', async () => {
    const bad = writeFile('bad.csv', 'category,price\nsneakers,59\n,10\ntea,-2\n');
    const dataDir = path.join(work, 'malformed');
    const [malformed, text, missing] = await Promise.all([
      portrait(['server', '--port', '0', '--json', '--data-dir', dataDir, '--production', '--catalog', bad]),
      portrait(['server', '--port', '0', '--data-dir', dataDir, '--production', '--catalog', bad]),
      portrait(['server', '--port', '0', '--json', '--data-dir', dataDir, '--production', '--catalog', path.join(work, 'nowhere.csv')]),
    ]);
    const error = jsonError(malformed);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain(`"catalog" ${bad}: catalog refused, 2 errors:`);
    expect(error.message).toContain('line 3: "category" expected a non-empty id, got ""');
    expect(error.message).toContain('line 4: "price" expected a number >= 0, got "-2"');
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/^portrait: INVALID_ARGUMENT: "catalog" .*bad\.csv: catalog refused, 2 errors:\n {2}line 3: /m);
    expect(jsonError(missing)).toEqual({ code: 'NOT_FOUND', message: expect.stringContaining('nowhere.csv') });
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('outside production: --catalog and an explicit --dataset are one too many', async () => {
    const catalog = writeFile('both.json', JSON.stringify({ categories: [{ category: 'tea', price: 3 }] }));
    const both = await portrait(['server', '--port', '0', '--json', '--data-dir', path.join(work, 'both'), '--catalog', catalog, '--dataset', 'synthetic:50']);
    expect(jsonError(both)).toEqual({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('"--catalog" and "--dataset"') });
  });

  it('outside production, a dataset server says its events are for simulation only', async () => {
    const server = await startServer(['--data-dir', path.join(work, 'simulation'), '--dataset', 'synthetic:40', '--no-evaluation']);
    servers.push(server.child);
    expect(server.production).toBe(false);
    expect(server.stderr()).toContain('--dataset synthetic:40 puts simulated user events on this server (simulation only; use --production --catalog FILE for a shop)');
    await stop(server.child);
  });
});

/**
 * The README's production path through the real binaries: `portrait server --production
 * --catalog`, a simulated fleet (`portrait simulate`), then `model bootstrap` (three DP analytics
 * rounds and a bootstrap version), `round launch` (training on it), `model compare --run` (a paired
 * federated evaluation), `model promote` (refused without an interval above 0, or by an operator's
 * override), `model list`, and `audit verify` over everything the ledger recorded.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../scripts/import/resolve.ts';
import type { ModelRecord, RoundRecord, ServingPointer } from '../../shared/protocol/messages.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/portrait.js');
const DEVICES = 12;
const SHAPE = ['--clients-per-round', '10', '--min-clients', '8', '--checkin-ms', '8000', '--training-ms', '40000'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function portrait(args: string[], timeout = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, maxBuffer: 1 << 24, timeout }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function json<T>(r: Run): T {
  expect(r.code, r.stderr.slice(-2000)).toBe(0);
  return JSON.parse(r.stdout) as T;
}

function stop(child: ChildProcessWithoutNullStreams | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

describe('the production path from the README, through the CLI', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-cli-production-'));
  const dataDir = path.join(work, 'data');
  let server: ChildProcessWithoutNullStreams | undefined;
  let fleet: ChildProcessWithoutNullStreams | undefined;
  let url = '';
  const on = () => ['--server', url, '--data-dir', dataDir, '--json'];

  beforeAll(async () => {
    const dataset = await loadDataset('synthetic:200');
    const categories = [...new Set(dataset.users.flatMap((u) => u.events.map((e) => e.category)))].sort();
    const catalog = path.join(work, 'catalog.csv');
    fs.writeFileSync(catalog, `category\n${categories.join('\n')}\n`);
    server = spawn(process.execPath, [BIN, 'server', '--production', '--catalog', catalog, '--port', '0', '--data-dir', dataDir, '--json'], { cwd: ROOT });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server!.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        try {
          resolve((JSON.parse(out) as { url: string }).url);
        } catch {
          // not the whole document yet
        }
      });
      server!.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
    fleet = spawn(process.execPath, [BIN, 'simulate', '--server', url, '--data-dir', dataDir, '--clients', String(DEVICES), '--dataset', 'synthetic:200', '--workers', '1'], { cwd: ROOT });
    const token = (JSON.parse(fs.readFileSync(path.join(dataDir, 'api-tokens.json'), 'utf8')) as { auditor: string }).auditor;
    for (let waited = 0; ; waited += 250) {
      const status = (await (await fetch(`${url}/api/v1/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as { connectedClients: number };
      if (status.connectedClients >= DEVICES) break;
      if (waited > 90_000) throw new Error(`only ${status.connectedClients} devices connected`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }, 150_000);

  afterAll(async () => {
    await stop(fleet);
    await stop(server);
  });

  it('bootstraps, trains, compares, refuses or makes a promotion, lists and verifies', async () => {
    const boot = json<{ rounds: { categories: number; prices: number; spend: number }; model: ModelRecord }>(await portrait(['model', 'bootstrap', ...on(), ...SHAPE]));
    expect(boot.model).toMatchObject({ version: 2, roundId: null, derivedFrom: [boot.rounds.categories, boot.rounds.prices, boot.rounds.spend] });

    const trained = json<{ rounds: RoundRecord[] }>(await portrait(['round', 'launch', ...on(), ...SHAPE, '--wait'])).rounds[0]!;
    expect(trained).toMatchObject({ status: 'committed', baseModelVersion: 2, modelVersion: 3 });

    const compared = json<{ round: number; difference: { baseline: number; candidate: number } }>(await portrait(['model', 'compare', '1', '3', '--run', ...on(), ...SHAPE]));
    expect(compared.difference).toMatchObject({ baseline: 1, candidate: 3 });

    // Ten devices under DP rarely show a gain above the noise: promotion then says why, and an override is explicit.
    const promoted = await portrait(['model', 'promote', '3', '--evidence', String(compared.round), ...on()]);
    if (promoted.code !== 0) expect(JSON.parse(promoted.stdout).error).toMatchObject({ code: 'PROMOTION_REFUSED', message: expect.stringMatching(/lower bound is not above 0|gives no interval/) });
    else expect(JSON.parse(promoted.stdout).serving.version).toBe(3);
    if (promoted.code !== 0) expect(json<{ serving: ServingPointer }>(await portrait(['model', 'promote', '3', '--force', '--reason', 'CLI test', ...on()])).serving).toMatchObject({ version: 3, reason: 'forced by an operator: CLI test' });

    const list = json<{ current: number; serving: ServingPointer; models: ModelRecord[] }>(await portrait(['model', 'list', ...on()]));
    expect(list).toMatchObject({ current: 3, serving: { version: 3 } });
    expect(list.models.map((m) => m.version)).toEqual([3, 2, 1]);

    const verified = json<{ ok: boolean }>(await portrait(['audit', 'verify', '--data-dir', dataDir, '--json']));
    expect(verified.ok).toBe(true);
  }, 400_000);
});

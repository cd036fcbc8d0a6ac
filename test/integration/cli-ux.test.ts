/**
 * What a new user hits first, through the real `portrait` binary: argument errors keep the
 * `--json` promise, client commands default to the local server and its ./data tokens, `--model V`
 * reads the data dir's model store, missing inputs are NOT_FOUND naming the path, `round launch
 * --wait` prints its result once, and the demo refuses a busy explicit port (and cleans up) while a
 * busy default port falls back to a free one; its printed launch line runs as printed, and its
 * temporary data directory goes on exit. The coordinators are real (port 0, temp data dirs).
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { launchHint, planPrivateRounds, startOnPort } from '../../scripts/cli/demo.ts';
import { CliError } from '../../scripts/cli/output.ts';
import type { RoundRecord } from '../../shared/protocol/messages.ts';
import { startTestCoordinator, syntheticPopulation } from './harness.ts';
import type { TestCoordinator } from './harness.ts';

const bin = path.resolve('bin/portrait.js');

beforeAll(async () => {
  await useNodeBackend();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real binary; no token in the environment unless given, so the ./data default is what is tested. */
function portrait(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  if (!options.env?.PORTRAIT_TOKEN) delete env.PORTRAIT_TOKEN;
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: options.cwd ?? process.cwd(), env, maxBuffer: 1 << 24, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** With --json: exactly one JSON document on stdout, whatever happened. */
function jsonError(r: Run): { code: string; message: string } {
  expect(r.code).not.toBe(0);
  return (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
}

function busyPort(): Promise<net.Server> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

describe('argument errors with --json', () => {
  it('print one INVALID_ARGUMENT document on stdout and exit non-zero; without --json stdout stays empty', async () => {
    const [missing, unknownOption, unknownCommand, plain] = await Promise.all([
      portrait(['round', 'launch', '--json']),
      portrait(['privacy', 'epsilon', '--bogus', '1', '--json']),
      portrait(['nosuch', '--json']),
      portrait(['round', 'launch']),
    ]);
    expect(jsonError(missing)).toEqual({ code: 'INVALID_ARGUMENT', message: "required option '--clients-per-round <K>' not specified" });
    // A pointer to the command's help, not the whole help.
    expect(missing.stderr).toMatch(/^error: required option '--clients-per-round <K>' not specified\n\(see portrait round launch --help\)$/m);
    expect(missing.stderr).not.toMatch(/Usage:/);
    expect(jsonError(unknownOption)).toEqual({ code: 'INVALID_ARGUMENT', message: "unknown option '--bogus'" });
    expect(jsonError(unknownCommand)).toEqual({ code: 'INVALID_ARGUMENT', message: "unknown command 'nosuch'" });
    expect(plain.code).not.toBe(0);
    expect(plain.stdout).toBe('');
    expect(plain.stderr).toMatch(/required option '--clients-per-round <K>' not specified/);
  }, 60_000);

  it('name a mistyped flag first, with the close one, even when it leaves a required option out', async () => {
    const [typo, typoJson] = await Promise.all([portrait(['round', 'launch', '--client-per-round', '5']), portrait(['round', 'launch', '--client-per-round', '5', '--json'])]);
    expect(typo.code).not.toBe(0);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toMatch(/^error: unknown option '--client-per-round'\n\(Did you mean --clients-per-round\?\)\n\(see portrait round launch --help\)$/m);
    expect(typo.stderr).not.toMatch(/required option|Usage:/);
    expect(jsonError(typoJson)).toEqual({ code: 'INVALID_ARGUMENT', message: "unknown option '--client-per-round' (Did you mean --clients-per-round?)" });
  }, 60_000);
});

describe('missing input files', () => {
  it('are NOT_FOUND naming the argument and the path, whichever command reads them', async () => {
    const missing = path.join(os.tmpdir(), `portrait-cli-ux-missing-${process.pid}.jsonl`);
    const [bundle, batch, events] = await Promise.all([
      portrait(['audit', 'verify', '--bundle', missing, '--json']),
      portrait(['privacy', 'epsilon', '--batch', missing, '--json']),
      portrait(['profile', '--model', 'latest', '--events', missing, '--json']),
    ]);
    expect(jsonError(bundle)).toEqual({ code: 'NOT_FOUND', message: `"bundle": no such file: ${missing}` });
    expect(jsonError(batch)).toEqual({ code: 'NOT_FOUND', message: `"batch": no such file: ${missing}` });
    expect(jsonError(events)).toEqual({ code: 'NOT_FOUND', message: `"events": no such file: ${missing}` });
  }, 60_000);
});

describe('client commands against a real coordinator', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-cli-ux-'));
  const dataDir = path.join(work, 'data');
  let coordinator: TestCoordinator;

  beforeAll(async () => {
    fs.mkdirSync(dataDir);
    coordinator = await startTestCoordinator(dataDir);
  });
  afterAll(async () => {
    await coordinator?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('default to http://127.0.0.1:8080 and to the tokens in ./data/api-tokens.json', async () => {
    const [launchHelp, simulateHelp, status, noToken] = await Promise.all([
      portrait(['round', 'launch', '--help']),
      portrait(['simulate', '--help']),
      // cwd holds data/api-tokens.json: no --token, no PORTRAIT_TOKEN, no --data-dir.
      portrait(['round', 'status', '--server', coordinator.url, '--json'], { cwd: work }),
      portrait(['round', 'status', '--server', coordinator.url, '--json'], { cwd: os.tmpdir() }),
    ]);
    for (const help of [launchHelp, simulateHelp]) expect(help.stdout.replace(/\s+/g, ' ')).toMatch(/--server <url> coordinator URL \(default: "http:\/\/127\.0\.0\.1:8080"\)/);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual({ rounds: [] });
    const e = jsonError(noToken);
    expect(e.code).toBe('UNAUTHENTICATED');
    expect(e.message).toContain(path.join('data', 'api-tokens.json'));
  }, 60_000);

  it('round launch --wait prints the finished round once (stderr progress, stdout result)', async () => {
    // Nobody checks in, so the round aborts when its short check-in window ends.
    const r = await portrait(['round', 'launch', '--server', coordinator.url, '--clients-per-round', '2', '--dp', 'none', '--checkin-ms', '300', '--wait'], { cwd: work });
    expect(r.code).toBe(0);
    const finished = /^round \d+ aborted: .*$/m;
    expect(r.stdout).toMatch(finished);
    expect(r.stdout).toMatch(/aborted: too few clients: no device was connected when check-in closed, fewer than minClients 2/);
    expect(r.stderr).not.toMatch(finished);
    expect(r.stderr).toMatch(/launched rounds \d+: no DP/);
    // --exit-status: the same output, exit 1 because the round aborted; without --wait it is refused.
    const strict = await portrait(['round', 'launch', '--server', coordinator.url, '--clients-per-round', '2', '--dp', 'none', '--checkin-ms', '300', '--wait', '--exit-status', '--json'], { cwd: work });
    expect(strict.code).toBe(1);
    expect((JSON.parse(strict.stdout) as { rounds: RoundRecord[] }).rounds.map((x) => [x.status, x.reason])).toEqual([['aborted', expect.stringContaining('no device was connected')]]);
    expect(jsonError(await portrait(['round', 'launch', '--server', coordinator.url, '--clients-per-round', '2', '--dp', 'none', '--exit-status', '--json'], { cwd: work })).code).toBe('INVALID_ARGUMENT');
  }, 60_000);

  it('--model V loads version V of --data-dir; missing inputs and bad outputs are named', async () => {
    const events = path.join(work, 'me.jsonl');
    fs.writeFileSync(events, `${JSON.stringify({ userId: 'me', day: 18_060, type: 'cart', itemId: 'i1', category: 'c1', price: 12 })}\n`);
    const missing = path.join(work, 'nonexist.jsonl');
    const existing = path.join(work, 'already-there');
    fs.mkdirSync(existing);
    const noDataDir = path.join(work, 'no-such-data-dir');
    const [byVersion, unknownVersion, noEvents, noDataset, outExists, noData, serverNoDataset] = await Promise.all([
      portrait(['profile', '--model', '1', '--data-dir', dataDir, '--events', events, '--json']),
      portrait(['profile', '--model', '99', '--data-dir', dataDir, '--events', events, '--json']),
      portrait(['profile', '--model', '1', '--data-dir', dataDir, '--events', missing, '--json']),
      portrait(['evaluate', '--model', 'latest', '--data-dir', dataDir, '--dataset', `events:${missing}`, '--json']),
      portrait(['model', 'export', 'latest', '--data-dir', dataDir, '--out', existing, '--json']),
      portrait(['model', 'export', 'latest', '--data-dir', noDataDir, '--out', path.join(work, 'out'), '--json']),
      portrait(['server', '--port', '0', '--data-dir', path.join(work, 'server-data'), '--dataset', `events:${missing}`, '--json']),
    ]);
    expect(byVersion.code).toBe(0);
    const portraitJson = JSON.parse(byVersion.stdout) as { user: string; heads: Record<string, { top: unknown[] }> };
    expect(portraitJson.user).toBe('me');
    expect(portraitJson.heads.interests?.top).toHaveLength(5);
    expect(jsonError(unknownVersion)).toEqual({ code: 'NOT_FOUND', message: expect.stringContaining('model version 99 not found') });
    for (const r of [noEvents, noDataset, serverNoDataset]) expect(jsonError(r)).toEqual({ code: 'NOT_FOUND', message: expect.stringContaining(missing) });
    expect(jsonError(outExists)).toEqual({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`${existing} already exists`) });
    expect(jsonError(noData)).toEqual({ code: 'NOT_FOUND', message: expect.stringContaining(`data directory ${noDataDir} does not exist`) });
    expect(fs.existsSync(noDataDir)).toBe(false);
  }, 90_000);

  it('names the refused action, and answers unknown paths with the JSON 404', async () => {
    const issued = await fetch(`${coordinator.url}/api/v1/enrollment-tokens`, { method: 'POST', headers: { authorization: `Bearer ${coordinator.auditor}`, 'content-type': 'application/json' }, body: '{}' });
    expect(issued.status).toBe(403);
    expect(await issued.json()).toEqual({ code: 'FORBIDDEN', message: 'role "auditor" may not issue enrollment tokens' });
    const launch = await fetch(`${coordinator.url}/api/v1/rounds`, { method: 'POST', headers: { authorization: `Bearer ${coordinator.auditor}`, 'content-type': 'application/json' }, body: '{}' });
    expect(await launch.json()).toEqual({ code: 'FORBIDDEN', message: 'role "auditor" may not launch' });
    for (const p of ['/', '/nope']) {
      const res = await fetch(`${coordinator.url}${p}`);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      expect(await res.json()).toEqual({ code: 'NOT_FOUND', message: `no such path ${p}` });
    }
    expect(await (await fetch(`${coordinator.url}/healthz`)).json()).toEqual({ ok: true });
  });

  it('round launch --max-update-norm bounds plaintext updates of rounds without DP; out of range is INVALID_ARGUMENT', async () => {
    const args = ['round', 'launch', '--server', coordinator.url, '--clients-per-round', '2', '--dp', 'none', '--checkin-ms', '300', '--json'];
    const kept = await portrait([...args, '--max-update-norm', '0.5'], { cwd: work });
    expect(kept.code).toBe(0);
    expect((JSON.parse(kept.stdout) as { rounds: RoundRecord[] }).rounds[0]?.config.aggregation).toMatchObject({ maxUpdateNorm: 0.5 });
    const e = jsonError(await portrait([...args, '--max-update-norm', '1e9'], { cwd: work }));
    expect(e).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('maxUpdateNorm') });
  }, 60_000);

  it('round launch --epsilon-cap: a cap the projection passes is BUDGET_EXCEEDED; one it fits is kept and shown', async () => {
    const args = ['round', 'launch', '--server', coordinator.url, '--clients-per-round', '4', '--checkin-ms', '300'];
    const refused = await portrait([...args, '--epsilon-cap', '0.01', '--json'], { cwd: work });
    const e = jsonError(refused);
    expect(e.code).toBe('BUDGET_EXCEEDED');
    expect(e.message).toMatch(/^privacy budget: launching 1 round\(s\) would bring cumulative epsilon to \d+\.\d{4} at delta 0\.000001, above the launch's cap of 0\.01/);
    // Nobody checks in: the round aborts at check-in, having released nothing.
    const kept = await portrait([...args, '--epsilon-cap', '50', '--wait'], { cwd: work });
    expect(kept.code).toBe(0);
    expect(kept.stderr).toMatch(/launched rounds \d+: distributed DP, .*; launch cap epsilon 50 at delta 0\.000001/);
    expect(kept.stderr).toMatch(/^budget: cumulative epsilon at delta 0\.000001 projected to \d+\.\d{4} once these run, against the launch's cap of 50 \(spent so far: 0\.0000\)$/m);
    expect(kept.stdout).toMatch(/^round \d+ aborted: .*launch cap ε≤50\]/m);
    // One round at z = 1 over a fixed cohort (q = 1) spends far more than 2 on its own: the launch warns with the number.
    expect(kept.stderr).toMatch(/^warning: each of these rounds spends epsilon \d+\.\d\d at delta 0\.000001 on its own, above 2: /m);
    const quiet = await portrait([...args, '--noise-multiplier', '20', '--json'], { cwd: work });
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).not.toMatch(/warning: each of these rounds/);
  }, 60_000);
});

describe('demo port and data directory', () => {
  it('a busy default port falls back to a free one (demo); a busy explicit port, or any busy port of `portrait server`, is UNAVAILABLE', async () => {
    const busy = await busyPort();
    const port = (busy.address() as net.AddressInfo).port;
    const pop = await syntheticPopulation();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-cli-ux-demo-'));
    const options = { dataDir, port, initialModel: { config: pop.config, seed: 1 }, log: () => undefined };
    try {
      const explicit = await startOnPort(options, true).catch((err: unknown) => err);
      expect(explicit).toBeInstanceOf(CliError);
      expect(explicit).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(new RegExp(`port ${port} is already in use.*--port 0`)) });
      const fallback = await startOnPort(options, false);
      expect(fallback.port).not.toBe(port);
      expect(fallback.port).toBeGreaterThan(0);
      expect((await (await fetch(`${fallback.url}/healthz`)).json()).ok).toBe(true);
      await fallback.close();
      // `portrait server` never swaps its port: busy is UNAVAILABLE, with what to do, refused
      // before it writes anything (no data directory, so no api-tokens.json, lock or keys).
      const serverDataDir = path.join(dataDir, 'server');
      const server = await portrait(['server', '--port', String(port), '--data-dir', serverDataDir, '--json']);
      expect(jsonError(server)).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(new RegExp(`^port ${port} is already in use: .*--port 0 for a free one$`)) });
      expect(fs.existsSync(serverDataDir)).toBe(false);
    } finally {
      busy.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('the real demo refuses a busy --port and removes the temporary data directory it made', async () => {
    const busy = await busyPort();
    const port = (busy.address() as net.AddressInfo).port;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-cli-ux-tmp-'));
    try {
      const r = await portrait(['demo', '--port', String(port), '--users', '100', '--clients-per-round', '5', '--exit', '--json'], { env: { TMPDIR: tmp } });
      expect(jsonError(r)).toEqual({ code: 'UNAVAILABLE', message: expect.stringContaining(`port ${port} is already in use`) });
      expect(fs.readdirSync(tmp).filter((f) => f.startsWith('portrait-demo-'))).toEqual([]);
    } finally {
      busy.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);

  it('prints a launch hint that runs as printed, and removes its temporary data directory on Ctrl-C', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-cli-ux-tmp-'));
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
    delete env.PORTRAIT_TOKEN;
    const demo = spawn(process.execPath, [bin, 'demo', '--port', '0', '--rounds', '1', '--users', '200', '--clients-per-round', '20'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        demo.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          if (stderr.includes('Ctrl-C to stop')) resolve();
        });
        void exited.then(() => reject(new Error(`demo exited early: ${stderr}`)));
      });
      expect(fs.readdirSync(tmp).filter((f) => f.startsWith('portrait-demo-'))).toHaveLength(1);
      const hint = /launch more private rounds: npx portrait (round launch .*)$/m.exec(stderr)?.[1];
      const flags = /--clients-per-round 20 --min-clients (\d+) --selection poisson --sampling-rate ([\d.]+) --dp distributed --clip 0\.1 --noise-multiplier ([\d.]+) --delta 0\.000001 --population (\d+) --server-optimizer fedadam --server-learning-rate 0\.1 --secagg on --wait$/.exec(hint ?? '');
      expect(flags).not.toBeNull();
      const [, t, q, z, population] = flags as unknown as [string, string, string, string, string];
      expect(Number(q)).toBeCloseTo(20 / Number(population), 5);
      const launched = await portrait([...(hint as string).split(' '), '--json']);
      expect(launched.code).toBe(0);
      const [round] = (JSON.parse(launched.stdout) as { rounds: RoundRecord[] }).rounds;
      expect(round).toMatchObject({ status: 'committed', config: { selection: 'poisson', samplingRate: Number(q) }, privacy: { mode: 'distributed', clip: 0.1, noiseMultiplier: Number(z), population: Number(population), samplingMethod: 'poisson' } });
      expect(round!.participants).toBeGreaterThanOrEqual(Number(t));
    } finally {
      demo.kill('SIGINT');
      await exited;
    }
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('portrait-demo-'))).toEqual([]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 90_000);

  it("prints a launch hint with the private rounds' flags", () => {
    const hint = launchHint('http://127.0.0.1:8080', '/tmp/d', { clientsPerRound: 40, privacy: { mode: 'distributed', clip: 0.1, noiseMultiplier: 0.5 } });
    expect(hint).toBe('npx portrait round launch --server http://127.0.0.1:8080 --data-dir /tmp/d --clients-per-round 40 --min-clients 32 --dp distributed --clip 0.1 --noise-multiplier 0.5 --secagg on --wait');
    // The demo's own rounds: Poisson over its fleet at the recorded rate, with the accountant's population.
    const plan = planPrivateRounds({ population: 1000, clientsPerRound: 60, rounds: 5, epsilon: 2.4, delta: 1e-6, clip: 0.1, dimension: 3000, train: { epochs: 1, learningRate: 0.02 }, serverLearningRate: 0.1 });
    expect(launchHint('http://h:1', '/d', plan.spec)).toBe(
      `npx portrait round launch --server http://h:1 --data-dir /d --clients-per-round 60 --min-clients ${plan.t} --selection poisson --sampling-rate 0.06 --dp distributed --clip 0.1 --noise-multiplier ${plan.noiseMultiplier} --delta 0.000001 --population 1000 --server-optimizer fedadam --server-learning-rate 0.1 --secagg on --wait`,
    );
  });
});

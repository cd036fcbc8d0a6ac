/**
 * Device handshakes per second on one coordinator process, and /healthz latency while a fleet of
 * devices connects at once (issue 17, "never frozen": at least 1,000 handshakes a second, /healthz
 * p99 under 100 ms during a 10,000-device reconnect storm). Every party runs in its own process:
 * the coordinator (embedded default), the devices (socket.io-client over WebSocket, split over
 * client processes, each device with its own enrollment token from POST /enrollment-tokens,
 * verified at the handshake), and a prober asking /healthz one request after another, 10 ms
 * apart, throughout. Three storms:
 *   - first connect: every device connects, at most --window handshakes in flight per client process;
 *   - restart: the coordinator is killed (SIGKILL) and started again on the same data directory and
 *     port; the devices reconnect on their own (socket.io-client's backoff, 0.5 s to 5 s);
 *   - drop and reconnect: every device closes its connection and opens it again at once.
 * Usage: npx tsx scripts/bench/handshakes.ts [--devices 10000] [--client-processes 2] [--window 256] [--no-write]
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { issueEnrollmentTokens } from '../../client/node/simulator.ts';
import { readApiTokens, startEmbeddedCoordinator } from '../../server/embedded.ts';
import { prepareFleetData } from '../cli/simulate.ts';
import { loadDataset } from '../import/resolve.ts';
import { dataConfig, modelConfigFor } from '../lib/central.ts';
import { flag, numberOption, option } from './args.ts';
import { markdownTable, writeBenchmark } from './report.ts';

const log = (line: string) => process.stderr.write(`${line}\n`);

/** What the coordinator process answers to `stats`: its CPU time and event-loop delay since `reset`, and the devices it holds. */
interface CoordinatorStats {
  cpuMs: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  connected: number;
}

/** The coordinator process (`--serve DATA_DIR PORT`): starts, says where it listens, answers `reset` and `stats`. */
async function serve(dataDir: string, port: number): Promise<void> {
  const dataset = await loadDataset('synthetic:200');
  const config = modelConfigFor(prepareFleetData(dataset), dataConfig(), 'mlp', false);
  const coordinator = await startEmbeddedCoordinator({ dataDir, port, initialModel: { config, seed: 1 } });
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  let cpu = process.cpuUsage();
  process.on('message', (m: string) => {
    if (m === 'reset') {
      loopDelay.reset();
      cpu = process.cpuUsage();
      process.send?.('reset');
    } else if (m === 'stats') {
      const used = process.cpuUsage(cpu);
      const stats: CoordinatorStats = { cpuMs: (used.user + used.system) / 1000, loopDelayP99Ms: loopDelay.percentile(99) / 1e6, loopDelayMaxMs: loopDelay.max / 1e6, connected: coordinator.sockets.connectedClients() };
      process.send?.(stats);
    }
  });
  process.send?.({ url: coordinator.url, port: coordinator.port, listeningAt: Date.now() });
}

/** A client process: holds its share of the devices (reconnecting on their own when the connection drops). */
function deviceProcess(): string {
  const client = createRequire(import.meta.url).resolve('socket.io-client');
  return `
const { io } = require(${JSON.stringify(client)});
const { url, tokens, window } = JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'));
let sockets = [];
let reconnected = 0, awaiting = null;
function open(token) {
  const s = io(url, { auth: { token }, transports: ['websocket'], forceNew: true, reconnectionDelay: 500, reconnectionDelayMax: 5000 });
  s.on('connect', () => {
    if (awaiting && ++reconnected === tokens.length) { const done = awaiting; awaiting = null; done(); }
  });
  sockets.push(s);
  return s;
}
function storm() {
  const started = performance.now();
  const latencies = [];
  let failed = 0, next = 0, done = 0;
  return new Promise((resolve) => {
    const start = () => {
      if (next >= tokens.length) return;
      const t0 = performance.now();
      const s = open(tokens[next++]);
      const finish = (ok) => {
        s.off('connect', onConnect); s.off('connect_error', onError);
        if (ok) latencies.push(performance.now() - t0); else { failed++; s.close(); }
        if (++done === tokens.length) resolve({ ms: performance.now() - started, latencies, failed, endedAt: Date.now() });
        else start();
      };
      const onConnect = () => finish(true);
      const onError = () => finish(false);
      s.once('connect', onConnect);
      s.once('connect_error', onError);
    };
    for (let i = 0; i < Math.min(window, tokens.length); i++) start();
  });
}
process.on('message', async (m) => {
  if (m === 'connect') process.send(await storm());
  else if (m === 'drop') { for (const s of sockets) s.close(); sockets = []; process.send(await storm()); }
  else if (m === 'await-reconnect') {
    reconnected = 0;
    const started = performance.now();
    await new Promise((resolve) => { awaiting = resolve; });
    process.send({ ms: performance.now() - started, latencies: [], failed: 0, endedAt: Date.now() });
  } else if (m === 'close') { for (const s of sockets) s.close(); process.exit(0); }
});
process.send('ready');
`;
}

/** The /healthz prober: one request after another, 10 ms apart, between `start` and `stop`; answers the latencies and the failures. */
function healthProcess(): string {
  return `
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const url = process.argv[2];
let running = false, latencies = [], failed = 0;
function probe() {
  if (!running) return;
  const t0 = performance.now();
  const again = () => setTimeout(probe, 10);
  http.get(url + '/healthz', { agent, timeout: 10000 }, (res) => {
    res.resume();
    res.on('end', () => { latencies.push(performance.now() - t0); again(); });
  }).on('error', () => { failed++; again(); });
}
process.on('message', (m) => {
  if (m === 'start') { latencies = []; failed = 0; running = true; probe(); }
  else if (m === 'stop') { running = false; process.send({ latencies, failed }); }
  else if (m === 'close') process.exit(0);
});
process.send('ready');
`;
}

function nextMessage<T>(child: ChildProcess, timeoutMs = 600_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child ${child.pid} did not answer in ${timeoutMs} ms`)), timeoutMs);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`child ${child.pid} exited with ${code}`));
    };
    child.once('exit', onExit);
    child.once('message', (m: T) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(m);
    });
  });
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

interface StormResult {
  ms: number;
  latencies: number[];
  failed: number;
  endedAt: number;
}

async function bench(): Promise<void> {
  const devices = numberOption('--devices', 10_000);
  const clientProcesses = numberOption('--client-processes', 2);
  const window = numberOption('--window', 256);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-bench-handshakes-'));
  const loadAtStart = os.loadavg()[0] as number;
  const startServer = async (port: number) => {
    const child = fork(process.argv[1] as string, ['--serve', dataDir, String(port)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const where = await nextMessage<{ url: string; port: number; listeningAt: number }>(child, 120_000);
    return { child, ...where };
  };
  let server = await startServer(0);
  const stats = async () => {
    server.child.send('stats');
    return nextMessage<CoordinatorStats>(server.child);
  };
  const apiTokens = readApiTokens(dataDir);
  if (!apiTokens) throw new Error('no API tokens');
  const issueStarted = performance.now();
  const tokens = await issueEnrollmentTokens(server.url, apiTokens.operator, devices);
  const issueSeconds = (performance.now() - issueStarted) / 1000;
  log(`${devices} enrollment tokens in ${issueSeconds.toFixed(2)} s`);

  const deviceScript = path.join(dataDir, 'devices.cjs');
  fs.writeFileSync(deviceScript, deviceProcess());
  const healthScript = path.join(dataDir, 'health.cjs');
  fs.writeFileSync(healthScript, healthProcess());
  const share = Math.ceil(devices / clientProcesses);
  const clients = Array.from({ length: clientProcesses }, (_, i) => {
    const file = path.join(dataDir, `devices-${i}.json`);
    fs.writeFileSync(file, JSON.stringify({ url: server.url, tokens: tokens.slice(i * share, (i + 1) * share), window }));
    return fork(deviceScript, [file], { execArgv: [] });
  });
  const health = fork(healthScript, [server.url], { execArgv: [] });
  await Promise.all([...clients, health].map((c) => nextMessage<string>(c)));

  const rows: (string | number)[][] = [];
  const verdicts: { storm: string; perSecond: number | null; healthP99: number }[] = [];
  try {
    for (const storm of ['connect', 'restart', 'drop'] as const) {
      let started: number;
      let results: StormResult[];
      if (storm === 'restart') {
        const waiting = clients.map((c) => nextMessage<StormResult>(c));
        for (const c of clients) c.send('await-reconnect');
        server.child.kill('SIGKILL');
        await new Promise((resolve) => server.child.once('exit', resolve));
        server = await startServer(server.port);
        started = server.listeningAt;
        health.send('start');
        results = await Promise.all(waiting);
      } else {
        server.child.send('reset');
        await nextMessage<string>(server.child);
        health.send('start');
        await new Promise((resolve) => setTimeout(resolve, 200));
        started = Date.now();
        for (const c of clients) c.send(storm);
        results = await Promise.all(clients.map((c) => nextMessage<StormResult>(c)));
      }
      const wallMs = Math.max(...results.map((r) => r.endedAt)) - started;
      const coordinator = await stats();
      health.send('stop');
      const probes = await nextMessage<{ latencies: number[]; failed: number }>(health);
      const failed = results.reduce((n, r) => n + r.failed, 0);
      const connected = coordinator.connected;
      const handshakeMs = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
      const healthMs = probes.latencies.sort((a, b) => a - b);
      const perSecond = connected / (wallMs / 1000);
      log(`${storm}: ${connected} connected, ${failed} failed in ${(wallMs / 1000).toFixed(2)} s; /healthz p99 ${quantile(healthMs, 0.99).toFixed(1)} ms over ${healthMs.length}`);
      verdicts.push({ storm, perSecond: storm === 'restart' ? null : perSecond, healthP99: quantile(healthMs, 0.99) });
      rows.push([
        { connect: 'first connect', restart: 'restart (SIGKILL), devices reconnect on their own', drop: 'every device drops and reconnects at once' }[storm],
        devices,
        connected,
        failed,
        (wallMs / 1000).toFixed(2),
        perSecond.toFixed(0),
        (coordinator.cpuMs / Math.max(1, connected)).toFixed(2),
        handshakeMs.length > 0 ? `${quantile(handshakeMs, 0.5).toFixed(0)} / ${quantile(handshakeMs, 0.99).toFixed(0)}` : '(device backoff)',
        `${healthMs.length}${probes.failed > 0 ? ` (+${probes.failed} failed)` : ''}`,
        `${quantile(healthMs, 0.5).toFixed(1)} / ${quantile(healthMs, 0.99).toFixed(1)} / ${(healthMs.at(-1) ?? Number.NaN).toFixed(1)}`,
        `${coordinator.loopDelayP99Ms.toFixed(1)} / ${coordinator.loopDelayMaxMs.toFixed(1)}`,
      ]);
    }
  } finally {
    for (const c of [...clients, health]) c.send('close');
    server.child.kill('SIGTERM');
    await Promise.all([...clients, health, server.child].map((c) => new Promise((resolve) => (c.exitCode === null && c.signalCode === null ? c.once('exit', resolve) : resolve(null)))));
  }

  const rates = verdicts.flatMap((v) => (v.perSecond === null ? [] : [v.perSecond]));
  const slowest = Math.min(...rates);
  const worstHealth = Math.max(...verdicts.map((v) => v.healthP99));
  const verdict = `Targets: at least 1,000 handshakes/s ${slowest >= 1000 ? 'met' : 'NOT met'} (slowest storm the coordinator paced: ${slowest.toFixed(0)}/s); /healthz p99 under 100 ms ${worstHealth < 100 ? 'met' : 'NOT met'} (worst: ${worstHealth.toFixed(1)} ms, ${verdicts.find((v) => v.healthP99 === worstHealth)?.storm})`;
  const run = {
    key: `handshakes/devices=${devices}`,
    title: `Device handshakes per second and /healthz during a ${devices.toLocaleString('en-US')}-device storm`,
    tfjsBackend: 'none (no training)',
    table: markdownTable(['storm', 'devices', 'connected', 'failed', 'wall s', 'handshakes / s', 'coordinator CPU ms / handshake', 'handshake ms p50 / p99', '/healthz probes', '/healthz ms p50 / p99 / max', 'coordinator event-loop delay ms p99 / max'], rows),
    notes: [
      `${verdict}.`,
      `Separate processes on the same machine: the coordinator (embedded default, SQLite in a temp directory; handshakes paced in turns of at most 5 ms, server/handshake-pacer.ts), ${clientProcesses} client processes holding the devices (socket.io-client over WebSocket, each device its own enrollment token, verified natively at the handshake; at most ${window} first connects in flight per process), and a /healthz prober (one request after another, 10 ms apart, over one keep-alive connection) for the whole storm.`,
      'Handshakes / s: devices connected over the wall time from the storm\'s start (for the restart, from the new process listening) to the last device connected; after the restart the devices come back at the pace of their own reconnection backoff, so that row measures the storm, not the coordinator\'s capacity.',
      'CPU ms / handshake: the coordinator process\'s user + system time over the storm over the devices connected (the drop storm also counts the disconnects); about 1,000 / that figure bounds one process on a free core. Event-loop delay: the coordinator\'s own (perf_hooks) over the storm.',
      'In the drop storm every device\'s close arrives at once, and ws, engine.io and Socket.IO handle each close as it is read, outside the pacer (a profile shows socketOnClose, engine.io\'s and Socket.IO\'s onclose, about 0.1 ms a close): that burst is the event-loop delay maximum and the /healthz tail of that row; connects alone (first connect, restart) stay paced.',
      `Load average when the run started: ${loadAtStart.toFixed(1)} (other work shares this machine).`,
      `The ${devices.toLocaleString('en-US')} tokens came from POST /enrollment-tokens in ${issueSeconds.toFixed(2)} s.`,
    ].join(' '),
  };
  if (flag('--no-write')) process.stdout.write(`${run.table}\n\n${run.notes}\n`);
  else writeBenchmark(run);
}

const serveDir = option('--serve');
if (serveDir !== undefined) await serve(serveDir, Number(process.argv[process.argv.indexOf('--serve') + 2]));
else await bench();

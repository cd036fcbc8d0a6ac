/**
 * Round latency versus cohort size (MLP) with the fleet simulator against a real coordinator,
 * split into local training, transfer (model download + update upload) and aggregation; then how
 * many idle Socket.IO clients one coordinator process holds, with its memory per connection.
 * Usage: npx tsx scripts/bench/rounds.ts [--sizes 10,100,1000] [--users 1600] [--idle 10000]
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { runFleet } from '../../client/node/simulator.ts';
import type { FleetStats } from '../../client/node/simulator.ts';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { RoundRecord } from '../../shared/protocol/messages.ts';
import { readApiTokens, startEmbeddedCoordinator } from '../../server/embedded.ts';
import { issueEnrollmentTokens } from '../../client/node/simulator.ts';
import { fleetUsers, prepareFleetData } from '../cli/simulate.ts';
import { callApi } from '../cli/api-client.ts';
import { loadDataset } from '../import/resolve.ts';
import { dataConfig, modelConfigFor } from '../lib/central.ts';
import { markdownTable, writeBenchmark } from './report.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const sizes = arg('sizes', '10,100,1000').split(',').map(Number);
const populationSize = Number(arg('users', '1600'));
const idleTarget = Number(arg('idle', '10000'));
const log = (line: string) => process.stderr.write(`${line}\n`);

async function waitForRound(url: string, token: string, id: number): Promise<RoundRecord> {
  for (;;) {
    const r = await callApi<RoundRecord>(url, token, 'GET', `/rounds/${id}`);
    if (r.status === 'committed' || r.status === 'aborted') return r;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const diff = (a: FleetStats, b: FleetStats, key: 'trainingMs' | 'uploadMs' | 'modelFetchMs') => b[key] - a[key];
const count = (a: FleetStats, b: FleetStats, type: string) => (b.events[type] ?? 0) - (a.events[type] ?? 0);

async function latency(): Promise<{ rows: (string | number)[][]; backend: string }> {
  const backend = (await useNodeBackend()).name;
  const dataset = await loadDataset(`synthetic:${populationSize}`);
  const prepared = prepareFleetData(dataset);
  const max = Math.max(...sizes);
  const users = fleetUsers(prepared, max);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-bench-'));
  const coordinator = await startEmbeddedCoordinator({ dataDir, initialModel: { config: modelConfigFor(prepared, dataConfig(), 'mlp', false), seed: 1 } });
  const tokens = readApiTokens(dataDir);
  if (!tokens) throw new Error('no API tokens');
  const fleet = await runFleet({ serverUrl: coordinator.url, operatorToken: tokens.operator, users, startDay: dataset.startDay });
  await fleet.waitConnected(fleet.size, 300_000);
  log(`${fleet.size} devices connected in ${fleet.workers} workers`);
  const rows: (string | number)[][] = [];
  try {
    for (const size of sizes) {
      const before = fleet.stats();
      const { rounds } = await callApi<{ rounds: RoundRecord[] }>(coordinator.url, tokens.operator, 'POST', '/rounds', {
        rounds: 1,
        clientsPerRound: size,
        minClients: size,
        train: { epochs: 1, batchSize: 16, learningRate: 0.05, optimizer: 'sgd' },
        deadlines: { checkinMs: 30_000, trainingMs: 600_000 },
      });
      const r = await waitForRound(coordinator.url, tokens.auditor, rounds[0]!.id);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const after = fleet.stats();
      const trained = count(before, after, 'trained');
      const fetched = count(before, after, 'model-fetched');
      const sent = count(before, after, 'update-sent');
      const trainSum = diff(before, after, 'trainingMs');
      const fetchSum = diff(before, after, 'modelFetchMs');
      const uploadSum = diff(before, after, 'uploadMs');
      log(`cohort ${size}: ${r.status} ${r.participants} in ${r.durationMs} ms ${JSON.stringify(r.timings)}`);
      rows.push([
        size,
        r.status === 'committed' ? r.participants : `aborted: ${r.reason}`,
        ((r.durationMs ?? 0) / 1000).toFixed(2),
        ((r.timings.checkinMs ?? 0) / 1000).toFixed(2),
        ((r.timings.trainingMs ?? 0) / 1000).toFixed(2),
        (trainSum / 1000).toFixed(2),
        (trainSum / Math.max(1, trained)).toFixed(1),
        (fetchSum / Math.max(1, fetched)).toFixed(1),
        (uploadSum / Math.max(1, sent)).toFixed(1),
        (r.timings.aggregationMs ?? 0).toFixed(0),
      ]);
    }
  } finally {
    await fleet.stop();
    await coordinator.close();
  }
  return { rows, backend };
}

/** The client side of the idle test, in a child process so its sockets do not count as server memory. */
function idleChild(): string {
  const client = createRequire(import.meta.url).resolve('socket.io-client');
  return `
const { io } = require(${JSON.stringify(client)});
const { url, tokens } = JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'));
const sockets = [];
let connected = 0, failed = 0;
(async () => {
  for (let i = 0; i < tokens.length; i += 200) {
    await Promise.all(tokens.slice(i, i + 200).map((token) => new Promise((resolve) => {
      const s = io(url, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
      s.once('connect', () => { connected++; resolve(); });
      s.once('connect_error', () => { failed++; resolve(); });
      sockets.push(s);
    })));
    process.send({ connected, failed });
  }
  process.send({ done: true, connected, failed });
})();
process.on('message', () => { for (const s of sockets) s.close(); process.exit(0); });
`;
}

async function idle(): Promise<(string | number)[][]> {
  const dataset = await loadDataset('synthetic:200');
  const prepared = prepareFleetData(dataset);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-bench-idle-'));
  const coordinator = await startEmbeddedCoordinator({ dataDir, initialModel: { config: modelConfigFor(prepared, dataConfig(), 'mlp', false), seed: 1 } });
  const tokens = readApiTokens(dataDir);
  if (!tokens) throw new Error('no API tokens');
  const enrollment = await issueEnrollmentTokens(coordinator.url, tokens.operator, idleTarget);
  const file = path.join(dataDir, 'idle.json');
  fs.writeFileSync(file, JSON.stringify({ url: coordinator.url, tokens: enrollment }));
  const script = path.join(dataDir, 'idle-child.cjs');
  fs.writeFileSync(script, idleChild());
  global.gc?.();
  const base = process.memoryUsage();
  const started = Date.now();
  const child = fork(script, [file], { cwd: process.cwd(), execArgv: []});
  const result = await new Promise<{ connected: number; failed: number }>((resolve) => {
    const timer = setTimeout(() => resolve({ connected: coordinator.sockets.connectedClients(), failed: -1 }), 240_000);
    child.on('message', (m: { done?: boolean; connected: number; failed: number }) => {
      if (m.done) {
        clearTimeout(timer);
        resolve(m);
      } else if (m.connected % 2000 === 0) log(`idle: ${m.connected} connected, ${m.failed} failed`);
    });
  });
  const seconds = (Date.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 2000));
  global.gc?.();
  const held = coordinator.sockets.connectedClients();
  const mem = process.memoryUsage();
  child.send('close');
  await new Promise((resolve) => child.once('exit', resolve));
  await coordinator.close();
  const perRss = (mem.rss - base.rss) / Math.max(1, held);
  const perHeap = (mem.heapUsed - base.heapUsed) / Math.max(1, held);
  return [[idleTarget, held, result.failed, seconds.toFixed(1), (mem.rss / 2 ** 20).toFixed(0), (perRss / 1024).toFixed(1), (perHeap / 1024).toFixed(1)]];
}

const { rows, backend } = await latency();
writeBenchmark({
  key: 'round-latency',
  title: 'Round latency vs cohort size (MLP, fleet simulator)',
  tfjsBackend: backend,
  table: markdownTable(['cohort', 'participants', 'round s', 'check-in s', 'training stage s (wall)', 'local training s (sum over clients)', 'local training ms / client', 'model download ms / client', 'update upload ms / client', 'aggregation ms'], rows),
  notes: `One coordinator and a ${Math.max(...sizes)}-device fleet (synthetic:${populationSize} training users, one each) in 2 worker threads on the same machine; 1 local epoch, SGD, batch 16, FedAvg; no held-out evaluation. The training stage is wall time from config to the last update; local training, download and upload are measured by the devices (download only when the device's model was stale; upload from send to acknowledgement, which includes queueing behind other devices' training on the shared cores).`,
});
if (idleTarget > 0) {
  const idleRows = await idle();
  writeBenchmark({
    key: 'idle-connections',
    title: 'Concurrent idle Socket.IO connections on one coordinator',
    tfjsBackend: backend,
    table: markdownTable(['target', 'held', 'failed', 'connect s', 'coordinator RSS MiB', 'RSS KiB / connection', 'heap KiB / connection'], idleRows),
    notes: 'Each connection is an authenticated device (its own signed enrollment token, verified at the handshake) over a WebSocket; the clients run in a separate process on the same machine. Memory is the coordinator process\'s RSS and V8 heap growth divided by the connections held.',
  });
}

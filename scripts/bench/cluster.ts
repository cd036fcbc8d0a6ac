/**
 * Cluster mode against its bars, each side by side in one run on this machine: real node
 * processes (`portrait server --postgres --redis`, scripts/bench/cluster-deployment.ts) sharing a
 * fresh PostgreSQL database and Redis, devices as raw socket.io-client connections with their own
 * enrollment tokens (as scripts/bench/handshakes.ts and rounds.ts' idle test hold them) in separate
 * client processes, spread over the nodes round-robin as a load balancer would.
 *
 * 1. Idle devices: 1 node vs 3 nodes, connected in batches until a limit (failed handshakes,
 *    handshake p99 or REST p99 past a threshold, or the cap: --devices per node, --max in all);
 *    memory per connection from the nodes' RSS; REST latency (GET /healthz and an authenticated
 *    GET /api/v1/status, on every node) while they are held. Bar: 3 nodes hold >= 3x the devices
 *    of one at the same memory per connection, and REST answers in < 100 ms.
 * 2. Round latency: --round-devices devices on 1 node vs spread over 3, launch to commit of a
 *    round in privacy mode none (nodes run with --allow-no-dp): each device checks in and sends a
 *    zero Float32 update of the model's size (no training), so the round measures the coordinator
 *    and the cluster's forwarding. Both deployments are up at once and their rounds alternate, so
 *    both meet the same background load on this shared machine. Bar: 3 nodes <= 1.2x one.
 * 3. Leader failover: kill -9 of the leader while a round is in its training stage, to that round
 *    reading aborted (or committed) on a surviving node, --kills times; a replacement node starts
 *    after each kill and takes the dead node's devices. Bound: lease ttl + ttl / 3.
 * 4. Where one leader's SecAgg+ unmask becomes the limit: the per-expansion unmask cost of the
 *    SecAgg+ cost sections of docs/benchmarks.md (scripts/bench/secagg.ts), extrapolated to larger
 *    cohorts at this model's padded dimension, against the leader's per-device round cost from 2.
 *
 * Usage: npx tsx scripts/bench/cluster.ts [--devices 3000] [--max N] [--batch 1000]
 *   [--round-devices 1000] [--rounds 5] [--kills 20] [--failover-devices 60] [--lease-ttl 2000]
 *   [--client-processes 2] [--window 64] [--handshake-p99-ms 2000] [--rest-p99-ms 100] [--only idle,rounds,failover,unmask] [--no-write]
 */
import { execFileSync, fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { issueEnrollmentTokens } from '../../client/node/simulator.ts';
import { chooseParameters } from '../../shared/secagg/parameters.ts';
import { nextPowerOfTwo } from '../../shared/privacy/rotation.ts';
import type { LaunchRequest, RoundRecord } from '../../shared/protocol/messages.ts';
import { flag, numberOption, option } from './args.ts';
import { cleanUp, cleanUpOnExit, cpuMsOf, Deployment, machineCpuMs, onCleanUp, rssOf } from './cluster-deployment.ts';
import type { NodeProcess } from './cluster-deployment.ts';
import { benchmarkSections, BENCHMARKS_FILE, markdownTable, writeBenchmark } from './report.ts';
import type { BenchmarkRun } from './report.ts';

const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const PHASES = ['idle', 'rounds', 'failover', 'unmask'] as const;
type Phase = (typeof PHASES)[number];

const perNode = numberOption('--devices', 3000);
const maxOption = option('--max');
const max = maxOption === undefined ? Number.POSITIVE_INFINITY : numberOption('--max');
const batch = numberOption('--batch', 1000);
const roundDevices = numberOption('--round-devices', 1000);
const rounds = numberOption('--rounds', 5);
const kills = numberOption('--kills', 20);
const failoverDevices = numberOption('--failover-devices', 60);
const leaseTtl = numberOption('--lease-ttl', 2000);
const clientProcessCount = numberOption('--client-processes', 2);
const handshakeP99Limit = numberOption('--handshake-p99-ms', 2000);
const restP99Limit = numberOption('--rest-p99-ms', 100);
const handshakeWindow = numberOption('--window', 64);
const onlyOption = option('--only');
/** How long the held devices sit idle before the nodes' memory is read: V8 collects the handshakes' garbage once a process is idle. */
const settleMs = numberOption('--settle-ms', 20_000);
const phases = new Set<Phase>(onlyOption === undefined ? PHASES : (onlyOption.split(',') as Phase[]));
for (const p of phases) if (!PHASES.includes(p)) throw new RangeError(`"--only" expected some of ${PHASES.join(', ')}, got ${p}`);
for (const [name, value, min] of [['--devices', perNode, 1], ['--batch', batch, 1], ['--round-devices', roundDevices, 3], ['--rounds', rounds, 1], ['--kills', kills, 0], ['--failover-devices', failoverDevices, 3], ['--lease-ttl', leaseTtl, 300], ['--client-processes', clientProcessCount, 1]] as const) {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`"${name}" expected an integer >= ${min}, got ${value}`);
}
const NODE_FLAGS = ['--allow-no-dp', '--no-evaluation', '--dataset', 'synthetic:60', '--lease-ttl', String(leaseTtl)];

/** The code the nodes ran: the commit, and the source paths with uncommitted changes (others may be editing them). */
function codeUnderTest(): string {
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8' });
  try {
    const head = git('rev-parse', '--short', 'HEAD').trim();
    // Porcelain lines are "XY path": the status letters may start with a space.
    const dirty = git('status', '--porcelain', '--', 'server', 'shared', 'client', 'scripts/cli').split('\n').filter(Boolean).map((l) => l.slice(3));
    return dirty.length === 0 ? `code of ${head}` : `code of ${head} plus uncommitted changes to ${dirty.join(', ')} (the working tree at the run, built into build/cli)`;
  } catch {
    return 'code of an unknown commit';
  }
}

/** Node logs that say the compiled CLI was rebuilt as a node started (sources edited during the run). */
function rebuilds(d: Deployment): number {
  return d.nodes.filter((n) => n.stderr().includes('rebuilding the compiled CLI')).length;
}

function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}
const ms = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : '-');
const s = (v: number, digits = 2) => (Number.isFinite(v) ? (v / 1000).toFixed(digits) : '-');
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

// ---------------------------------------------------------------------------------------------
// Devices: raw socket.io-client connections in client processes (one enrollment token each).
// ---------------------------------------------------------------------------------------------

/**
 * A client process. Its devices answer as the real client does at the wire, without training:
 * mode `answer` checks in to every round that opens and sends a zero Float32 delta of the
 * config's size; `stall` checks in and never sends the update (a round held in its training
 * stage); `idle` ignores rounds. Requests carry an id; each is answered once.
 */
function deviceProcess(): string {
  const client = createRequire(import.meta.url).resolve('socket.io-client');
  return `
const { io } = require(${JSON.stringify(client)});
const { randomBytes } = require('node:crypto');
const window = Number(process.argv[2]);
let mode = 'idle';
const devices = new Map();
const counts = { checkins: 0, checkinRefused: 0, configs: 0, updates: 0, updateRefused: 0, closedByServer: 0 };
const refusals = {};
const zeros = new Map();
const nonce = () => randomBytes(16).toString('base64url');
const samples = {};
const outcome = (err, ack, ok, refused) => {
  if (!err && ack && ack.ok) { counts[ok]++; return; }
  counts[refused]++;
  const code = (ok === 'checkins' ? 'checkin ' : 'update ') + (err ? 'ACK_TIMEOUT' : (ack && ack.error && ack.error.code) || 'UNKNOWN');
  refusals[code] = (refusals[code] || 0) + 1;
  if (!samples[code]) samples[code] = err ? String(err.message) : String(ack && ack.error && ack.error.message).slice(0, 300);
};
function wire(socket) {
  socket.on('round:open', (m) => {
    if (mode === 'idle') return;
    socket.timeout(Math.max(1000, m.checkinMs)).emit('checkin', { roundId: m.roundId, nonce: nonce() }, (err, ack) => outcome(err, ack, 'checkins', 'checkinRefused'));
  });
  socket.on('round:config', (m) => {
    counts.configs++;
    if (mode !== 'answer') return;
    let delta = zeros.get(m.parameters);
    if (!delta) zeros.set(m.parameters, (delta = Buffer.alloc(4 * m.parameters)));
    socket.timeout(Math.max(1000, m.trainingMs)).emit('update', { roundId: m.roundId, nonce: nonce(), examples: 1, delta }, (err, ack) => outcome(err, ack, 'updates', 'updateRefused'));
  });
  socket.on('disconnect', (reason) => { if (reason !== 'io client disconnect') counts.closedByServer++; });
}
function connect(url, tokens) {
  const started = performance.now();
  const latencies = [];
  const errors = {};
  let failed = 0, next = 0, done = 0;
  return new Promise((resolve) => {
    if (tokens.length === 0) return resolve({ latencies, failed, errors, ms: 0 });
    const start = () => {
      if (next >= tokens.length) return;
      const token = tokens[next++];
      const t0 = performance.now();
      const socket = io(url, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true, timeout: 30000 });
      const finish = (ok, err) => {
        socket.off('connect', onConnect); socket.off('connect_error', onError);
        if (ok) { latencies.push(performance.now() - t0); devices.set(token, { socket, url }); wire(socket); }
        else { failed++; const code = (err && err.data && err.data.code) || (err && err.message) || 'error'; errors[code] = (errors[code] || 0) + 1; socket.close(); }
        if (++done === tokens.length) resolve({ latencies, failed, errors, ms: performance.now() - started });
        else start();
      };
      const onConnect = () => finish(true);
      const onError = (err) => finish(false, err);
      socket.once('connect', onConnect);
      socket.once('connect_error', onError);
    };
    for (let i = 0; i < Math.min(window, tokens.length); i++) start();
  });
}
process.on('message', async (m) => {
  let reply;
  if (m.cmd === 'connect') reply = await connect(m.url, m.tokens);
  else if (m.cmd === 'mode') { mode = m.mode; reply = {}; }
  else if (m.cmd === 'close') {
    let closed = 0;
    for (const [token, d] of devices) if (m.url === undefined || d.url === m.url) { d.socket.close(); devices.delete(token); closed++; }
    reply = { closed };
  } else if (m.cmd === 'stats') {
    let open = 0;
    for (const d of devices.values()) if (d.socket.connected) open++;
    const cpu = process.cpuUsage();
    reply = { open, counts: { ...counts }, refusals: { ...refusals }, samples: { ...samples }, cpuMs: (cpu.user + cpu.system) / 1000, rss: process.memoryUsage().rss };
  } else if (m.cmd === 'exit') { for (const d of devices.values()) d.socket.close(); process.exit(0); }
  process.send({ id: m.id, ...reply });
});
process.send({ id: 0 });
`;
}

interface ConnectResult {
  latencies: number[];
  failed: number;
  errors: Record<string, number>;
  ms: number;
}
interface ClientStats {
  open: number;
  counts: Record<string, number>;
  refusals: Record<string, number>;
  /** One message per refusal code. */
  samples: Record<string, string>;
  cpuMs: number;
  rss: number;
}

class DeviceProcess {
  private next = 1;
  private readonly waiting = new Map<number, (reply: unknown) => void>();
  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: { id: number }) => {
      this.waiting.get(m.id)?.(m);
      this.waiting.delete(m.id);
    });
    child.once('exit', (code) => {
      for (const [, resolve] of this.waiting) resolve({ failed: -1, error: `client process exited with ${code}` });
      this.waiting.clear();
    });
  }

  static async start(script: string): Promise<DeviceProcess> {
    const child = fork(script, [String(handshakeWindow)], { execArgv: ['--max-old-space-size=4096'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const started = new DeviceProcess(child);
    await new Promise<void>((resolve, reject) => {
      started.waiting.set(0, () => resolve());
      child.once('exit', (code) => reject(new Error(`client process exited with ${code} before it was ready`)));
    });
    return started;
  }

  request<T>(message: Record<string, unknown>): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve) => {
      this.waiting.set(id, resolve as (reply: unknown) => void);
      this.child.send({ ...message, id });
    });
  }

  exit(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ cmd: 'exit', id: -1 });
    const force = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    return gone.finally(() => clearTimeout(force));
  }
}

/** The devices of a run: client processes, and which tokens each node holds (so a dead node's can move). */
class Fleet {
  /** Node URL -> the tokens connected there. */
  readonly placed = new Map<string, string[]>();
  private constructor(readonly processes: DeviceProcess[]) {}

  static async start(dir: string): Promise<Fleet> {
    const script = path.join(dir, 'devices.cjs');
    fs.writeFileSync(script, deviceProcess());
    const processes = await Promise.all(Array.from({ length: clientProcessCount }, () => DeviceProcess.start(script)));
    const fleet = new Fleet(processes);
    onCleanUp('client processes', () => fleet.exit());
    return fleet;
  }

  /** Connects `tokens` to `nodes` round-robin (token i to node i mod nodes), split over the client processes. */
  async connect(nodes: readonly NodeProcess[], tokens: readonly string[]): Promise<ConnectResult> {
    const jobs: Promise<ConnectResult>[] = [];
    nodes.forEach((node, n) => {
      const mine = tokens.filter((_, i) => i % nodes.length === n);
      this.placed.set(node.url, [...(this.placed.get(node.url) ?? []), ...mine]);
      this.processes.forEach((p, c) => {
        const share = mine.filter((_, i) => i % this.processes.length === c);
        if (share.length > 0) jobs.push(p.request<ConnectResult>({ cmd: 'connect', url: node.url, tokens: share }));
      });
    });
    const results = await Promise.all(jobs);
    const errors: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    return { latencies: results.flatMap((r) => r.latencies), failed: results.reduce((n, r) => n + r.failed, 0), errors, ms: Math.max(0, ...results.map((r) => r.ms)) };
  }

  async mode(mode: 'idle' | 'answer' | 'stall'): Promise<void> {
    await Promise.all(this.processes.map((p) => p.request({ cmd: 'mode', mode })));
  }

  /** Closes the devices on `url` (all when absent) and forgets them. */
  async close(url?: string): Promise<number> {
    const closed = await Promise.all(this.processes.map((p) => p.request<{ closed: number }>({ cmd: 'close', ...(url !== undefined ? { url } : {}) })));
    if (url === undefined) this.placed.clear();
    else this.placed.delete(url);
    return closed.reduce((n, c) => n + c.closed, 0);
  }

  /** Closes the devices on these nodes. */
  async closeNodes(nodes: readonly NodeProcess[]): Promise<void> {
    for (const n of nodes) await this.close(n.url);
  }

  async stats(): Promise<ClientStats> {
    const all = await Promise.all(this.processes.map((p) => p.request<ClientStats>({ cmd: 'stats' })));
    const sum = (f: (c: ClientStats) => Record<string, number>) => {
      const out: Record<string, number> = {};
      for (const c of all) for (const [k, v] of Object.entries(f(c))) out[k] = (out[k] ?? 0) + v;
      return out;
    };
    return { open: all.reduce((n, c) => n + c.open, 0), counts: sum((c) => c.counts), refusals: sum((c) => c.refusals), samples: Object.assign({}, ...all.map((c) => c.samples)) as Record<string, string>, cpuMs: all.reduce((n, c) => n + c.cpuMs, 0), rss: all.reduce((n, c) => n + c.rss, 0) };
  }

  async exit(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.exit()));
  }
}

// ---------------------------------------------------------------------------------------------
// REST
// ---------------------------------------------------------------------------------------------

async function api<T>(url: string, token: string | undefined, method: string, pathname: string, body?: unknown): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${url}${pathname}`, { method, headers, signal: AbortSignal.timeout(30_000), ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

interface ClusterView {
  node: string;
  leading: boolean;
  leader: string | null;
  connectedClients: number;
  nodes: { nodeId: string; connections: number }[];
}

async function clusterView(d: Deployment, node: NodeProcess): Promise<ClusterView | null> {
  try {
    const res = await api<ClusterView>(node.url, d.auditor, 'GET', '/api/v1/cluster');
    return res.status === 200 ? res.body : null;
  } catch {
    return null;
  }
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 100): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

async function leaderOf(d: Deployment, timeoutMs = 20_000): Promise<NodeProcess> {
  let leader: NodeProcess | undefined;
  await waitFor('a leader', async () => {
    for (const n of d.live) if ((await clusterView(d, n))?.leading) leader = n;
    return leader !== undefined;
  }, timeoutMs);
  return leader!;
}

/** Waits until every live node counts `count` devices in the cluster (membership beats once a second). */
async function waitForCount(d: Deployment, count: number, timeoutMs = 30_000): Promise<void> {
  let last = '';
  await waitFor(`the nodes to count ${count} devices`, async () => {
    const views = await Promise.all(d.live.map((n) => clusterView(d, n)));
    last = views.map((v) => v?.connectedClients ?? '?').join(', ');
    return views.every((v) => v?.connectedClients === count);
  }, timeoutMs, 200).catch((err: unknown) => {
    throw new Error(`${err instanceof Error ? err.message : String(err)} (last: ${last})`);
  });
}

interface RestLatency {
  healthz: number[];
  status: number[];
  failed: number;
}

/** `perNode` requests of each endpoint on every node, one after another 10 ms apart on each node, the nodes in parallel. */
async function probeRest(d: Deployment, perNodeCount: number): Promise<RestLatency> {
  const out: RestLatency = { healthz: [], status: [], failed: 0 };
  await Promise.all(
    d.live.map(async (node) => {
      for (let i = 0; i < perNodeCount; i++) {
        for (const [pathname, into, token] of [['/healthz', out.healthz, undefined], ['/api/v1/status', out.status, d.auditor]] as const) {
          const t0 = performance.now();
          try {
            const res = await api(node.url, token, 'GET', pathname);
            if (res.status === 200) into.push(performance.now() - t0);
            else out.failed++;
          } catch {
            out.failed++;
          }
          await sleep(10);
        }
      }
    }),
  );
  return out;
}

// ---------------------------------------------------------------------------------------------
// 1. Idle devices
// ---------------------------------------------------------------------------------------------

interface IdleResult {
  nodes: number;
  cap: number;
  held: number;
  perNodeHeld: string;
  failed: number;
  stop: string;
  connectS: number;
  handshakeP50: number;
  handshakeP99: number;
  nodesRssBase: number;
  nodesRss: number;
  /** RSS right after the ramp (3 s), before the settle. */
  heldRss: number;
  clientRssBase: number;
  clientRss: number;
  rest: RestLatency;
  nodesCpuMs: number;
  clientsCpuMs: number;
  machineBusy: number;
}

async function idlePhase(d: Deployment, fleet: Fleet, tokens: readonly string[]): Promise<IdleResult> {
  const nodes = d.live;
  const cap = Math.min(perNode * nodes.length, max, tokens.length);
  await fleet.mode('idle');
  await sleep(2_000);
  const nodesRssBase = nodes.reduce((n, node) => n + rssOf(node.child.pid), 0);
  const stats0 = await fleet.stats();
  const cpu0 = { nodes: nodes.reduce((n, node) => n + cpuMsOf(node.child.pid), 0), clients: stats0.cpuMs, machine: machineCpuMs() };
  const started = performance.now();
  const latencies: number[] = [];
  let connected = 0;
  let failed = 0;
  let stop = `cap (${cap.toLocaleString('en-US')})`;
  let connectMs = 0;
  const slowBatches: number[] = [];
  while (connected + failed < cap) {
    const step = tokens.slice(connected + failed, Math.min(cap, connected + failed + batch));
    const result = await fleet.connect(nodes, step);
    connectMs += result.ms;
    latencies.push(...result.latencies);
    connected += step.length - result.failed;
    failed += result.failed;
    const stepP99 = quantile(result.latencies, 0.99);
    let rest = await probeRest(d, 5);
    let restP99 = quantile([...rest.healthz, ...rest.status], 0.99);
    if (restP99 > restP99Limit || rest.failed > 0) {
      // One slow request (a GC pause) is not a limit: it must repeat.
      rest = await probeRest(d, 5);
      restP99 = quantile([...rest.healthz, ...rest.status], 0.99);
    }
    log(`idle, ${nodes.length} node(s): ${connected} connected, ${failed} failed (${JSON.stringify(result.errors)}); batch handshake p99 ${ms(stepP99)} ms; REST p99 ${ms(restP99, 1)} ms`);
    // A slow batch alone may be other work on this machine: the limit is two in a row.
    if (stepP99 > handshakeP99Limit) slowBatches.push(stepP99);
    else slowBatches.length = 0;
    const limit =
      result.failed > Math.max(1, step.length * 0.005)
        ? `failed handshakes (${result.failed} of ${step.length} in the last batch: ${JSON.stringify(result.errors)})`
        : slowBatches.length >= 2
          ? `handshake p99 > ${handshakeP99Limit} ms in two batches in a row (${slowBatches.slice(-2).map((v) => ms(v)).join(', ')} ms)`
          : restP99 > restP99Limit || rest.failed > 0
            ? `REST p99 ${ms(restP99, 1)} ms > ${restP99Limit} ms${rest.failed ? ` (${rest.failed} failed)` : ''}`
            : null;
    if (limit && connected + failed >= cap) stop = `cap (${cap.toLocaleString('en-US')}), where the last batch also hit ${limit}`;
    else if (limit) stop = limit;
    if (limit) break;
  }
  const connectS = (performance.now() - started) / 1000;
  const cpu1 = { nodes: nodes.reduce((n, node) => n + cpuMsOf(node.child.pid), 0), clients: (await fleet.stats()).cpuMs, machine: machineCpuMs() };
  await waitForCount(d, connected, 30_000).catch((err: unknown) => log(`warning: ${err instanceof Error ? err.message : String(err)}`));
  // Held: the REST probes and memory with every device connected and nothing else happening.
  await sleep(3_000);
  const rest = await probeRest(d, 50);
  const view = await clusterView(d, nodes[0]!);
  const stats = await fleet.stats();
  const heldRss = nodes.reduce((n, node) => n + rssOf(node.child.pid), 0);
  // Right after a ramp, RSS still holds the handshakes' garbage, more of it where processes were
  // starved of CPU (three nodes on two cores): memory is read again once the nodes have sat idle.
  await sleep(settleMs);
  const nodesRss = nodes.reduce((n, node) => n + rssOf(node.child.pid), 0);
  return {
    heldRss,
    nodes: nodes.length,
    cap,
    held: view?.connectedClients ?? stats.open,
    perNodeHeld: view ? view.nodes.map((n) => n.connections).join(' / ') : '?',
    failed,
    stop,
    connectS,
    handshakeP50: quantile(latencies, 0.5),
    handshakeP99: quantile(latencies, 0.99),
    nodesRssBase,
    nodesRss,
    clientRssBase: stats0.rss,
    clientRss: stats.rss,
    rest,
    nodesCpuMs: cpu1.nodes - cpu0.nodes,
    clientsCpuMs: cpu1.clients - cpu0.clients,
    machineBusy: (cpu1.machine.busy - cpu0.machine.busy) / Math.max(1, cpu1.machine.total - cpu0.machine.total),
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Round latency
// ---------------------------------------------------------------------------------------------

interface RoundResult {
  nodes: number;
  devices: number;
  records: RoundRecord[];
  /** Launch (POST sent) to the committed record read back on the launching node, per round. */
  wallMs: number[];
  /** Per counted round: every node's CPU, the leader's, the client processes'. */
  nodesCpuMs: number[];
  leaderCpuMs: number[];
  clientsCpuMs: number[];
  /** Per counted round: the leader, or its change during the round. */
  leaders: string[];
  refusals: Record<string, number>;
  samples: Record<string, string>;
}

const roundLaunch = (devices: number): LaunchRequest => ({
  rounds: 1,
  clientsPerRound: devices,
  minClients: devices,
  privacy: { mode: 'none' },
  train: { epochs: 1, batchSize: 16, learningRate: 0.02, optimizer: 'sgd' },
  deadlines: { checkinMs: 30_000, trainingMs: 60_000 },
});

async function launchOn(d: Deployment, node: NodeProcess, request: LaunchRequest): Promise<RoundRecord> {
  const res = await api<{ rounds?: RoundRecord[]; code?: string; message?: string }>(node.url, d.operator, 'POST', '/api/v1/rounds', request);
  if (res.status !== 201 || !res.body.rounds?.[0]) throw new Error(`launch on ${node.nodeId}: HTTP ${res.status} ${res.body.code ?? ''} ${res.body.message ?? ''}`);
  return res.body.rounds[0];
}

async function roundOn(d: Deployment, node: NodeProcess, id: number): Promise<RoundRecord | null> {
  try {
    const res = await api<RoundRecord>(node.url, d.auditor, 'GET', `/api/v1/rounds/${id}`);
    return res.status === 200 ? res.body : null;
  } catch {
    return null;
  }
}

async function untilFinished(d: Deployment, node: NodeProcess, id: number, timeoutMs: number, everyMs: number): Promise<RoundRecord> {
  let record: RoundRecord | null = null;
  await waitFor(`round ${id} to finish`, async () => {
    record = await roundOn(d, node, id);
    return record?.status === 'committed' || record?.status === 'aborted';
  }, timeoutMs, everyMs);
  return record!;
}

/**
 * Connects the round devices to `d` and returns its round runner: the caller alternates rounds of
 * two deployments, so both see the same background load on this shared machine.
 */
async function prepareRounds(d: Deployment, fleet: Fleet, tokens: readonly string[]): Promise<{ run: (counted: boolean) => Promise<void>; result: RoundResult }> {
  const nodes = d.live;
  await fleet.mode('answer');
  const connected = await fleet.connect(nodes, tokens.slice(0, roundDevices));
  if (connected.failed > 0) throw new Error(`round devices: ${connected.failed} of ${roundDevices} failed to connect: ${JSON.stringify(connected.errors)}`);
  await waitForCount(d, roundDevices);
  const out: RoundResult = { nodes: nodes.length, devices: roundDevices, records: [], wallMs: [], nodesCpuMs: [], leaderCpuMs: [], clientsCpuMs: [], leaders: [], refusals: {}, samples: {} };
  const run = async (counted: boolean) => {
    const leader = await leaderOf(d);
    // Launched where a load balancer could send it: on a node that does not lead, when there is one.
    const launchNode = nodes.find((n) => n !== leader) ?? leader;
    const cpu = () => nodes.map((n) => cpuMsOf(n.child.pid));
    const before = { nodes: cpu(), clients: await fleet.stats() };
    const t0 = performance.now();
    const launched = await launchOn(d, launchNode, roundLaunch(roundDevices));
    const record = await untilFinished(d, launchNode, launched.id, 180_000, 20);
    const wall = performance.now() - t0;
    const after = { nodes: cpu(), clients: await fleet.stats() };
    const leaderAfter = await leaderOf(d);
    const refused = Object.entries(after.clients.refusals).flatMap(([k, v]) => (v > (before.clients.refusals[k] ?? 0) ? [`${v - (before.clients.refusals[k] ?? 0)} ${k}`] : []));
    const spent = after.nodes.map((v, i) => v - (before.nodes[i] ?? 0));
    const leaderSpent = spent[nodes.indexOf(leader)] ?? Number.NaN;
    log(`round ${record.id} on ${nodes.length} node(s)${counted ? '' : ' (warm-up)'}: ${record.status}${record.reason ? ` (${record.reason})` : ''}, ${record.participants} participants, ${ms(wall)} ms launch to commit; ${JSON.stringify(record.timings)}; leader ${leader.nodeId}${leaderAfter !== leader ? ` then ${leaderAfter.nodeId}` : ''}; node CPU ms ${spent.map((v) => ms(v)).join(' / ')}${refused.length ? `; refused: ${refused.join(', ')}` : ''}`);
    if (counted) {
      out.records.push(record);
      out.wallMs.push(wall);
      out.nodesCpuMs.push(spent.reduce((a, b) => a + b, 0));
      out.leaderCpuMs.push(leaderSpent);
      out.clientsCpuMs.push(after.clients.cpuMs - before.clients.cpuMs);
      out.leaders.push(leaderAfter === leader ? leader.nodeId : `${leader.nodeId} → ${leaderAfter.nodeId}`);
      for (const [k, v] of Object.entries(after.clients.refusals)) {
        const delta = v - (before.clients.refusals[k] ?? 0);
        if (delta > 0) out.refusals[k] = (out.refusals[k] ?? 0) + delta;
      }
      Object.assign(out.samples, after.clients.samples);
    }
    // Let the new version's announcement reach every device before the next launch.
    await sleep(1_000);
  };
  return { run, result: out };
}

/** The lease and leadership lines of each node's log (stderr), for what happened to the lease. */
function leaseLog(d: Deployment): string[] {
  return d.nodes.flatMap((n) => n.stderr().split('\n').filter((l) => /lease|aborted|round loop|membership|redis/.test(l)).map((l) => `${n.nodeId}: ${l}`));
}

// ---------------------------------------------------------------------------------------------
// 3. Leader failover
// ---------------------------------------------------------------------------------------------

interface FailoverKill {
  tookMs: number;
  status: string;
  reason: string;
  stage: string;
  replacementStartMs: number;
}

async function failoverPhase(d: Deployment, fleet: Fleet, tokens: readonly string[]): Promise<FailoverKill[]> {
  await fleet.mode('stall');
  const connected = await fleet.connect(d.live, tokens.slice(0, failoverDevices));
  if (connected.failed > 0) throw new Error(`failover devices: ${connected.failed} failed to connect: ${JSON.stringify(connected.errors)}`);
  await waitForCount(d, failoverDevices);
  const out: FailoverKill[] = [];
  for (let k = 1; k <= kills; k++) {
    const leader = await leaderOf(d);
    const survivor = d.live.find((n) => n !== leader)!;
    await waitForCount(d, failoverDevices, 20_000).catch((err: unknown) => log(`warning: kill ${k}: ${err instanceof Error ? err.message : String(err)}`));
    const launched = await launchOn(d, survivor, { ...roundLaunch(failoverDevices), minClients: 3, deadlines: { checkinMs: 5_000, trainingMs: 300_000 } });
    let stage = '';
    await waitFor(`round ${launched.id} in training`, async () => {
      const r = await roundOn(d, survivor, launched.id);
      stage = r?.stage ?? '';
      if (r?.status === 'aborted') throw new Error(`round ${launched.id} aborted before the kill: ${r.reason}`);
      return stage === 'training';
    }, 30_000, 25);
    // A random point of the lease's renewal period (simulation randomness, not privacy randomness).
    await sleep(Math.random() * (leaseTtl / 3));
    const killedAt = performance.now();
    await d.kill(leader);
    const record = await untilFinished(d, survivor, launched.id, leaseTtl * 10 + 30_000, 10);
    const tookMs = performance.now() - killedAt;
    const replaceStarted = performance.now();
    const dead = fleet.placed.get(leader.url) ?? [];
    await fleet.close(leader.url);
    const replacement = await d.startNode(`r${k}`);
    const replacementStartMs = performance.now() - replaceStarted;
    const moved = await fleet.connect([replacement], dead);
    out.push({ tookMs, status: record.status, reason: record.reason ?? '', stage, replacementStartMs });
    log(`kill ${k}: leader ${leader.nodeId} killed in stage ${stage}; round ${record.id} ${record.status} on ${survivor.nodeId} after ${ms(tookMs)} ms (${record.reason ?? ''}); replacement ${replacement.nodeId} up in ${ms(replacementStartMs)} ms with ${dead.length - moved.failed} devices`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 4. SecAgg+ unmask extrapolation
// ---------------------------------------------------------------------------------------------

interface UnmaskSample {
  n: number;
  p: number;
  dropout: number;
  k: number;
  unmaskMs: number;
  section: string;
}

/** The done rows of every SecAgg+ cost section of docs/benchmarks.md (scripts/bench/secagg.ts), by their column names. */
function secaggSamples(doc: string): UnmaskSample[] {
  const out: UnmaskSample[] = [];
  for (const section of benchmarkSections(doc).filter((x) => x.key.startsWith('secagg-cost/'))) {
    const lines = doc.slice(section.start, section.end).split('\n').filter((l) => l.startsWith('|'));
    const header = lines[0]?.split('|').map((c) => c.trim()) ?? [];
    const col = (name: string) => header.indexOf(name);
    const [cn, cp, cd, cs, ck, cu] = ['n', 'P', 'dropout', 'status', 'k', 'server unmask ms'].map(col);
    if ([cn, cp, cd, cs, ck, cu].some((c) => c === undefined || c < 0)) continue;
    for (const line of lines.slice(2)) {
      const cells = line.split('|').map((c) => c.trim());
      if (cells[cs!] !== 'done') continue;
      const num = (i: number) => Number((cells[i] ?? '').replace(/[,%]/g, ''));
      out.push({ n: num(cn!), p: num(cp!), dropout: num(cd!) / 100, k: num(ck!), unmaskMs: num(cu!), section: section.title });
    }
  }
  return out;
}

/** Mask expansions of one unmask: a self mask per survivor, and each dropped client's mask with each surviving neighbour. */
function maskExpansions(n: number, dropout: number, k: number): number {
  const survivors = Math.round(n * (1 - dropout));
  return survivors + (n - survivors) * k * (1 - dropout);
}

interface UnmaskModel {
  /** ms per mask expansion at P words: fixed + perWord * P, from two measured P at the largest n. */
  fixedMs: number;
  perWordMs: number;
  from: string;
}

function fitUnmask(samples: readonly UnmaskSample[]): UnmaskModel | null {
  // The largest n measured with dropouts (the cost the model is for), at the two smallest P.
  const withDropout = samples.filter((x) => x.dropout > 0);
  const n = Math.max(...withDropout.map((x) => x.n));
  const at = withDropout.filter((x) => x.n === n);
  const ps = [...new Set(at.map((x) => x.p))].sort((a, b) => a - b);
  if (ps.length < 2) return null;
  const perExpansion = (p: number) => {
    const rows = at.filter((x) => x.p === p);
    return { p, ms: quantile(rows.map((x) => x.unmaskMs / maskExpansions(x.n, x.dropout, x.k)), 0.5), rows };
  };
  const [a, b] = [perExpansion(ps[0]!), perExpansion(ps[1]!)];
  const perWordMs = (b.ms - a.ms) / (b.p - a.p);
  const fixedMs = a.ms - perWordMs * a.p;
  const cite = [...a.rows, ...b.rows].map((x) => `n ${x.n}, P ${x.p.toLocaleString('en-US')}, ${Math.round(x.dropout * 100)}% dropout: ${x.unmaskMs} ms`).join('; ');
  return { fixedMs, perWordMs, from: cite };
}

// ---------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------

function emit(run: BenchmarkRun): void {
  if (flag('--no-write')) process.stdout.write(`\n## ${run.title}\n\n${run.table}\n\n${run.notes ?? ''}\n`);
  else {
    writeBenchmark(run);
    if (run.notes) process.stdout.write(`\n${run.notes}\n\n`);
  }
}

async function main(): Promise<void> {
  cleanUpOnExit();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-bench-cluster-devices-'));
  onCleanUp('device script directory', () => fs.rmSync(dir, { recursive: true, force: true }));
  const loadAtStart = os.loadavg()[0] as number;
  const runStarted = performance.now();
  const fleet = await Fleet.start(dir);
  const idle: IdleResult[] = [];
  const roundResults: RoundResult[] = [];
  let failover: FailoverKill[] = [];
  let parameters = 0;
  // Both deployments stay up through the idle and round phases (the round phase alternates their
  // rounds); the unmask extrapolation alone needs only the model's size.
  const sizes = phases.has('idle') || phases.has('rounds') ? [1, 3] : phases.has('failover') ? [3] : [1];
  const code = codeUnderTest();
  let rebuilt = 0;
  const leaseEvents: string[] = [];
  const deployments = new Map<number, { d: Deployment; tokens: string[] }>();
  const close = async (size: number) => {
    const entry = deployments.get(size);
    if (!entry) return;
    deployments.delete(size);
    leaseEvents.push(...leaseLog(entry.d).filter((l) => /"rounds" lease/.test(l)).map((l) => `${size} node(s), ${l}`));
    rebuilt += rebuilds(entry.d);
    await entry.d.close();
  };
  try {
    for (const size of sizes) {
      const started = performance.now();
      const d = await Deployment.start(size, { flags: NODE_FLAGS, log });
      log(`${size} node(s) up in ${ms(performance.now() - started)} ms: ${d.nodes.map((n) => `${n.nodeId} ${n.url}`).join(', ')}; database ${d.database}, stream ${d.stream}`);
      parameters = (await api<{ parameters: number }>(d.nodes[0]!.url, undefined, 'GET', '/models/current')).body.parameters;
      const cap = Math.min(perNode * size, max);
      deployments.set(size, { d, tokens: await issueEnrollmentTokens(d.nodes[0]!.url, d.operator, Math.max(phases.has('idle') ? cap : 0, roundDevices, failoverDevices)) });
    }
    if (phases.has('idle')) {
      for (const { d, tokens } of deployments.values()) {
        idle.push(await idlePhase(d, fleet, tokens));
        await fleet.closeNodes(d.nodes);
        await waitForCount(d, 0, 60_000);
      }
    }
    if (phases.has('rounds')) {
      const runners = [];
      for (const { d, tokens } of deployments.values()) runners.push(await prepareRounds(d, fleet, tokens));
      for (const r of runners) await r.run(false);
      for (let i = 0; i < rounds; i++) for (const r of i % 2 === 0 ? runners : [...runners].reverse()) await r.run(true);
      roundResults.push(...runners.map((r) => r.result));
      for (const { d } of deployments.values()) {
        await fleet.closeNodes(d.nodes);
        await waitForCount(d, 0, 60_000);
      }
    }
    await close(1);
    const three = deployments.get(3);
    if (phases.has('failover') && three) {
      failover = await failoverPhase(three.d, fleet, three.tokens);
      await fleet.closeNodes(three.d.nodes);
    }
  } catch (err) {
    for (const { d } of deployments.values()) for (const n of d.nodes) if (n.stderr()) log(`${n.nodeId} stderr (tail):\n${n.stderr().slice(-3_000)}`);
    throw err;
  } finally {
    for (const size of [...deployments.keys()]) await close(size);
  }
  await fleet.exit();
  const runS = (performance.now() - runStarted) / 1000;
  const context = `Nodes ran the ${code}${rebuilt > 0 ? `; ${rebuilt} node start(s) rebuilt build/cli because sources changed during the run` : ''}. Load average at the start: ${loadAtStart.toFixed(1)} (other work shares this machine); whole run ${runS.toFixed(0)} s.`;
  log(`lease events:\n${leaseEvents.join('\n')}`);
  const nodeSetup = `Nodes: \`portrait server --postgres --redis ${NODE_FLAGS.join(' ')}\` (the built CLI, one process each), a fresh PostgreSQL database and their own Redis stream per deployment, all on this machine with the benchmark's client processes.`;

  if (idle.length > 0) {
    const one = idle.find((r) => r.nodes === 1);
    const three = idle.find((r) => r.nodes === 3);
    const perConn = (r: IdleResult) => (r.nodesRss - r.nodesRssBase) / Math.max(1, r.held);
    const rows = idle.map((r) => {
      const all = [...r.rest.healthz, ...r.rest.status];
      return [
        r.nodes,
        r.cap.toLocaleString('en-US'),
        r.held.toLocaleString('en-US'),
        r.perNodeHeld,
        r.failed,
        r.stop,
        r.connectS.toFixed(1),
        `${ms(r.handshakeP50)} / ${ms(r.handshakeP99)}`,
        `${mib(r.nodesRssBase)} → ${mib(r.heldRss)} → ${mib(r.nodesRss)}`,
        (perConn(r) / 1024).toFixed(1),
        `${ms(quantile(r.rest.healthz, 0.5), 1)} / ${ms(quantile(r.rest.healthz, 0.99), 1)}`,
        `${ms(quantile(r.rest.status, 0.5), 1)} / ${ms(quantile(r.rest.status, 0.99), 1)}`,
        `${ms(Math.max(...all), 1)}${r.rest.failed ? ` (${r.rest.failed} failed)` : ''}`,
        `${(r.nodesCpuMs / 1000).toFixed(1)} / ${(r.clientsCpuMs / 1000).toFixed(1)} / ${(r.machineBusy * 100).toFixed(0)}%`,
        `${mib(r.clientRssBase)} → ${mib(r.clientRss)} (${((r.clientRss - r.clientRssBase) / Math.max(1, r.held) / 1024).toFixed(1)} KiB / device)`,
      ];
    });
    const verdicts: string[] = [];
    if (one && three) {
      const ratio = three.held / Math.max(1, one.held);
      const memRatio = perConn(three) / Math.max(1, perConn(one));
      const worst = Math.max(...idle.flatMap((r) => [...r.rest.healthz, ...r.rest.status]));
      const worstP99 = Math.max(...idle.map((r) => quantile([...r.rest.healthz, ...r.rest.status], 0.99)));
      const capped = idle.every((r) => r.stop.startsWith('cap') && r.held >= r.cap);
      verdicts.push(
        `Bar: 3 nodes hold ${ratio.toFixed(2)}x the devices of one (>= 3x ${ratio >= 3 ? 'met' : 'NOT met'}${capped ? ', but both stopped at their cap, so this is the ratio of the caps, not of capacities' : ''}), at ${memRatio.toFixed(2)}x the node memory per connection (${(perConn(three) / 1024).toFixed(1)} vs ${(perConn(one) / 1024).toFixed(1)} KiB); REST p99 while held ${worstP99.toFixed(1)} ms, slowest of ${idle.reduce((n, r) => n + r.rest.healthz.length + r.rest.status.length, 0)} requests ${worst.toFixed(1)} ms (< ${restP99Limit} ms ${worst < restP99Limit ? 'met for every request' : worstP99 < restP99Limit ? 'met at p99, not for every request' : 'NOT met'}).`,
      );
      const clientShare = three.clientsCpuMs / Math.max(1, three.clientsCpuMs + three.nodesCpuMs);
      verdicts.push(
        `What limited it: ${capped ? `the cap (--devices ${perNode} per node${Number.isFinite(max) ? `, --max ${max}` : ''}), not a failure or threshold` : 'see "stopped by"'}. While 3 nodes took their devices the client processes used ${(three.clientsCpuMs / 1000).toFixed(1)} CPU-s against the nodes' ${(three.nodesCpuMs / 1000).toFixed(1)} (${(clientShare * 100).toFixed(0)}% of the two), and the machine was ${(three.machineBusy * 100).toFixed(0)}% busy over both cores: ${three.machineBusy > 0.85 ? 'the connect rate (and the handshake latencies) are bounded by this 2-core machine, which the benchmark\'s own client side shares' : 'the machine had CPU to spare'}. Holding costs memory, not CPU: the client processes grew ${((three.clientRss - three.clientRssBase) / Math.max(1, three.held) / 1024).toFixed(1)} KiB per device against the nodes' ${(perConn(three) / 1024).toFixed(1)} KiB per connection, all on this one ${Math.round(os.totalmem() / 2 ** 30)} GiB machine.`,
      );
    }
    emit({
      key: `cluster/idle-connections/devices=${perNode}`,
      title: `Cluster: idle devices held, 1 node vs 3 (up to ${perNode.toLocaleString('en-US')} per node)`,
      tfjsBackend: 'none (no training)',
      table: markdownTable(['nodes', 'cap', 'held', 'held per node', 'failed', 'stopped by', 'connect s', 'handshake ms p50 / p99', 'nodes RSS MiB before → held → settled', 'node RSS KiB / connection', '/healthz ms p50 / p99', '/api/v1/status ms p50 / p99', 'REST max ms', 'connect CPU-s: nodes / clients / machine busy', 'client processes RSS MiB before → held'], rows),
      notes: [
        ...verdicts,
        `Method: ${nodeSetup} Devices are raw socket.io-client connections over WebSocket, each with its own enrollment token (POST /api/v1/enrollment-tokens) verified at the handshake, in ${clientProcessCount} client processes, at most ${handshakeWindow} handshakes in flight per process and node, spread over the nodes round-robin; they connect in batches of ${batch} (over all nodes) and the ramp stops at the first batch with more than 0.5% failed handshakes, at two batches in a row with a handshake p99 over ${handshakeP99Limit} ms, at a REST p99 over ${restP99Limit} ms twice in a row (5 requests per endpoint and node after each batch), or at the cap. Both deployments are up during both ramps, the other one idle with no devices. Held: the devices every node counts (GET /api/v1/cluster) 3 s after the last batch; REST: 50 requests per endpoint and node, one after another 10 ms apart on each node, the nodes in parallel, with the devices held and idle (/api/v1/status with the auditor token). Memory: the node processes' RSS (/proc) growth over the devices held, read ${settleMs / 1000} s after the REST probes, once the idle nodes have collected the handshakes' garbage (the middle number is RSS right after the ramp). CPU: /proc times of the node processes and the client processes' own, over the ramp; "machine busy" is all cores (/proc/stat), Redis and PostgreSQL included.`,
        context,
      ].join(' '),
    });
  }

  if (roundResults.length > 0) {
    const median = (r: RoundResult) => quantile(r.wallMs, 0.5);
    const rows = roundResults.map((r) => {
      const t = (key: string) => quantile(r.records.map((x) => x.timings[key] ?? Number.NaN), 0.5);
      return [
        r.nodes,
        r.devices.toLocaleString('en-US'),
        r.records.map((x) => (x.status === 'committed' ? x.participants : `${x.status}: ${x.reason}`)).join(', '),
        `${s(median(r))} (${s(Math.min(...r.wallMs))}-${s(Math.max(...r.wallMs))})`,
        s(quantile(r.records.map((x) => x.durationMs ?? Number.NaN), 0.5)),
        s(t('checkinMs')),
        s(t('trainingMs')),
        ms(t('aggregationMs')),
        s(quantile(r.nodesCpuMs, 0.5), 1),
        s(quantile(r.leaderCpuMs, 0.5), 1),
        (quantile(r.leaderCpuMs, 0.5) / r.devices).toFixed(2),
        s(quantile(r.clientsCpuMs, 0.5), 1),
        [...new Set(r.leaders)].join(', '),
      ];
    });
    const one = roundResults.find((r) => r.nodes === 1);
    const three = roundResults.find((r) => r.nodes === 3);
    const refused = roundResults.flatMap((r) => Object.entries(r.refusals).map(([k, v]) => `${v} ${k} on ${r.nodes} node(s) ("${r.samples[k] ?? ''}")`));
    const verdict =
      one && three
        ? `Bar: 3 nodes take ${(median(three) / median(one)).toFixed(2)}x the launch-to-commit time of one node (<= 1.2x ${median(three) / median(one) <= 1.2 ? 'met' : 'NOT met'}; medians of ${rounds} rounds each, ${s(median(three))} s vs ${s(median(one))} s; single rounds vary by up to 2x on this shared machine, see the ranges). What limits it: the leader handles every check-in and update of the cohort either way (${(quantile(three.leaderCpuMs, 0.5) / three.devices).toFixed(2)} ms of its CPU per device on 3 nodes against ${(quantile(one.leaderCpuMs, 0.5) / one.devices).toFixed(2)} alone, since the other nodes hold 2/3 of the sockets), but the cluster spends ${(quantile(three.nodesCpuMs, 0.5) / Math.max(1, quantile(one.nodesCpuMs, 0.5))).toFixed(1)}x the CPU of one node in all: each forwarded message is published once, on the leader's own Redis Pub/Sub channel, and decoded by the leader alone, but it still crosses Redis twice (there and back) and the other nodes hold the sockets. On this 2-core machine, where all nodes, Redis, PostgreSQL and the devices share two cores, that total is what the round waits for; with a core per node the leader's own CPU would bound it.`
        : '';
    emit({
      key: `cluster/round-latency/devices=${roundDevices}`,
      title: `Cluster: round latency, ${roundDevices.toLocaleString('en-US')} devices on 1 node vs spread over 3`,
      tfjsBackend: 'none (no training)',
      table: markdownTable(['nodes', 'devices', 'participants per round', 'launch → commit s, median (range)', 'round durationMs s (server)', 'check-in s', 'training stage s', 'aggregation ms', 'all nodes CPU-s / round', 'leader CPU-s / round', 'leader CPU ms / device', 'client CPU-s / round', 'leader'], rows),
      notes: [
        verdict,
        `Method: ${nodeSetup} The round: privacy mode none (so no DP, no SecAgg+: the cheap round the bar allows; the nodes run with --allow-no-dp), clientsPerRound = minClients = ${roundDevices}, deadlines 30 s / 60 s; every device (raw socket.io-client, ${clientProcessCount} client processes, spread round-robin) checks in at round:open and answers round:config with a zero Float32 delta of the model's ${parameters.toLocaleString('en-US')} parameters at once (no training), so the time is the coordinator's: check-in forwarded to the leader (its Redis Pub/Sub channel) and counted against the cluster's devices, cohort selection, a config per device through its room, ${roundDevices.toLocaleString('en-US')} updates of ${((parameters * 4) / 1024).toFixed(0)} KiB forwarded to and summed by the leader, the commit (model version, ledger) in PostgreSQL and the announcement to every node. Launched by POST on a node that does not lead (the only node when alone); "launch → commit" runs from the POST to the committed record read back on that node (polled every 20 ms); "durationMs" is the leader's own record of the round. Both deployments are up at once, each with its own devices, and their rounds alternate (1 node, 3 nodes, then 3, 1, ...) so both meet the same background load; one warm-up round each first, not counted; CPU is /proc time per round (medians), of every node, of the node leading the round, and of the client processes.`,
        refused.length > 0 ? `Device refusals: ${refused.join(', ')}.` : 'No device message was refused.',
        context,
      ].filter(Boolean).join(' '),
    });
  }

  if (failover.length > 0) {
    const times = failover.map((f) => f.tookMs);
    const bound = leaseTtl + leaseTtl / 3;
    const statuses = [...new Set(failover.map((f) => `${f.status}${f.reason ? ` (${f.reason})` : ''}`))];
    const rows = [[
      failover.length,
      leaseTtl,
      ms(bound),
      ms(quantile(times, 0.5)),
      ms(quantile(times, 0.95)),
      `${ms(Math.min(...times))}-${ms(Math.max(...times))}`,
      `${times.filter((t) => t <= bound).length} / ${times.length}`,
      [...new Set(failover.map((f) => f.stage))].join(', '),
      statuses.join('; '),
      s(quantile(failover.map((f) => f.replacementStartMs), 0.5), 1),
    ]];
    emit({
      key: `cluster/leader-failover/lease-ttl=${leaseTtl}`,
      title: `Cluster: leader failover, kill -9 mid-round (lease ttl ${leaseTtl} ms)`,
      tfjsBackend: 'none (no training)',
      table: markdownTable(['kills', 'lease ttl ms', 'bound ms (ttl + ttl/3)', 'kill → round finished ms p50', 'p95', 'range', 'within bound', 'stage killed in', 'round outcome', 'replacement node start s (median)'], rows),
      notes: [
        `Bar: p95 ${ms(quantile(times, 0.95))} ms ${quantile(times, 0.95) <= bound ? 'within' : 'PAST'} the ${ms(bound)} ms bound (ttl + ttl/3); p50 ${ms(quantile(times, 0.5))} ms.`,
        `Method: ${nodeSetup} Three nodes with ${failoverDevices} devices spread over them that check in and then never send their update, so each round (launched on a node that does not lead, minClients 3, training deadline 300 s) is held in its training stage; once a surviving node reads stage training, after a random wait of up to ttl/3 (so the kill lands anywhere in the lease's renewal period), the leader gets SIGKILL, and the time runs to the round's record reading aborted or committed on that surviving node (GET /api/v1/rounds/:id every 10 ms). The cluster aborts such a round (the new leader, on taking the lease, aborts what the lost one left running, under its fencing token; it does not resume it). After each kill a replacement node starts (timed from the abort to its listening) and the dead node's devices connect to it, so the cluster keeps 3 nodes.`,
        context,
      ].join(' '),
    });
  }

  if (phases.has('unmask')) {
    const doc = fs.existsSync(BENCHMARKS_FILE) ? fs.readFileSync(BENCHMARKS_FILE, 'utf8') : '';
    const model = fitUnmask(secaggSamples(doc));
    const padded = nextPowerOfTwo(parameters);
    const three = roundResults.find((r) => r.nodes === 3) ?? roundResults[0];
    // The leader's per-device cost of a round today (bar 2): everything but the unmask, which a plain round has not.
    const perDeviceMs = three ? quantile(three.wallMs, 0.5) / three.devices : Number.NaN;
    if (model) {
      const cohorts = [1_000, 3_000, 10_000, 30_000, 100_000];
      const unmaskS = (n: number, dropout: number) => {
        const { k } = chooseParameters({ n, dropoutRate: Math.max(0.1, dropout), corruptFraction: 0.1 });
        return { k, seconds: (maskExpansions(n, dropout, k) * (model.fixedMs + model.perWordMs * padded)) / 1000 };
      };
      const rows = cohorts.map((n) => {
        const d10 = unmaskS(n, 0.1);
        const d30 = unmaskS(n, 0.3);
        const d0 = unmaskS(n, 0);
        const rest = (perDeviceMs * n) / 1000;
        return [
          n.toLocaleString('en-US'),
          `${d10.k} / ${d30.k}`,
          d0.seconds.toFixed(2),
          d10.seconds.toFixed(1),
          d30.seconds.toFixed(0),
          Number.isFinite(rest) ? rest.toFixed(1) : '-',
          Number.isFinite(rest) ? (d10.seconds > rest ? 'unmask' : 'messages') : '-',
        ];
      });
      const crossing = (dropout: number) => {
        for (let n = 100; n <= 1_000_000; n = Math.ceil(n * 1.1)) if (unmaskS(n, dropout).seconds > (perDeviceMs * n) / 1000) return n;
        return null;
      };
      const past = (dropout: number, seconds: number) => {
        for (let n = 100; n <= 1_000_000; n = Math.ceil(n * 1.05)) if (unmaskS(n, dropout).seconds > seconds) return n.toLocaleString('en-US');
        return 'more than 1,000,000';
      };
      const c10 = Number.isFinite(perDeviceMs) ? crossing(0.1) : null;
      const c30 = Number.isFinite(perDeviceMs) ? crossing(0.3) : null;
      emit({
        key: 'cluster/secagg-unmask-limit',
        title: 'Cluster: where one leader\'s SecAgg+ unmask becomes the limit (extrapolated)',
        tfjsBackend: 'none (no training)',
        table: markdownTable(['cohort n', 'k at 10% / 30% dropout', 'unmask s, no dropout', 'unmask s, 10% dropout', 'unmask s, 30% dropout', 'rest of the round s (bar 2, linear)', 'larger at 10%'], rows),
        notes: [
          `Extrapolated, not measured in a cluster: the leader's unmask for one round of cohort n at this model's padded dimension P = ${padded.toLocaleString('en-US')} (${parameters.toLocaleString('en-US')} parameters, rotation padding), as mask expansions (a self mask per survivor, plus each dropped client's pairwise mask with each surviving neighbour: n(1-d) + nd·k(1-d), with k from chooseParameters at dropoutRate max(0.1, d) and corruptFraction 0.1, as the coordinator picks it) times a per-expansion cost fitted as ${model.fixedMs.toFixed(4)} ms + ${(model.perWordMs * 1e6).toFixed(2)} ns per word from the SecAgg+ cost rows in this file (${model.from}; 2 cores, OpenSSL AES-CTR and X25519 on worker threads). "Rest of the round" scales bar 2's launch-to-commit time on 3 nodes (${Number.isFinite(perDeviceMs) ? `${perDeviceMs.toFixed(2)} ms per device` : 'not run'}) linearly: every check-in, config and update goes through the one leader, so that part does not shrink with more nodes either.`,
          `How far a cluster goes: the nodes spread what grows with the devices held (connections, handshakes, REST: bar 1), but a round has one leader, which handles every message of the cohort and does the whole unmask on its own cores; nodes added raise the devices a cluster holds, not the cohort one round can take. With no dropout the unmask is n self masks, ${unmaskS(1000, 0).seconds.toFixed(3)} ms a device, far under the per-device message cost, so it never becomes the limit. With dropouts it grows as n·d·k: at 10% dropout it ${c10 ? `overtakes the rest of the round from a cohort of about ${c10.toLocaleString('en-US')}` : 'stays under the rest of the round up to a cohort of 1,000,000'}, and at 30% (k = ${unmaskS(1000, 0.3).k} at n = 1,000, so the pairwise masks grow as about n²) ${c30 ? `from about ${c30.toLocaleString('en-US')}` : 'never within 1,000,000'}; at 100,000 devices and 10% dropout one unmask takes ${unmaskS(100_000, 0.1).seconds.toFixed(0)} s, serial on the leader, which also bounds the rounds a cluster runs an hour. Against a fixed time instead, one unmask passes the default SecAgg+ stage deadline (10 s) from a cohort of about ${past(0.1, 10)} at 10% dropout and ${past(0.3, 10)} at 30%. The per-device rest-of-round cost is an upper bound (bar 2's fixed costs, the commit and the announcement, are in it), and a SecAgg+ round's own messages (k shares per device, relayed by the leader) cost more than the plain round's, so the crossings are if anything later.`,
          'Past it, hierarchical aggregation: the cohort is split into sub-cohorts of m devices (say, the devices of one node, m = 1,000 to 10,000), each with a sub-aggregator (a node) that runs SecAgg+ over its sub-cohort only: its graph, shares and unmask cover m, so the n·d·k unmask is spread over n/m sub-aggregators working in parallel, each at the cost the table shows for m. A sub-aggregator then forwards only a partial sum that is still protected, one of two ways. (a) Noised: each device adds the distributed-DP noise share that makes its sub-cohort\'s sum (ε, δ)-DP on its own (1/t_m of the noise, t_m the sub-cohort\'s survivor threshold), the sub-aggregator unmasks that partial sum and forwards it; it learns its sub-cohort\'s noised sum and which of its devices dropped, the root learns the n/m noised partials and their sum, and each partial is a release the ledger must account (the total carries about n/m times the noise variance of a flat round, a utility cost). (b) Masked: devices also add a second-level mask that cancels only across sub-cohorts (pairwise masks between sub-aggregators\' partials, or per-device masks agreed with neighbours in other sub-cohorts), so a sub-aggregator removes its sub-cohort\'s SecAgg+ masks and forwards a partial sum that is still masked, and the root, running a small SecAgg+ among the n/m sub-aggregators (recovering the masks of a sub-aggregator that drops), learns only the total with the flat round\'s noise; a sub-aggregator learns nothing beyond its sub-cohort\'s membership and dropouts. Devices learn what they do today (their neighbours\' keys and shares in the sub-graph). Either way the ledger and the one fenced leader stay as they are (the root is the leader); the sub-aggregators need the lease\'s fencing for their writes too. (b) keeps today\'s privacy guarantee and is the plan; (a) is simpler but spends privacy per sub-cohort.',
        ].join(' '),
      });
    } else log('unmask: no SecAgg+ cost rows at two P in docs/benchmarks.md to extrapolate from');
  }
  log(`done in ${runS.toFixed(0)} s`);
}

try {
  await main();
} finally {
  await cleanUp();
}

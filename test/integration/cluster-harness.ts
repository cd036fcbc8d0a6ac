/**
 * A real cluster for the tests: coordinator processes (`portrait server --postgres --redis`, the
 * built CLI) on port 0 sharing a fresh PostgreSQL database and the local Redis under their own
 * stream name, real FederatedClients spread over the nodes, and REST helpers. Processes, so a
 * test can kill -9 one.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFailed } from 'vitest';
import { FederatedClient } from '../../client/core/client.ts';
import type { ClientEvent, FederatedClientOptions } from '../../client/core/client.ts';
import { readApiTokens } from '../../server/auth/bootstrap-tokens.ts';
import { readPlatformKeyFile, PLATFORM_KEY_FILE } from '../../server/auth/platform-key.ts';
import { issueEnrollmentToken } from '../../shared/protocol/enrollment.ts';
import type { LaunchRequest, RoundRecord } from '../../shared/protocol/messages.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import type { TestDatabase } from '../helpers/postgres.ts';
import { REDIS_URL } from '../helpers/redis.ts';
import type { TestClient } from './harness.ts';
import { api, examplesOf, syntheticPopulation, waitFor } from './harness.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/portrait.js');
export { REDIS_URL };

export interface ClusterNodeProcess {
  nodeId: string;
  url: string;
  child: ChildProcess;
  stderr(): string;
  exited: Promise<number | null>;
}

export interface TestCluster {
  db: TestDatabase;
  keyDir: string;
  sumDir: string;
  stream: string;
  nodes: ClusterNodeProcess[];
  operator: string;
  auditor: string;
  token(): string;
  /** Starts one more node of this cluster (`extra` CLI flags, environment overrides). */
  startNode(nodeId: string, extra?: string[], env?: Record<string, string>): Promise<ClusterNodeProcess>;
  close(): Promise<void>;
}

export function startNodeProcess(args: string[], env: Record<string, string>): Promise<ClusterNodeProcess & { json: Record<string, unknown> }> {
  const child = spawn(process.execPath, [BIN, 'server', '--port', '0', '--json', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  // 'close', not 'exit': by then stdout and stderr have been read to the end.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        const json = JSON.parse(out) as Record<string, unknown> & { url: string; nodeId: string; error?: { code: string; message: string } };
        // A failed start prints its error as the one JSON document, then exits (rejected below).
        if (json.error) return;
        resolve({ nodeId: json.nodeId, url: json.url, child, stderr: () => err, exited, json });
      } catch {
        // Not the whole document yet.
      }
    });
    void exited.then((code) => reject(Object.assign(new Error(`server exited with ${code}: ${out} ${err}`), { stderr: `${err}\n${out}`, code })));
  });
}

export async function startCluster(size: number, extra: string[] = [], env: Record<string, string> = {}): Promise<TestCluster> {
  const db = await createTestDatabase();
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-cluster-keys-'));
  const sumDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-cluster-sums-'));
  const stream = `portrait-test:${randomBytes(4).toString('hex')}`;
  const nodes: ClusterNodeProcess[] = [];
  const startNode = async (nodeId: string, more: string[] = [], moreEnv: Record<string, string> = {}) => {
    const node = await startNodeProcess(['--postgres', db.url, '--redis', REDIS_URL, '--data-dir', keyDir, '--node-id', nodeId, '--dataset', 'synthetic:60', ...extra, ...more], { PORTRAIT_REDIS_STREAM: stream, PORTRAIT_TEST_SECAGG_SUM_DIR: sumDir, ...env, ...moreEnv });
    nodes.push(node);
    return node;
  };
  // The first node makes the deployment's first start; the others then start together.
  await startNode('n1');
  await Promise.all(Array.from({ length: size - 1 }, (_, i) => startNode(`n${i + 2}`)));
  const tokens = readApiTokens(keyDir);
  if (!tokens) throw new Error('no API tokens were bootstrapped');
  const platform = readPlatformKeyFile(path.join(keyDir, PLATFORM_KEY_FILE));
  return {
    db,
    keyDir,
    sumDir,
    stream,
    nodes,
    operator: tokens.operator,
    auditor: tokens.auditor,
    token: () => issueEnrollmentToken(platform.secretKey, { ttlMs: 3_600_000, now: Date.now() }),
    startNode,
    close: async () => {
      for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGTERM');
      await Promise.all(nodes.map((n) => Promise.race([n.exited, new Promise((r) => setTimeout(r, 5_000))])));
      for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
      await db.drop();
      fs.rmSync(keyDir, { recursive: true, force: true });
      fs.rmSync(sumDir, { recursive: true, force: true });
    },
  };
}

/** When the running test fails, the tail of every node's log (stderr) goes to the test output. */
export function logNodesOnFailure(cluster: TestCluster): void {
  onTestFailed(() => {
    for (const n of cluster.nodes) console.error(`--- ${n.nodeId} (${n.url}) ---\n${n.stderr().split('\n').slice(-40).join('\n')}`);
  });
}

/** One real FL client per training user, client i connected to node `nodeOf(i)`. */
export async function startClusterClients(cluster: TestCluster, count: number, nodeOf: (i: number) => ClusterNodeProcess, extra: (i: number) => Partial<FederatedClientOptions> = () => ({}), firstUser = 0): Promise<(TestClient & { node: string })[]> {
  const pop = await syntheticPopulation();
  const users = pop.prepared.users.train.slice(firstUser, firstUser + count);
  if (users.length < count) throw new Error(`only ${users.length} training users`);
  const clients = users.map((user, i) => {
    const events: ClientEvent[] = [];
    const node = nodeOf(i);
    const client = new FederatedClient({ serverUrl: node.url, token: cluster.token(), examples: examplesOf(user, pop.dataset.startDay), onEvent: (e) => events.push(e), reconnectionDelayMs: 100, ...extra(i) });
    return { client, events, node: node.nodeId };
  });
  for (const c of clients) c.client.start();
  await waitFor(() => clients.every((c) => c.client.socket.connected), 15_000, 'clients connected');
  return clients;
}

export interface ClusterView {
  node: string;
  leading: boolean;
  leader: string | null;
  connectedClients: number;
  nodes: { nodeId: string; connections: number; ready: boolean; leader: boolean }[];
}

export async function clusterView(cluster: TestCluster, node: { url: string }): Promise<ClusterView> {
  const res = await api<ClusterView>(node, cluster.auditor, 'GET', '/api/v1/cluster');
  if (res.status !== 200) throw new Error(`cluster view: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** The node leading the rounds, as the live nodes see it. */
export async function leaderOf(cluster: TestCluster, timeoutMs = 15_000): Promise<ClusterNodeProcess> {
  let leader: ClusterNodeProcess | undefined;
  await waitFor(async () => {
    for (const n of cluster.nodes) {
      if (n.child.exitCode !== null || n.child.signalCode !== null) continue;
      const view = await clusterView(cluster, n).catch(() => null);
      if (view?.leading) leader = n;
    }
    return leader !== undefined;
  }, timeoutMs, 'a leader');
  return leader!;
}

export async function launchOn(cluster: TestCluster, node: { url: string }, request: LaunchRequest): Promise<{ status: number; body: { rounds?: RoundRecord[]; code?: string; message?: string } }> {
  return api(node, cluster.operator, 'POST', '/api/v1/rounds', request);
}

export async function roundOn(cluster: TestCluster, node: { url: string }, id: number): Promise<RoundRecord> {
  const res = await api<RoundRecord>(node, cluster.auditor, 'GET', `/api/v1/rounds/${id}`);
  if (res.status !== 200) throw new Error(`round ${id}: ${res.status}`);
  return res.body;
}

export async function waitForRoundOn(cluster: TestCluster, node: { url: string }, id: number, timeoutMs = 30_000): Promise<RoundRecord> {
  let last: RoundRecord | undefined;
  await waitFor(async () => {
    last = await roundOn(cluster, node, id);
    return last.status === 'committed' || last.status === 'aborted';
  }, timeoutMs, `round ${id} to finish`);
  return last!;
}

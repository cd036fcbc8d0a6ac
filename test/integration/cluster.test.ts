/**
 * Cluster mode against the real engines: three coordinator processes on port 0 sharing one
 * PostgreSQL database and one Redis, real clients spread over them. A distributed-DP SecAgg+ round
 * whose cohort spans every node commits and its unmasked sum equals the sum of what the devices
 * masked; the rounds lease moves when its leader is killed (-9) in check-in or training, and the
 * round is aborted within the bound with a ledger that verifies and never under-counts (after the
 * release entry: cluster-faults.test.ts); killing a node that does
 * not lead drops only its devices; two launches racing for the last of the budget on two nodes:
 * exactly one passes; `audit verify --postgres` reads the shared ledger with the verdict the
 * served bundle gets.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed, onTestFinished } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import { verifyLedger } from '../../shared/ledger/verify.ts';
import { nodeEd25519Verify } from '../../server/auth/native-ed25519.ts';
import { LEADER_LOST_REASON } from '../../server/coordinator.ts';
import type { LaunchRequest } from '../../shared/protocol/messages.ts';
import { postgresAvailable } from '../helpers/postgres.ts';
import { redisAvailable } from '../helpers/redis.ts';
import type { TestClient } from './harness.ts';
import { EVENTS } from '../../shared/protocol/events.ts';
import { api, rawSocket, SECAGG_FIVE, stopAll, waitFor } from './harness.ts';
import { auditJson } from './audit-cli.ts';
import { portraitWatchingTfjs } from './cli-process.ts';
import type { ClusterNodeProcess, TestCluster } from './cluster-harness.ts';
import { clusterView, launchOn, logNodesOnFailure, leaderOf, roundOn, startCluster, startClusterClients, waitForRoundOn } from './cluster-harness.ts';

const LEASE_TTL_MS = 2_000;
/** A dead leader's round is taken over within the lease's lifetime plus one renewal period; the rest is slack for a loaded 2-core machine. */
const FAILOVER_BOUND_MS = LEASE_TTL_MS + LEASE_TTL_MS / 3 + 3_000;

const available = (await postgresAvailable()) && (await redisAvailable());

/**
 * SECAGG_FIVE with deadlines for three node processes on a loaded 2-core machine (a round ends as
 * soon as every device has answered, so they cost nothing when all is well).
 */
const FIVE: LaunchRequest = { ...SECAGG_FIVE, deadlines: { checkinMs: 15_000, trainingMs: 20_000 }, secagg: { mode: 'on', dropoutRate: 0.4, corruptFraction: 0, stageMs: 10_000 } } as LaunchRequest;
/** A distributed-DP SecAgg+ round of four devices (three unmask shares needed). */
const FOUR = { ...FIVE, clientsPerRound: 4, minClients: 3, secagg: { mode: 'on', k: 3, t: 3, stageMs: 10_000 } } as LaunchRequest;

async function ledgerEntries(cluster: TestCluster, node: { url: string }): Promise<unknown[]> {
  const res = await api<{ entries: unknown[] }>(node, cluster.auditor, 'GET', '/api/v1/ledger');
  expect(res.status).toBe(200);
  return res.body.entries;
}

async function roundEntries(cluster: TestCluster, node: { url: string }, roundId: number) {
  return (await ledgerEntries(cluster, node)).map((e) => LedgerEntrySchema.parse(e)).filter((e) => e.kind === 'round' && e.round.roundId === roundId);
}

/** The round's ledger outcomes once its abort is entered (the new leader enters it right after it marks the round aborted). */
async function outcomesOnceAborted(cluster: TestCluster, node: { url: string }, roundId: number): Promise<string[]> {
  let outcomes: string[] = [];
  await waitFor(async () => {
    outcomes = (await roundEntries(cluster, node, roundId)).map((e) => (e.kind === 'round' ? e.round.outcome : e.kind));
    return outcomes.includes('aborted');
  }, 5_000, `round ${roundId}'s abort entry`);
  return outcomes;
}

/** Waits until no round is pending or running, so the ledger and the budgets hold still. */
async function quiescent(cluster: TestCluster, node: { url: string }): Promise<void> {
  await waitFor(async () => {
    const { body } = await api<{ rounds: { status: string }[] }>(node, cluster.auditor, 'GET', '/api/v1/rounds?limit=50');
    return body.rounds.every((r) => r.status === 'committed' || r.status === 'aborted');
  }, 60_000, 'every round finished');
}

function sumOf(vectors: readonly Uint32Array[]): Uint32Array {
  const out = new Uint32Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < v.length; i++) out[i] = out[i]! + v[i]!;
  return out;
}

describe.skipIf(!available)('a cluster of three coordinator processes on PostgreSQL and Redis', () => {
  let cluster: TestCluster;
  let clients: (TestClient & { node: string })[] = [];
  const residues = new Map<number, Map<number, Uint32Array>>();

  beforeAll(async () => {
    await useNodeBackend();
    cluster = await startCluster(3, ['--lease-ttl', String(LEASE_TTL_MS)]);
    // Two devices on each node.
    clients = await startClusterClients(cluster, 6, (i) => cluster.nodes[i % 3]!, (i) => ({
      inspectResidues: (roundId, r) => {
        if (!residues.has(roundId)) residues.set(roundId, new Map());
        residues.get(roundId)!.set(i, r);
      },
    }));
    await waitFor(async () => (await clusterView(cluster, cluster.nodes[0]!)).connectedClients === 6, 10_000, 'every node counting the six devices');
  }, 120_000);

  const live = () => cluster.nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);

  /**
   * Connects a device to `node` that never checks in, so the next round's check-in stays open until
   * its deadline (it closes early only once every connected device has answered), and waits until
   * the leader counts it; it leaves when the test ends.
   */
  async function holdCheckinOpen(node: ClusterNodeProcess) {
    const leader = await leaderOf(cluster);
    const here = async () => (await clusterView(cluster, leader)).nodes.find((n) => n.nodeId === node.nodeId)?.connections ?? 0;
    // The count settles first: a device that left moments ago may still be counted until the node's next beat.
    let before = await here();
    for (let settled = false; !settled; ) {
      await new Promise((r) => setTimeout(r, 1_100));
      const now = await here();
      settled = now === before;
      before = now;
    }
    const silent = await rawSocket(node, cluster.token());
    onTestFinished(() => void silent.disconnect());
    await waitFor(async () => (await here()) > before, 10_000, `the leader counting a silent device on ${node.nodeId}`);
    return silent;
  }

  afterAll(async () => {
    stopAll(clients);
    await cluster?.close();
  });

  beforeEach(() => {
    logNodesOnFailure(cluster);
    onTestFailed(() => {
      for (const [i, c] of clients.entries()) console.error(`client ${i} on ${c.node}: ${c.events.slice(-12).map((e) => JSON.stringify(e).slice(0, 160)).join('\n  ')}`);
    });
  });

  it('runs one leader, and a SecAgg+ round launched on another node commits with a cohort from every node and the exact sum of its inputs', async () => {
    const leader = await leaderOf(cluster);
    const views = await Promise.all(cluster.nodes.map((n) => clusterView(cluster, n)));
    expect(views.filter((v) => v.leading)).toHaveLength(1);
    for (const v of views) expect(v.leader).toBe(leader.nodeId);
    expect(views[0]!.nodes.map((n) => n.connections)).toEqual([2, 2, 2]);

    const other = cluster.nodes.find((n) => n !== leader)!;
    // A listener on every node, to hear each node announce the new version to its own devices.
    const heard = new Map<string, number[]>();
    const listeners = await Promise.all(cluster.nodes.map(async (n) => {
      const socket = await rawSocket(n, cluster.token());
      heard.set(n.nodeId, []);
      socket.on(EVENTS.modelCurrent, (m: { version: number }) => heard.get(n.nodeId)!.push(m.version));
      return socket;
    }));
    // A cohort of five drawn from six devices on three nodes.
    const launched = await launchOn(cluster, other, FIVE);
    expect(launched.status, JSON.stringify(launched.body)).toBe(201);
    const id = launched.body.rounds![0]!.id;
    const record = await waitForRoundOn(cluster, other, id, 60_000);
    expect(record.status, record.reason ?? '').toBe('committed');
    expect(record.participants).toBe(5);

    // Every device of the cohort masked its residues; the leader unmasked exactly their sum (mod 2^32).
    const masked = residues.get(id)!;
    expect(masked.size).toBe(5);
    expect(new Set([...masked.keys()].map((i) => i % 3)).size).toBe(3);
    const unmasked = new Uint32Array(new Uint8Array(fs.readFileSync(path.join(cluster.sumDir, `round-${id}.bin`))).buffer);
    expect(unmasked.length).toBe([...masked.values()][0]!.length);
    expect(Buffer.from(unmasked.buffer).equals(Buffer.from(sumOf([...masked.values()]).buffer))).toBe(true);

    // The new version is announced to the devices on every node, served, and published in the one ledger.
    for (const n of cluster.nodes) await waitFor(() => heard.get(n.nodeId)!.includes(record.modelVersion!), 10_000, `${n.nodeId} announcing v${record.modelVersion}`);
    for (const s of listeners) s.disconnect();
    for (const n of cluster.nodes) {
      await waitFor(async () => (await api<{ version: number }>(n, undefined, 'GET', '/models/current')).body.version === record.modelVersion, 10_000, `${n.nodeId} serving v${record.modelVersion}`);
      const served = await fetch(`${n.url}/models/${record.modelVersion}/model.json`);
      expect(served.status).toBe(200);
    }
    const entries = await ledgerEntries(cluster, other);
    expect((await verifyLedger(entries, { verify: nodeEd25519Verify })).ok).toBe(true);
    expect(await roundEntries(cluster, leader, id)).toHaveLength(1);
  }, 120_000);

  it('drops only the devices of a node that does not lead when it is killed, and the next round commits over the rest', async () => {
    const leader = await leaderOf(cluster);
    const victim = cluster.nodes.find((n) => n !== leader)!;
    victim.child.kill('SIGKILL');
    const stillConnected = clients.filter((c) => c.node !== victim.nodeId);
    await waitFor(async () => (await clusterView(cluster, leader)).connectedClients === stillConnected.length, 10_000, 'the leader counting only the devices still connected');
    expect(stillConnected.every((c) => c.client.socket.connected)).toBe(true);
    const launched = await launchOn(cluster, leader, FOUR);
    expect(launched.status, JSON.stringify(launched.body)).toBe(201);
    const record = await waitForRoundOn(cluster, leader, launched.body.rounds![0]!.id, 60_000);
    expect(record.status, record.reason ?? '').toBe('committed');
    expect(record.participants).toBe(4);
    // A replacement node joins, with devices of its own.
    const replacement = await cluster.startNode('n4');
    clients.push(...(await startClusterClients(cluster, 2, () => replacement, () => ({}), 6)));
    await waitFor(async () => (await clusterView(cluster, leader)).connectedClients === 6, 10_000, 'the leader counting the new node\'s devices');
  }, 120_000);

  it('moves the rounds lease when the leader is killed (-9) mid-round: the round is aborted within the bound, and the ledger verifies', async () => {
    const leader = await leaderOf(cluster);
    const survivor = live().find((n) => n !== leader)!;
    const launched = await launchOn(cluster, survivor, { ...FOUR, deadlines: { checkinMs: 15_000, trainingMs: 30_000 } });
    expect(launched.status, JSON.stringify(launched.body)).toBe(201);
    const id = launched.body.rounds![0]!.id;
    await waitFor(async () => (await roundOn(cluster, leader, id)).stage === 'training', 20_000, `round ${id} training`);
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    const record = await waitForRoundOn(cluster, survivor, id, FAILOVER_BOUND_MS + 5_000);
    const tookMs = Date.now() - killedAt;
    expect(record.status).toBe('aborted');
    expect(record.reason).toBe(LEADER_LOST_REASON);
    expect(tookMs).toBeLessThan(FAILOVER_BOUND_MS);
    const next = await leaderOf(cluster);
    expect(next).not.toBe(leader);
    // The abort is entered once, with no spend (nothing was released), and the chain verifies.
    expect(await outcomesOnceAborted(cluster, survivor, id)).toEqual(['aborted']);
    expect((await verifyLedger(await ledgerEntries(cluster, survivor), { verify: nodeEd25519Verify })).ok).toBe(true);
  }, 120_000);

  it('aborts within the bound a round whose leader is killed (-9) during check-in, and a replacement node joins', async () => {
    const leader = await leaderOf(cluster);
    const survivor = live().find((n) => n !== leader)!;
    // A connected device that never checks in holds check-in open until its deadline.
    await holdCheckinOpen(survivor);
    const launched = await launchOn(cluster, survivor, { ...FOUR, deadlines: { checkinMs: 60_000, trainingMs: 20_000 } });
    expect(launched.status, JSON.stringify(launched.body)).toBe(201);
    const id = launched.body.rounds![0]!.id;
    await waitFor(async () => (await roundOn(cluster, leader, id)).stage === 'checkin', 20_000, `round ${id} in check-in`);
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    const record = await waitForRoundOn(cluster, survivor, id, FAILOVER_BOUND_MS + 5_000);
    expect(Date.now() - killedAt).toBeLessThan(FAILOVER_BOUND_MS);
    expect(record).toMatchObject({ status: 'aborted', reason: LEADER_LOST_REASON });
    expect(await outcomesOnceAborted(cluster, survivor, id)).toEqual(['aborted']);
    await cluster.startNode('n5');
  }, 120_000);

  it('lets exactly one of two launches racing on two nodes for the last of a budget pass', async () => {
    const [a, b] = live();
    // A launch cap between the epsilon with one more round and with two: one racer fits, not both
    // (nothing is pending now, so each projection is what is spent plus the rounds it names).
    await quiescent(cluster, a!);
    const projected = async (rounds: number) => {
      const res = await launchOn(cluster, a!, { ...FOUR, rounds, epsilonCap: 1e-9 });
      expect(res.body.code, JSON.stringify(res.body)).toBe('BUDGET_EXCEEDED');
      return Number(/would bring cumulative epsilon to ([\d.]+)/.exec(res.body.message!)![1]);
    };
    const [one, two] = [await projected(1), await projected(2)];
    expect(two).toBeGreaterThan(one);
    const cap = (one + two) / 2;
    // A connected device that never checks in holds the winner's round in check-in, so it is still
    // unfinished (and counted) when the other launch is checked, however the two interleave.
    await holdCheckinOpen(a!);
    const race = await Promise.all([a!, b!].map((n) => launchOn(cluster, n, { ...FOUR, epsilonCap: cap })));
    expect(race.map((r) => r.status).sort(), JSON.stringify({ one, two, cap, race: race.map((r) => r.body.code ?? (r.body as { budget?: unknown }).budget) })).toEqual([201, 409]);
    expect(race.find((r) => r.status === 409)!.body.code).toBe('BUDGET_EXCEEDED');
  }, 120_000);

  it('audits the PostgreSQL ledger as it audits a SQLite one: verify --postgres agrees with the served bundle, and export --postgres verifies', async () => {
    const node = live()[0]!;
    await quiescent(cluster, node);
    const fromDb = await auditJson<{ ok: boolean; entries: number; epsilon: unknown }>('verify', '--postgres', cluster.db.url);
    expect(fromDb.ok, JSON.stringify(fromDb)).toBe(true);
    const fromServer = await auditJson<{ ok: boolean; entries: number; epsilon: unknown }>('verify', '--server', node.url, '--token', cluster.auditor);
    expect(fromServer.ok).toBe(true);
    expect(fromDb.entries).toBe(fromServer.entries);
    expect(fromDb.epsilon).toEqual(fromServer.epsilon);
    const out = path.join(cluster.keyDir, 'bundle.json');
    const exported = await auditJson<{ entries: number }>('export', '--postgres', cluster.db.url, '--data-dir', cluster.keyDir, '--out', out);
    expect(exported.code).toBe(0);
    const fromBundle = await auditJson<{ ok: boolean; entries: number }>('verify', '--bundle', out);
    expect(fromBundle.ok).toBe(true);
    expect(fromBundle.entries).toBeGreaterThanOrEqual(fromDb.entries);
  }, 60_000);

  it('manages API tokens in the shared database: a token created there authenticates on every node, and once revoked on none', async () => {
    const created = await portraitWatchingTfjs(['token', 'create', '--role', 'auditor', '--name', 'cluster audit', '--postgres', cluster.db.url, '--json']);
    const { id, token } = JSON.parse(created.stdout) as { id: number; token: string };
    for (const n of live()) expect((await api(n, token, 'GET', '/api/v1/cluster')).status).toBe(200);
    const revoked = await portraitWatchingTfjs(['token', 'revoke', String(id), '--postgres', cluster.db.url, '--json']);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ id, revokedAt: expect.any(String) });
    for (const n of live()) expect((await api(n, token, 'GET', '/api/v1/cluster')).status).toBe(401);
  }, 60_000);
});

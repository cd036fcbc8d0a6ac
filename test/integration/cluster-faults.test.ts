/**
 * Cluster nodes when their engines fail: a node started with an unreachable PostgreSQL or Redis
 * fails at start with UNAVAILABLE naming which and leaves nothing running; a Redis restart in the
 * middle of a round (a private redis-server, so the shared one is untouched) makes the nodes report
 * unready and end their devices' sessions, the round reaches a final state with a ledger that
 * verifies, and once Redis is back the devices return and the next round commits.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { LedgerEntrySchema } from '../../shared/ledger/entry.ts';
import { verifyLedger } from '../../shared/ledger/verify.ts';
import { nodeEd25519Verify } from '../../server/auth/native-ed25519.ts';
import type { LaunchRequest } from '../../shared/protocol/messages.ts';
import { createTestDatabase, postgresAvailable } from '../helpers/postgres.ts';
import { redisAvailable } from '../helpers/redis.ts';
import type { TestClient } from './harness.ts';
import { api, SECAGG_FIVE, stopAll, waitFor } from './harness.ts';
import type { TestCluster } from './cluster-harness.ts';
import { clusterView, launchOn, leaderOf, logNodesOnFailure, REDIS_URL, startCluster, startClusterClients, startNodeProcess, waitForRoundOn } from './cluster-harness.ts';

const available = (await postgresAvailable()) && (await redisAvailable());

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => (socket.end(), resolve(true)));
        socket.once('error', () => resolve(false));
      }),
    10_000,
    `redis-server on port ${port}`,
  );
  return child;
}

describe.skipIf(!available)('cluster nodes when PostgreSQL or Redis fails', () => {
  it('refuses to start with an unreachable PostgreSQL or Redis, naming which (UNAVAILABLE), and leaves nothing running', async () => {
    const db = await createTestDatabase();
    try {
      const deadPort = await freePort();
      const cases = [
        { args: ['--postgres', `postgres://postgres:secret@127.0.0.1:${deadPort}/portrait`, '--redis', REDIS_URL], names: /PostgreSQL at postgres:\/\/postgres(:\*+)?@127\.0\.0\.1:\d+\/portrait is unreachable/ },
        { args: ['--postgres', db.url, '--redis', `redis://127.0.0.1:${deadPort}`], names: /Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/ },
      ];
      for (const { args, names } of cases) {
        const failed = await startNodeProcess([...args, '--data-dir', `/tmp/portrait-unreachable-${deadPort}`], {}).then(
          () => null,
          (err: Error & { stderr: string; code: number | null }) => err,
        );
        expect(failed, `started with ${args.join(' ')}`).not.toBeNull();
        expect(failed!.code).not.toBe(0);
        expect(failed!.stderr, failed!.message).toMatch(/UNAVAILABLE/);
        expect(failed!.stderr).toMatch(names);
        expect(failed!.stderr).not.toMatch(/secret/);
      }
    } finally {
      await db.drop();
    }
  }, 60_000);

  it('counts the spend of a leader killed (-9) right after it entered a release: the next leader aborts the round, and the ledger keeps the release', async () => {
    await useNodeBackend();
    // The first node, which takes the lease, kills itself right after its ledger's release entry (crash-seam.ts); the second does not.
    const cluster = await startCluster(1, ['--lease-ttl', '2000'], { PORTRAIT_TEST_CRASH_AT: 'after-ledger' });
    let clients: TestClient[] = [];
    try {
      const leader = await leaderOf(cluster);
      const other = await cluster.startNode('n2', [], { PORTRAIT_TEST_CRASH_AT: '' });
      clients = await startClusterClients(cluster, 4, () => other);
      await waitFor(async () => (await clusterView(cluster, leader)).connectedClients === 4, 10_000, 'the leader counting the devices');
      const launched = await launchOn(cluster, other, { ...SECAGG_FIVE, deadlines: { checkinMs: 15_000, trainingMs: 20_000 }, clientsPerRound: 4, minClients: 3, secagg: { mode: 'on', k: 3, t: 3, stageMs: 10_000 } } as LaunchRequest);
      expect(launched.status, JSON.stringify(launched.body)).toBe(201);
      const id = launched.body.rounds![0]!.id;
      expect(await leader.exited).toBeNull();
      const record = await waitForRoundOn(cluster, other, id, 20_000);
      expect(record.status).toBe('aborted');
      // The new leader enters the abort right after it marks the round aborted.
      let entries: unknown[] = [];
      const outcomesOf = () => entries.map((e) => LedgerEntrySchema.parse(e)).flatMap((e) => (e.kind === 'round' && e.round.roundId === id ? [e.round] : []));
      await waitFor(async () => {
        entries = (await api<{ entries: unknown[] }>(other, cluster.auditor, 'GET', '/api/v1/ledger')).body.entries;
        return outcomesOf().length === 2;
      }, 5_000, `round ${id}'s abort entry`);
      expect((await verifyLedger(entries, { verify: nodeEd25519Verify })).ok).toBe(true);
      const outcomes = outcomesOf();
      // The release entered before the crash stands (its epsilon counted), then the abort.
      expect(outcomes.map((r) => r.outcome)).toEqual(['released', 'aborted']);
      expect(outcomes[0]!.epsilonRound).toBeGreaterThan(0);
    } finally {
      stopAll(clients);
      await cluster.close();
    }
  }, 120_000);

  describe('a Redis restart in the middle of a round', () => {
    let redisPort: number;
    let redis: ChildProcess;
    let cluster: TestCluster;
    let clients: TestClient[] = [];

    beforeAll(async () => {
      await useNodeBackend();
      redisPort = await freePort();
      redis = await startRedis(redisPort);
      cluster = await startCluster(2, ['--lease-ttl', '2000', '--redis', `redis://127.0.0.1:${redisPort}`]);
      clients = await startClusterClients(cluster, 6, (i) => cluster.nodes[i % 2]!);
      await waitFor(async () => (await clusterView(cluster, cluster.nodes[0]!)).connectedClients === 6, 10_000, 'both nodes counting the six devices');
    }, 120_000);

    afterAll(async () => {
      stopAll(clients);
      await cluster?.close();
      redis?.kill('SIGKILL');
    });

    it('reports unready and ends device sessions while Redis is down; the round ends cleanly and the next one commits once it is back', async () => {
      logNodesOnFailure(cluster);
      const leader = await leaderOf(cluster);
      // Check-in closes as soon as every connected device has answered: a long deadline costs nothing unless the machine is slow.
      const request: LaunchRequest = { ...SECAGG_FIVE, deadlines: { checkinMs: 15_000, trainingMs: 20_000 }, secagg: { mode: 'on', dropoutRate: 0.4, corruptFraction: 0, stageMs: 10_000 } } as LaunchRequest;
      const launched = await launchOn(cluster, leader, request);
      expect(launched.status, JSON.stringify(launched.body)).toBe(201);
      const id = launched.body.rounds![0]!.id;
      await waitFor(async () => (await api<{ stage: string }>(leader, cluster.auditor, 'GET', `/api/v1/rounds/${id}`)).body.stage === 'training', 20_000, `round ${id} training`);

      redis.kill('SIGKILL');
      for (const n of cluster.nodes) await waitFor(async () => (await fetch(`${n.url}/readyz`)).status === 503, 10_000, `${n.nodeId} unready`);
      await waitFor(() => clients.every((c) => !c.client.socket.connected), 10_000, 'devices sent away');

      redis = await startRedis(redisPort);
      for (const n of cluster.nodes) await waitFor(async () => (await fetch(`${n.url}/readyz`)).status === 200, 15_000, `${n.nodeId} ready again`);
      const record = await waitForRoundOn(cluster, leader, id, 60_000);
      expect(['committed', 'aborted']).toContain(record.status);
      // Back, and done with the round that ended while they were away (a device still finishing it checks in to no other).
      await waitFor(() => clients.every((c) => c.client.socket.connected && !c.client.busy), 30_000, 'devices back and idle');
      await waitFor(async () => (await clusterView(cluster, leader)).connectedClients === 6, 10_000, 'the leader counting the six devices again');

      // Four of the six: under load a device or two has been seen to sit out the first check-in after
      // the outage (cause not found yet; noted in the issue), and a round of four commits either way.
      const next = await launchOn(cluster, cluster.nodes.find((n) => n !== leader)!, { ...request, clientsPerRound: 4, minClients: 3, secagg: { mode: 'on', k: 3, t: 3, stageMs: 10_000 } } as LaunchRequest);
      expect(next.status, JSON.stringify(next.body)).toBe(201);
      const after = await waitForRoundOn(cluster, leader, next.body.rounds![0]!.id, 60_000);
      expect(after.status, after.reason ?? '').toBe('committed');
      const ledger = await api<{ entries: unknown[] }>(leader, cluster.auditor, 'GET', '/api/v1/ledger');
      expect((await verifyLedger(ledger.body.entries, { verify: nodeEd25519Verify })).ok).toBe(true);
    }, 120_000);
  });
});

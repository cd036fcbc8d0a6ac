/**
 * The dashboard of a cluster node as headless Chromium renders it, on two real coordinator
 * processes sharing PostgreSQL and Redis: the page of the node that does not lead lists both
 * nodes with their devices, marks itself and the leader, and shows the round in flight with the
 * node leading it. Screenshot under artifacts/dashboard/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext } from 'playwright-core';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { artifactPath, chromiumAvailable, launchChromium } from '../browser-harness.ts';
import { postgresAvailable } from '../helpers/postgres.ts';
import { redisAvailable } from '../helpers/redis.ts';
import { FAST, stopAll, waitFor } from '../integration/harness.ts';
import type { TestClient } from '../integration/harness.ts';
import type { TestCluster } from '../integration/cluster-harness.ts';
import { launchOn, leaderOf, startCluster, startClusterClients } from '../integration/cluster-harness.ts';

const run = chromiumAvailable() && (await postgresAvailable()) && (await redisAvailable());

describe.runIf(run)('a cluster node\'s dashboard in Chromium', () => {
  let cluster: TestCluster;
  let context: BrowserContext;
  let clients: TestClient[] = [];

  beforeAll(async () => {
    await useNodeBackend();
    cluster = await startCluster(2, ['--allow-no-dp']);
    context = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    stopAll(clients);
    await cluster?.close();
  });

  it('lists every node with its devices, marks this node and the leader, and names the node leading the round in flight', async () => {
    const leader = await leaderOf(cluster);
    const other = cluster.nodes.find((n) => n !== leader)!;
    clients = await startClusterClients(cluster, 1, () => other);
    // A round that waits in check-in for devices that are not there.
    const launched = await launchOn(cluster, other, { rounds: 1, clientsPerRound: 4, minClients: 3, ...FAST, deadlines: { checkinMs: 60_000, trainingMs: 10_000 } });
    expect(launched.status, JSON.stringify(launched.body)).toBe(201);
    const id = launched.body.rounds![0]!.id;

    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${other.url}/dashboard/#token=${cluster.auditor}`);
    await page.waitForSelector('#cluster:not([hidden])');
    // Membership rows are written once a second: the page shows the device once the node's next beat counted it.
    await waitFor(
      async () => (await page.locator('#nodes tbody tr').count()) === 2 && (await page.locator('#flight').innerText()).includes(`round ${id}`) && (await page.locator('#nodes tbody tr').allInnerTexts()).some((r) => r.startsWith(other.nodeId) && /\t1\tready\t/.test(r)),
      20_000,
      'both nodes, the device and the round in flight on the page',
    );
    const rows = await page.locator('#nodes tbody tr').allInnerTexts();
    const row = (nodeId: string) => rows.find((r) => r.startsWith(nodeId))!;
    expect(row(other.nodeId)).toContain('(this node)');
    expect(row(other.nodeId)).toMatch(/\t1\tready\t/);
    expect(row(leader.nodeId)).toContain('leads');
    expect(row(leader.nodeId)).not.toContain('(this node)');
    expect(await page.locator('#flight').innerText()).toContain(`round ${id} · stage checkin · led by node ${leader.nodeId}`);
    expect(await page.locator('#status-line').innerText()).toContain(`across 2 nodes · this is ${other.nodeId}`);
    await page.screenshot({ path: artifactPath('dashboard', 'cluster-node.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
});

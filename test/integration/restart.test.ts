/**
 * The coordinator killed mid-round (SIGKILL of a real `portrait server` process) and restarted
 * on the same data directory and port: the interrupted round is marked aborted with a reason,
 * the committed round and model versions are intact, the clients reconnect on their own, and
 * the next round runs.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FederatedClient } from '../../client/core/client.ts';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { issueEnrollmentToken, randomId } from '../../shared/protocol/enrollment.ts';
import type { ModelRecord, RoundRecord } from '../../shared/protocol/messages.ts';
import { loadOrCreatePlatformKey } from '../../server/auth/platform-key.ts';
import { RESTART_REASON } from '../../server/coordinator.ts';
import { readApiTokens } from '../../server/embedded.ts';
import type { TestCoordinator } from './harness.ts';
import { api, examplesOf, FAST, rawSocket, startTestCoordinator, syntheticPopulation, tempDataDir, waitFor } from './harness.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

function startServerProcess(dataDir: string): Promise<{ child: ChildProcessWithoutNullStreams; url: string; port: number }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/portrait.js'), 'server', '--port', '0', '--data-dir', dataDir, '--dataset', 'synthetic:60', '--json', '--allow-no-dp'], { cwd: ROOT });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        const { url, port } = JSON.parse(out) as { url: string; port: number };
        resolve({ child, url, port });
      } catch {
        // Not the whole document yet.
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
}

describe('coordinator restarted mid-round', () => {
  const dataDir = tempDataDir();
  let child: ChildProcessWithoutNullStreams | undefined;
  let coordinator: TestCoordinator | undefined;
  const clients: FederatedClient[] = [];

  beforeAll(async () => {
    await useNodeBackend();
  });

  afterAll(async () => {
    for (const c of clients) c.stop();
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await coordinator?.close();
  });

  it('aborts the interrupted round on restart, keeps stored data, and runs the next round', async () => {
    const server = await startServerProcess(dataDir);
    child = server.child;
    const tokens = readApiTokens(dataDir);
    const key = loadOrCreatePlatformKey(dataDir);
    if (!tokens) throw new Error('no API tokens');
    const pop = await syntheticPopulation();
    for (const user of pop.prepared.users.train.slice(0, 3)) {
      clients.push(new FederatedClient({ serverUrl: server.url, token: issueEnrollmentToken(key.secretKey, { ttlMs: 3_600_000, now: Date.now() }), examples: examplesOf(user, pop.dataset.startDay), reconnectionDelayMs: 100 }).start());
    }
    await waitFor(() => clients.every((c) => c.socket.connected), 10_000, 'clients connected');
    const remote = { url: server.url };
    const launch = async (body: object) => (await api<{ rounds: RoundRecord[] }>(remote, tokens.operator, 'POST', '/api/v1/rounds', body)).body.rounds[0] as RoundRecord;
    const get = async (id: number) => (await api<RoundRecord>(remote, tokens.auditor, 'GET', `/api/v1/rounds/${id}`)).body;

    const first = await launch({ clientsPerRound: 3, minClients: 3, ...FAST });
    await waitFor(async () => (await get(first.id)).status === 'committed', 20_000, 'first round');
    const committed = await get(first.id);

    // A sleeper checks in and never reports, holding the second round in its training stage.
    const sleeper = await rawSocket(remote, issueEnrollmentToken(key.secretKey, { ttlMs: 3_600_000, now: Date.now() }));
    sleeper.on('round:open', (m) => sleeper.emit('checkin', { roundId: m.roundId, nonce: randomId() }, () => undefined));
    const second = await launch({ clientsPerRound: 4, minClients: 4, ...FAST, deadlines: { checkinMs: 3000, trainingMs: 60_000 } });
    await waitFor(async () => (await get(second.id)).live?.reported === 3, 20_000, 'second round collecting');
    child.kill('SIGKILL');
    await new Promise((resolve) => child?.once('exit', resolve));
    sleeper.close();

    coordinator = await startTestCoordinator(dataDir, { port: server.port });
    const interrupted = await round(coordinator, second.id);
    expect(interrupted.status).toBe('aborted');
    expect(interrupted.reason).toBe(RESTART_REASON);
    expect(await round(coordinator, first.id)).toEqual(committed);
    const models = await api<{ models: ModelRecord[] }>(coordinator, coordinator.auditor, 'GET', '/api/v1/models');
    expect(models.body.models.map((m) => m.version)).toEqual([2, 1]);
    expect((await fetch(`${coordinator.url}/models/2/weights.bin`)).status).toBe(200);

    await waitFor(() => coordinator!.sockets.connectedClients() === 3, 15_000, 'clients reconnect to the restarted coordinator');
    const [third] = (await api<{ rounds: RoundRecord[] }>(coordinator, coordinator.operator, 'POST', '/api/v1/rounds', { clientsPerRound: 3, minClients: 3, ...FAST })).body.rounds;
    await waitFor(async () => ['committed', 'aborted'].includes((await round(coordinator!, third!.id)).status), 20_000, 'third round');
    const after = await round(coordinator, third!.id);
    expect(after.status).toBe('committed');
    expect(after.participants).toBe(3);
    expect(after.baseModelVersion).toBe(2);
    expect(after.modelVersion).toBe(3);
  });
});

async function round(coordinator: TestCoordinator, id: number): Promise<RoundRecord> {
  return (await api<RoundRecord>(coordinator, coordinator.auditor, 'GET', `/api/v1/rounds/${id}`)).body;
}

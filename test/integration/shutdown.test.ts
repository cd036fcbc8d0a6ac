/**
 * Shutting the coordinator down does not wait on clients: a connection that never sends a request
 * (what a browser's speculative preconnect looks like) is dropped after a short grace instead of
 * holding close() until Node's headers timeout.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startTestCoordinator, tempDataDir } from './harness.ts';

describe('coordinator shutdown', () => {
  it('closes within a few seconds while a client holds an idle TCP connection', async () => {
    const coordinator = await startTestCoordinator(tempDataDir());
    const socket = net.connect(coordinator.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const closedByServer = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const started = Date.now();
    await coordinator.close();
    await closedByServer;
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

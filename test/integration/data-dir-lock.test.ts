/**
 * One writer per data directory: while a real coordinator runs on a directory, a second
 * coordinator and `portrait audit rotate-key` are refused with UNAVAILABLE and the ledger is
 * untouched; once it stops (or if its process is gone) they proceed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireDataDirLock, DATA_DIR_LOCK_FILE } from '../../server/data-dir-lock.ts';
import { startTestCoordinator, tempDataDir } from './harness.ts';

const BIN = path.resolve('bin/portrait.js');

function rotate(dataDir: string): { status: number | null; body: { error?: { code: string; message: string }; publicKey?: string } } {
  const r = spawnSync(process.execPath, [BIN, 'audit', 'rotate-key', '--data-dir', dataDir, '--json'], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, body: JSON.parse(r.stdout) as { error?: { code: string; message: string }; publicKey?: string } };
}

describe('data directory lock', () => {
  it('refuses a second coordinator and a key rotation while one runs, and allows both after it stops', async () => {
    const dataDir = tempDataDir();
    const coordinator = await startTestCoordinator(dataDir);
    try {
      const ledgerBefore = fs.readFileSync(path.join(dataDir, 'ledger.db'));
      const refused = rotate(dataDir);
      expect(refused.status).toBe(1);
      expect(refused.body.error).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining(`pid ${process.pid}`) });
      expect(fs.readFileSync(path.join(dataDir, 'ledger.db')).equals(ledgerBefore)).toBe(true);
      await expect(startTestCoordinator(dataDir)).rejects.toThrow(/in use by a coordinator/);
      // The running one is unharmed by the refused attempts.
      expect((await fetch(`${coordinator.url}/healthz`)).status).toBe(200);
    } finally {
      await coordinator.close();
    }
    expect(fs.existsSync(path.join(dataDir, DATA_DIR_LOCK_FILE))).toBe(false);
    const rotated = rotate(dataDir);
    expect(rotated.status).toBe(0);
    expect(rotated.body.publicKey).toMatch(/^[0-9a-f]{64}$/);
  }, 120_000);

  it('takes over a lock whose process is gone', async () => {
    const dataDir = tempDataDir();
    // A pid that cannot be alive: a child that has already exited.
    const gone = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid;
    fs.writeFileSync(path.join(dataDir, DATA_DIR_LOCK_FILE), JSON.stringify({ pid: gone, host: os.hostname(), since: new Date(0).toISOString() }));
    const coordinator = await startTestCoordinator(dataDir);
    try {
      expect(JSON.parse(fs.readFileSync(path.join(dataDir, DATA_DIR_LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
    } finally {
      await coordinator.close();
    }
  });

  it('treats a lock file still being written as held, and an old unreadable one as stale', () => {
    const dataDir = tempDataDir();
    const file = path.join(dataDir, DATA_DIR_LOCK_FILE);
    // A starter creates the file before it writes its body: a second starter must not delete it.
    fs.writeFileSync(file, '');
    expect(() => acquireDataDirLock(dataDir)).toThrow(/still writing the lock/);
    expect(fs.readFileSync(file, 'utf8')).toBe('');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(file, old, old);
    const release = acquireDataDirLock(dataDir);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid });
    release();
    expect(fs.existsSync(file)).toBe(false);
  });
});

/**
 * Readiness (server/storage/readiness.ts): ready only while the data directory takes a probe write
 * and the round runner retries no store write; the probe runs at most once per interval, and the
 * embedded default's probe leaves nothing behind.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StorageFailure } from '../../../server/storage/failures.ts';
import { dataDirWriteProbe, ReadinessCheck } from '../../../server/storage/readiness.ts';

describe('readiness', () => {
  it('reports the probe failure and the write being retried, and probes at most once per interval', async () => {
    let now = 0;
    let full = false;
    let probes = 0;
    let retrying: StorageFailure | null = null;
    const check = new ReadinessCheck({
      storageFailure: () => retrying,
      clock: () => now,
      probe: async () => {
        probes++;
        if (full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      },
    });
    expect(await check.report()).toEqual({ ready: true });
    full = true;
    expect(await check.report()).toEqual({ ready: true });
    expect(probes).toBe(1);
    now += 1_000;
    const report = await check.report();
    expect(report).toMatchObject({ ready: false, code: 'UNAVAILABLE', probe: { reason: expect.stringContaining('(ENOSPC)') } });
    expect(report.message).toMatch(/^the data directory takes no writes/);
    retrying = { what: 'round 3: recording its abort', reason: 'storage unavailable (SQLITE_FULL)', since: new Date(0).toISOString(), attempts: 2, retryInMs: 2_000 };
    expect(await check.report()).toMatchObject({ ready: false, retrying, message: 'round 3: recording its abort: storage unavailable (SQLITE_FULL) (retry 3 in 2000 ms)' });
    full = false;
    retrying = null;
    now += 1_000;
    expect(await check.report()).toEqual({ ready: true });
    expect(probes).toBe(3);
  });

  it("the data directory probe writes, syncs and removes its file, and fails where nothing can be written", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-readyz-'));
    await dataDirWriteProbe(dir)();
    expect(fs.readdirSync(dir)).toEqual([]);
    await expect(dataDirWriteProbe(path.join(dir, 'gone'))()).rejects.toThrow(/ENOENT/);
  });
});

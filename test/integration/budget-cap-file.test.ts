/**
 * The deployment cap a coordinator runs with is recorded in its data directory, so an auditor's
 * offline `portrait audit report|export --data-dir` reports against the same cap as the server
 * (and a restart without a cap records that too).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBudgetCap } from '../../server/ledger/data-dir.ts';
import { startTestCoordinator, tempDataDir } from './harness.ts';

const BIN = path.resolve('bin/portrait.js');

function report(dataDir: string): { cap: unknown; budgetLeft: unknown } {
  const r = spawnSync(process.execPath, [BIN, 'audit', 'report', '--data-dir', dataDir, '--format', 'json'], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { cap: unknown; budgetLeft: unknown };
}

describe('deployment cap in the data directory', () => {
  it('is what offline audits report against, and follows the last start', async () => {
    const dataDir = tempDataDir();
    const capped = await startTestCoordinator(dataDir, { epsilonCap: { epsilon: 7, delta: 1e-5 } });
    await capped.close();
    expect(readBudgetCap(dataDir)).toEqual({ epsilon: 7, delta: 1e-5 });
    expect(report(dataDir)).toMatchObject({ cap: { epsilon: 7, delta: 1e-5 }, budgetLeft: 7 });
    const uncapped = await startTestCoordinator(dataDir);
    await uncapped.close();
    expect(readBudgetCap(dataDir)).toBeNull();
    expect(report(dataDir)).toMatchObject({ cap: null });
  }, 120_000);
});

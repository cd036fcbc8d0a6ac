/**
 * `portrait demo --rounds 2 --private-rounds 1 --exit --json` as a real process: the embedded
 * coordinator, the simulated fleet in worker threads (started from bin/portrait.js through tsx),
 * two plain rounds and one distributed-DP + SecAgg+ round, and exactly one JSON document
 * `{ rounds: [...] }` on stdout with the documented record shape.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { RoundRecord } from '../../shared/protocol/messages.ts';

const run = promisify(execFile);
const bin = path.resolve('bin/portrait.js');

describe('portrait demo (real CLI process)', () => {
  it('runs plain and private rounds on the synthetic fleet and prints the round records as JSON', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-demo-it-'));
    const { stdout, stderr } = await run(process.execPath, [bin, 'demo', '--rounds', '2', '--exit', '--json', '--port', '0', '--users', '300', '--clients-per-round', '40', '--private-rounds', '1', '--private-clients', '10', '--data-dir', dataDir], { maxBuffer: 1 << 24, timeout: 90_000 });
    const { rounds } = JSON.parse(stdout) as { rounds: RoundRecord[] };
    expect(stderr).toMatch(/simulated devices in 2 worker threads/);
    expect(rounds).toHaveLength(3);
    for (const r of rounds) {
      expect(r.id).toEqual(expect.any(Number));
      expect(['committed', 'aborted']).toContain(r.status);
      if (r.status === 'aborted') expect(r.reason).toEqual(expect.any(String));
      expect(r.participants).toEqual(expect.any(Number));
      expect(r.durationMs).toBeGreaterThan(0);
    }
    // With no injected faults every round commits, each scored on the held-out users.
    expect(rounds.map((r) => r.status)).toEqual(['committed', 'committed', 'committed']);
    for (const r of rounds.slice(0, 2)) expect(r.participants).toBe(40);
    // The last round is private: distributed DP with SecAgg+, its epsilon accounted.
    const priv = rounds[2]!;
    expect(priv.participants).toBe(10);
    expect(priv.privacy).toMatchObject({ mode: 'distributed', released: true, secagg: 'on', epsilonRound: expect.any(Number) });
    expect(priv.secagg).toMatchObject({ n: 10, survivors: 10 });
    for (const r of rounds) {
      for (const metric of ['microAuc', 'recallAt5']) expect(r.metrics?.heads?.interests?.[metric]).toEqual(expect.any(Number));
      expect(r.metrics?.heads?.purchase?.auc).toEqual(expect.any(Number));
    }
    expect(rounds[1]!.modelVersion).toBe(rounds[0]!.modelVersion! + 1);
    expect(rounds[2]!.modelVersion).toBe(rounds[1]!.modelVersion! + 1);
    // The rounds persisted in the data directory the demo was given.
    expect(fs.existsSync(path.join(dataDir, 'api-tokens.json'))).toBe(true);
  }, 100_000);
});

/**
 * `portrait demo --rounds 2 --baseline-rounds 1 --exit --json` as a real process: the embedded
 * coordinator under a deployment cap, the simulated fleet in worker threads (started from
 * bin/portrait.js), two private rounds (distributed DP + SecAgg+, Poisson over the fleet) then one
 * opted-in non-private baseline, and exactly one JSON document `{ initial, rounds, privacy }` on
 * stdout: the untrained model's held-out metrics, the round records, the cumulative epsilon.
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

interface DemoJson {
  initial: { modelVersion: number; metrics: { heads: Record<string, Record<string, number | null>> } };
  rounds: RoundRecord[];
  federatedEvaluation: RoundRecord | null;
  privacy: { epsilonCumulative: number | null; delta: number; cap: { epsilon: number; delta: number } | null; plan: { noiseMultiplier: number; samplingRate: number; population: number; t: number; epsilonPerRound: number; epsilon: number } };
}

describe('portrait demo (real CLI process)', () => {
  it('runs private rounds by default, under the deployment cap, then an opted-in baseline, and prints round 0 and the records as JSON', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-demo-it-'));
    const { stdout, stderr } = await run(process.execPath, [bin, 'demo', '--rounds', '2', '--baseline-rounds', '1', '--exit', '--json', '--port', '0', '--users', '600', '--clients-per-round', '40', '--data-dir', dataDir], { maxBuffer: 1 << 24, timeout: 150_000 });
    const demo = JSON.parse(stdout) as DemoJson;
    expect(stderr).toMatch(/simulated devices in 2 worker threads/);
    expect(stderr).toMatch(/launched 2 private rounds: distributed DP .* Poisson sampling of each of the \d+ devices/);
    const { plan } = demo.privacy;
    expect(plan.samplingRate).toBeCloseTo(40 / plan.population, 12);
    expect(plan.epsilon).toBeLessThanOrEqual(2.4);
    // No cap admits a release without DP: with baseline rounds the demo runs without one, and says so.
    expect(demo.privacy.cap).toBeNull();
    expect(stderr).toMatch(/no deployment cap \(--epsilon-cap\) is set, since no cap admits them/);
    // Round 0: the untrained model, scored on the same held-out users as every round.
    for (const metric of ['microAuc', 'recallAt5']) expect(demo.initial.metrics.heads.interests?.[metric]).toEqual(expect.any(Number));
    expect(demo.initial.modelVersion).toBe(1);

    const { rounds } = demo;
    expect(rounds.map((r) => r.status)).toEqual(['committed', 'committed', 'committed']);
    const [first, second, baseline] = rounds as [RoundRecord, RoundRecord, RoundRecord];
    for (const r of [first, second]) {
      expect(r.config.selection).toBe('poisson');
      expect(r.privacy).toMatchObject({ mode: 'distributed', released: true, secagg: 'on', samplingMethod: 'poisson', noiseMultiplier: plan.noiseMultiplier, epsilonRound: expect.any(Number) });
      expect(r.secagg?.survivors).toBe(r.participants);
      for (const metric of ['microAuc', 'recallAt5']) expect(r.metrics?.heads?.interests?.[metric]).toEqual(expect.any(Number));
    }
    // The cumulative epsilon is finite after the private rounds (nothing was released without DP before them)...
    expect(second.privacy?.epsilonCumulative).toBeGreaterThan(first.privacy?.epsilonCumulative as number);
    expect(second.privacy?.epsilonCumulative).toBeLessThanOrEqual(plan.epsilon + 1e-9);
    // ...and unbounded once the opted-in baseline released a model without DP.
    expect(baseline.privacy?.mode).toBe('none');
    expect(demo.privacy.epsilonCumulative).toBeNull();
    expect(rounds.map((r) => r.modelVersion)).toEqual([2, 3, 4]);
    expect(fs.readdirSync(dataDir)).toEqual(expect.arrayContaining(['api-tokens.json']));
  }, 160_000);

  it('by default runs under the deployment cap, which audit verify reads from the data directory', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-demo-it-'));
    const { stdout, stderr } = await run(process.execPath, [bin, 'demo', '--rounds', '1', '--exit', '--json', '--port', '0', '--users', '400', '--clients-per-round', '30', '--data-dir', dataDir], { maxBuffer: 1 << 24, timeout: 150_000 });
    const demo = JSON.parse(stdout) as DemoJson;
    expect(demo.privacy.cap).toEqual({ epsilon: 8, delta: 1e-6 });
    expect(demo.rounds.map((r) => [r.status, r.privacy?.mode])).toEqual([['committed', 'distributed']]);
    // Then the devices evaluated the trained version on their own data, under DP + SecAgg+, also in the ledger.
    const federated = demo.federatedEvaluation!;
    expect(federated).toMatchObject({ status: 'committed', config: { task: 'analytics', query: { statistic: 'evaluate', versions: [demo.rounds[0]!.modelVersion] } }, privacy: { mode: 'distributed', secagg: 'on', released: true } });
    expect(federated.result?.summary).toMatchObject({ statistic: 'evaluate', versions: [{ version: demo.rounds[0]!.modelVersion }] });
    expect(stderr).toMatch(/federated evaluation of v2 by \d+ devices on their own data .*\n {2}interests microAUC .*\(held-out 0\.\d{4}\)/);
    expect(demo.privacy.epsilonCumulative).toBe(federated.privacy?.epsilonCumulative);
    expect(demo.privacy.epsilonCumulative).toBeGreaterThan(demo.rounds[0]!.privacy?.epsilonCumulative as number);
    // The cap is the data directory's (the compliance page and the ledger's budget checks read it); the ledger verifies.
    expect(JSON.parse(fs.readFileSync(path.join(dataDir, 'budget-cap.json'), 'utf8'))).toMatchObject({ cap: { epsilon: 8, delta: 1e-6 } });
    const verify = await run(process.execPath, [bin, 'audit', 'verify', '--data-dir', dataDir, '--json'], { maxBuffer: 1 << 24, timeout: 60_000 });
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, epsilon: demo.privacy.epsilonCumulative, delta: 1e-6 });
  }, 160_000);
});

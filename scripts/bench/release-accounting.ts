/**
 * What the coordinator reads at each release and each launch as the round history grows: before,
 * the runner listed and parsed every stored round at every release (summing the finished rounds'
 * cached RDP curves) and the launch budget listed every round to find the pending ones; now the
 * runner keeps a PrivacyHistory (read once, then one round added per finish) and the launch reads
 * only the unfinished rounds (`RoundStore.unfinished`, on the status index). Both paths run in one
 * process against the same SQLite file of N finished DP rounds, interleaved; the table reports
 * medians and their ratio and replaces its section of docs/benchmarks.md unless --no-append.
 * Usage: npx tsx scripts/bench/release-accounting.ts [--rounds 1000,5000,20000] [--reps 15] [--no-append]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildPrivacyConfig } from '../../shared/privacy/config.ts';
import { DEFAULT_RDP_ORDERS, epsilonFromRdp } from '../../shared/privacy/rdp.ts';
import { parseLaunchRequest } from '../../shared/protocol/messages.ts';
import type { PrivacySpec, RoundRecord } from '../../shared/protocol/messages.ts';
import { privacyInput } from '../../shared/protocol/privacy.ts';
import { configuredPrivacyRecord, PrivacyHistory, recordRdp } from '../../server/rounds/accounting.ts';
import { openSqliteStores } from '../../server/storage/sqlite.ts';
import { flag, numberList, numberOption } from './args.ts';
import { markdownTable, writeBenchmark } from './report.ts';

const sizes = numberList('--rounds', [1000, 5000, 20000]);
const reps = numberOption('--reps', 15);

const { spec } = parseLaunchRequest({ clientsPerRound: 50, privacy: { mode: 'distributed', noiseMultiplier: 8 } });
const privacy = spec.privacy as PrivacySpec;
const config = buildPrivacyConfig(privacyInput(privacy, 20_000, { method: 'fixed', rate: 1 }, 50, { allowCentral: false, allowNone: false }));
const configured = configuredPrivacyRecord(privacy, config, 'fixed', true);
const releasedRecord = PrivacyHistory.of([]).release(configured);
const metrics = { heads: { interests: { microAuc: 0.85, recallAt5: 0.63 }, purchase: { auc: 0.74 }, spending: { accuracy: 0.6, macroF1: 0.5, auc: 0.67 } }, aggregate: { examples: 50, weight: 50, updateNorm: 0.1 } };

/** The pre-change release: every stored round listed and parsed, cached curves summed. */
async function releaseBefore(stores: ReturnType<typeof openSqliteStores>, cache: Map<number, Float64Array | null>): Promise<number> {
  const all = await stores.rounds.list(Number.MAX_SAFE_INTEGER);
  const total = Float64Array.from(recordRdp({ ...configured, released: true }) as Float64Array);
  for (const r of all) {
    let rdp = cache.get(r.id);
    if (rdp === undefined) {
      rdp = r.privacy ? recordRdp(r.privacy) : null;
      cache.set(r.id, rdp);
    }
    if (rdp) for (let i = 0; i < total.length; i++) total[i] = (total[i] as number) + (rdp[i] as number);
  }
  return epsilonFromRdp(DEFAULT_RDP_ORDERS, total, privacy.delta).epsilon;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const rows: (string | number)[][] = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-release-bench-'));
const stores = openSqliteStores(dir);
try {
  for (const n of sizes) {
    const have = (await stores.rounds.list(1))[0]?.id ?? 0;
    const created = await stores.rounds.createRounds(Array.from({ length: n - have }, () => spec), new Date().toISOString());
    for (const r of created) await stores.rounds.update(r.id, { status: 'committed', stage: 'committed', participants: 50, selected: 50, privacy: releasedRecord, metrics });
    const cache = new Map<number, Float64Array | null>();
    await releaseBefore(stores, cache); // the long-running runner's cache is warm
    const history = PrivacyHistory.of(await stores.rounds.list(Number.MAX_SAFE_INTEGER));
    const last = (await stores.rounds.get(n)) as RoundRecord;
    const times = { releaseBefore: [] as number[], releaseAfter: [] as number[], launchBefore: [] as number[], launchAfter: [] as number[] };
    let check = 0;
    for (let rep = 0; rep < reps; rep++) {
      let t = performance.now();
      check += await releaseBefore(stores, cache);
      times.releaseBefore.push(performance.now() - t);
      t = performance.now();
      history.add(last); // the finished round the runner adds (already counted: a no-op, as cheap as a new one)
      check -= history.release(configured).epsilonCumulative as number;
      times.releaseAfter.push(performance.now() - t);
      t = performance.now();
      (await stores.rounds.list(Number.MAX_SAFE_INTEGER)).filter((r) => r.status === 'pending' || r.status === 'running');
      times.launchBefore.push(performance.now() - t);
      t = performance.now();
      await stores.rounds.unfinished();
      times.launchAfter.push(performance.now() - t);
    }
    if (Math.abs(check) > 1e-6 * reps) throw new Error(`the two release paths disagree on the cumulative epsilon (sum of differences ${check})`);
    const [rb, ra, lb, la] = [times.releaseBefore, times.releaseAfter, times.launchBefore, times.launchAfter].map(median) as [number, number, number, number];
    rows.push([n.toLocaleString('en-US'), rb.toFixed(2), ra.toFixed(3), (rb / ra).toFixed(0), lb.toFixed(2), la.toFixed(3), (lb / la).toFixed(0)]);
    process.stderr.write(`${n} rounds done\n`);
  }
} finally {
  stores.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

const table = markdownTable(['finished rounds stored', 'release before, ms', 'release now, ms', 'ratio', 'launch pending-scan before, ms', 'launch now, ms', 'ratio'], rows);
const notes = `Medians of ${reps} interleaved repetitions on one SQLite file (server/storage/sqlite.ts) of finished distributed-DP rounds (records ~1.3 KB, as the runner writes them). "release": the cumulative-epsilon bookkeeping of one release (before: list and parse every round, sum the cached RDP curves; now: PrivacyHistory.release, plus the add of a finished round). Both give the same epsilon (checked). "launch": finding the pending and running rounds the launch budget projects (before: list every round and filter; now: RoundStore.unfinished on the status index), with none pending.`;
if (flag('--no-append')) process.stdout.write(`${table}\n\n${notes}\n`);
else writeBenchmark({ key: 'release-accounting', title: 'Release and launch bookkeeping against the round history', tfjsBackend: 'n/a (no tensors)', table, notes });

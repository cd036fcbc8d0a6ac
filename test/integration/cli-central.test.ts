import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const bin = path.resolve('bin/portrait.js');

async function portrait(args: string[]): Promise<{ json: Record<string, unknown>; stderr: string }> {
  const { stdout, stderr } = await run(process.execPath, [bin, ...args], { maxBuffer: 1 << 24 });
  // --json means exactly one JSON document on stdout and nothing else there.
  return { json: JSON.parse(stdout) as Record<string, unknown>, stderr };
}

type Scores = Record<string, Record<string, number>>;

/** Every head carries model − best baseline with a finite interval; the heuristic and logistic baselines are there. */
function expectBaselineComparisons(json: Record<string, unknown>, heads: string[]): void {
  const results = json.heads as Record<string, { userAuc?: number; vsBest?: { baseline: string; metric: string; delta: number; ci: [number, number] } }>;
  const baselines = json.baselines as Record<string, Scores>;
  expect(Number.isFinite(results.interests?.userAuc)).toBe(true);
  for (const name of ['popularity', 'ownShare', 'ownHistory', 'popularityActivity', 'logistic']) expect(Number.isFinite(baselines[name]?.interests?.userAuc), name).toBe(true);
  for (const name of ['recency', 'activeDays', 'hasBought', 'logistic']) expect(Number.isFinite(baselines[name]?.purchase?.auc), name).toBe(true);
  expect(Number.isFinite(baselines.ownPriceTier?.spending?.macroF1)).toBe(true);
  for (const head of heads) {
    const vs = results[head]?.vsBest;
    expect(vs, head).toBeDefined();
    expect(Object.keys(baselines)).toContain(vs?.baseline);
    expect(vs?.metric).toBe({ interests: 'userAuc', purchase: 'auc', spending: 'macroF1' }[head]);
    for (const v of [vs?.delta, ...(vs?.ci ?? [])]) expect(Number.isFinite(v), head).toBe(true);
    expect(vs?.ci[0]).toBeLessThanOrEqual(vs?.ci[1] as number);
    expect((json.bestBaselines as Record<string, { baseline: string }>)[head]?.baseline).toBe(vs?.baseline);
  }
}

describe('portrait train-central / evaluate / profile (real CLI processes)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-cli-'));
  const modelDir = path.join(dir, 'model');

  it('trains on the synthetic population and reports heads, baselines, split and windows', async () => {
    const { json, stderr } = await portrait(['train-central', '--dataset', 'synthetic:300', '--epochs', '2', '--out', modelDir, '--json']);
    // One short line, whichever backends this machine could install (its exact words: test/unit/model/backend.test.ts).
    expect(stderr).toMatch(/^tfjs backend: (node-gpu|node|wasm|cpu)( \([^)\n]*\))?$/m);
    const split = json.split as { users: Record<string, number>; method: string };
    expect(split.users.train + split.users.validation + split.users.test).toBe(300);
    expect(split.method).toMatch(/seed 17/);
    expect((json.windows as unknown[]).length).toBe(4);
    const heads = json.heads as Scores;
    expect(Object.keys(heads)).toEqual(['interests', 'purchase', 'spending']);
    for (const m of ['microAuc', 'auc']) expect(heads.interests?.[m]).toBeGreaterThan(0.5);
    expect(heads.interests?.recallAt5).toBeGreaterThan(0);
    for (const m of ['accuracy', 'macroF1', 'auc']) expect(typeof heads.purchase?.[m]).toBe('number');
    const baselines = json.baselines as Record<string, Scores>;
    expect(baselines.majority?.purchase?.auc).toBe(0.5);
    expect(baselines.popularity?.interests?.microAuc).toBeGreaterThan(0.5);
    expect(baselines.ownHistory?.interests?.recallAt5).toBeGreaterThan(0);
    expectBaselineComparisons(json, ['interests', 'purchase', 'spending']);
    expect(fs.existsSync(path.join(modelDir, 'model.json'))).toBe(true);
  });

  it('evaluates the saved model on the same test users with the same numbers', async () => {
    const trained = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8')) as { userDefinedMetadata: { portrait: { heads: string[] } } };
    expect(trained.userDefinedMetadata.portrait.heads).toEqual(['interests', 'purchase', 'spending']);
    const { json } = await portrait(['evaluate', '--model', modelDir, '--dataset', 'synthetic:300', '--split', 'test', '--json']);
    const heads = json.heads as Scores;
    expect(heads.interests?.microAuc).toBeGreaterThan(0.5);
    expect((json.split as { evaluated: string }).evaluated).toBe('test');
    expect((json.baselines as Record<string, Scores>).ownHistory?.interests).toBeDefined();
    expectBaselineComparisons(json, ['interests', 'purchase', 'spending']);
  });

  it('computes a portrait from an events file, and refuses bad arguments with a code', async () => {
    const events = path.join(dir, 'me.jsonl');
    const day = 18_060;
    fs.writeFileSync(
      events,
      [
        { userId: 'me', day, type: 'click', itemId: 'i1', category: 'c1', price: 12 },
        { userId: 'me', day: day + 1, type: 'cart', itemId: 'i2', category: 'c2', price: 40 },
        { userId: 'me', ts: (day + 2) * 86_400_000 + 5, type: 'buy', itemId: 'i2', category: 'c2', price: 40 },
      ]
        .map((e) => JSON.stringify(e))
        .join('\n'),
    );
    const { json } = await portrait(['profile', '--model', modelDir, '--events', events, '--json']);
    expect(json.user).toBe('me');
    expect(json.events).toBe(3);
    const heads = json.heads as Record<string, { top: { label: string; probability: number }[]; sensitive: boolean }>;
    expect(heads.interests?.top).toHaveLength(5);
    expect(heads.purchase?.top[0]?.probability).toBeGreaterThan(0);
    expect(heads.age).toBeUndefined(); // sensitive heads are off by default

    const failed = await run(process.execPath, [bin, 'train-central', '--dataset', 'nonsense:1', '--json']).catch((e: { stdout: string; code: number }) => e);
    expect((failed as { code: number }).code).toBe(1);
    expect(JSON.parse((failed as { stdout: string }).stdout)).toEqual({ error: { code: 'INVALID_ARGUMENT', message: expect.stringMatching(/"dataset" expected/) } });
  });
});

import { describe, expect, it } from 'vitest';
import type { BehaviourEvent } from '../../../shared/features/events.ts';
import type { Example } from '../../../shared/features/examples.ts';
import { DEFAULT_WINDOWS } from '../../../shared/features/windows.ts';
import { extractFeatures, featureContext } from '../../../shared/features/extract.ts';
import type { ExampleLabels } from '../../../shared/features/extract.ts';
import { SeededRandom } from '../../../shared/features/seeded-random.ts';
import type { Vocabulary } from '../../../shared/features/vocabulary.ts';
import { computeBaselineReport, compareWithBest, fitLogistic, heuristicRows, logisticRows, pairedBootstrap, predictLogistic } from '../../../shared/model/baselines.ts';
import { headMetric, labelledRows } from '../../../shared/model/evaluate.ts';
import { auc } from '../../../shared/model/metrics.ts';
import { headSpec, makeModelConfig } from '../../../shared/model/spec.ts';

const vocabulary: Vocabulary = { categories: ['a', 'b', 'c'], hashBuckets: 1, popularity: [0.5, 0.3, 0.2], logPriceMean: 0, logPriceStd: 1, spendingBounds: [1, 2] };
const config = makeModelConfig({ architecture: 'mlp', heads: ['interests', 'purchase', 'spending'], enableSensitiveHeads: false, vocabulary, windows: DEFAULT_WINDOWS, sequenceLength: 4, hiddenUnits: [4, 4] });
const ctx = featureContext(vocabulary, 0);
const CUT = 10;

function event(userId: string, day: number, category: string, type: BehaviourEvent['type'] = 'click', price?: number): BehaviourEvent {
  return { userId, day, type, itemId: `${category}${day}`, category, ...(price === undefined ? {} : { price }) };
}

function example(userId: string, history: BehaviourEvent[], labels: { interests: number[]; purchase: number; spending?: number }): Example {
  const l: ExampleLabels = { interests: Float32Array.from(labels.interests), purchase: labels.purchase };
  if (labels.spending !== undefined) l.spending = labels.spending;
  return { userId, cutDay: CUT, features: extractFeatures(history, CUT, ctx), labels: l };
}

// A: three clicks in a on day 1, a buy in b at price 10 on day 9. B: one click in c on day 2.
const userA = example('A', [event('A', 1, 'a'), event('A', 1, 'a'), event('A', 1, 'a'), event('A', 9, 'b', 'buy', 10)], { interests: [1, 0, 0], purchase: 1, spending: 2 });
const userB = example('B', [event('B', 2, 'c')], { interests: [0, 0, 1], purchase: 0 });
// Training labels: category a in 3 of 4, b in 1, c in 2; purchase 1 of 4; spending tiers 0, 0, 1.
const train = [
  example('t1', [event('t1', 3, 'a')], { interests: [1, 1, 0], purchase: 0, spending: 0 }),
  example('t2', [event('t2', 3, 'a')], { interests: [1, 0, 1], purchase: 0, spending: 0 }),
  example('t3', [event('t3', 3, 'b')], { interests: [1, 0, 1], purchase: 1, spending: 1 }),
  example('t4', [event('t4', 3, 'c')], { interests: [0, 0, 0], purchase: 0 }),
];

const rowsOf = (rows: Float32Array[] | undefined) => (rows ?? []).map((r) => Array.from(r));

describe('heuristic baselines on a hand-made example set', () => {
  const rows = heuristicRows(config, train, [userA, userB], 1);

  it('interests: popularity, own share, own history + prior (β = 1), popularity × activity', () => {
    const prior = [3 / 4, 1 / 4, 2 / 4];
    for (const r of rowsOf(rows.get('popularity')?.get('interests'))) r.forEach((v, c) => expect(v).toBeCloseTo(prior[c] as number, 6));
    expect(rowsOf(rows.get('ownShare')?.get('interests'))[0]).toEqual([0.75, 0.25, 0]);
    // (n_c + p_c) / (N + 1) with N = 4: (3 + 0.5)/5, (1 + 0.3)/5, (0 + 0.2)/5.
    rowsOf(rows.get('ownHistory')?.get('interests'))[0]?.forEach((v, c) => expect(v).toBeCloseTo([0.7, 0.26, 0.04][c] as number, 5));
    rowsOf(rows.get('popularityActivity')?.get('interests'))[1]?.forEach((v, c) => expect(v).toBeCloseTo((prior[c] as number) * Math.log1p(1), 5));
  });

  it('purchase: recency, active-day share, has bought; majority below one half is 0', () => {
    // Days since the last event over the 10-day span: A 1/10, B 8/10.
    rowsOf(rows.get('recency')?.get('purchase')).forEach((r, i) => expect(r[0]).toBeCloseTo([0.9, 0.2][i] as number, 6));
    rowsOf(rows.get('activeDays')?.get('purchase')).forEach((r, i) => expect(r[0]).toBeCloseTo([0.2, 0.1][i] as number, 6));
    expect(rowsOf(rows.get('hasBought')?.get('purchase'))).toEqual([[1], [0]]);
    expect(rowsOf(rows.get('majority')?.get('purchase'))).toEqual([[0], [0]]);
  });

  it('spending: own bought price tier, else the training majority tier', () => {
    // log1p(10) = 2.40 is above the upper bound 2: high; B never bought: tier 0, the majority.
    expect(rowsOf(rows.get('ownPriceTier')?.get('spending'))).toEqual([[0, 0, 1], [1, 0, 0]]);
  });

  it('best is the highest primary metric among the baselines, and vsBest pairs the same rows', () => {
    const report = computeBaselineReport(config, train, [], [userA, userB]);
    expect(report.best.purchase?.metric).toBe('auc');
    const aucs = Object.values(report.scores).map((s) => s.purchase?.auc ?? Number.NaN).filter((v) => !Number.isNaN(v));
    expect(report.best.purchase?.value).toBe(Math.max(...aucs));
    // A "model" that is the best baseline itself is 0 ahead, with a zero-width interval.
    const best = report.rows.get(report.best.purchase?.baseline ?? '')?.get('purchase') ?? [];
    const vs = compareWithBest(config, new Map([['purchase', best]]), report, [userA, userB], { resamples: 20 });
    expect(vs.purchase?.delta).toBe(0);
  });
});

describe('logistic regression baseline', () => {
  it('learns a separable toy problem, deterministically', () => {
    const x = Float64Array.from({ length: 40 }, (_, i) => i - 19.5);
    const y = Array.from(x, (v) => (v > 0 ? 1 : 0));
    const a = fitLogistic(x, y, 1);
    const b = fitLogistic(x, y, 1);
    expect(Array.from(a.weights)).toEqual(Array.from(b.weights));
    expect(Array.from(x).every((v, i) => (predictLogistic(a, [v]) > 0.5 ? 1 : 0) === y[i])).toBe(true);
    expect(Number.isFinite(a.weights[1])).toBe(true);
  });

  it('matches plain gradient descent on the same penalised objective (slow reference)', () => {
    const random = new SeededRandom(5);
    const n = 200;
    const x = new Float64Array(n * 2);
    const y: number[] = [];
    for (let i = 0; i < n; i++) {
      x[2 * i] = random.normal();
      x[2 * i + 1] = random.normal() * 3 + 1;
      y.push(random.chance(1 / (1 + Math.exp(-(0.5 + 1.5 * (x[2 * i] as number) - 0.3 * (x[2 * i + 1] as number))))) ? 1 : 0);
    }
    const fit = fitLogistic(x, y, 2, { l2: 1 });
    // Gradient descent on Σ log-loss + ½·l2·|w|² over the same standardised columns.
    const w = [0, 0, 0];
    for (let step = 0; step < 20_000; step++) {
      const g = [0, w[1] as number, w[2] as number];
      for (let i = 0; i < n; i++) {
        const z = [1, ((x[2 * i] as number) - (fit.mean[0] as number)) / (fit.std[0] as number), ((x[2 * i + 1] as number) - (fit.mean[1] as number)) / (fit.std[1] as number)];
        const p = 1 / (1 + Math.exp(-z.reduce((s, v, j) => s + v * (w[j] as number), 0)));
        for (let j = 0; j < 3; j++) g[j] = (g[j] as number) + (p - (y[i] as number)) * (z[j] as number);
      }
      for (let j = 0; j < 3; j++) w[j] = (w[j] as number) - (0.5 / n) * (g[j] as number);
    }
    w.forEach((v, j) => expect(fit.weights[j]).toBeCloseTo(v, 4));
  });

  it('gives every head finite probabilities, fitted on the training examples only', () => {
    const rows = logisticRows(config, train, [userA, userB]);
    for (const head of ['interests', 'purchase', 'spending'] as const) {
      const r = rows.get(head) ?? [];
      expect(r).toHaveLength(2);
      for (const row of r) for (const v of row) expect(v > 0 && v < 1).toBe(true);
    }
  });
});

describe('paired bootstrap over users', () => {
  it('covers a known AUC delta on a synthetic pair', () => {
    // Model score = label + N(0, 1): AUC Φ(1/√2) = 0.7602; baseline pure noise: AUC 0.5.
    const random = new SeededRandom(11);
    const spec = headSpec(config, 'purchase');
    const examples: Example[] = [];
    const model: Float32Array[] = [];
    const baseline: Float32Array[] = [];
    for (let u = 0; u < 600; u++) {
      const y = u % 2;
      examples.push({ userId: `u${u}`, cutDay: CUT, features: new Float32Array(0), labels: { interests: new Float32Array(3), purchase: y } });
      model.push(Float32Array.of(y + random.normal()));
      baseline.push(Float32Array.of(random.normal()));
    }
    const { delta, ci, resamples } = pairedBootstrap(spec, 'auc', model, baseline, examples, { resamples: 200, seed: 3 });
    const truth = 0.7602 - 0.5;
    expect(resamples).toBe(200);
    expect(delta).toBeCloseTo(auc(model.map((r) => r[0] as number), examples.map((e) => e.labels.purchase)) - auc(baseline.map((r) => r[0] as number), examples.map((e) => e.labels.purchase)), 12);
    expect(ci[0]).toBeLessThan(truth);
    expect(ci[1]).toBeGreaterThan(truth);
    expect(ci[0]).toBeLessThan(delta);
    expect(ci[1]).toBeGreaterThan(delta);
    expect(ci[1] - ci[0]).toBeLessThan(0.2);
    // Seeded: the same interval again.
    expect(pairedBootstrap(spec, 'auc', model, baseline, examples, { resamples: 200, seed: 3 }).ci).toEqual(ci);
  });

  it.each([
    ['interests', 'userAuc'],
    ['interests', 'microAuc'],
    ['purchase', 'auc'],
    ['interests', 'recallAt5'],
  ] as const)('%s %s: the interval of the fast path equals scoring every resample (slow reference)', (head, metric) => {
    const random = new SeededRandom(21);
    const spec = headSpec(config, head);
    const examples: Example[] = [];
    const model: Float32Array[] = [];
    const baseline: Float32Array[] = [];
    for (let u = 0; u < 30; u++) {
      for (let cut = 0; cut < 1 + (u % 3); cut++) {
        const interests = Float32Array.from({ length: 3 }, () => (random.chance(0.4) ? 1 : 0));
        const purchase = random.chance(0.5) ? 1 : 0;
        examples.push({ userId: `u${u}`, cutDay: CUT + cut, features: new Float32Array(0), labels: { interests, purchase } });
        // Rounded scores, so tied runs occur.
        const truth = head === 'interests' ? interests : Float32Array.of(purchase);
        model.push(truth.map((y) => Math.round((y + random.normal()) * 4) / 4));
        baseline.push(truth.map(() => Math.round(random.normal() * 4) / 4));
      }
    }
    const fast = pairedBootstrap(spec, metric, model, baseline, examples, { resamples: 50, seed: 9 });
    // Reference: draw the same users, score both on the drawn examples, each draw one user.
    const users = [...new Set(examples.map((e) => e.userId))].map((id) => examples.flatMap((e, i) => (e.userId === id ? [i] : [])));
    const score = (rows: Float32Array[], idx: number[], groups: number[]) => headMetric(spec, metric, labelledRows(spec, idx.map((i) => rows[i] as Float32Array), idx.map((i) => examples[i] as Example), groups));
    const draws = new SeededRandom(9);
    const deltas: number[] = [];
    for (let r = 0; r < 50; r++) {
      const drawn = Array.from({ length: users.length }, () => draws.int(users.length));
      const idx = drawn.flatMap((u) => users[u] as number[]);
      const groups = drawn.flatMap((u, d) => (users[u] as number[]).map(() => d));
      const value = score(model, idx, groups) - score(baseline, idx, groups);
      if (!Number.isNaN(value)) deltas.push(value);
    }
    deltas.sort((a, b) => a - b);
    const at = (q: number) => {
      const x = q * (deltas.length - 1);
      return (deltas[Math.floor(x)] as number) + ((deltas[Math.ceil(x)] as number) - (deltas[Math.floor(x)] as number)) * (x - Math.floor(x));
    };
    expect(fast.resamples).toBe(deltas.length);
    expect(fast.ci[0]).toBeCloseTo(at(0.025), 10);
    expect(fast.ci[1]).toBeCloseTo(at(0.975), 10);
    const all = examples.map((_, i) => i);
    expect(fast.delta).toBeCloseTo(score(model, all, all.map((i) => Number((examples[i] as Example).userId.slice(1)))) - score(baseline, all, all.map((i) => Number((examples[i] as Example).userId.slice(1)))), 12);
  });
});

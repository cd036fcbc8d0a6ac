import { describe, expect, it } from 'vitest';
import { accuracy, auc, macroF1, microAuc, ovrAuc, perUserAuc, recallAtK } from '../../../shared/model/metrics.ts';

describe('metrics against hand-computed values', () => {
  it('auc counts ordered pairs, ties as half', () => {
    // positives 0.8, 0.4; negatives 0.6, 0.2: pairs (0.8>0.6, 0.8>0.2, 0.4<0.6, 0.4>0.2) = 3/4.
    expect(auc([0.8, 0.6, 0.4, 0.2], [1, 0, 1, 0])).toBeCloseTo(0.75, 12);
    expect(auc([0.5, 0.5], [1, 0])).toBeCloseTo(0.5, 12);
    expect(auc([0.1, 0.9], [1, 0])).toBe(0);
    expect(Number.isNaN(auc([0.1, 0.2], [1, 1]))).toBe(true);
  });

  it('accuracy and macro-F1', () => {
    const predicted = [0, 0, 1, 1, 2];
    const actual = [0, 1, 1, 1, 0];
    expect(accuracy(predicted, actual)).toBeCloseTo(3 / 5, 12);
    // class 0: tp1 fp1 fn1 → 0.5; class 1: tp2 fp0 fn1 → 0.8; class 2: tp0 fp1 fn0 → 0.
    expect(macroF1(predicted, actual, 3)).toBeCloseTo((0.5 + 0.8 + 0) / 3, 12);
  });

  it('one-vs-rest AUC averages per-class AUCs', () => {
    const probs = [
      [0.7, 0.2, 0.1],
      [0.2, 0.7, 0.1],
      [0.6, 0.3, 0.1],
      [0.1, 0.1, 0.8],
    ];
    const actual = [0, 1, 1, 2];
    // class 0: positive 0.7 vs negatives 0.2, 0.6, 0.1 → 1; class 1: positives 0.7, 0.3 vs 0.2, 0.1 → 1;
    // class 2: positive 0.8 vs 0.1 ×3 → 1.
    expect(ovrAuc(probs, actual, 3)).toBeCloseTo(1, 12);
    expect(ovrAuc([[0.4, 0.6], [0.6, 0.4]], [0, 1], 2)).toBeCloseTo(0, 12);
  });

  it('micro AUC pools all pairs', () => {
    const scores = [
      [0.9, 0.1],
      [0.4, 0.5],
    ];
    const labels = [
      [1, 0],
      [0, 1],
    ];
    // positives 0.9, 0.5 vs negatives 0.1, 0.4 → 4/4.
    expect(microAuc(scores, labels)).toBeCloseTo(1, 12);
  });

  it('recall@k divides hits by positives and skips users without positives', () => {
    const scores = [
      [0.9, 0.8, 0.1, 0.05],
      [0.1, 0.2, 0.3, 0.4],
      [0.5, 0.5, 0.5, 0.5],
    ];
    const labels = [
      [1, 0, 1, 0], // top-2 = {0, 1}: 1 of 2 positives
      [0, 0, 0, 0], // skipped
      [0, 1, 0, 0], // ties broken by index: top-2 = {0, 1} → 1 of 1
    ];
    expect(recallAtK(scores, labels, 2)).toBeCloseTo((0.5 + 1) / 2, 12);
  });

  it('per-user AUC ranks labels within each example, averages a user\'s examples, then users', () => {
    const scores = [
      [0.9, 0.1, 0.5], // u1 cut 1: positive 0.9 above both negatives → 1
      [0.1, 0.9, 0.5], // u1 cut 2: positive 0.1 below both → 0
      [0.2, 0.3, 0.4], // u2: positives 0.3, 0.4 vs 0.2 → 1
      [0.5, 0.5, 0.5], // u3: no negative → skipped
    ];
    const labels = [
      [1, 0, 0],
      [1, 0, 0],
      [0, 1, 1],
      [1, 1, 1],
    ];
    // u1 = (1 + 0) / 2, u2 = 1; u3 has no example with both classes.
    expect(perUserAuc(scores, labels, ['u1', 'u1', 'u2', 'u3'])).toBeCloseTo((0.5 + 1) / 2, 12);
    // The micro AUC of a score that only knows who is active is high; its per-user AUC is 0.5.
    const activity = [
      [0.9, 0.9],
      [0.1, 0.1],
      [0.8, 0.8],
    ];
    const truth = [
      [1, 0],
      [0, 0],
      [0, 1],
    ];
    expect(microAuc(activity, truth)).toBeGreaterThan(0.6);
    expect(perUserAuc(activity, truth, ['a', 'b', 'c'])).toBeCloseTo(0.5, 12);
    expect(Number.isNaN(perUserAuc([[0.1]], [[1]], ['x']))).toBe(true);
  });
});

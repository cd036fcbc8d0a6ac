/**
 * Evaluation metrics on plain arrays, so they are checkable by hand: accuracy, macro-F1, ROC AUC
 * (Mann-Whitney, ties counted half), one-vs-rest macro AUC, micro AUC, per-user AUC and recall@k.
 */

/** ROC AUC of scores against 0/1 labels; NaN when only one class is present. */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  if (labels.length !== n) throw new RangeError(`"labels" expected ${n} entries, got ${labels.length}`);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (scores[a] as number) - (scores[b] as number));
  let positives = 0;
  let rankSum = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1] as number] === scores[order[i] as number]) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if ((labels[order[k] as number] as number) > 0.5) {
        positives++;
        rankSum += averageRank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] as number) > (row[best] as number)) best = i;
  return best;
}

export function accuracy(predicted: readonly number[], actual: readonly number[]): number {
  if (actual.length === 0) return Number.NaN;
  let hits = 0;
  predicted.forEach((p, i) => {
    if (p === actual[i]) hits++;
  });
  return hits / actual.length;
}

/** Unweighted mean of per-class F1 over the classes that occur in `actual` or `predicted`. */
export function macroF1(predicted: readonly number[], actual: readonly number[], classes: number): number {
  const f1s: number[] = [];
  for (let c = 0; c < classes; c++) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    predicted.forEach((p, i) => {
      const a = actual[i];
      if (p === c && a === c) tp++;
      else if (p === c) fp++;
      else if (a === c) fn++;
    });
    if (tp + fp + fn === 0) continue;
    f1s.push((2 * tp) / (2 * tp + fp + fn));
  }
  return f1s.length === 0 ? Number.NaN : f1s.reduce((a, b) => a + b, 0) / f1s.length;
}

/** One-vs-rest AUC averaged over classes with both positives and negatives. */
export function ovrAuc(probs: readonly ArrayLike<number>[], actual: readonly number[], classes: number): number {
  const aucs: number[] = [];
  for (let c = 0; c < classes; c++) {
    const value = auc(
      probs.map((p) => p[c] as number),
      actual.map((a) => (a === c ? 1 : 0)),
    );
    if (!Number.isNaN(value)) aucs.push(value);
  }
  return aucs.length === 0 ? Number.NaN : aucs.reduce((a, b) => a + b, 0) / aucs.length;
}

/** AUC over every (example, label) pair pooled together. */
export function microAuc(scores: readonly ArrayLike<number>[], labels: readonly ArrayLike<number>[]): number {
  const s: number[] = [];
  const l: number[] = [];
  scores.forEach((row, i) => {
    const truth = labels[i] as ArrayLike<number>;
    for (let j = 0; j < row.length; j++) {
      s.push(row[j] as number);
      l.push(truth[j] as number);
    }
  });
  return auc(s, l);
}

/**
 * Mean over examples with at least one positive of |top-k ∩ positives| / |positives|
 * (ties in score broken by lower index, for determinism).
 */
export function recallAtK(scores: readonly ArrayLike<number>[], labels: readonly ArrayLike<number>[], k: number): number {
  let sum = 0;
  let counted = 0;
  scores.forEach((row, i) => {
    const truth = labels[i] as ArrayLike<number>;
    let positives = 0;
    for (let j = 0; j < truth.length; j++) if ((truth[j] as number) > 0.5) positives++;
    if (positives === 0) return;
    const top = Array.from({ length: row.length }, (_, j) => j)
      .sort((a, b) => (row[b] as number) - (row[a] as number) || a - b)
      .slice(0, k);
    const hits = top.filter((j) => (truth[j] as number) > 0.5).length;
    sum += hits / positives;
    counted++;
  });
  return counted === 0 ? Number.NaN : sum / counted;
}

/**
 * Per-user (macro over users) AUC: each example (one user at one cut) ranks its own labels, giving
 * one AUC; a user's AUC is the mean over their examples with at least one positive and one
 * negative label; the result is the unweighted mean over the users with at least one such example
 * (NaN when there is none). Only the order of labels within an example counts, so a score that
 * knows who is active, or when, gains nothing here, unlike the micro AUC.
 */
export function perUserAuc(scores: readonly ArrayLike<number>[], labels: readonly ArrayLike<number>[], users: readonly (string | number)[]): number {
  if (users.length !== scores.length) throw new RangeError(`"users" expected ${scores.length} entries, got ${users.length}`);
  const byUser = new Map<string | number, { sum: number; n: number }>();
  scores.forEach((row, i) => {
    const value = auc(row, labels[i] as ArrayLike<number>);
    if (Number.isNaN(value)) return;
    const key = users[i] as string | number;
    const user = byUser.get(key);
    if (user) {
      user.sum += value;
      user.n++;
    } else byUser.set(key, { sum: value, n: 1 });
  });
  let sum = 0;
  for (const { sum: s, n } of byUser.values()) sum += s / n;
  return byUser.size === 0 ? Number.NaN : sum / byUser.size;
}

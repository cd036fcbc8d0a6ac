/**
 * Segment reports for marketing (issue 20, part 2): how many shoppers fall in each cell of
 * (top interest category × purchase-propensity band × spending tier), without anyone collecting a
 * portrait. Each selected device computes its own portrait with the serving model version and
 * contributes a one-hot vector over the query's cells (L2 bound 1); the count per cell is released
 * only as a noised, securely aggregated sum through the analytics pipeline (queries.ts), and a cell
 * whose noisy count is below the query's minimum is suppressed (reported as such, with no value).
 */
import type { Portrait } from '../model/portrait.ts';
import { SPENDING_TIERS } from '../features/vocabulary.ts';

export const SEGMENT_DIMENSIONS = ['interest', 'propensity', 'spending'] as const;
export type SegmentDimension = (typeof SEGMENT_DIMENSIONS)[number];

/** Purchase-propensity bands by the purchase head's probability: [0, 1/3), [1/3, 2/3), [2/3, 1]. */
export const PROPENSITY_BANDS = ['low', 'mid', 'high'] as const;

/** Fewest devices a segment query may be launched over: narrower cohorts are refused before they run. */
export const MIN_SEGMENT_COHORT = 50;
/** Default suppression: cells whose released count is below this are reported without a value. */
export const DEFAULT_MIN_CELL_COUNT = 20;

/** The labels along each dimension of a query: the interest categories of its model version, the bands, the tiers. */
export function dimensionLabels(by: readonly SegmentDimension[], categories: readonly string[]): string[][] {
  return by.map((d) => (d === 'interest' ? [...categories] : d === 'propensity' ? [...PROPENSITY_BANDS] : [...SPENDING_TIERS]));
}

export function segmentCells(by: readonly SegmentDimension[], categories: readonly string[]): number {
  return dimensionLabels(by, categories).reduce((n, labels) => n * labels.length, 1);
}

/** The cell of a portrait (row-major over `by`), or null when the portrait lacks a head the query needs. */
export function portraitCell(by: readonly SegmentDimension[], categories: readonly string[], portrait: Portrait): number | null {
  let cell = 0;
  for (const [d, labels] of dimensionLabels(by, categories).entries()) {
    let index: number;
    const dimension = by[d] as SegmentDimension;
    if (dimension === 'interest') {
      const top = portrait.heads.interests?.top[0]?.label;
      index = top === undefined ? -1 : labels.indexOf(top);
    } else if (dimension === 'propensity') {
      const p = portrait.heads.purchase?.top[0]?.probability;
      index = p === undefined ? -1 : p < 1 / 3 ? 0 : p < 2 / 3 ? 1 : 2;
    } else {
      const tier = portrait.heads.spending?.top[0]?.label;
      index = tier === undefined ? -1 : labels.indexOf(tier);
    }
    if (index < 0) return null;
    cell = cell * labels.length + index;
  }
  return cell;
}

/** One device's contribution: one-hot at its portrait's cell (all zeros without a portrait). */
export function segmentContribution(by: readonly SegmentDimension[], categories: readonly string[], portrait: Portrait | null): Float32Array {
  const out = new Float32Array(segmentCells(by, categories));
  const cell = portrait ? portraitCell(by, categories, portrait) : null;
  if (cell !== null) out[cell] = 1;
  return out;
}

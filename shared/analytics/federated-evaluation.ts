/**
 * Federated evaluation as an analytics query (`statistic: 'evaluate'`, issue 18): the selected
 * devices score one or two model versions on their own examples and contribute, per version,
 * the sufficient statistics of evaluation.ts, concatenated in the query's version order. The
 * coordinator fixes each version's block (length and L2 bound, from the version's config) at
 * launch, so every device of the round, the accountant and the ledger see the same query; a
 * device whose own layout differs declines. With two versions the round is a paired comparison:
 * A and B are scored on the same devices and the summary reports B − A per metric.
 */
import type { Example } from '../features/examples.ts';
import type { HeadName, ModelConfig } from '../model/spec.ts';
import { decodeEvaluation, evaluationBound, evaluationContribution, evaluationLayout } from './evaluation.ts';
import type { AveragedUnits, DecodedEvaluation, EvaluationLayout, EvaluationMetric } from './evaluation.ts';
import type { EvaluateQuery, EvaluationBlock } from './queries.ts';

/** The layout of one version's block under the query's options. */
export function blockLayout(query: Pick<EvaluateQuery, 'bins' | 'examplesPerDevice'>, config: ModelConfig): EvaluationLayout {
  return evaluationLayout(config, { ...(query.bins !== undefined ? { bins: query.bins } : {}), ...(query.examplesPerDevice !== undefined ? { examplesPerDevice: query.examplesPerDevice } : {}) });
}

/** What the coordinator fixes at launch for one version: its parameters, block length and bound. */
export function evaluationBlock(query: Pick<EvaluateQuery, 'bins' | 'examplesPerDevice'>, version: number, parameters: number, config: ModelConfig): EvaluationBlock {
  const layout = blockLayout(query, config);
  return { version, parameters, dimension: layout.dimension, bound: evaluationBound(layout) };
}

/** One device's contribution: each version's statistics in block order; throws when a layout is not the launched one. */
export function evaluateContribution(query: EvaluateQuery, scored: readonly { config: ModelConfig; rows: ReadonlyMap<HeadName, readonly Float32Array[]>; examples: readonly Example[] }[]): Float32Array {
  const blocks = query.blocks ?? [];
  if (scored.length !== blocks.length) throw new RangeError(`"scored" expected ${blocks.length} versions, got ${scored.length}`);
  const out = new Float32Array(blocks.reduce((n, b) => n + b.dimension, 0));
  let offset = 0;
  blocks.forEach((block, i) => {
    const { config, rows, examples } = scored[i] as (typeof scored)[number];
    const layout = blockLayout(query, config);
    if (layout.dimension !== block.dimension || Math.abs(evaluationBound(layout) - block.bound) > 1e-9 * block.bound) {
      throw new RangeError(`model version ${block.version}: this device's evaluation layout (${layout.dimension} cells) is not the launched one (${block.dimension})`);
    }
    out.set(evaluationContribution(layout, rows, examples), offset);
    offset += block.dimension;
  });
  return out;
}

export interface VersionEvaluation extends DecodedEvaluation {
  version: number;
}

/** B − A for one metric: the difference of the decoded values and an interval for it. */
export interface MetricDifference {
  value: number | null;
  interval: [number, number] | null;
}

export interface EvaluateSummary {
  statistic: 'evaluate';
  versions: VersionEvaluation[];
  /** With two versions: the second minus the first, per head and metric. */
  difference: { baseline: number; candidate: number; heads: Partial<Record<HeadName, Partial<Record<EvaluationMetric, MetricDifference>>>> } | null;
}

/**
 * Decodes the released sum: each version's block into scoreHead's metrics with 95 % intervals
 * (evaluation.ts), and for a paired round B − A. The interval of a difference combines the two
 * intervals' half-widths as if independent, sqrt(hA² + hB²): exact for the DP noise (independent
 * per coordinate) and wider than needed for the sampling error, which the shared devices make
 * positively correlated; so a promotion gated on its lower bound errs towards refusing.
 */
export function decodeEvaluate(query: EvaluateQuery, configs: readonly ModelConfig[], sum: ArrayLike<number>, noiseStd: number): EvaluateSummary {
  const blocks = query.blocks ?? [];
  if (configs.length !== blocks.length) throw new RangeError(`"configs" expected ${blocks.length} model configs, got ${configs.length}`);
  const total = blocks.reduce((n, b) => n + b.dimension, 0);
  if (sum.length !== total) throw new RangeError(`"sum" expected ${total} values, got ${sum.length}`);
  let offset = 0;
  const parts = blocks.map((block, i) => {
    const layout = blockLayout(query, configs[i] as ModelConfig);
    const slice = Array.from({ length: block.dimension }, (_, j) => sum[offset + j] as number);
    offset += block.dimension;
    return { version: block.version, layout, slice };
  });
  let versions = parts.map((p) => ({ version: p.version, ...decodeEvaluation(p.layout, p.slice, noiseStd) }));
  if (versions.length === 2) {
    // A paired difference of a macro average is over the units both releases show present, or it
    // would compare averages over different labels.
    const common = commonUnits((versions[0] as VersionEvaluation).averagedUnits, (versions[1] as VersionEvaluation).averagedUnits);
    versions = parts.map((p) => ({ version: p.version, ...decodeEvaluation(p.layout, p.slice, noiseStd, { averageOver: common }) }));
  }
  return { statistic: 'evaluate', versions, difference: versions.length === 2 ? difference(versions[0] as VersionEvaluation, versions[1] as VersionEvaluation) : null };
}

/** The units of each head's macro averages that both releases show present. */
function commonUnits(a: AveragedUnits, b: AveragedUnits): AveragedUnits {
  const out: AveragedUnits = {};
  for (const head of Object.keys(a) as HeadName[]) {
    const x = a[head];
    const y = b[head];
    if (!x || !y) continue;
    const both = (p: readonly number[], q: readonly number[]) => p.filter((u) => q.includes(u));
    out[head] = { auc: both(x.auc, y.auc), ...(x.macroF1 && y.macroF1 ? { macroF1: both(x.macroF1, y.macroF1) } : {}) };
  }
  return out;
}

function difference(a: VersionEvaluation, b: VersionEvaluation): NonNullable<EvaluateSummary['difference']> {
  const heads: NonNullable<EvaluateSummary['difference']>['heads'] = {};
  for (const head of Object.keys(b.heads) as HeadName[]) {
    const out: Partial<Record<EvaluationMetric, MetricDifference>> = {};
    for (const metric of Object.keys(b.heads[head] ?? {}) as EvaluationMetric[]) {
      if (metric === 'examples') continue;
      const va = a.heads[head]?.[metric] ?? null;
      const vb = b.heads[head]?.[metric] ?? null;
      const ia = a.intervals[head]?.[metric] ?? null;
      const ib = b.intervals[head]?.[metric] ?? null;
      if (va === null || vb === null) {
        out[metric] = { value: null, interval: null };
        continue;
      }
      const value = vb - va;
      const half = ia && ib ? Math.hypot((ia[1] - ia[0]) / 2, (ib[1] - ib[0]) / 2) : null;
      out[metric] = { value, interval: half === null ? null : [value - half, value + half] };
    }
    heads[head] = out;
  }
  return { baseline: a.version, candidate: b.version, heads };
}

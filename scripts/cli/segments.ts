/**
 * `portrait segments query --by interest,propensity`: a segment report for marketing (issue 20):
 * how many shoppers fall in each cell, each device placing itself by its own portrait with the
 * serving version, released only through a DP + SecAgg+ analytics round that the ledger enters and
 * the deployment's budget caps. Cells below `--min-count` are suppressed; a cohort narrower than
 * MIN_SEGMENT_COHORT is refused before the round runs.
 */
import type { Command } from 'commander';
import { DEFAULT_MIN_CELL_COUNT, MIN_SEGMENT_COHORT, SEGMENT_DIMENSIONS } from '../../shared/analytics/segments.ts';
import type { SegmentDimension } from '../../shared/analytics/segments.ts';
import type { AnalyticsSummary } from '../../shared/analytics/queries.ts';
import { resolveToken } from './api-client.ts';
import { analyticsLaunch, runRound, withRoundShape, withServer } from './model-serving.ts';
import type { RoundShape, ServerOptions } from './model-serving.ts';
import { action, CliError, emit, parseNumber } from './output.ts';

export function registerSegmentCommands(program: Command): void {
  const segments = program.command('segments').description('segment reports for marketing: DP counts of shoppers per (interest × propensity × spending) cell, never a portrait');
  withRoundShape(withServer(segments.command('query').description(`count shoppers per cell of --by, as DP counts with intervals (a cohort of at least ${MIN_SEGMENT_COHORT} devices)`), 'operator'))
    .requiredOption('--by <dims>', `comma-separated dimensions: ${SEGMENT_DIMENSIONS.join(', ')}`)
    .option('--min-count <n>', 'suppress cells whose released count is below n', String(DEFAULT_MIN_CELL_COUNT))
    .action(
      action(async (options: ServerOptions & RoundShape & { by: string; minCount: string }) => {
        const by = options.by.split(',').map((d) => d.trim());
        for (const d of by) if (!(SEGMENT_DIMENSIONS as readonly string[]).includes(d)) throw new CliError('INVALID_ARGUMENT', `"--by" expected dimensions among ${SEGMENT_DIMENSIONS.join(', ')}, got ${d}`);
        const token = resolveToken(options, 'operator');
        const round = await runRound(options, token, analyticsLaunch(options, { statistic: 'segments', by: by as SegmentDimension[], minCount: parseNumber('min-count', options.minCount) }));
        const summary = round.result?.summary as Extract<AnalyticsSummary, { statistic: 'segments' }>;
        emit(options, { round: round.id, noiseStd: round.result?.noiseStd, epsilonRound: round.privacy?.epsilonRound ?? null, ...summary }, () => {
          const fmt = (v: number | null) => (v === null ? '-' : v.toFixed(0));
          const lines = [`segments by ${summary.by.join(' × ')} from ${round.participants} devices (round ${round.id}; noise σ=${round.result?.noiseStd.toFixed(1)} per cell; epsilon ${round.privacy?.epsilonRound?.toFixed(3) ?? 'n/a'}; 95% intervals):`];
          for (const c of summary.cells.filter((x) => !x.suppressed)) lines.push(`  ${c.labels.join(' / ').padEnd(32)} ${fmt(c.count.value).padStart(7)}  [${fmt(c.count.interval?.[0] ?? null)}, ${fmt(c.count.interval?.[1] ?? null)}]`);
          lines.push(`  ${summary.cells.filter((x) => x.suppressed).length} of ${summary.cells.length} cells below ${summary.minCount}: suppressed`);
          return lines.join('\n');
        });
      }),
    );
}

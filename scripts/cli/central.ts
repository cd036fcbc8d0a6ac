/**
 * `portrait train-central`, `portrait evaluate` and `portrait profile`: the centralised,
 * non-private upper bound, scoring a saved model on a split, and the on-device portrait
 * computation run from a file.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { dateFromDay } from '../../shared/features/events.ts';
import type { Dataset } from '../../shared/features/dataset.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import type { PreparedData } from '../../shared/features/prepare.ts';
import { chooseWindows } from '../../shared/features/windows.ts';
import type { RollingWindowRule, WindowConfig } from '../../shared/features/windows.ts';
import type { SplitName } from '../../shared/features/split.ts';
import type { HeadScores } from '../../shared/model/evaluate.ts';
import type { HeadResults } from '../lib/central.ts';
import type { DisplayName } from '../../shared/features/catalog-names.ts';
import type { CategoryNamesSchema, ExplanationLanguage, PortraitExplanation } from '../../shared/model/explain.ts';
import { ARCHITECTURES } from '../../shared/model/spec.ts';
import type { Architecture } from '../../shared/model/spec.ts';
import { dataConfig, DEFAULT_CENTRAL } from '../lib/central-config.ts';
import { DEFAULT_DATA_DIR } from './api-client.ts';
import { loadDatasetArg, loadEventsArg, loadModelArg, readInputFile } from './inputs.ts';
import { action, CliError, emit, log, parseInteger, parseNumber } from './output.ts';

interface CommonOptions {
  json?: boolean;
  backend?: string;
}

const fmt = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '   -  ' : v.toFixed(4));
const signed = (v: number) => (Number.isNaN(v) ? '-' : `${v >= 0 ? '+' : ''}${v.toFixed(4)}`);

/**
 * A plain-text table of heads and baselines, the same numbers as the JSON. Each head's row ends
 * with model − best baseline on the head's primary metric and its 95% paired bootstrap interval;
 * the best baseline's row is marked with *.
 */
export function metricsTable(heads: HeadResults, baselines: Record<string, HeadScores>): string {
  const metrics = ['accuracy', 'macroF1', 'auc', 'microAuc', 'userAuc', 'recallAt5'] as const;
  const lines = [`${'head / baseline'.padEnd(30)}${metrics.map((m) => m.padStart(10)).join('')}${'n'.padStart(7)}  model − best baseline [95% CI]`];
  for (const [head, scores] of Object.entries(heads)) {
    if (!scores) continue;
    const vs = scores.vsBest;
    const versus = vs ? `  ${signed(vs.delta)} [${signed(vs.ci[0])}, ${signed(vs.ci[1])}] ${vs.metric} vs ${vs.baseline}` : '';
    lines.push(`${head.padEnd(30)}${metrics.map((m) => fmt(scores[m]).padStart(10)).join('')}${String(scores.examples).padStart(7)}${versus}`);
    for (const [name, byHead] of Object.entries(baselines)) {
      const b = byHead[head as keyof HeadScores];
      const mark = vs?.baseline === name ? '*' : ' ';
      if (b) lines.push(`${` ${mark}baseline: ${name}`.padEnd(30)}${metrics.map((m) => fmt(b[m]).padStart(10)).join('')}${String(b.examples).padStart(7)}`);
    }
  }
  return lines.join('\n');
}

export interface WindowFlags {
  historyDays?: string;
  horizonDays?: string;
  cutEvery?: string;
  maxCutsPerUser?: string;
}

/** `--history-days`, `--horizon-days`, `--cut-every`, `--max-cuts-per-user` on a command that builds examples from a dataset. */
export function addWindowOptions(command: Command): Command {
  return command
    .option('--history-days <n>', 'rolling windows: days of history before each cut (default from the data span: fixed Tianchi windows up to 14 days, else 7 or 28)')
    .option('--horizon-days <n>', 'days of labels from each cut (default 3, or 7 on 8+ weeks of data)')
    .option('--cut-every <n>', 'days between cuts (default 1, or 7 on 8+ weeks of data)')
    .option('--max-cuts-per-user <n>', 'at most this many examples per user, a seeded evenly spread sample (default 8 for rolling windows)');
}

/**
 * The windows for `dataset`: its span's default (shared/features/windows.ts) with the flags
 * given. Checked before anything is trained or written; a bad value is INVALID_ARGUMENT naming the flag.
 */
export function windowsFromFlags(opts: WindowFlags, dataset: Dataset, argument = 'dataset'): WindowConfig {
  const flag = (name: string, value: string | undefined) => (value === undefined ? undefined : parseInteger(name, value, 1));
  const overrides: Partial<RollingWindowRule> = {};
  const set = <K extends keyof RollingWindowRule>(key: K, value: number | undefined) => {
    if (value !== undefined) overrides[key] = value;
  };
  set('historyDays', flag('--history-days', opts.historyDays));
  set('horizonDays', flag('--horizon-days', opts.horizonDays));
  set('cutEveryDays', flag('--cut-every', opts.cutEvery));
  set('maxCutsPerUser', flag('--max-cuts-per-user', opts.maxCutsPerUser));
  if (dataset.days < 1) throw new CliError('INVALID_ARGUMENT', `"${argument}": ${dataset.name} has no events to build windows from`);
  try {
    return chooseWindows(dataset.days, overrides);
  } catch (err) {
    if (err instanceof RangeError) {
      const equal = dataset.days === 1 ? ' (every event is on the same day)' : '';
      throw new CliError('INVALID_ARGUMENT', `"${argument}" ${dataset.name} spans ${dataset.days} day${dataset.days === 1 ? '' : 's'}${equal}: ${err.message}`);
    }
    throw err;
  }
}

/** The windows a result used, the events none of them read, and the loud warning under half (also on stderr). */
export function windowLines(prepared: Pick<PreparedData, 'windowSummary' | 'coverage' | 'warnings'>): string[] {
  for (const w of prepared.warnings) log(w);
  const { events, outside, usedShare } = prepared.coverage;
  return [`windows: ${prepared.windowSummary}`, `events outside every window: ${outside} of ${events} (${((1 - usedShare) * 100).toFixed(1)}%); the windows read ${(usedShare * 100).toFixed(1)}%`];
}

function architecture(value: string): Architecture {
  if (!(ARCHITECTURES as readonly string[]).includes(value)) throw new CliError('INVALID_ARGUMENT', `"model" expected one of ${ARCHITECTURES.join(', ')}, got ${JSON.stringify(value)}`);
  return value as Architecture;
}

export function registerCentralCommands(program: Command): void {
  addWindowOptions(program
    .command('train-central')
    .description('train on pooled data (the non-private upper bound) and score it on held-out test users')
    .requiredOption('--dataset <spec>', 'synthetic:USERS[:SEED[:DAYS]] | tianchi:DIR | events:FILE[:LABELS]')
    .option('--model <arch>', 'mlp | gru', 'mlp')
    .option('--epochs <n>', 'maximum epochs (the best on validation users is kept)', String(DEFAULT_CENTRAL.epochs))
    .option('--batch-size <n>', 'minibatch size', String(DEFAULT_CENTRAL.batchSize))
    .option('--learning-rate <lr>', 'Adam learning rate', String(DEFAULT_CENTRAL.learningRate))
    .option('--sensitive-heads', 'also train the sensitive heads (age, gender, career, stage)', false)
    .option('--seed <n>', 'initialisation and shuffling seed', String(DEFAULT_CENTRAL.seed))
    .option('--out <dir>', 'save the trained model here (tfjs format)')
    .option('--backend <name>', 'tfjs backend: node-gpu | node | wasm | cpu (default: first that loads)')
    .option('--json', 'print one JSON document'))
    .action(
      action(async (opts: CommonOptions & WindowFlags & { dataset: string; model: string; epochs: string; batchSize: string; learningRate: string; sensitiveHeads: boolean; seed: string; out?: string }) => {
        const [{ useNodeBackend }, { trainCentral }, { saveModelDirectory }] = await Promise.all([import('../../client/node/tfjs-backend.ts'), import('../lib/central.ts'), import('../../server/storage/model-files.ts')]);
        const backend = await useNodeBackend(opts.backend);
        const dataset = await loadDatasetArg(opts.dataset);
        log(`dataset ${dataset.name}: ${dataset.users.length} users, ${dataset.cleaning.eventsKept} events from ${dateFromDay(dataset.startDay)} over ${dataset.days} days`);
        const windows = windowsFromFlags(opts, dataset);
        const { result, model, config } = await trainCentral(dataset, {
          data: { windows },
          architecture: architecture(opts.model),
          epochs: parseNumber('epochs', opts.epochs),
          batchSize: parseNumber('batch-size', opts.batchSize),
          learningRate: parseNumber('learning-rate', opts.learningRate),
          sensitiveHeads: opts.sensitiveHeads,
          seed: parseNumber('seed', opts.seed),
          log,
        });
        if (opts.out) await saveModelDirectory(opts.out, model, config);
        if (opts.json) for (const w of result.warnings) log(w);
        const output = { ...result, backend: backend.name, cleaning: dataset.cleaning, modelPath: opts.out ? path.resolve(opts.out) : null };
        emit(opts, output, () =>
          [
            `Centralised ${result.architecture} on ${result.dataset} (backend ${backend.name}), best epoch ${result.training.bestEpoch}/${result.training.epochs}, ${Math.round(result.training.examplesPerSecond)} examples/s`,
            `split: ${result.split.method}; users ${JSON.stringify(result.split.users)}`,
            ...windowLines(result),
            '',
            metricsTable(result.heads, result.baselines),
            opts.out ? `\nmodel saved to ${path.resolve(opts.out)}` : '',
          ].join('\n'),
        );
        model.dispose();
      }),
    );

  program
    .command('evaluate')
    .description('score a saved model on a split of a dataset, with the same baselines')
    .requiredOption('--model <V|path>', 'model directory (model.json + weights.bin), or version V / "latest" of --data-dir')
    .option('--data-dir <dir>', 'server data directory whose model store holds version V', DEFAULT_DATA_DIR)
    .requiredOption('--dataset <spec>', 'synthetic:USERS[:SEED[:DAYS]] | tianchi:DIR | events:FILE[:LABELS]')
    .option('--split <name>', 'train | validation | test', 'test')
    .option('--backend <name>', 'tfjs backend')
    .option('--json', 'print one JSON document')
    .action(
      action(async (opts: CommonOptions & { model: string; dataDir: string; dataset: string; split: string }) => {
        if (!['train', 'validation', 'test'].includes(opts.split)) throw new CliError('INVALID_ARGUMENT', `"split" expected train, validation or test, got ${JSON.stringify(opts.split)}`);
        const split = opts.split as SplitName;
        const [{ useNodeBackend }, { evaluateWithBaselines }] = await Promise.all([import('../../client/node/tfjs-backend.ts'), import('../lib/central.ts')]);
        const backend = await useNodeBackend(opts.backend);
        const { model, config, source } = await loadModelArg(opts.model, opts.dataDir);
        const dataset = await loadDatasetArg(opts.dataset);
        const data = dataConfig({ windows: config.windows, sequenceLength: config.sequenceLength });
        const prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, config.architecture === 'gru', config.vocabulary);
        const examples = prepared.examples[split];
        const { heads, baselines, bestBaselines, ownHistoryBeta } = evaluateWithBaselines(model, config, { ...prepared.examples, test: examples });
        const output = { model: source, dataset: dataset.name, cleaning: dataset.cleaning, backend: backend.name, split: { ...prepared.split, evaluated: split }, windows: prepared.windows, windowSummary: prepared.windowSummary, coverage: prepared.coverage, warnings: prepared.warnings, heads, baselines, bestBaselines, ownHistoryBeta, sensitiveHeads: config.sensitiveHeads };
        if (opts.json) for (const w of prepared.warnings) log(w);
        emit(opts, output, () => [`${config.architecture} model on ${dataset.name}, ${split} split (${examples.length} examples)`, ...windowLines(prepared), '', metricsTable(heads, baselines)].join('\n'));
        model.dispose();
      }),
    );

  program
    .command('profile')
    .description("compute one user's portrait from a local events file: exactly what a device runs")
    .requiredOption('--model <V|path>', 'model directory, or version V / "latest" of --data-dir')
    .option('--data-dir <dir>', 'server data directory whose model store holds version V', DEFAULT_DATA_DIR)
    .requiredOption('--events <file>', 'JSONL or CSV events of one user')
    .option('--user <id>', 'which user, when the file holds several')
    .option('--explain', 'also say why: per head, what in the history moved the prediction most (integrated gradients against an empty history, computed here)', false)
    .option('--lang <zh|en>', 'language of the explanations', 'en')
    .option('--top <n>', 'things named per head in the explanations', '3')
    .option('--category-names <synthetic|file>', 'display names for the explanations: "synthetic" (the synthetic catalogue\'s) or a JSON file {"<category id>": {"zh": ..., "en": ...}}')
    .option('--backend <name>', 'tfjs backend')
    .option('--json', 'print one JSON document')
    .action(
      action(async (opts: CommonOptions & { model: string; dataDir: string; events: string; user?: string; explain: boolean; lang: string; top: string; categoryNames?: string }) => {
        const top = parseInteger('top', opts.top, 1);
        // explain.ts loads tfjs, which `profile` needs anyway: only its types are imported at the CLI's start.
        const [{ useNodeBackend }, { computePortrait }, explain] = await Promise.all([
          import('../../client/node/tfjs-backend.ts'),
          import('../../shared/model/portrait.ts'),
          import('../../shared/model/explain.ts'),
        ]);
        const lang = explanationLanguage(opts.lang, explain.EXPLANATION_LANGUAGES);
        const categoryNames = opts.categoryNames === undefined ? undefined : await categoryNamesArg(opts.categoryNames, explain.CategoryNamesSchema);
        await useNodeBackend(opts.backend);
        const dataset = await loadEventsArg(opts.events);
        const users = opts.user === undefined ? dataset.users : dataset.users.filter((u) => u.userId === opts.user);
        if (users.length !== 1) throw new CliError('INVALID_ARGUMENT', opts.user === undefined ? `"events" holds ${users.length} users; pick one with --user` : `"user" ${opts.user} not found in the events file`);
        const user = users[0] as (typeof users)[number];
        const { model, config } = await loadModelArg(opts.model, opts.dataDir);
        const portrait = computePortrait(model, config, user.events);
        const explanations = opts.explain ? explain.explainPortrait(model, config, user.events, { language: lang, top, ...(categoryNames ? { categoryNames } : {}) }) : undefined;
        emit(opts, { user: user.userId, asOf: dateFromDay(portrait.asOfDay), events: portrait.events, cleaning: dataset.cleaning, heads: portrait.heads, ...(explanations ? { explanations } : {}) }, () =>
          [
            `Portrait of ${user.userId} as of ${dateFromDay(portrait.asOfDay)} (${portrait.events} events)`,
            ...Object.entries(portrait.heads).map(([head, h]) => `  ${head}${h?.sensitive ? ' (sensitive)' : ''}: ${h?.top.map((s) => `${s.label} ${(s.probability * 100).toFixed(1)}%`).join(', ')}`),
            ...(explanations ? ['', explanationText(explanations)] : []),
          ].join('\n'),
        );
        model.dispose();
      }),
    );
}

function explanationLanguage(value: string, languages: readonly ExplanationLanguage[]): ExplanationLanguage {
  if (!(languages as readonly string[]).includes(value)) throw new CliError('INVALID_ARGUMENT', `"lang" expected one of ${languages.join(', ')}, got ${JSON.stringify(value)}`);
  return value as ExplanationLanguage;
}

/** `--category-names synthetic | FILE`: display names by category id, as the shop page has them. */
async function categoryNamesArg(value: string, schema: typeof CategoryNamesSchema): Promise<Map<string, DisplayName>> {
  if (value === 'synthetic') return (await import('../../shared/features/synthetic.ts')).syntheticCategoryNames();
  const text = readInputFile('category-names', value);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CliError('INVALID_ARGUMENT', `"category-names": ${path.resolve(value)} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const result = schema.safeParse(parsed);
  if (!result.success) throw new CliError('INVALID_ARGUMENT', `"category-names" expected {"<category id>": {"zh": "...", "en": "..."}}: ${result.error.issues[0]?.path.join('.') ?? ''} ${result.error.issues[0]?.message ?? ''}`.trim());
  return new Map(Object.entries(result.data));
}

/** The readable block of `profile --explain`: per head, the class, its probability against an empty history's, and what moved it. */
export function explanationText(explanation: PortraitExplanation): string {
  const zh = explanation.language === 'zh';
  const points = (p: number) => `${p >= 0 ? '+' : '-'}${Math.abs(p * 100).toFixed(1)}`;
  const lines = [
    zh
      ? '为什么是这个画像（积分梯度，与没有任何行为的用户相比；单位：百分点）'
      : 'Why this portrait (integrated gradients against a shopper with no history; in percentage points)',
  ];
  for (const h of Object.values(explanation.heads)) {
    if (!h) continue;
    const against = zh ? `无行为时 ${(h.baselineProbability * 100).toFixed(1)}%` : `${(h.baselineProbability * 100).toFixed(1)}% with no history`;
    lines.push(`  ${h.head}${h.sensitive ? (zh ? '（敏感）' : ' (sensitive)') : ''}: ${h.labelText} ${(h.probability * 100).toFixed(1)}% (${against})`);
    if (h.top.length === 0) lines.push(zh ? '    （没有行为可解释）' : '    (no history to explain it)');
    for (const g of h.top) lines.push(`    ${points(g.attribution).padStart(6)}  ${g.text}`);
  }
  return lines.join('\n');
}

/**
 * `portrait privacy epsilon|noise`: the RDP accountant of shared/privacy for auditors and
 * the ML team (Poisson-subsampled Gaussian, dp_accounting's orders, Canonne et al. 2020
 * Prop. 12 conversion). `--batch FILE` reads JSONL and writes JSONL in the input order
 * (with `--json`, one document `{ "results": [...] }` instead).
 */
import type { Command } from 'commander';
import { calibrateNoiseMultiplier } from '../../shared/privacy/calibrate.ts';
import { computeEpsilon } from '../../shared/privacy/rdp.ts';
import { readInputFile } from './inputs.ts';
import { action, CliError, emit, parseNumber } from './output.ts';

interface EpsilonOptions {
  q?: string;
  noiseMultiplier?: string;
  steps?: string;
  delta?: string;
  batch?: string;
  json?: boolean;
}

interface NoiseOptions {
  epsilon?: string;
  delta?: string;
  q?: string;
  steps?: string;
  json?: boolean;
}

export interface EpsilonRecord {
  q: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
  epsilon: number;
  order: number;
}

function required(name: string, value: string | undefined): string {
  if (value === undefined) throw new CliError('INVALID_ARGUMENT', `"--${name}" is required`);
  return value;
}

function checkAccountingInput(q: number, noiseMultiplier: number, steps: number, delta: number): void {
  if (!(q > 0 && q <= 1)) throw new CliError('INVALID_ARGUMENT', `"q" expected a number in (0, 1], got ${q}`);
  if (!(noiseMultiplier > 0)) throw new CliError('INVALID_ARGUMENT', `"noiseMultiplier" expected a number > 0, got ${noiseMultiplier}`);
  if (!Number.isInteger(steps) || steps < 0) throw new CliError('INVALID_ARGUMENT', `"steps" expected an integer >= 0, got ${steps}`);
  if (!(delta > 0 && delta < 1)) throw new CliError('INVALID_ARGUMENT', `"delta" expected a number in (0, 1), got ${delta}`);
}

/** Epsilon for one setting; fields in the fixed order q, noiseMultiplier, steps, delta, epsilon, order. */
export function epsilonRecord(q: number, noiseMultiplier: number, steps: number, delta: number): EpsilonRecord {
  checkAccountingInput(q, noiseMultiplier, steps, delta);
  const { epsilon, order } = computeEpsilon({ q, noiseMultiplier, steps, delta });
  return { q, noiseMultiplier, steps, delta, epsilon, order };
}

function batchField(line: number, row: Record<string, unknown>, name: string): number {
  const value = row[name];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new CliError('INVALID_ARGUMENT', `line ${line}: "${name}" expected a finite number, got ${JSON.stringify(value)}`);
  return value;
}

/** One record per non-blank JSONL line, in input order. */
export function epsilonBatch(text: string): EpsilonRecord[] {
  const records: EpsilonRecord[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] as string).trim();
    if (raw === '') continue;
    let row: unknown;
    try {
      row = JSON.parse(raw);
    } catch {
      throw new CliError('INVALID_ARGUMENT', `line ${i + 1}: not valid JSON`);
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new CliError('INVALID_ARGUMENT', `line ${i + 1}: expected a JSON object`);
    const r = row as Record<string, unknown>;
    try {
      records.push(epsilonRecord(batchField(i + 1, r, 'q'), batchField(i + 1, r, 'noiseMultiplier'), batchField(i + 1, r, 'steps'), batchField(i + 1, r, 'delta')));
    } catch (err) {
      if (err instanceof CliError && !err.message.startsWith('line ')) throw new CliError(err.code, `line ${i + 1}: ${err.message}`);
      throw err;
    }
  }
  return records;
}

export function registerPrivacyCommands(program: Command): void {
  const privacy = program.command('privacy').description('Differential-privacy accounting (RDP of the Poisson-subsampled Gaussian, as dp_accounting)');

  privacy
    .command('epsilon')
    .description('epsilon spent by STEPS rounds at sampling rate Q and noise multiplier Z, at DELTA')
    .option('--q <q>', 'Poisson sampling rate in (0, 1] (1 without verified Poisson sampling)')
    .option('--noise-multiplier <z>', 'noise standard deviation / L2 sensitivity')
    .option('--steps <t>', 'number of rounds')
    .option('--delta <d>', 'target delta')
    .option('--batch <file>', 'JSONL input: {"q","noiseMultiplier","steps","delta"} per line; JSONL output with "epsilon" and "order" added')
    .option('--json', 'one JSON document on stdout')
    .action(
      action((options: EpsilonOptions) => {
        if (options.batch !== undefined) {
          const results = epsilonBatch(readInputFile('batch', options.batch));
          if (options.json) emit(options, { results }, () => '');
          else process.stdout.write(results.map((r) => `${JSON.stringify(r)}\n`).join(''));
          return;
        }
        const record = epsilonRecord(
          parseNumber('q', required('q', options.q)),
          parseNumber('noise-multiplier', required('noise-multiplier', options.noiseMultiplier)),
          parseNumber('steps', required('steps', options.steps)),
          parseNumber('delta', required('delta', options.delta)),
        );
        emit(options, record, () => `epsilon = ${record.epsilon} at delta = ${record.delta} (optimal RDP order ${record.order}; q = ${record.q}, z = ${record.noiseMultiplier}, ${record.steps} steps)`);
      }),
    );

  privacy
    .command('noise')
    .description('the smallest noise multiplier for which STEPS rounds at rate Q spend at most EPSILON at DELTA')
    .option('--epsilon <e>', 'target epsilon')
    .option('--delta <d>', 'target delta')
    .option('--q <q>', 'Poisson sampling rate in (0, 1]')
    .option('--steps <t>', 'number of rounds')
    .option('--json', 'one JSON document on stdout')
    .action(
      action((options: NoiseOptions) => {
        const targetEpsilon = parseNumber('epsilon', required('epsilon', options.epsilon));
        const delta = parseNumber('delta', required('delta', options.delta));
        const q = parseNumber('q', required('q', options.q));
        const steps = parseNumber('steps', required('steps', options.steps));
        if (!Number.isInteger(steps) || steps < 1) throw new CliError('INVALID_ARGUMENT', `"steps" expected an integer >= 1, got ${steps}`);
        checkAccountingInput(q, 1, steps, delta);
        const result = calibrateNoiseMultiplier({ epsilon: targetEpsilon, delta, q, steps });
        const out = { targetEpsilon, delta, q, steps, noiseMultiplier: result.noiseMultiplier, epsilon: result.epsilon, order: result.order };
        emit(options, out, () => `noise multiplier z = ${out.noiseMultiplier} (epsilon ${out.epsilon} <= ${targetEpsilon} at delta ${delta}, order ${out.order})`);
      }),
    );
}

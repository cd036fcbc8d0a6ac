/**
 * Output discipline for every `portrait` command: with `--json`, exactly one JSON document on
 * stdout and nothing else there (logs go to stderr); without it, readable text. Errors keep their
 * protocol code (CliError or the shared ProtocolError); anything else is INTERNAL.
 */
import { ProtocolError } from '../../shared/protocol/errors.ts';

export interface OutputOptions {
  json?: boolean;
}

export function emit(options: OutputOptions, result: unknown, human: () => string): void {
  if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${human()}\n`);
}

/** Diagnostics never go to stdout, so `--json` output stays parseable. */
export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * A failure as the `--json` promise has it (`{error:{code,message}}`, the one document on stdout) or
 * as a `portrait: CODE: message` line on stderr; `textShown` when the text was already printed
 * (commander's own argument errors).
 */
export function writeError(code: string, message: string, textShown = false): void {
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify({ error: { code, message } })}\n`);
  else if (!textShown) process.stderr.write(`portrait: ${code}: ${message}\n`);
}

/** Wraps a command action so failures print `{error:{code,message}}` (json) or a line (text) and exit 1. */
export function action<A extends unknown[]>(run: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await run(...args);
    } catch (err) {
      const code = err instanceof CliError || err instanceof ProtocolError ? err.code : err instanceof RangeError || err instanceof TypeError ? 'INVALID_ARGUMENT' : 'INTERNAL';
      writeError(code, err instanceof Error ? err.message : String(err));
      process.exitCode = 1;
    }
  };
}

/** An integer option, at least `min`. */
export function parseInteger(name: string, value: string, min = Number.MIN_SAFE_INTEGER): number {
  const n = parseNumber(name, value);
  if (!Number.isInteger(n) || n < min) throw new CliError('INVALID_ARGUMENT', `"${name}" expected an integer${min > Number.MIN_SAFE_INTEGER ? ` >= ${min}` : ''}, got ${value}`);
  return n;
}

export function parseNumber(name: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new CliError('INVALID_ARGUMENT', `"${name}" expected a number, got ${JSON.stringify(value)}`);
  return n;
}

/** Command-line options of the benchmarks (`--name value`), with errors that name the option. */
const argv = process.argv.slice(2);

export function option(name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const value = argv[i + 1];
  if (value === undefined || value.startsWith('--')) throw new RangeError(`"${name}" expected a value`);
  return value;
}

export function flag(name: string): boolean {
  return argv.includes(name);
}

/** A number option; required when no fallback is given. */
export function numberOption(name: string, fallback?: number): number {
  const value = option(name);
  if (value === undefined) {
    if (fallback === undefined) throw new RangeError(`"${name}" is required`);
    return fallback;
  }
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new RangeError(`"${name}" expected a number, got ${value}`);
  return parsed;
}

/** A comma-separated list of numbers, or the fallback. */
export function numberList(name: string, fallback: readonly number[]): number[] {
  const value = option(name);
  if (value === undefined) return [...fallback];
  const values = value.split(',').map((item) => (item.trim() === '' ? Number.NaN : Number(item)));
  if (values.some((v) => !Number.isFinite(v))) throw new RangeError(`"${name}" expected comma-separated numbers, got ${value}`);
  return values;
}

/**
 * Canonical JSON for ledger entries, so a hash or signature over an entry is reproducible by any
 * verifier: object keys sorted by UTF-16 code unit order, no whitespace, strings and numbers as
 * `JSON.stringify` writes them (numbers in the shortest form that round-trips, ECMA-262
 * Number::toString; -0 becomes 0). Values JSON cannot carry faithfully are refused, not
 * silently rewritten: NaN and ±Infinity (RangeError), undefined, functions, bigints, symbols
 * and anything that is not a plain object or array (TypeError), each naming its path.
 */

export function canonicalJson(value: unknown): string {
  return encode(value, '$');
}

function encode(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new RangeError(`"${path}" expected a finite number, got ${value}`);
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw new TypeError(`"${path}" expected a JSON value, got ${typeof value}`);
  }
  if (Array.isArray(value)) return `[${value.map((v, i) => encode(v, `${path}[${i}]`)).join(',')}]`;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) throw new TypeError(`"${path}" expected a plain object or array, got ${(value as object).constructor?.name ?? 'an object'}`);
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${encode(record[k], `${path}.${k}`)}`).join(',')}}`;
}

/**
 * Reading what crossed the wire, for the integration tests' privacy checks: every binary buffer
 * and base64 string inside a recorded payload as bytes, byte-sequence search, and the correlation
 * of two vectors read as centred signed integers.
 */
import { fromBase64 } from '../../shared/secagg/bytes.ts';

/** Pearson correlation of two vectors read as centred signed integers. */
export function correlation(a: Uint32Array, b: Uint32Array): number {
  const n = Math.min(a.length, b.length);
  const x = Array.from(a.subarray(0, n), (v) => v | 0);
  const y = Array.from(b.subarray(0, n), (v) => v | 0);
  const mx = x.reduce((s, v) => s + v, 0) / n;
  const my = y.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? 0 : sxy / Math.sqrt(sxx * syy);
}

/** Every binary buffer and base64 string inside a recorded payload, as bytes. */
export function blobsOf(value: unknown, out: Uint8Array[] = []): Uint8Array[] {
  if (value instanceof Uint8Array) out.push(value);
  else if (value instanceof ArrayBuffer) out.push(new Uint8Array(value));
  else if (typeof value === 'string' && value.length >= 8 && /^[A-Za-z0-9+/]+={0,2}$/.test(value) && value.length % 4 === 0) {
    try {
      out.push(fromBase64('blob', value));
    } catch {
      // not canonical base64: not a byte field
    }
  } else if (Array.isArray(value)) for (const v of value) blobsOf(v, out);
  else if (typeof value === 'object' && value !== null) for (const v of Object.values(value)) blobsOf(v, out);
  return out;
}

export function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}


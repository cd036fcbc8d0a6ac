/** Canonical JSON: sorted keys, no whitespace, shortest round-trip numbers, and named refusals. */
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../shared/ledger/canonical.ts';

describe('canonicalJson', () => {
  it('sorts keys at every depth and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}');
  });

  it('gives the same text for objects built in different key orders', () => {
    const one = { seq: 1, kind: 'round', round: { q: 0.1, t: 5 } };
    const two = { round: { t: 5, q: 0.1 }, kind: 'round', seq: 1 };
    expect(canonicalJson(one)).toBe(canonicalJson(two));
  });

  it('writes numbers in the shortest form that round-trips, -0 as 0', () => {
    expect(canonicalJson([0.1, 1e-5, 1e21, 123456789.125, -0, 5e-324])).toBe('[0.1,0.00001,1e+21,123456789.125,0,5e-324]');
    for (const v of [Math.PI, 1 / 3, 2 ** 53 + 2, 1.7976931348623157e308]) expect(Number(canonicalJson(v))).toBe(v);
  });

  it('escapes strings as JSON does, keys included', () => {
    expect(canonicalJson({ 'é"\n': 'a\u2028b' })).toBe(`{${JSON.stringify('é"\n')}:${JSON.stringify('a\u2028b')}}`);
  });

  it('refuses non-finite numbers with a RangeError naming the path', () => {
    expect(() => canonicalJson({ round: { rdp: [1, Number.NaN] } })).toThrow(new RangeError('"$.round.rdp[1]" expected a finite number, got NaN'));
    expect(() => canonicalJson({ e: Infinity })).toThrow(RangeError);
    expect(() => canonicalJson([-Infinity])).toThrow(/"\$\[0\]"/);
  });

  it('refuses values JSON cannot carry with a TypeError naming the path', () => {
    expect(() => canonicalJson({ a: undefined })).toThrow(new TypeError('"$.a" expected a JSON value, got undefined'));
    expect(() => canonicalJson({ a: 1n })).toThrow(TypeError);
    expect(() => canonicalJson({ a: () => 1 })).toThrow(TypeError);
    expect(() => canonicalJson({ when: new Date(0) })).toThrow(/"\$\.when" expected a plain object or array, got Date/);
    expect(() => canonicalJson({ bytes: new Uint8Array(2) })).toThrow(/Uint8Array/);
  });
});

/** Weight vectors on the wire and enrollment tokens: exact length, finiteness, signatures and expiry. */
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { fromBase64Url, issueEnrollmentToken, toBase64Url, verifyEnrollmentToken } from '../../../shared/protocol/enrollment.ts';
import { ProtocolError } from '../../../shared/protocol/errors.ts';
import { decodeWeights, encodeWeights } from '../../../shared/protocol/weights.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof ProtocolError ? err.code : 'other';
  }
}

describe('weight vectors', () => {
  it('round-trips Float32 little-endian, byte for byte', () => {
    const values = Float32Array.from([0, -1.5, 3.25, 1e-30, -0]);
    const bytes = encodeWeights(values);
    expect([...bytes.subarray(4, 8)]).toEqual([0, 0, 0xc0, 0xbf]);
    expect(decodeWeights('delta', bytes, 5)).toEqual(values);
    expect(decodeWeights('delta', bytes.buffer, 5)).toEqual(values);
    // A view at an odd offset inside a larger buffer decodes too.
    const padded = new Uint8Array(bytes.length + 1);
    padded.set(bytes, 1);
    expect(decodeWeights('delta', padded.subarray(1), 5)).toEqual(values);
  });

  it('refuses wrong lengths, non-finite values and non-binary data', () => {
    expect(codeOf(() => decodeWeights('delta', new Uint8Array(19), 5))).toBe('WEIGHTS_LENGTH');
    expect(codeOf(() => decodeWeights('delta', new Uint8Array(24), 5))).toBe('WEIGHTS_LENGTH');
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(codeOf(() => decodeWeights('delta', encodeWeights(Float32Array.from([1, bad])), 2))).toBe('WEIGHTS_NOT_FINITE');
    }
    expect(codeOf(() => decodeWeights('delta', [1, 2], 2))).toBe('MALFORMED_MESSAGE');
    expect(() => decodeWeights('delta', new Uint8Array(3), 1)).toThrow('"delta" expected 4 bytes (1 float32), got 3');
  });
});

describe('enrollment tokens', () => {
  const pair = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
  const bytes = (n: number) => (a: Uint8Array) => a.fill(n);

  it('verifies a token of the platform key until it expires', () => {
    const token = issueEnrollmentToken(pair.secretKey, { ttlMs: 1000, now: 5000, getRandomValues: bytes(3) });
    const claims = verifyEnrollmentToken(token, pair.publicKey, 5999);
    expect(claims).toEqual({ v: 1, sub: toBase64Url(new Uint8Array(16).fill(3)), iat: 5000, exp: 6000 });
    expect(codeOf(() => verifyEnrollmentToken(token, pair.publicKey, 6000))).toBe('TOKEN_EXPIRED');
  });

  it('refuses forged, tampered and malformed tokens', () => {
    const token = issueEnrollmentToken(pair.secretKey, { ttlMs: 1000, now: 0 });
    const other = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(8));
    expect(codeOf(() => verifyEnrollmentToken(token, other.publicKey, 1))).toBe('UNAUTHENTICATED');
    const [body, sig] = token.split('.') as [string, string];
    const claims = JSON.parse(new TextDecoder().decode(fromBase64Url(body))) as { exp: number };
    const extended = toBase64Url(new TextEncoder().encode(JSON.stringify({ ...claims, exp: claims.exp + 1e9 })));
    expect(codeOf(() => verifyEnrollmentToken(`${extended}.${sig}`, pair.publicKey, 1))).toBe('UNAUTHENTICATED');
    for (const bad of [undefined, '', 'a.b.c', 'abc', `${body}.`, `${body}.!!!`, 'x'.repeat(5000), 42]) {
      expect(codeOf(() => verifyEnrollmentToken(bad, pair.publicKey, 1))).toBe('UNAUTHENTICATED');
    }
  });

  it('checks its arguments', () => {
    expect(() => issueEnrollmentToken(new Uint8Array(31), { ttlMs: 1, now: 0 })).toThrow('"platformSecretKey" expected 64 bytes, got 31');
    expect(() => issueEnrollmentToken(pair.secretKey, { ttlMs: 0, now: 0 })).toThrow(RangeError);
  });
});

/**
 * The coordinator's native Ed25519 (server/auth/native-ed25519.ts: signing, and verifying with its
 * cache of public-key objects) against RFC 8032 Sec. 7.1's
 * test vectors (test/vectors/ed25519, provenance in its README), with tweetnacl as the reference:
 * the same public keys and signatures, and the same refusals of every one-bit change to the
 * signature, the public key or the message. One refusal differs on purpose: a signature whose S is
 * not reduced (S + L) is refused natively, as RFC 8032 Sec. 5.1.7 requires, where tweetnacl
 * accepts it; no signer produces one.
 */
import fs from 'node:fs';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { nodeEd25519Sign, nodeEd25519Verify } from '../../../server/auth/native-ed25519.ts';

interface Vector {
  name: string;
  secretKey: string;
  publicKey: string;
  message: string;
  signature: string;
}

const { cases } = JSON.parse(fs.readFileSync('test/vectors/ed25519/rfc8032-ed25519.json', 'utf8')) as { cases: Vector[] };
const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const flip = (b: Uint8Array, bit: number) => {
  const out = b.slice();
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
};
const reference = (m: Uint8Array, s: Uint8Array, k: Uint8Array) => nacl.sign.detached.verify(m, s, k);

/** The group order of edwards25519 (RFC 8032 Sec. 5.1). */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

describe('native Ed25519 on the RFC 8032 Sec. 7.1 vectors', () => {
  it('has the three vectors', () => {
    expect(cases.map((c) => c.name)).toEqual(['TEST 1', 'TEST 2', 'TEST 3']);
  });

  for (const v of cases) {
    it(`${v.name}: the public key and the signature, natively and in tweetnacl`, () => {
      const pair = nacl.sign.keyPair.fromSeed(bytes(v.secretKey));
      expect(hex(pair.publicKey)).toBe(v.publicKey);
      const message = bytes(v.message);
      expect(hex(nodeEd25519Sign(message, pair.secretKey))).toBe(v.signature);
      expect(hex(nacl.sign.detached(message, pair.secretKey))).toBe(v.signature);
      expect(nodeEd25519Verify(message, bytes(v.signature), bytes(v.publicKey))).toBe(true);
      // Again, with the key object from the cache.
      expect(nodeEd25519Verify(message, bytes(v.signature), bytes(v.publicKey))).toBe(true);
    });

    it(`${v.name}: refuses every one-bit change of signature, key and message, as tweetnacl does`, () => {
      const message = bytes(v.message);
      const signature = bytes(v.signature);
      const publicKey = bytes(v.publicKey);
      const altered: (readonly [Uint8Array, Uint8Array, Uint8Array])[] = [];
      for (let bit = 0; bit < 512; bit++) altered.push([message, flip(signature, bit), publicKey]);
      for (let bit = 0; bit < 256; bit++) altered.push([message, signature, flip(publicKey, bit)]);
      for (let bit = 0; bit < 8 * message.length; bit++) altered.push([flip(message, bit), signature, publicKey]);
      altered.push([Uint8Array.of(...message, 0), signature, publicKey]);
      for (const [i, [m, s, k]] of altered.entries()) {
        expect(nodeEd25519Verify(m, s, k)).toBe(false);
        // tweetnacl takes ~10 ms a check here: every ninth change is enough to show it agrees.
        if (i % 9 === 0) expect(reference(m, s, k)).toBe(false);
      }
      // Malformed lengths are a refusal, not a throw.
      expect(nodeEd25519Verify(message, signature.subarray(0, 63), publicKey)).toBe(false);
      expect(nodeEd25519Verify(message, signature, publicKey.subarray(0, 31))).toBe(false);
    });

    it(`${v.name}: refuses the non-reduced S + L that tweetnacl accepts (RFC 8032 Sec. 5.1.7)`, () => {
      const signature = bytes(v.signature);
      let s = 0n;
      for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i]!);
      let unreduced = s + L;
      const malleated = signature.slice();
      for (let i = 32; i < 64; i++) {
        malleated[i] = Number(unreduced & 0xffn);
        unreduced >>= 8n;
      }
      expect(reference(bytes(v.message), malleated, bytes(v.publicKey))).toBe(true);
      expect(nodeEd25519Verify(bytes(v.message), malleated, bytes(v.publicKey))).toBe(false);
    });
  }

  it('a cached key object answers only for its own key: a signature checked under one key does not pass under another', () => {
    const [one, two] = cases as [Vector, Vector];
    expect(nodeEd25519Verify(bytes(one.message), bytes(one.signature), bytes(one.publicKey))).toBe(true);
    expect(nodeEd25519Verify(bytes(two.message), bytes(two.signature), bytes(two.publicKey))).toBe(true);
    expect(nodeEd25519Verify(bytes(two.message), bytes(two.signature), bytes(one.publicKey))).toBe(false);
    expect(nodeEd25519Verify(bytes(one.message), bytes(one.signature), bytes(two.publicKey))).toBe(false);
  });
});

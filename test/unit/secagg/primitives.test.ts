/** SecAgg+ primitives against published vectors: AES-CTR (NIST SP 800-38A), XSalsa20 (NaCl), HMAC (RFC 4231), HKDF, base64, keys. */
import { readFileSync } from 'node:fs';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64 } from '../../../shared/secagg/bytes.ts';
import { ProtocolError } from '../../../shared/secagg/errors.ts';
import { hkdfSha512, hmacSha512 } from '../../../shared/secagg/kdf.ts';
import { agree, decryptShares, derivePairwiseSeed, derivePairwiseSeeds, encryptShares, generateRoundKeys, pairwiseSeed } from '../../../shared/secagg/keys.ts';
import { aesCtrEncrypt, aesCtrPrg, applyMasks, MaskApplier, MAX_DEPTH, xsalsa20Prg, type MaskSign } from '../../../shared/secagg/prg.ts';
import { xsalsa20Bytes, xsalsa20Words } from '../../../shared/secagg/xsalsa20.ts';
import { seededRandom } from './helpers.ts';

const load = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../../vectors/secagg/${name}`, import.meta.url), 'utf8')) as T;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

describe('AES-CTR through WebCrypto', () => {
  const { cases } = load<{ cases: { name: string; key: string; counter: string; plaintext: string; ciphertext: string }[] }>('aes-ctr-sp800-38a.json');
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    expect(hex(await aesCtrEncrypt(bytes(c.key), bytes(c.counter), bytes(c.plaintext)))).toBe(c.ciphertext);
  });

  it('the mask PRG is the AES-256-CTR keystream from a zero counter, as little-endian words', async () => {
    const seed = seededRandom('aes-prg')(new Uint8Array(32));
    const words = await aesCtrPrg.expand(seed, 40);
    const stream = await aesCtrEncrypt(seed, new Uint8Array(16), new Uint8Array(160));
    const view = new DataView(stream.buffer);
    expect(Array.from(words)).toEqual(Array.from({ length: 40 }, (_, i) => view.getUint32(4 * i, true)));
    await expect(aesCtrPrg.expand(seed.subarray(0, 16), 4)).rejects.toThrow('"seed" expected 32 bytes, got 16');
  });
});

describe('XSalsa20', () => {
  const { cases } = load<{ cases: { key: string; nonce: string; keystream: string }[] }>('xsalsa20-nacl.json');
  it('matches NaCl tests/stream3', () => {
    for (const c of cases) expect(hex(xsalsa20Bytes(bytes(c.key), bytes(c.nonce), 32))).toBe(c.keystream);
  });

  it('matches tweetnacl: secretbox of zeros is the Poly1305 tag, then the keystream from byte 32', () => {
    const random = seededRandom('xsalsa-cross');
    for (const length of [1, 63, 64, 65, 1000, 4099]) {
      const key = random(new Uint8Array(32));
      const nonce = random(new Uint8Array(24));
      const box = nacl.secretbox(new Uint8Array(length), nonce, key);
      expect(hex(xsalsa20Bytes(key, nonce, 32 + length).subarray(32))).toBe(hex(box.subarray(16)));
    }
  });

  it('the mask PRG is the keystream under a zero nonce, words equal the little-endian bytes', async () => {
    const seed = seededRandom('xsalsa-prg')(new Uint8Array(32));
    const words = await xsalsa20Prg.expand(seed, 33);
    const stream = xsalsa20Bytes(seed, new Uint8Array(24), 132);
    expect(Array.from(words)).toEqual(Array.from({ length: 33 }, (_, i) => new DataView(stream.buffer).getUint32(4 * i, true)));
    expect(Array.from(xsalsa20Words(seed, new Uint8Array(24), 33))).toEqual(Array.from(words));
  });
});

describe('HMAC-SHA-512 and HKDF-SHA-512 over tweetnacl', () => {
  it('RFC 4231 vectors', () => {
    const { cases } = load<{ cases: { key: string; data: string; mac: string }[] }>('hmac-sha512-rfc4231.json');
    for (const c of cases) expect(hex(hmacSha512(bytes(c.key), bytes(c.data)))).toBe(c.mac);
  });

  it('HKDF vectors from pyca/cryptography, and agreement with WebCrypto HKDF', async () => {
    const { cases } = load<{ cases: { ikm: string; salt: string; info: string; length: number; okm: string }[] }>('hkdf-sha512.json');
    for (const c of cases) {
      const ours = hkdfSha512(bytes(c.ikm), bytes(c.salt), bytes(c.info), c.length);
      expect(hex(ours)).toBe(c.okm);
      const key = await crypto.subtle.importKey('raw', bytes(c.ikm), 'HKDF', false, ['deriveBits']);
      const salt = c.salt.length > 0 ? bytes(c.salt) : new Uint8Array(64);
      const webcrypto = await crypto.subtle.deriveBits({ name: 'HKDF', hash: 'SHA-512', salt, info: bytes(c.info) }, key, c.length * 8);
      expect(hex(new Uint8Array(webcrypto))).toBe(c.okm);
    }
  });
});

describe('base64', () => {
  it('round-trips every length and matches Buffer', () => {
    const random = seededRandom('b64');
    for (let length = 0; length < 70; length++) {
      const b = random(new Uint8Array(length));
      const text = toBase64(b);
      expect(text).toBe(Buffer.from(b).toString('base64'));
      expect(hex(fromBase64('b', text))).toBe(hex(b));
    }
  });
  it('refuses non-base64 and non-canonical text, naming the field', () => {
    expect(() => fromBase64('maskedInput', 'abc')).toThrow('"maskedInput" is not base64');
    expect(() => fromBase64('maskedInput', 'ab!=')).toThrow(/bad character/);
    expect(() => fromBase64('maskedInput', 'QR==')).toThrow(/canonical/);
  });
});

describe('round keys', () => {
  const random = seededRandom('keys');
  const a = generateRoundKeys(random);
  const b = generateRoundKeys(random);

  it('pairwise seeds agree from both sides and differ per round and per pair', () => {
    const ab = pairwiseSeed(a.mask.secretKey, b.mask.publicKey, 'r1', 1, 2);
    expect(hex(pairwiseSeed(b.mask.secretKey, a.mask.publicKey, 'r1', 2, 1))).toBe(hex(ab));
    expect(ab).toHaveLength(32);
    expect(hex(pairwiseSeed(a.mask.secretKey, b.mask.publicKey, 'r2', 1, 2))).not.toBe(hex(ab));
    expect(hex(pairwiseSeed(a.mask.secretKey, b.mask.publicKey, 'r1', 1, 3))).not.toBe(hex(ab));
  });

  it('share ciphertexts open only for the bound sender, receiver and round', () => {
    const shares = { selfMaskShare: random(new Uint8Array(33)), keyShare: random(new Uint8Array(33)) };
    const sealed = encryptShares(a.encryption.secretKey, b.encryption.publicKey, 'r1', 1, 2, shares, random);
    const opened = decryptShares(b.encryption.secretKey, a.encryption.publicKey, 'r1', 1, 2, sealed);
    expect(hex(opened.selfMaskShare)).toBe(hex(shares.selfMaskShare));
    expect(hex(opened.keyShare)).toBe(hex(shares.keyShare));
    for (const [round, from, to] of [['r2', 1, 2], ['r1', 3, 2], ['r1', 1, 3]] as const) {
      expect(() => decryptShares(b.encryption.secretKey, a.encryption.publicKey, round, from, to, sealed)).toThrow(ProtocolError);
    }
  });

  it('refuses a low-order public key (all-zero agreement)', () => {
    expect(() => agree(a.mask.secretKey, new Uint8Array(32))).toThrow(/all-zero/);
  });
});

describe('masks applied in place (the unmask fast path) equal expand-then-add', () => {
  it.each([aesCtrPrg, xsalsa20Prg].map((prg) => [prg.name, prg] as const))('%s: applyMask and pipelined applyMasks', async (_name, prg) => {
    const random = seededRandom(`apply-${prg.name}`);
    for (const length of [0, 1, 15, 16, 17, 1000, 2 ** 17, 2 * 2 ** 17 + 5]) {
      const start = new Uint32Array(length);
      random(new Uint8Array(start.buffer));
      const signs: MaskSign[] = [1, -1, -1, 1, 1, 1, 1, -1, 1];
      const seeds = signs.map(() => random(new Uint8Array(32)));
      const expected = start.slice();
      for (const [j, seed] of seeds.entries()) {
        const mask = await prg.expand(seed, length);
        for (let i = 0; i < length; i++) expected[i] = expected[i]! + signs[j]! * mask[i]!;
      }
      const one = start.slice();
      for (const [j, seed] of seeds.entries()) await prg.applyMask(seed, one, signs[j]!);
      expect(Array.from(one)).toEqual(Array.from(expected));
      for (const depth of [1, 2, 4]) {
        const copies = seeds.map((seed) => seed.slice());
        const piped = start.slice();
        await applyMasks(prg, piped, copies.map((seed, j) => ({ seed, sign: signs[j]! })), depth);
        expect(Array.from(piped)).toEqual(Array.from(expected));
        for (const seed of copies) expect(seed.every((b) => b === 0)).toBe(true);
      }
    }
  });

  it.each([aesCtrPrg, xsalsa20Prg].map((prg) => [prg.name, prg] as const))('%s: jobs pushed in batches over time (MaskApplier) add up the same', async (_name, prg) => {
    const random = seededRandom(`applier-${prg.name}`);
    for (const length of [7, 1000, 2 ** 17 + 3]) {
      const start = new Uint32Array(length);
      random(new Uint8Array(start.buffer));
      const batches: MaskSign[][] = [[-1, -1, -1, -1, -1], [1, -1, 1], [], [1], [-1, 1, 1, 1, 1, -1]];
      const seeds = batches.map((signs) => signs.map(() => random(new Uint8Array(32))));
      const expected = start.slice();
      for (const [b, signs] of batches.entries()) {
        for (const [j, sign] of signs.entries()) {
          const mask = await prg.expand(seeds[b]![j]!, length);
          for (let i = 0; i < length; i++) expected[i] = expected[i]! + sign * mask[i]!;
        }
      }
      for (const depth of [1, 3, MAX_DEPTH]) {
        const target = start.slice();
        const applier = new MaskApplier(prg, target, depth);
        const copies = seeds.map((batch) => batch.map((seed) => seed.slice()));
        for (const [b, signs] of batches.entries()) {
          applier.push(signs.map((sign, j) => ({ seed: copies[b]![j]!, sign })));
          if (b % 2 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
        }
        await applier.drain();
        expect(Array.from(target)).toEqual(Array.from(expected));
        for (const seed of copies.flat()) expect(seed.every((v) => v === 0)).toBe(true);
      }
    }
  });

  it('a refused push queues nothing; drain still wipes what was pushed', async () => {
    const target = new Uint32Array(16);
    const applier = new MaskApplier(aesCtrPrg, target, 2);
    const good = new Uint8Array(32).fill(9);
    expect(() => applier.push([{ seed: new Uint8Array(32).fill(3), sign: 1 }, { seed: new Uint8Array(31), sign: 1 }])).toThrow('"seed" expected 32 bytes, got 31');
    applier.push([{ seed: good, sign: -1 }]);
    await applier.drain();
    const mask = await aesCtrPrg.expand(new Uint8Array(32).fill(9), 16);
    expect(Array.from(target)).toEqual(Array.from(mask, (m) => (0x1_0000_0000 - m) % 0x1_0000_0000));
    expect(good.every((v) => v === 0)).toBe(true);
    expect(() => new MaskApplier(aesCtrPrg, target, MAX_DEPTH + 1)).toThrow(`"depth" expected an integer in [1, ${MAX_DEPTH}], got ${MAX_DEPTH + 1}`);
  });

  it('refuses a bad sign, target or seed, naming it', async () => {
    const seed = new Uint8Array(32).fill(1);
    await expect(aesCtrPrg.applyMask(seed, new Uint32Array(4), 2 as MaskSign)).rejects.toThrow('"sign" expected 1 or -1, got 2');
    await expect(xsalsa20Prg.applyMask(seed, new Int32Array(4) as unknown as Uint32Array, 1)).rejects.toThrow(TypeError);
    await expect(applyMasks(aesCtrPrg, new Uint32Array(4), [{ seed: seed.subarray(0, 16), sign: 1 }])).rejects.toThrow('"seed" expected 32 bytes, got 16');
  });
});

describe('pairwise seeds through WebCrypto HKDF equal the synchronous derivation', () => {
  it('for many secrets and both orders of the pair', async () => {
    const random = seededRandom('seeds-async');
    const shared = Array.from({ length: 20 }, () => random(new Uint8Array(32)));
    const peers = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? i + 1 : 100 + i));
    const fast = await derivePairwiseSeeds(shared, 'round-7', 50, peers);
    expect(fast.map(hex)).toEqual(shared.map((s, j) => hex(derivePairwiseSeed(s, 'round-7', 50, peers[j]!))));
    expect(fast.map(hex)).toEqual(shared.map((s, j) => hex(derivePairwiseSeed(s, 'round-7', peers[j]!, 50))));
    await expect(derivePairwiseSeeds(shared, 'r', 1, [2])).rejects.toThrow('"peers" expected 20 indices (one per secret), got 1');
  });
});

/**
 * The coordinator's native (OpenSSL, in a worker thread) X25519 and HKDF for the unmask stage give the
 * same bytes and the same refusals as the isomorphic tweetnacl / WebCrypto path: RFC 7748 vectors, random keys
 * (including u-coordinates with the top bit set or >= p), low-order points, and whole rounds.
 */
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { INLINE_AGREEMENTS, nativeMaskKeyCrypto, nodeMaskKeyCrypto, nodeX25519, terminateX25519Workers } from '../../../server/rounds/secagg-native-crypto.ts';
import { ProtocolError } from '../../../shared/secagg/errors.ts';
import { agree, agreeMany, derivePairwiseSeed, isomorphicMaskKeyCrypto } from '../../../shared/secagg/keys.ts';
import { expectExactSum, seededRandom } from './helpers.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

/** RFC 7748 (Langley, Hamburg, Turner 2016), Sec. 5.2 (scalar, u, X25519(scalar, u)); vector 2's u has its top bit set. */
const RFC7748_SEC5_2 = [
  ['a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4', 'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c', 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552'],
  ['4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d', 'e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493', '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957'],
] as const;

/** RFC 7748, Sec. 6.1: Alice's and Bob's key pairs and their shared secret. */
const RFC7748_SEC6_1 = {
  alice: ['77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'],
  bob: ['5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb', 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f'],
  shared: '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
} as const;

/**
 * Low-order u-coordinates (0, 1, the two points of order 8, p - 1, p, p + 1) and the same with the
 * ignored top bit set: X25519 with any of them is all zeros (checked against tweetnacl below).
 */
const LOW_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].flatMap((u) => [u, `${u.slice(0, 62)}${(Number.parseInt(u.slice(62), 16) | 0x80).toString(16).padStart(2, '0')}`]);

/** Every request to the workers (inline limit 0), or every one on the calling thread. */
const PATHS = [
  { path: 'workers', inline: 0 },
  { path: 'calling thread', inline: Number.POSITIVE_INFINITY },
] as const;

describe.each(PATHS)('native X25519 (OpenSSL) on the $path equals tweetnacl', ({ inline }) => {
  const maskKeyCrypto = nativeMaskKeyCrypto(inline);
  const x25519 = (secretKey: Uint8Array, publicKeys: readonly Uint8Array[]) => nodeX25519(secretKey, publicKeys, inline);

  it('RFC 7748 Sec. 5.2 and 6.1 vectors', async () => {
    for (const [scalar, u, out] of RFC7748_SEC5_2) {
      expect(hex((await x25519(bytes(scalar), [bytes(u)])).shared[0]!)).toBe(out);
      expect(hex(nacl.scalarMult(bytes(scalar), bytes(u)))).toBe(out);
    }
    const { alice, bob, shared } = RFC7748_SEC6_1;
    const fromAlice = await x25519(bytes(alice[0]), [bytes(bob[1])]);
    const fromBob = await x25519(bytes(bob[0]), [bytes(alice[1])]);
    expect([hex(fromAlice.publicKey), hex(fromBob.publicKey)]).toEqual([alice[1], bob[1]]);
    expect([hex(fromAlice.shared[0]!), hex(fromBob.shared[0]!)]).toEqual([shared, shared]);
    expect((await agreeMany(bytes(alice[0]), [bytes(bob[1])])).map(hex)).toEqual([shared]);
  });

  it('on random keys and public keys, including u with the top bit set and u >= p', async () => {
    const random = seededRandom('native-x25519');
    for (let i = 0; i < 40; i++) {
      const secretKey = random(new Uint8Array(32));
      const publicKeys = Array.from({ length: 8 }, (_, j) => {
        const key = j < 4 ? nacl.scalarMult.base(random(new Uint8Array(32))) : random(new Uint8Array(32));
        if (j % 2 === 1) key[31] = key[31]! | 0x80;
        return key;
      });
      // u in [p, 2^255) that is not low order: p + 2 .. p + 9 (little-endian), top bit clear.
      const nonCanonical = bytes('efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
      nonCanonical[0] = 0xef + (i % 8);
      publicKeys.push(nonCanonical);
      const native = await x25519(secretKey, publicKeys);
      expect(hex(native.publicKey)).toBe(hex(nacl.scalarMult.base(secretKey)));
      expect(native.shared.map(hex)).toEqual(publicKeys.map((key) => hex(nacl.scalarMult(secretKey, key))));
    }
  });

  it('refuses every low-order public key with BAD_KEY, as tweetnacl and the isomorphic path do', async () => {
    const secretKey = seededRandom('low-order')(new Uint8Array(32));
    const good = nacl.scalarMult.base(seededRandom('low-order-peer')(new Uint8Array(32)));
    for (const u of LOW_ORDER) {
      expect(hex(nacl.scalarMult(secretKey, bytes(u)))).toBe('00'.repeat(32));
      const runs: (() => unknown)[] = [
        () => agree(secretKey, bytes(u)),
        () => x25519(secretKey, [good, bytes(u)]),
        () => maskKeyCrypto.pairwiseSeeds(secretKey, [good, bytes(u)], 'r', 1, [2, 3]),
        () => isomorphicMaskKeyCrypto.pairwiseSeeds(secretKey, [good, bytes(u)], 'r', 1, [2, 3]),
      ];
      for (const run of runs) {
        const refusal = await Promise.resolve().then(run).then(() => undefined, (err: unknown) => err);
        expect(refusal).toBeInstanceOf(ProtocolError);
        expect((refusal as ProtocolError).code).toBe('BAD_KEY');
      }
    }
  });

  it('refuses wrong sizes, naming the argument', () => {
    expect(() => x25519(new Uint8Array(31), [])).toThrow('"secretKey" expected 32 bytes, got 31');
    expect(() => x25519(new Uint8Array(32), [new Uint8Array(33)])).toThrow('"publicKey" expected 32 bytes, got 33');
    expect(() => maskKeyCrypto.pairwiseSeeds(new Uint8Array(32), [new Uint8Array(32).fill(9)], 'r', 1, [])).toThrow('"peers" expected 1 indices (one per public key), got 0');
  });
});

describe.each(PATHS)('native pairwise seeds (X25519 then HKDF-SHA-512) on the $path equal the isomorphic ones', ({ inline }) => {
  const maskKeyCrypto = nativeMaskKeyCrypto(inline);
  it('for many peers on both sides of the dropped client', async () => {
    const random = seededRandom('native-seeds');
    for (let i = 0; i < 5; i++) {
      const secretKey = random(new Uint8Array(32));
      const publicKeys = Array.from({ length: 30 }, () => nacl.scalarMult.base(random(new Uint8Array(32))));
      const peers = publicKeys.map((_, j) => (j % 2 === 0 ? j + 1 : 500 + j));
      const native = await maskKeyCrypto.pairwiseSeeds(secretKey, publicKeys, 'round-9', 77, peers);
      const isomorphic = await isomorphicMaskKeyCrypto.pairwiseSeeds(secretKey, publicKeys, 'round-9', 77, peers);
      expect(hex(native.publicKey)).toBe(hex(nacl.scalarMult.base(secretKey)));
      expect(hex(isomorphic.publicKey)).toBe(hex(native.publicKey));
      const reference = publicKeys.map((key, j) => hex(derivePairwiseSeed(nacl.scalarMult(secretKey, key), 'round-9', peers[j]!, 77)));
      expect(native.seeds.map(hex)).toEqual(reference);
      expect(isomorphic.seeds.map(hex)).toEqual(reference);
    }
  });
});

describe('requests by size', () => {
  it('at most INLINE_AGREEMENTS agreements answer synchronously on the calling thread, more go to the workers; the caller keeps its secret key', async () => {
    const random = seededRandom('native-by-size');
    const secretKey = random(new Uint8Array(32));
    const before = hex(secretKey);
    const keys = (m: number) => Array.from({ length: m }, () => nacl.scalarMult.base(random(new Uint8Array(32))));
    const small = keys(INLINE_AGREEMENTS);
    const inline = nodeMaskKeyCrypto.pairwiseSeeds(secretKey, small, 'r', 1, small.map((_, j) => j + 2));
    expect(inline).not.toBeInstanceOf(Promise);
    const large = keys(INLINE_AGREEMENTS + 1);
    const pooled = nodeMaskKeyCrypto.pairwiseSeeds(secretKey, large, 'r', 1, large.map((_, j) => j + 2));
    expect(pooled).toBeInstanceOf(Promise);
    const reference = (publicKeys: Uint8Array[]) => publicKeys.map((key, j) => hex(derivePairwiseSeed(nacl.scalarMult(secretKey, key), 'r', j + 2, 1)));
    expect((inline as Awaited<typeof pooled>).seeds.map(hex)).toEqual(reference(small));
    expect((await pooled).seeds.map(hex)).toEqual(reference(large));
    expect(hex(secretKey)).toBe(before);
  });
});

describe('X25519 workers that stop', () => {
  it('fail the requests they hold with a clear error, leave later requests to new workers, and an exit after the stop fails nothing new', async () => {
    const random = seededRandom('native-stop');
    const secretKey = random(new Uint8Array(32));
    const publicKeys = Array.from({ length: INLINE_AGREEMENTS + 1 }, () => nacl.scalarMult.base(random(new Uint8Array(32))));
    const reference = publicKeys.map((key) => hex(nacl.scalarMult(secretKey, key)));
    await nodeX25519(secretKey, publicKeys, 0); // the workers are running
    const held = nodeX25519(secretKey, publicKeys, 0).then(() => 'answered', (err: unknown) => (err as Error).message);
    const stopping = terminateX25519Workers();
    // Sent while the old workers are still exiting: their exit events must not fail it.
    const next = nodeX25519(secretKey, publicKeys, 0);
    await stopping;
    expect(await held).toBe('X25519 worker terminated');
    expect((await next).shared.map(hex)).toEqual(reference);
    expect((await nodeX25519(secretKey, publicKeys, 0)).shared.map(hex)).toEqual(reference);
  });
});

describe.each(PATHS)('a server with the native mask-key crypto on the $path unmasks exactly', ({ inline }) => {
  const maskKeyCrypto = nativeMaskKeyCrypto(inline);

  it('n=10, complete graph, a dropout at every stage', async () => {
    await expectExactSum({ n: 10, k: 9, t: 6, vectorLength: 300, label: 'native-n10', maskKeyCrypto }, { 'advertise-keys': [2], 'share-keys': [5], 'masked-input': [7], unmask: [4] });
  });

  it('n=40, random graph k=12, several dropped clients with shared neighbours', async () => {
    await expectExactSum({ n: 40, k: 12, t: 8, vectorLength: 1000, label: 'native-n40', maskKeyCrypto }, { 'masked-input': [3, 11, 20, 33], unmask: [6] });
  });
});

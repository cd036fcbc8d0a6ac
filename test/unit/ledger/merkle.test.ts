/**
 * The transparency log's Merkle tree (RFC 9162 Sec. 2.1): the published Certificate Transparency
 * vectors (test/vectors/ledger), then every tree of 1..32 leaves against a slow reference (the
 * recursive definitions of Sec. 2.1.1, 2.1.3.1 and 2.1.4.1 over node:crypto, sharing no code with
 * shared/ledger/merkle.ts): each root, each inclusion proof and each consistency proof equals the
 * reference's and verifies, and every proof with a changed, missing or extra node, or checked
 * against another root or leaf, does not.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../shared/ledger/digest.ts';
import { emptyRootHash, leafHash, MerkleTree, verifyConsistency, verifyInclusion } from '../../../shared/ledger/merkle.ts';

interface Vectors {
  leaves: string[];
  roots: string[];
  inclusion: { index: number; size: number; path: string[] }[];
  consistency: { first: number; second: number; proof: string[] }[];
}
const vectors = JSON.parse(readFileSync(new URL('../../vectors/ledger/rfc6962-merkle.json', import.meta.url), 'utf8')) as Vectors;

const bytesOf = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (h) => Number.parseInt(h, 16));
const hash = (hex: string) => fromHex('hash', hex, 32);

// The slow reference: the RFC's recursive definitions, each subtree hashed from its leaves.
const sha = (...parts: Uint8Array[]) => new Uint8Array(createHash('sha256').update(Buffer.concat(parts)).digest());
const k = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1);
function mth(d: readonly Uint8Array[]): Uint8Array {
  if (d.length === 0) return sha();
  if (d.length === 1) return sha(Uint8Array.of(0), d[0] as Uint8Array);
  return sha(Uint8Array.of(1), mth(d.slice(0, k(d.length))), mth(d.slice(k(d.length))));
}
function path(m: number, d: readonly Uint8Array[]): Uint8Array[] {
  if (d.length === 1) return [];
  const s = k(d.length);
  return m < s ? [...path(m, d.slice(0, s)), mth(d.slice(s))] : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
}
function subproof(m: number, d: readonly Uint8Array[], whole: boolean): Uint8Array[] {
  if (m === d.length) return whole ? [] : [mth(d)];
  const s = k(d.length);
  return m <= s ? [...subproof(m, d.slice(0, s), whole), mth(d.slice(s))] : [...subproof(m - s, d.slice(s), false), mth(d.slice(0, s))];
}

const flipped = (h: Uint8Array, bit: number) => {
  const out = Uint8Array.from(h);
  out[bit >> 3] = (out[bit >> 3] as number) ^ (1 << (bit & 7));
  return out;
};

/** Every way of spoiling a proof that must make it fail: each node changed, one dropped, one added. */
function spoiled(proof: readonly Uint8Array[]): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  proof.forEach((h, i) => out.push(proof.map((p, j) => (j === i ? flipped(h, (i * 37) % 256) : p))));
  if (proof.length > 0) out.push(proof.slice(0, -1), proof.slice(1));
  out.push([...proof, sha(Uint8Array.of(7))]);
  return out;
}

describe('Merkle tree (RFC 9162 Sec. 2.1)', () => {
  it('gives the published Certificate Transparency roots and the proofs the RFC defines', async () => {
    const tree = new MerkleTree();
    expect(toHex(await tree.rootHash())).toBe(vectors.roots[0]);
    expect(toHex(await emptyRootHash())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    for (const [i, leaf] of vectors.leaves.entries()) {
      await tree.appendLeaf(bytesOf(leaf));
      expect(toHex(await tree.rootHash()), `size ${i + 1}`).toBe(vectors.roots[i + 1]);
    }
    for (let n = 0; n <= 8; n++) expect(toHex(await tree.rootHash(n))).toBe(vectors.roots[n]);
    for (const v of vectors.inclusion) {
      const proof = await tree.inclusionProof(v.index, v.size);
      expect(proof.map(toHex), `inclusion ${v.index} of ${v.size}`).toEqual(v.path);
      expect(await verifyInclusion(tree.leafHashAt(v.index), v.index, v.size, v.path.map(hash), hash(vectors.roots[v.size] as string))).toBe(true);
    }
    for (const v of vectors.consistency) {
      const proof = await tree.consistencyProof(v.first, v.second);
      expect(proof.map(toHex), `consistency ${v.first} -> ${v.second}`).toEqual(v.proof);
      expect(await verifyConsistency(v.first, v.second, hash(vectors.roots[v.first] as string), hash(vectors.roots[v.second] as string), v.proof.map(hash))).toBe(true);
    }
  });

  it('matches the slow reference on every tree of 1..32 leaves: roots, every inclusion and consistency proof; spoiled proofs fail', async () => {
    const data = Array.from({ length: 32 }, (_, i) => Uint8Array.from([i, (i * 7) & 255, 0x2a]));
    const tree = new MerkleTree();
    for (let n = 1; n <= data.length; n++) {
      await tree.appendLeaf(data[n - 1] as Uint8Array);
      const d = data.slice(0, n);
      const root = mth(d);
      expect(toHex(await tree.rootHash()), `root of ${n}`).toBe(toHex(root));
      for (let m = 0; m < n; m++) {
        const proof = await tree.inclusionProof(m, n);
        expect(proof.map(toHex), `inclusion ${m} of ${n}`).toEqual(path(m, d).map(toHex));
        const leaf = tree.leafHashAt(m);
        expect(await verifyInclusion(leaf, m, n, proof, root)).toBe(true);
        expect(await verifyInclusion(flipped(leaf, 3), m, n, proof, root)).toBe(false);
        expect(await verifyInclusion(leaf, m, n, proof, flipped(root, 200))).toBe(false);
        expect(await verifyInclusion(leaf, n, n, proof, root)).toBe(false);
        for (const bad of spoiled(proof)) expect(await verifyInclusion(leaf, m, n, bad, root), `spoiled inclusion ${m} of ${n}`).toBe(false);
      }
      for (let m = 1; m <= n; m++) {
        const proof = await tree.consistencyProof(m, n);
        expect(proof.map(toHex), `consistency ${m} -> ${n}`).toEqual(subproof(m, d, true).map(toHex));
        const old = mth(data.slice(0, m));
        expect(await verifyConsistency(m, n, old, root, proof), `consistency ${m} -> ${n}`).toBe(true);
        expect(await verifyConsistency(m, n, flipped(old, 9), root, proof)).toBe(false);
        expect(await verifyConsistency(m, n, old, flipped(root, 9), proof)).toBe(false);
        for (const bad of spoiled(proof)) expect(await verifyConsistency(m, n, old, root, bad), `spoiled consistency ${m} -> ${n}`).toBe(false);
        // A history rewritten at any leaf below m is never consistent with the kept root.
        if (m < n && n <= 16) {
          const rewritten = d.map((x, i) => (i === (n * 7) % m ? Uint8Array.from([...x, 1]) : x));
          const forged = await MerkleTree.fromLeafHashes(await Promise.all(rewritten.map(leafHash)));
          expect(await verifyConsistency(m, n, old, await forged.rootHash(), await forged.consistencyProof(m, n))).toBe(false);
        }
      }
    }
  });

  it('answers the trivial consistency cases and refuses sizes outside the tree', async () => {
    const tree = await MerkleTree.fromLeafHashes(await Promise.all([1, 2, 3].map((i) => leafHash(Uint8Array.of(i)))));
    const empty = await emptyRootHash();
    const root = await tree.rootHash();
    expect(await tree.consistencyProof(0, 3)).toEqual([]);
    expect(await verifyConsistency(0, 3, empty, root, [])).toBe(true);
    expect(await verifyConsistency(0, 3, root, root, [])).toBe(false);
    expect(await verifyConsistency(3, 3, root, root, [])).toBe(true);
    expect(await verifyConsistency(3, 3, root, empty, [])).toBe(false);
    expect(await verifyConsistency(3, 2, root, root, [])).toBe(false);
    expect(await verifyConsistency(2, 3, await tree.rootHash(2), root, [])).toBe(false);
    expect(await verifyInclusion(tree.leafHashAt(0), -1, 3, [], root)).toBe(false);
    await expect(tree.rootHash(4)).rejects.toThrow(/"size" expected an integer in \[0, 3\], got 4/);
    await expect(tree.inclusionProof(3, 3)).rejects.toThrow(/"index" expected an integer in \[0, 2\], got 3/);
    await expect(tree.consistencyProof(2, 4)).rejects.toThrow(/"second" expected an integer in \[0, 3\], got 4/);
    await expect(tree.appendLeafHash(new Uint8Array(31))).rejects.toThrow(/"hash" expected 32 bytes, got 31/);
    expect(tree.size).toBe(3);
  });
});

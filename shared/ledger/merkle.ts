/**
 * The Merkle tree of the ledger's transparency log, exactly as RFC 9162 defines it for
 * Certificate Transparency: leaf and interior hashes with the 0x00 / 0x01 domain prefixes
 * (Sec. 2.1.1), inclusion proofs (Sec. 2.1.3.1 PATH, verified by Sec. 2.1.3.2) and consistency
 * proofs (Sec. 2.1.4.1 PROOF/SUBPROOF, verified by Sec. 2.1.4.2). SHA-256 through WebCrypto, so
 * the same code runs in Node, in a browser and on a device. A consistency proof is what lets an
 * auditor who kept an old tree head check that today's ledger only appended to it: nothing it
 * covered was removed, reordered or rewritten.
 */
import { sha256Bytes } from './digest.ts';

/** MTH({}) = SHA-256 of the empty string (RFC 9162 Sec. 2.1.1). */
export function emptyRootHash(): Promise<Uint8Array> {
  return sha256Bytes(new Uint8Array(0));
}

/** MTH({d(0)}) = SHA-256(0x00 || d(0)) (RFC 9162 Sec. 2.1.1). */
export function leafHash(data: Uint8Array): Promise<Uint8Array> {
  const bytes = new Uint8Array(data.length + 1);
  bytes[0] = 0x00;
  bytes.set(data, 1);
  return sha256Bytes(bytes);
}

/** SHA-256(0x01 || left || right) (RFC 9162 Sec. 2.1.1). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Uint8Array> {
  const bytes = new Uint8Array(1 + left.length + right.length);
  bytes[0] = 0x01;
  bytes.set(left, 1);
  bytes.set(right, 1 + left.length);
  return sha256Bytes(bytes);
}

/** The largest power of two strictly smaller than n (n > 1): the split point k of Sec. 2.1.1. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && splitPoint(n + 1) === n;
}

function checkSize(name: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new TypeError(`"${name}" expected an integer, got ${String(value)}`);
  if (value < min || value > max) throw new RangeError(`"${name}" expected an integer in [${min}, ${max}], got ${value}`);
  return value;
}

/**
 * An append-only Merkle tree over leaf hashes. It keeps the hash of every complete subtree
 * (levels[h][i] covers leaves i * 2^h .. (i + 1) * 2^h - 1), so an append costs O(log n) hashes
 * and the root or a proof for any earlier size O(log n) more: in the recursion of Sec. 2.1.1 every
 * left child is such a complete, aligned subtree.
 */
export class MerkleTree {
  private readonly levels: Uint8Array[][] = [[]];

  static async fromLeafHashes(hashes: readonly Uint8Array[]): Promise<MerkleTree> {
    const tree = new MerkleTree();
    for (const h of hashes) await tree.appendLeafHash(h);
    return tree;
  }

  get size(): number {
    return (this.levels[0] as Uint8Array[]).length;
  }

  leafHashAt(index: number): Uint8Array {
    checkSize('index', index, 0, this.size - 1);
    return (this.levels[0] as Uint8Array[])[index] as Uint8Array;
  }

  async appendLeaf(data: Uint8Array): Promise<Uint8Array> {
    const h = await leafHash(data);
    await this.appendLeafHash(h);
    return h;
  }

  async appendLeafHash(hash: Uint8Array): Promise<void> {
    if (!(hash instanceof Uint8Array) || hash.length !== 32) throw new RangeError(`"hash" expected 32 bytes, got ${hash instanceof Uint8Array ? hash.length : typeof hash}`);
    // Hash first, push after: a failed digest leaves the tree as it was.
    const completed: Uint8Array[] = [];
    let node = hash;
    let index = this.size;
    for (let level = 0; index % 2 === 1; level++) {
      node = await nodeHash((this.levels[level] as Uint8Array[])[index - 1] as Uint8Array, node);
      completed.push(node);
      index = (index - 1) / 2;
    }
    (this.levels[0] as Uint8Array[]).push(hash);
    completed.forEach((h, i) => {
      this.levels[i + 1] ??= [];
      (this.levels[i + 1] as Uint8Array[]).push(h);
    });
  }

  /** MTH(D[lo:hi]), 0 <= lo < hi <= size. */
  private async rangeHash(lo: number, hi: number): Promise<Uint8Array> {
    const n = hi - lo;
    if (isPowerOfTwo(n) && lo % n === 0) return (this.levels[Math.log2(n)] as Uint8Array[])[lo / n] as Uint8Array;
    const k = splitPoint(n);
    return nodeHash(await this.rangeHash(lo, lo + k), await this.rangeHash(lo + k, hi));
  }

  /** The root hash of the first `size` leaves (RFC 9162 Sec. 2.1.1); default: all of them. */
  async rootHash(size = this.size): Promise<Uint8Array> {
    checkSize('size', size, 0, this.size);
    return size === 0 ? emptyRootHash() : this.rangeHash(0, size);
  }

  /** PATH(index, D[0:size]) (RFC 9162 Sec. 2.1.3.1), leaf's sibling first. */
  async inclusionProof(index: number, size = this.size): Promise<Uint8Array[]> {
    checkSize('size', size, 1, this.size);
    checkSize('index', index, 0, size - 1);
    const path: Uint8Array[] = [];
    // Walk down from the root, collecting the sibling of each subtree that holds the leaf.
    let lo = 0;
    let hi = size;
    while (hi - lo > 1) {
      const k = splitPoint(hi - lo);
      if (index < lo + k) {
        path.push(await this.rangeHash(lo + k, hi));
        hi = lo + k;
      } else {
        path.push(await this.rangeHash(lo, lo + k));
        lo += k;
      }
    }
    return path.reverse();
  }

  /**
   * PROOF(first, D[0:second]) (RFC 9162 Sec. 2.1.4.1): the nodes that prove the tree of `second`
   * leaves extends the tree of `first`. Empty when first is 0 or equals second (nothing to prove).
   */
  async consistencyProof(first: number, second = this.size): Promise<Uint8Array[]> {
    checkSize('second', second, 0, this.size);
    checkSize('first', first, 0, second);
    if (first === 0 || first === second) return [];
    const proof: Uint8Array[] = [];
    // SUBPROOF(m, D[lo:hi], b), unrolled from the root down; the nodes come out deepest last.
    let lo = 0;
    let hi = second;
    let m = first;
    let whole = true;
    while (m !== hi - lo) {
      const k = splitPoint(hi - lo);
      if (m <= k) {
        proof.push(await this.rangeHash(lo + k, hi));
        hi = lo + k;
      } else {
        proof.push(await this.rangeHash(lo, lo + k));
        lo += k;
        m -= k;
        whole = false;
      }
    }
    if (!whole) proof.push(await this.rangeHash(lo, hi));
    return proof.reverse();
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

function are32Bytes(hashes: readonly Uint8Array[]): boolean {
  return hashes.every((h) => h instanceof Uint8Array && h.length === 32);
}

/**
 * RFC 9162 Sec. 2.1.3.2: whether `proof` shows the leaf with hash `leaf` at `index` in the tree of
 * `size` leaves whose root is `root`. Never throws for a bad proof; it answers false.
 */
export async function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): Promise<boolean> {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (!are32Bytes([leaf, root, ...proof])) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      // A right-edge node with no sibling at this level: climb until it is a right child.
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn /= 2;
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && sameBytes(r, root);
}

/**
 * RFC 9162 Sec. 2.1.4.2: whether `proof` shows that the tree of `second` leaves with root
 * `secondRoot` extends the tree of `first` leaves with root `firstRoot`. The RFC's algorithm
 * needs 0 < first < second; the trivial cases are answered here: first = second holds exactly
 * when the roots are equal and the proof is empty, and first = 0 when the first root is the
 * empty tree's and the proof is empty. Never throws for a bad proof; it answers false.
 */
export async function verifyConsistency(first: number, second: number, firstRoot: Uint8Array, secondRoot: Uint8Array, proof: readonly Uint8Array[]): Promise<boolean> {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 0 || first > second) return false;
  if (!are32Bytes([firstRoot, secondRoot, ...proof])) return false;
  if (first === 0) return proof.length === 0 && sameBytes(firstRoot, await emptyRootHash());
  if (first === second) return proof.length === 0 && sameBytes(firstRoot, secondRoot);
  if (proof.length === 0) return false;
  // Step 2: a first tree that is a complete subtree is its own first node.
  const path = isPowerOfTwo(first) ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = (fn - 1) / 2;
    sn = Math.floor(sn / 2);
  }
  let fr = path[0] as Uint8Array;
  let sr = fr;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn /= 2;
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && sameBytes(fr, firstRoot) && sameBytes(sr, secondRoot);
}

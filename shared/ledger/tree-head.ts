/**
 * Tree heads of the ledger's transparency log. Every entry is a leaf of an RFC 9162 Merkle tree
 * (merkle.ts), its leaf data the entry's canonical JSON, signature included. A tree head names a
 * tree size and its root hash (RFC 9162 Sec. 4.9, TreeHeadDataV2); a signed tree head adds the
 * ledger key's Ed25519 signature (Sec. 4.10, the STH), with the genesis key standing for CT's
 * log_id. An auditor keeps the last head it saw; a later ledger must be a consistent extension of
 * it (Sec. 2.1.4): same first `treeSize` entries, byte for byte. That is what exposes a ledger
 * cut at its end or rewritten, even one re-signed by whoever holds the ledger key: the key can
 * sign a new history, not make it hash to a root the auditor already holds.
 */
import nacl from 'tweetnacl';
import { z } from 'zod';
import { canonicalJson } from './canonical.ts';
import { fromHex, toHex, utf8 } from './digest.ts';
import { checkSigningKey } from './entry.ts';
import type { LedgerEntry, SigningKey } from './entry.ts';
import { MerkleTree } from './merkle.ts';
import type { Ed25519Verify } from '../secagg/keys.ts';

export const TREE_HEAD_FORMAT = 'portrait-tree-head/1';

const Hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 32 bytes as lowercase hex');
const Hex64 = z.string().regex(/^[0-9a-f]{128}$/, 'expected 64 bytes as lowercase hex');

const TreeHeadFields = {
  format: z.literal(TREE_HEAD_FORMAT),
  /** The ledger's genesis public key (hex): which ledger this is a head of (CT's log_id). */
  genesisKey: Hex32,
  treeSize: z.number().int().min(0),
  /** MTH of the first treeSize entries (RFC 9162 Sec. 2.1.1), hex. */
  rootHash: Hex32,
  /** Milliseconds since the epoch when the head was made (RFC 9162 Sec. 4.9). */
  timestamp: z.number().int().min(0),
};

/** A head the auditor computed itself from entries it verified (a data directory): not signed. */
export const TreeHeadSchema = z.object(TreeHeadFields).strict();
/** A head signed by the ledger key current at treeSize (RFC 9162 Sec. 4.10). */
export const SignedTreeHeadSchema = z.object({ ...TreeHeadFields, keyId: Hex32, signature: Hex64 }).strict();
/** What `audit verify --since FILE` reads: either kind. */
export const KeptTreeHeadSchema = z.union([SignedTreeHeadSchema, TreeHeadSchema]);

export type TreeHead = z.infer<typeof TreeHeadSchema>;
export type SignedTreeHead = z.infer<typeof SignedTreeHeadSchema>;
export type KeptTreeHead = z.infer<typeof KeptTreeHeadSchema>;

export type { Ed25519Verify };

/** The leaf data of an entry: its canonical JSON (signature included) as UTF-8. */
export function entryLeafData(entry: LedgerEntry): Uint8Array {
  return utf8(canonicalJson(entry));
}

/** The Merkle tree over `entries` in order. */
export async function ledgerTree(entries: readonly LedgerEntry[]): Promise<MerkleTree> {
  const tree = new MerkleTree();
  for (const entry of entries) await tree.appendLeaf(entryLeafData(entry));
  return tree;
}

export function signTreeHead(head: TreeHead, key: SigningKey): SignedTreeHead {
  checkSigningKey(key);
  const body = { ...TreeHeadSchema.parse(head), keyId: toHex(key.publicKey) };
  return { ...body, signature: toHex(nacl.sign.detached(utf8(canonicalJson(body)), key.secretKey)) };
}

export function isSignedTreeHead(head: KeptTreeHead): head is SignedTreeHead {
  return 'signature' in head;
}

/** Whether the head's signature verifies under its own keyId (whose key that is, the caller checks). */
export function treeHeadSignatureVerifies(head: SignedTreeHead, verify: Ed25519Verify = nacl.sign.detached.verify): boolean {
  const { signature, ...body } = head;
  try {
    return verify(utf8(canonicalJson(body)), fromHex('signature', signature, 64), fromHex('keyId', head.keyId, 32));
  } catch {
    return false;
  }
}

/** "size 6, root 3f2a9c01…, 2026-11-27T00:00:06.000Z": how a reason names a head. */
export function describeTreeHead(head: KeptTreeHead): string {
  return `size ${head.treeSize}, root ${head.rootHash.slice(0, 16)}…, ${isSignedTreeHead(head) ? 'signed' : 'computed'} ${new Date(head.timestamp).toISOString()}`;
}

/** A kept head and how a failure names it, e.g. `the tree head kept in head.json`. */
export interface KeptHeadCheck {
  head: KeptTreeHead;
  name?: string;
}

/**
 * Whether the verified ledger `entries` (with their tree, and the key current after each count of
 * entries) is a consistent extension of the kept head: the reason it is not, or null. The auditor
 * holds every entry, so consistency is checked as an RFC 9162 monitor that keeps the log does
 * (recompute the root of the first treeSize leaves); a consistency proof (Sec. 2.1.4.2) is the
 * same check for one who does not.
 */
export async function keptHeadProblem(kept: KeptHeadCheck, entries: readonly LedgerEntry[], tree: MerkleTree, keyAfter: (count: number) => string | null, verify?: Ed25519Verify): Promise<{ reason: string; firstBadEntry?: number } | null> {
  const { head } = kept;
  const name = kept.name ?? 'the kept tree head';
  const named = `${name} (${describeTreeHead(head)})`;
  if (isSignedTreeHead(head) && !treeHeadSignatureVerifies(head, verify)) return { reason: `the signature of ${named} does not verify: the kept head was altered` };
  const genesis = entries[0];
  if (head.treeSize > 0 && genesis && genesis.keyId !== head.genesisKey) {
    return { reason: `${named} is of the ledger with genesis key ${head.genesisKey}, this ledger's genesis key is ${genesis.keyId}: it is not the ledger the head was kept from (forged from its first entry, or another deployment's)`, firstBadEntry: 1 };
  }
  if (entries.length < head.treeSize) {
    return { reason: `the ledger holds ${entries.length} entries, fewer than the ${head.treeSize} of ${named}: entries were removed from its end`, firstBadEntry: entries.length + 1 };
  }
  const root = toHex(await tree.rootHash(head.treeSize));
  if (root !== head.rootHash) {
    return { reason: `the ledger's first ${head.treeSize} entries hash to root ${root.slice(0, 16)}…, not to that of ${named}: the history the head covers was rewritten, reordered or cut and regrown (not a consistent extension, RFC 9162 Sec. 2.1.4)` };
  }
  if (isSignedTreeHead(head) && head.treeSize > 0 && head.keyId !== keyAfter(head.treeSize)) {
    return { reason: `${named} is signed by key ${head.keyId}, but the ledger's key after ${head.treeSize} entries is ${keyAfter(head.treeSize)}` };
  }
  return null;
}

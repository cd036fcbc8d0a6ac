/**
 * Device receipts: what a device witnesses of the transparency log before it releases its SecAgg+
 * unmask shares (docs/ledger.md, "Device receipts"). A receipt is the round's release entry, its
 * leaf index and inclusion proof (RFC 9162 Sec. 2.1.3.1 PATH) in a signed tree head (Sec. 4.10),
 * and the key-rotation entries that lead from the ledger's genesis key to the key that signed the
 * head. The device checks it (`verifyReceipt`: Sec. 2.1.3.2 against the head's root, the head's
 * signature under the pinned key chain, the entry naming its round) and keeps it. An auditor later
 * holds the ledger to it (`receiptLedgerProblem`): the ledger's first treeSize entries must hash to
 * the head's root (the head is a point the ledger consistently extends, Sec. 2.1.4) and its entry
 * at the leaf index must be the one witnessed. So a ledger whose witnessed round was deleted, cut
 * off or rewritten fails naming the receipt, whoever re-signed it: the key can sign a new history,
 * not make it hash to a root a device already holds. Pure (WebCrypto + tweetnacl).
 */
import { z } from 'zod';
import { nearlyEqual } from './accountant.ts';
import { canonicalJson } from './canonical.ts';
import { fromHex, toHex, utf8 } from './digest.ts';
import { KeyRotationEntrySchema, RoundEntrySchema, verifySignature } from './entry.ts';
import type { KeyRotationEntry, RoundEntry, RoundSpend } from './entry.ts';
import { leafHash, MerkleTree, verifyConsistency, verifyInclusion } from './merkle.ts';
import { describeTreeHead, entryLeafData, SignedTreeHeadSchema, treeHeadSignatureVerifies } from './tree-head.ts';
import type { Ed25519Verify, SignedTreeHead } from './tree-head.ts';

export const RECEIPT_FORMAT = 'portrait-receipt/1';

const Hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 32 bytes as lowercase hex');

export const LedgerReceiptSchema = z
  .object({
    format: z.literal(RECEIPT_FORMAT),
    roundId: z.number().int().min(1),
    /** The round's release entry, as signed and stored. */
    entry: RoundEntrySchema,
    /** entry.seq - 1: its leaf in the tree (RFC 9162 Sec. 2.1.1). */
    leafIndex: z.number().int().min(0),
    /** PATH(leafIndex, D[0:head.treeSize]), leaf's sibling first, hex (Sec. 2.1.3.1). */
    inclusionProof: z.array(Hex32).max(64),
    head: SignedTreeHeadSchema,
    /** Every key-rotation entry of the first head.treeSize entries, in order: genesis key to head.keyId. */
    rotations: z.array(KeyRotationEntrySchema).max(1_000),
  })
  .strict();
export type LedgerReceipt = z.infer<typeof LedgerReceiptSchema>;

/** The receipt of `entry`, included at its leaf in the tree of `head`. */
export function buildReceipt(entry: RoundEntry, inclusionProof: readonly string[], head: SignedTreeHead, rotations: readonly KeyRotationEntry[]): LedgerReceipt {
  return LedgerReceiptSchema.parse({ format: RECEIPT_FORMAT, roundId: entry.round.roundId, entry, leafIndex: entry.seq - 1, inclusionProof: [...inclusionProof], head, rotations: [...rotations] });
}

/**
 * What a device was told about its round's noise (round:config's privacy): the entry must account
 * for the same, since the accountant recomputes the spend from these recorded fields.
 */
export type WitnessedSpend = Pick<RoundSpend, 'mode' | 'noiseMultiplier' | 't' | 'delta' | 'l2Sensitivity' | 'shareVariance' | 'shares' | 'paddedDimension'>;
const WITNESSED_FIELDS = ['mode', 'noiseMultiplier', 't', 'delta', 'l2Sensitivity', 'shareVariance', 'shares', 'paddedDimension'] as const;

export interface ReceiptVerifyOptions {
  /** The round the device is in: the entry must name it. */
  roundId?: number;
  /**
   * The ledger keys the device trusts, genesis first, then each rotation it accepted: the receipt's
   * chain must extend them. null or absent: trust on first use (the receipt's own genesis key).
   */
  pinnedKeys?: readonly string[] | null;
  spend?: WitnessedSpend;
  verify?: Ed25519Verify;
}

export type ReceiptVerdict = { ok: true; receipt: LedgerReceipt; leafHash: string; keys: string[] } | { ok: false; reason: string };

function short(hex: string): string {
  return `${hex.slice(0, 16)}…`;
}

/**
 * Checks a receipt on its own (the device's check, and the auditor's before holding a ledger to
 * it): never throws for bad input, it answers why. Keys: the chain from the head's genesis key
 * through `rotations` (each signed by the key before it and by its new key, as the ledger requires)
 * must extend `pinnedKeys` and end at the head's signing key.
 */
export async function verifyReceipt(raw: unknown, options: ReceiptVerifyOptions = {}): Promise<ReceiptVerdict> {
  const refuse = (reason: string): ReceiptVerdict => ({ ok: false, reason });
  const parsed = LedgerReceiptSchema.safeParse(raw);
  if (!parsed.success) return refuse(`not a ${RECEIPT_FORMAT} receipt: ${parsed.error.issues.map((i) => `"${i.path.join('.') || '(root)'}": ${i.message}`).join('; ')}`);
  const receipt = parsed.data;
  const { entry, head, leafIndex, rotations } = receipt;
  const spend = entry.round;
  if (options.roundId !== undefined && receipt.roundId !== options.roundId) return refuse(`the receipt is for round ${receipt.roundId}, not round ${options.roundId}`);
  if (spend.roundId !== receipt.roundId) return refuse(`the receipt names round ${receipt.roundId}, its entry round ${spend.roundId}`);
  if (spend.outcome !== 'released') return refuse(`the entry of round ${spend.roundId} is "${spend.outcome}", not a release`);
  if (leafIndex !== entry.seq - 1) return refuse(`leaf index ${leafIndex} is not that of entry ${entry.seq} (${entry.seq - 1})`);
  if (leafIndex >= head.treeSize) return refuse(`leaf index ${leafIndex} lies outside the tree head of size ${head.treeSize}`);
  const expected = options.spend;
  if (expected) {
    for (const field of WITNESSED_FIELDS) {
      const [recorded, told] = [spend[field], expected[field]];
      const same = typeof recorded === 'string' || typeof told === 'string' ? recorded === told : nearlyEqual(recorded, told);
      if (!same) return refuse(`the entry of round ${spend.roundId} records ${field} ${String(recorded)}, this device was told ${String(told)}`);
    }
  }
  // The key chain: genesis, then each rotation's new key, each rotation signed by the key before it.
  const keys = [head.genesisKey];
  let lastSeq = 0;
  for (const rotation of rotations) {
    const current = keys[keys.length - 1] as string;
    if (rotation.seq <= lastSeq || rotation.seq > head.treeSize) return refuse(`rotation entry ${rotation.seq} is out of order or outside the tree head of size ${head.treeSize}`);
    if (rotation.keyId !== current) return refuse(`rotation entry ${rotation.seq} is signed by key ${short(rotation.keyId)}, the ledger key before it is ${short(current)}`);
    if (!verifySignature(rotation, 'signature', rotation.keyId, options.verify) || !verifySignature(rotation, 'newKeySignature', rotation.newPublicKey, options.verify)) return refuse(`rotation entry ${rotation.seq} is not signed by both its keys`);
    keys.push(rotation.newPublicKey);
    lastSeq = rotation.seq;
  }
  const pinned = options.pinnedKeys ?? null;
  if (pinned && pinned.length > 0) {
    if (pinned[0] !== head.genesisKey) return refuse(`the tree head is of the ledger with genesis key ${short(head.genesisKey)}, not of the trusted one with genesis key ${short(pinned[0] as string)}`);
    if (pinned.length > keys.length || pinned.some((k, i) => keys[i] !== k)) return refuse(`the receipt's key rotations (${keys.length - 1}) do not extend the ${pinned.length - 1} accepted before: a retired key is signing`);
  }
  const signer = keys[keys.length - 1] as string;
  if (head.keyId !== signer) return refuse(`the tree head is signed by key ${short(head.keyId)}, not by the ledger's key ${short(signer)}`);
  if (!treeHeadSignatureVerifies(head, options.verify)) return refuse(`the signature of the tree head (${describeTreeHead(head)}) does not verify`);
  const entryKey = keys[rotations.filter((r) => r.seq < entry.seq).length] as string;
  if (entry.keyId !== entryKey || !verifySignature(entry, 'signature', entry.keyId, options.verify)) return refuse(`entry ${entry.seq} is not signed by the ledger's key at that point (${short(entryKey)})`);
  const leaf = await leafHash(entryLeafData(entry));
  let included = false;
  try {
    included = await verifyInclusion(leaf, leafIndex, head.treeSize, receipt.inclusionProof.map((h) => fromHex('inclusionProof', h, 32)), fromHex('rootHash', head.rootHash, 32));
  } catch {
    included = false;
  }
  if (!included) return refuse(`the inclusion proof of entry ${entry.seq} does not lead to the root of the tree head (${describeTreeHead(head)}) (RFC 9162 Sec. 2.1.3.2)`);
  return { ok: true, receipt, leafHash: toHex(leaf), keys };
}

/** A receipt to hold a ledger to, and how a failure names it, e.g. `receipt 2 in device.json`. */
/**
 * Whether the head of a device's new receipt extends the head of the receipt it kept before
 * (RFC 9162 Sec. 2.1.4.2, the consistency proof the coordinator sent from the kept size): null when
 * it does, else why not. A device that finds the ledger cut or rewritten between its two rounds
 * refuses the receipt, so its shares never serve a ledger that forked under it.
 */
export async function headExtends(kept: SignedTreeHead, next: SignedTreeHead, consistency?: { fromSize: number; proof: readonly string[] }): Promise<string | null> {
  if (next.treeSize < kept.treeSize) return `the ledger's new head holds ${next.treeSize} entries, fewer than the ${kept.treeSize} of the head this device kept: the ledger was cut`;
  if (next.treeSize === kept.treeSize) return next.rootHash === kept.rootHash ? null : `the ledger's new head has the size of the head this device kept (${kept.treeSize}) but another root: the ledger was rewritten`;
  if (consistency?.fromSize !== kept.treeSize) return `no consistency proof from the ${kept.treeSize} entries of the head this device kept came with the receipt`;
  const extended = await verifyConsistency(kept.treeSize, next.treeSize, fromHex('rootHash', kept.rootHash, 32), fromHex('rootHash', next.rootHash, 32), consistency.proof.map((h) => fromHex('consistency.proof', h, 32)));
  return extended ? null : `the ledger under the new head (${next.treeSize} entries) does not extend the head this device kept (${kept.treeSize}): it was rewritten`;
}

export interface ReceiptCheck {
  receipt: unknown;
  name: string;
}

export interface ReceiptFinding {
  name: string;
  roundId: number | null;
  reason: string;
  firstBadEntry?: number;
}

/** The Merkle tree over the ledger's entries as stored, whether or not they verify (a receipt is checked against the bytes). */
export async function rawLedgerTree(entries: readonly unknown[]): Promise<MerkleTree> {
  const tree = new MerkleTree();
  for (const entry of entries) {
    let text: string;
    try {
      text = canonicalJson(entry);
    } catch {
      text = String(JSON.stringify(entry));
    }
    await tree.appendLeaf(utf8(text));
  }
  return tree;
}

/**
 * Why the ledger (its raw entries and their tree) contradicts a receipt that verified, or null. The
 * auditor holds every entry, so the head is checked the way an RFC 9162 monitor that keeps the log
 * checks a head (the root of the first treeSize leaves), and the witnessed leaf directly.
 * `keyAfter`, when the chain verified: the ledger's key after a count of entries.
 */
export async function receiptLedgerProblem(verdict: Extract<ReceiptVerdict, { ok: true }>, name: string, tree: MerkleTree, keyAfter?: ((count: number) => string | null) | null): Promise<ReceiptFinding | null> {
  const { receipt, leafHash: witnessed } = verdict;
  const { head, leafIndex, roundId } = receipt;
  const seq = leafIndex + 1;
  const named = `${name} (round ${roundId}, entry ${seq}, tree head ${describeTreeHead(head)})`;
  const finding = (reason: string, firstBadEntry?: number): ReceiptFinding => ({ name, roundId, reason, ...(firstBadEntry === undefined ? {} : { firstBadEntry }) });
  const movedTo = (): number | null => {
    for (let i = 0; i < tree.size; i++) if (toHex(tree.leafHashAt(i)) === witnessed) return i + 1;
    return null;
  };
  if (leafIndex >= tree.size || toHex(tree.leafHashAt(leafIndex)) !== witnessed) {
    const at = movedTo();
    if (at !== null) return finding(`round ${roundId}'s release entry, witnessed by ${named}, is entry ${at} of the ledger, not ${seq}: entries before it were deleted or inserted`, Math.min(at, seq));
    if (leafIndex >= tree.size) return finding(`the ledger holds ${tree.size} entries: round ${roundId}'s release entry (entry ${seq}), witnessed by ${named}, is gone: the ledger was cut before it`, tree.size + 1);
    return finding(`the ledger has no entry for round ${roundId}'s release witnessed by ${named}: its entry ${seq} is another; the witnessed entry was deleted or rewritten`, seq);
  }
  if (tree.size < head.treeSize) return finding(`the ledger holds ${tree.size} entries, fewer than the ${head.treeSize} of the tree head in ${named}: entries were removed from its end`, tree.size + 1);
  const root = toHex(await tree.rootHash(head.treeSize));
  if (root !== head.rootHash) return finding(`the ledger's first ${head.treeSize} entries hash to root ${short(root)}, not to that of the tree head in ${named}: the history it covers was rewritten (not a consistent extension, RFC 9162 Sec. 2.1.4)`);
  const key = keyAfter?.(head.treeSize);
  if (key && head.keyId !== key) return finding(`the tree head in ${named} is signed by key ${short(head.keyId)}, but the ledger's key after ${head.treeSize} entries is ${short(key)}`);
  return null;
}

/**
 * Holds the ledger's raw `entries` to every receipt: each must verify on its own (chained to
 * `publicKey`, else the genesis key the first entry names) and the ledger must agree with it.
 * Returns the findings, empty when every receipt is consistent with the ledger.
 */
export async function checkReceipts(checks: readonly ReceiptCheck[], entries: readonly unknown[], options: { publicKey?: string | null; verify?: Ed25519Verify; keyAfter?: ((count: number) => string | null) | null } = {}): Promise<ReceiptFinding[]> {
  const tree = await rawLedgerTree(entries);
  const genesisKey = options.publicKey ?? (entries[0] as { keyId?: unknown } | undefined)?.keyId;
  const pinnedKeys = typeof genesisKey === 'string' ? [genesisKey] : null;
  const findings: ReceiptFinding[] = [];
  for (const { receipt, name } of checks) {
    const verdict = await verifyReceipt(receipt, { pinnedKeys, ...(options.verify ? { verify: options.verify } : {}) });
    if (!verdict.ok) {
      const roundId = (receipt as { roundId?: unknown } | null)?.roundId;
      findings.push({ name, roundId: typeof roundId === 'number' ? roundId : null, reason: `${name} is not a valid receipt of this ledger (it proves nothing about it): ${verdict.reason}` });
      continue;
    }
    const problem = await receiptLedgerProblem(verdict, name, tree, options.keyAfter);
    if (problem) findings.push(problem);
  }
  return findings;
}

/**
 * A verification result with the receipt findings folded in: it fails when any receipt does, the
 * receipts' reasons first (they name what the ledger lacks), then the chain's own if it failed too.
 */
export function withReceiptFindings<R extends { ok: boolean; reason?: string; firstBadEntry?: number }>(result: R, checked: number, findings: readonly ReceiptFinding[]): R & { receipts: { checked: number; failed: ReceiptFinding[] } } {
  const receipts = { checked, failed: [...findings] };
  if (findings.length === 0) return { ...result, receipts };
  const reason = [...findings.map((f) => f.reason), ...(result.ok || result.reason === undefined ? [] : [`the chain also fails${result.firstBadEntry === undefined ? '' : ` at entry ${result.firstBadEntry}`}: ${result.reason}`])].join('; ');
  const bad = [result.ok ? undefined : result.firstBadEntry, ...findings.map((f) => f.firstBadEntry)].filter((n): n is number => n !== undefined);
  const { firstBadEntry: _drop, ...rest } = result;
  return { ...(rest as R), ok: false, reason, ...(bad.length > 0 ? { firstBadEntry: Math.min(...bad) } : {}), receipts };
}

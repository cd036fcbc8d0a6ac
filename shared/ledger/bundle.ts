/**
 * The self-contained audit bundle that `portrait audit export` writes: every entry, the genesis
 * public key, the accountant's parameters, the deployment cap, and the signed tree head of the
 * transparency log over the entries (tree-head.ts, RFC 9162 Sec. 4.10), all signed by the current
 * ledger key. Nothing in a bundle is unsigned: the entries are signed one by one and bound by the
 * head's root hash and size (so entries cut from the end or reordered are detected), and the
 * bundle's own signature covers everything else (format, key, accountant, cap, head). A verifier
 * refuses a bundle whose fields disagree with what the signed entries say.
 */
import nacl from 'tweetnacl';
import { z } from 'zod';
import { canonicalJson } from './canonical.ts';
import { fromHex, toHex, utf8 } from './digest.ts';
import { checkSigningKey } from './entry.ts';
import type { LedgerEntry, SigningKey } from './entry.ts';
import { keptHeadProblem, SignedTreeHeadSchema, treeHeadSignatureVerifies } from './tree-head.ts';
import type { Ed25519Verify, KeptHeadCheck, SignedTreeHead } from './tree-head.ts';
import { verifyLedgerWithTotal } from './verify.ts';
import type { VerifyResult } from './verify.ts';
import type { ReceiptCheck } from './receipt.ts';

export const BUNDLE_FORMAT = 'portrait-ledger-bundle/2';
/** The first bundle format: its cap, accountant and format were not signed; refused since. */
export const UNSIGNED_BUNDLE_FORMAT = 'portrait-ledger-bundle/1';

const Hex32 = z.string().regex(/^[0-9a-f]{64}$/);

export const BudgetCapSchema = z.object({ epsilon: z.number().positive().finite(), delta: z.number().gt(0).lt(1) }).strict();
export type BudgetCap = z.infer<typeof BudgetCapSchema>;

/** Checks a deployment cap (RangeError naming the field) and returns it. */
export function checkBudgetCap(cap: BudgetCap): BudgetCap {
  if (typeof cap.epsilon !== 'number' || typeof cap.delta !== 'number') throw new TypeError(`"epsilonCap" expected numbers epsilon and delta, got ${typeof cap.epsilon} and ${typeof cap.delta}`);
  if (!(cap.epsilon > 0) || !Number.isFinite(cap.epsilon)) throw new RangeError(`"epsilonCap.epsilon" expected a finite number > 0, got ${cap.epsilon}`);
  if (!(cap.delta > 0 && cap.delta < 1)) throw new RangeError(`"epsilonCap.delta" expected a number in (0, 1), got ${cap.delta}`);
  return cap;
}

const AccountantSchema = z.object({ method: z.string(), orders: z.array(z.number()) }).strict();

export const LedgerBundleSchema = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    publicKey: Hex32,
    accountant: AccountantSchema,
    cap: BudgetCapSchema.nullable(),
    head: SignedTreeHeadSchema,
    entries: z.array(z.unknown()),
    /** Ed25519 by head.keyId over the canonical JSON of every other field but `entries`. */
    signature: z.string().regex(/^[0-9a-f]{128}$/),
  })
  .strict();
export type LedgerBundle = z.infer<typeof LedgerBundleSchema>;

type BundleBody = Omit<LedgerBundle, 'entries' | 'signature'>;

function bodyBytes(bundle: BundleBody): Uint8Array {
  const { format, publicKey, accountant, cap, head } = bundle;
  return utf8(canonicalJson({ format, publicKey, accountant, cap, head }));
}

/** The bundle of `entries` under `head` (signed by `key`, the ledger's current key). */
export function buildBundle(entries: readonly LedgerEntry[], head: SignedTreeHead, accountant: LedgerBundle['accountant'], cap: BudgetCap | null, key: SigningKey): LedgerBundle {
  checkSigningKey(key);
  const genesis = entries[0];
  if (!genesis || genesis.kind !== 'genesis') throw new RangeError('"entries" expected to start with the genesis entry');
  if (head.treeSize !== entries.length) throw new RangeError(`"head.treeSize" expected ${entries.length}, got ${head.treeSize}`);
  if (head.keyId !== toHex(key.publicKey)) throw new RangeError(`"head.keyId" expected the signing key ${toHex(key.publicKey)}, got ${head.keyId}`);
  const body: BundleBody = { format: BUNDLE_FORMAT, publicKey: genesis.keyId, accountant, cap, head };
  return { ...body, entries: [...entries], signature: toHex(nacl.sign.detached(bodyBytes(body), key.secretKey)) };
}

export interface BundleVerifyOptions {
  /** The auditor's pinned genesis key (hex). */
  publicKey?: string;
  /** A tree head kept from an earlier look: the bundle must extend it consistently. */
  since?: KeptHeadCheck;
  verify?: Ed25519Verify;
  /** Devices' receipts the entries must bear out (verifyLedgerWithTotal holds them to the entries). */
  receipts?: readonly ReceiptCheck[];
}

function sameAccountant(a: LedgerBundle['accountant'], b: { method: string; orders: readonly number[] }): boolean {
  return a.method === b.method && a.orders.length === b.orders.length && a.orders.every((v, i) => v === b.orders[i]);
}

/** Verifies a bundle (parsed JSON of any shape); never throws for bad input, it reports it. */
export async function verifyBundle(raw: unknown, options: BundleVerifyOptions = {}): Promise<VerifyResult> {
  const refused = (reason: string, delta: number | null = null): VerifyResult => ({ ok: false, entries: 0, epsilon: null, delta, firstBadEntry: 1, reason, headHash: '', currentKey: null, rootHash: '' });
  const format = (raw as { format?: unknown } | null)?.format;
  if (format === UNSIGNED_BUNDLE_FORMAT) return refused(`a ${UNSIGNED_BUNDLE_FORMAT} bundle leaves its cap, accountant and format unsigned, so they could be edited unseen: export it again (portrait audit export) as ${BUNDLE_FORMAT}`);
  const parsed = LedgerBundleSchema.safeParse(raw);
  if (!parsed.success) return refused(`not a ${BUNDLE_FORMAT} bundle: ${parsed.error.issues.map((i) => `"${i.path.join('.')}": ${i.message}`).join('; ')}`);
  const bundle = parsed.data;
  const delta = bundle.cap?.delta ?? null;
  if (options.publicKey !== undefined && bundle.publicKey !== options.publicKey) return refused(`bundle public key ${bundle.publicKey} is not the trusted key ${options.publicKey}`, delta);
  const verified = await verifyLedgerWithTotal(bundle.entries, { publicKey: bundle.publicKey, ...(bundle.cap ? { delta: bundle.cap.delta } : {}), ...(options.verify ? { verify: options.verify } : {}), ...(options.receipts ? { receipts: options.receipts } : {}) });
  const { result } = verified;
  if (!result.ok || verified.entries === null) return result;
  const n = verified.entries.length;
  const bad = (reason: string, firstBadEntry?: number): VerifyResult => ({ ...result, ok: false, reason, ...(firstBadEntry === undefined ? {} : { firstBadEntry }) });
  const { head } = bundle;
  const genesis = verified.entries[0];
  // The fields beside the entries must say what the signed entries say.
  if (genesis?.kind === 'genesis' && !sameAccountant(bundle.accountant, genesis.accountant)) return bad("the bundle's accountant parameters differ from the genesis entry's signed ones", 1);
  if (head.genesisKey !== bundle.publicKey) return bad(`the bundle's tree head is of the ledger with genesis key ${head.genesisKey}, not ${bundle.publicKey}`);
  if (head.treeSize !== n) return bad(`the signed tree head names ${head.treeSize} entries, the bundle holds ${n}: entries were removed or added at the end`, Math.min(head.treeSize, n) + 1);
  if (head.rootHash !== result.rootHash) return bad('the entries do not hash to the root of the signed tree head (RFC 9162 Sec. 2.1.1): an entry was changed, removed or reordered', Math.max(1, n));
  if (head.keyId !== result.currentKey || !treeHeadSignatureVerifies(head, options.verify)) return bad('the tree head is not signed by the current ledger key', Math.max(1, n));
  let signed = false;
  try {
    signed = (options.verify ?? nacl.sign.detached.verify)(bodyBytes(bundle), fromHex('signature', bundle.signature, 64), fromHex('keyId', head.keyId, 32));
  } catch {
    signed = false;
  }
  if (!signed) return bad("the bundle's signature does not verify under the current ledger key: its format, key, accountant, cap or head was edited");
  // Last, the kept head: it judges the history, once the bundle is known to be what was signed.
  const problem = options.since ? await keptHeadProblem(options.since, verified.entries, verified.tree, verified.keyAfter, options.verify) : null;
  return problem ? bad(problem.reason, problem.firstBadEntry) : result;
}

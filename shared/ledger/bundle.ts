/**
 * The self-contained audit bundle that `portrait audit export` writes: every entry, the genesis
 * public key, the accountant's parameters, the deployment cap, and a head signed by the current
 * ledger key that names the entry count and the last hash, so entries cut from the end are
 * detected too (a chain alone cannot show truncation).
 */
import nacl from 'tweetnacl';
import { z } from 'zod';
import { canonicalJson } from './canonical.ts';
import { fromHex, toHex, utf8 } from './digest.ts';
import { checkSigningKey } from './entry.ts';
import type { LedgerEntry, SigningKey } from './entry.ts';
import { verifyLedger } from './verify.ts';
import type { VerifyResult } from './verify.ts';

export const BUNDLE_FORMAT = 'portrait-ledger-bundle/1';

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

const HeadSchema = z.object({ entries: z.number().int().min(0), hash: Hex32, keyId: Hex32, exportedAt: z.string(), signature: z.string().regex(/^[0-9a-f]{128}$/) }).strict();
export type BundleHead = z.infer<typeof HeadSchema>;

export const LedgerBundleSchema = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    publicKey: Hex32,
    accountant: z.object({ method: z.string(), orders: z.array(z.number()) }).strict(),
    cap: BudgetCapSchema.nullable(),
    entries: z.array(z.unknown()),
    head: HeadSchema,
  })
  .strict();
export type LedgerBundle = z.infer<typeof LedgerBundleSchema>;

export function signHead(head: Omit<BundleHead, 'signature'>, key: SigningKey): BundleHead {
  checkSigningKey(key);
  return { ...head, signature: toHex(nacl.sign.detached(utf8(canonicalJson(head)), key.secretKey)) };
}

function headVerifies(head: BundleHead): boolean {
  const { signature, ...rest } = head;
  try {
    return nacl.sign.detached.verify(utf8(canonicalJson(rest)), fromHex('signature', signature, 64), fromHex('keyId', head.keyId, 32));
  } catch {
    return false;
  }
}

export function buildBundle(entries: readonly LedgerEntry[], head: BundleHead, accountant: LedgerBundle['accountant'], cap: BudgetCap | null): LedgerBundle {
  const genesis = entries[0];
  if (!genesis || genesis.kind !== 'genesis') throw new RangeError('"entries" expected to start with the genesis entry');
  return { format: BUNDLE_FORMAT, publicKey: genesis.keyId, accountant, cap, entries: [...entries], head };
}

/** Verifies a bundle (parsed JSON of any shape); `publicKey` pins the trusted genesis key. */
export async function verifyBundle(raw: unknown, publicKey?: string): Promise<VerifyResult> {
  const parsed = LedgerBundleSchema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, entries: 0, epsilon: null, delta: null, firstBadEntry: 1, reason: `not a ${BUNDLE_FORMAT} bundle: ${parsed.error.issues.map((i) => `"${i.path.join('.')}": ${i.message}`).join('; ')}`, headHash: '', currentKey: null };
  }
  const bundle = parsed.data;
  if (publicKey !== undefined && bundle.publicKey !== publicKey) {
    return { ok: false, entries: 0, epsilon: null, delta: bundle.cap?.delta ?? null, firstBadEntry: 1, reason: `bundle public key ${bundle.publicKey} is not the trusted key ${publicKey}`, headHash: '', currentKey: null };
  }
  const result = await verifyLedger(bundle.entries, { publicKey: bundle.publicKey, ...(bundle.cap ? { delta: bundle.cap.delta } : {}) });
  if (!result.ok) return result;
  const { head } = bundle;
  const n = bundle.entries.length;
  if (head.entries !== n) {
    return { ...result, ok: false, firstBadEntry: Math.min(head.entries, n) + 1, reason: `the signed head names ${head.entries} entries, the bundle holds ${n}: entries were removed or added at the end` };
  }
  if (head.hash !== result.headHash || head.keyId !== result.currentKey || !headVerifies(head)) {
    return { ...result, ok: false, firstBadEntry: Math.max(1, n), reason: 'the bundle head is not signed by the current ledger key over the last entry' };
  }
  return result;
}

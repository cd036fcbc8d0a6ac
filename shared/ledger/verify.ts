/**
 * Offline verification of a privacy ledger, the procedure of docs/ledger.md: parse each entry,
 * check its position (seq), the SHA-256 link to the previous entry, the signing key (the
 * genesis key, pinned by the auditor if given, then each rotation's new key), the Ed25519
 * signature, recompute every round's RDP and epsilons with the accountant, and check that each
 * model publication follows the release entry naming its version. Stops at the
 * first bad entry. The entries are also the leaves of the transparency log's Merkle tree
 * (tree-head.ts, RFC 9162 Sec. 2.1): the result names its root, and with a kept tree head
 * (`since`) the ledger must be a consistent extension of it; with device receipts (`receipts`,
 * receipt.ts) it must still hold every round a device witnessed. Pure (WebCrypto + tweetnacl), so
 * a browser can run it as the CLI does.
 */
import { describeIssues } from '../protocol/messages.ts';
import { LEDGER_ORDERS, nearlyEqual, RdpTotal, spendRdp } from './accountant.ts';
import { entryHash, GENESIS_PREV_HASH, LedgerEntrySchema, verifySignature } from './entry.ts';
import type { LedgerEntry, Publication, RoundSpend } from './entry.ts';
import { toHex } from './digest.ts';
import { MerkleTree } from './merkle.ts';
import { roundlessProblem } from './models.ts';
import { checkReceipts, withReceiptFindings } from './receipt.ts';
import type { ReceiptCheck, ReceiptFinding } from './receipt.ts';
import { entryLeafData, keptHeadProblem } from './tree-head.ts';
import type { KeptHeadCheck } from './tree-head.ts';
import type { Ed25519Verify } from '../secagg/keys.ts';

export interface VerifyOptions {
  /** The auditor's trusted genesis public key (hex); default: whatever the genesis entry names. */
  publicKey?: string;
  /** Delta for the cumulative epsilon; default: the last round entry's delta with delta > 0. */
  delta?: number;
  /** The Ed25519 check: tweetnacl by default (isomorphic); Node passes its native one (about 9 ms to 0.1 ms an entry). */
  verify?: Ed25519Verify;
  /** A tree head the auditor kept: the ledger must extend it consistently (tree-head.ts). */
  since?: KeptHeadCheck;
  /** Receipts devices kept (receipt.ts): the ledger must hold each witnessed entry under its head. */
  receipts?: readonly ReceiptCheck[];
}

export interface VerifyResult {
  ok: boolean;
  entries: number;
  /** Cumulative epsilon at `delta` over the entries verified; null when unbounded or no delta. */
  epsilon: number | null;
  delta: number | null;
  /** 1-based position of the first entry that fails. */
  firstBadEntry?: number;
  reason?: string;
  /** Hash of the last good entry (GENESIS_PREV_HASH when none). */
  headHash: string;
  /** The key that signs the next entry. */
  currentKey: string | null;
  /** Root hash (hex) of the transparency log's Merkle tree over the entries verified (RFC 9162 Sec. 2.1.1). */
  rootHash: string;
  /** With `receipts`: how many were checked, and each that the ledger contradicts (or that does not verify). */
  receipts?: { checked: number; failed: ReceiptFinding[] };
}

/** The spend fields a round entry must carry, recomputed from its parameters and the total so far. */
export function accountSpend(spend: Omit<RoundSpend, 'rdp' | 'epsilonRound' | 'epsilonCumulative' | 'order'>, total: RdpTotal): RoundSpend {
  const rdp = spendRdp(spend, total.orders);
  const own = rdp && spend.delta > 0 ? new RdpTotal(total.orders) : null;
  own?.add(rdp);
  const round = own?.epsilon(spend.delta) ?? null;
  const cumulative = spend.delta > 0 ? total.epsilon(spend.delta, rdp) : null;
  return {
    ...spend,
    rdp: rdp ? Array.from(rdp) : null,
    epsilonRound: rdp === null ? null : spend.delta > 0 ? (round?.epsilon ?? null) : null,
    epsilonCumulative: cumulative?.epsilon ?? null,
    order: cumulative?.order ?? null,
  };
}

/**
 * An analytics round's query must be what its noise was sized for: its bound on one device's
 * contribution is the clip the sensitivity comes from, and its vector fits the noised dimension.
 */
function queryDifference(spend: RoundSpend): string | null {
  const q = spend.query;
  if (!q) return null;
  if (Math.abs(q.bound - spend.clip) > 1e-9 * Math.max(1, q.bound)) return `the query's contribution bound ${q.bound} is not the clip ${spend.clip} the noise was sized for`;
  if (spend.paddedDimension !== null && q.dimension > spend.paddedDimension) return `the query's dimension ${q.dimension} exceeds the noised dimension ${spend.paddedDimension}`;
  return null;
}

/** The recomputed spend of `recorded` (its RDP curve feeds the running total), or what differs. */
function checkSpend(recorded: RoundSpend, total: RdpTotal): { problem: string } | { expected: RoundSpend } {
  let expected: RoundSpend;
  try {
    expected = accountSpend(recorded, total);
  } catch (err) {
    return { problem: `the accountant cannot recompute this round: ${err instanceof Error ? err.message : String(err)}` };
  }
  const problem = spendDifference(recorded, expected) ?? queryDifference(recorded);
  return problem === null ? { expected } : { problem };
}

function spendDifference(recorded: RoundSpend, expected: RoundSpend): string | null {
  const a = recorded.rdp;
  const b = expected.rdp;
  if ((a === null) !== (b === null) || (a && b && (a.length !== b.length || a.some((v, i) => !nearlyEqual(v, b[i] as number))))) return 'recorded RDP curve differs from the one recomputed from the recorded parameters';
  if (!nearlyEqual(recorded.epsilonRound, expected.epsilonRound)) return `recorded epsilonRound ${recorded.epsilonRound} differs from the recomputed ${expected.epsilonRound}`;
  if (!nearlyEqual(recorded.epsilonCumulative, expected.epsilonCumulative)) return `recorded epsilonCumulative ${recorded.epsilonCumulative} differs from the recomputed ${expected.epsilonCumulative}`;
  return null;
}

/** Why a publication entry cannot stand where it is (shared/ledger/models.ts): it must follow the release entry naming its version. */
function publicationProblem(p: Publication, releases: ReadonlyMap<number, ReadonlySet<number>>, published: ReadonlySet<number>, queries: ReadonlySet<number>): string | null {
  if (published.has(p.modelVersion)) return `a second publication entry for model version ${p.modelVersion}`;
  if (p.roundId === null) return roundlessProblem(p.derivedFrom ? { version: p.modelVersion, parentVersion: p.parentVersion, derivedFrom: p.derivedFrom } : { version: p.modelVersion, parentVersion: p.parentVersion }, queries);
  if (!releases.get(p.roundId)?.has(p.modelVersion)) return `publication of model version ${p.modelVersion} for round ${p.roundId}, but no earlier entry released that round as version ${p.modelVersion}`;
  return null;
}

/** Verifies `entries` in order; never throws for bad input, it reports it. */
export async function verifyLedger(entries: readonly unknown[], options: VerifyOptions = {}): Promise<VerifyResult> {
  return (await verifyLedgerWithTotal(entries, options)).result;
}

/**
 * `verifyLedger`, also handing back the RDP total of the entries when all of them verify (null
 * otherwise), so a ledger that opens after verifying does not recompute every round's curve.
 */
export async function verifyLedgerWithTotal(entries: readonly unknown[], options: VerifyOptions = {}): Promise<Verified> {
  const verified = await walk(entries, options);
  const checks = options.receipts;
  if (!checks || checks.length === 0) return verified;
  // Receipts are held against the entries as stored, whether or not the chain verified: a deleted round is named by the receipt that witnessed it.
  const findings = await checkReceipts(checks, entries, { ...(options.publicKey ? { publicKey: options.publicKey } : {}), ...(options.verify ? { verify: options.verify } : {}), keyAfter: verified.keyAfter });
  const result = withReceiptFindings(verified.result, checks.length, findings);
  return result.ok ? { ...verified, result } : { result, total: null, entries: null, tree: null, keyAfter: null };
}

/** The result, and when every entry verified, their RDP total, parsed entries and Merkle tree. */
export type Verified =
  | { result: VerifyResult; total: RdpTotal; entries: LedgerEntry[]; tree: MerkleTree; keyAfter: (count: number) => string | null }
  | { result: VerifyResult; total: null; entries: null; tree: null; keyAfter: null };

async function walk(entries: readonly unknown[], options: VerifyOptions): Promise<Verified> {
  let prevHash = GENESIS_PREV_HASH;
  let currentKey: string | null = null;
  let total = new RdpTotal(LEDGER_ORDERS);
  let lastDelta: number | null = null;
  const tree = new MerkleTree();
  const good: LedgerEntry[] = [];
  /** Release entries so far (round id to the version each named), and the versions already published. */
  const releases = new Map<number, Set<number>>();
  const published = new Set<number>();
  // Rounds that released an analytics query so far: what a bootstrap version may be derived from.
  const queries = new Set<number>();
  /** keys[n]: the ledger key after n entries. */
  const keys: (string | null)[] = [null];
  const fail = async (position: number | undefined, reason: string, count = (position ?? 1) - 1): Promise<Verified> => {
    const result: VerifyResult = { ...(await summary(count)), ok: false, reason };
    if (position !== undefined) result.firstBadEntry = position;
    return { result, total: null, entries: null, tree: null, keyAfter: null };
  };
  // The root covers the entries that verified (the tree holds only those).
  const summary = async (count: number): Promise<VerifyResult> => {
    const delta = options.delta ?? lastDelta;
    const eps = delta !== null && delta > 0 ? total.epsilon(delta) : null;
    return { ok: true, entries: count, epsilon: eps?.epsilon ?? null, delta, headHash: prevHash, currentKey, rootHash: toHex(await tree.rootHash()) };
  };
  for (let i = 0; i < entries.length; i++) {
    const position = i + 1;
    const parsed = LedgerEntrySchema.safeParse(entries[i]);
    if (!parsed.success) return fail(position, `malformed entry: ${describeIssues(parsed.error)}`);
    const entry: LedgerEntry = parsed.data;
    if (entry.seq !== position) return fail(position, `expected seq ${position}, found ${entry.seq}: an entry was deleted, inserted or reordered`);
    if (entry.prevHash !== prevHash) return fail(position, `prevHash does not match the SHA-256 of entry ${position - 1}: an earlier entry was changed, deleted or reordered`);
    if (position === 1) {
      if (entry.kind !== 'genesis') return fail(position, `the first entry must be the genesis entry, found ${entry.kind}`);
      if (options.publicKey !== undefined && entry.keyId !== options.publicKey) return fail(position, `genesis key ${entry.keyId} is not the trusted public key ${options.publicKey}`);
      currentKey = entry.keyId;
      total = new RdpTotal(entry.accountant.orders);
    } else if (entry.kind === 'genesis') {
      return fail(position, 'a second genesis entry');
    }
    if (entry.keyId !== currentKey) return fail(position, `signed by key ${entry.keyId}, but the ledger key at this point is ${currentKey}`);
    if (!verifySignature(entry, 'signature', entry.keyId, options.verify)) return fail(position, 'Ed25519 signature does not verify: the entry was edited or signed by another key');
    if (entry.kind === 'key-rotation') {
      if (!verifySignature(entry, 'newKeySignature', entry.newPublicKey, options.verify)) return fail(position, 'key rotation not signed by the new key');
      currentKey = entry.newPublicKey;
    } else if (entry.kind === 'round') {
      const checked = checkSpend(entry.round, total);
      if ('problem' in checked) return fail(position, checked.problem);
      total.add(checked.expected.rdp);
      if (entry.round.delta > 0) lastDelta = entry.round.delta;
      if (entry.round.outcome === 'released' && entry.round.query) queries.add(entry.round.roundId);
      if (entry.round.outcome === 'released' && entry.round.modelVersionOut !== null) releases.set(entry.round.roundId, (releases.get(entry.round.roundId) ?? new Set<number>()).add(entry.round.modelVersionOut));
    } else if (entry.kind === 'publication') {
      const problem = publicationProblem(entry.publication, releases, published, queries);
      if (problem) return fail(position, problem);
      published.add(entry.publication.modelVersion);
    }
    prevHash = await entryHash(entry);
    await tree.appendLeaf(entryLeafData(entry));
    good.push(entry);
    keys.push(currentKey);
  }
  const keyAfter = (count: number) => keys[count] ?? null;
  if (options.since) {
    const problem = await keptHeadProblem(options.since, good, tree, keyAfter, options.verify);
    if (problem) return fail(problem.firstBadEntry, problem.reason, entries.length);
  }
  return { result: await summary(entries.length), total, entries: good, tree, keyAfter };
}

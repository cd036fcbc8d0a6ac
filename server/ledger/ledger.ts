/**
 * The coordinator's privacy ledger: appends signed, hash-chained entries to a LedgerStore
 * (docs/ledger.md). Opening verifies the stored chain and writes the genesis entry on first
 * use; a round entry's epsilons come from shared/ledger's accountant over every entry so far,
 * the same code `portrait audit verify` runs. Appends are serialised, and each resolves only
 * when the store has made the entry durable (write-ahead: before any sum is decoded). The
 * entries are also the leaves of the transparency log's Merkle tree (shared/ledger/tree-head.ts),
 * kept in memory from the verified entries and each append: the ledger signs tree heads (RFC 9162
 * Sec. 4.10) and proves inclusion and consistency (Sec. 2.1.3, 2.1.4) for auditors, and hands out
 * the receipt of a release entry (shared/ledger/receipt.ts) that devices check and keep.
 */
import { ACCOUNTANT_METHOD, LEDGER_ORDERS, RdpTotal, spendRdp } from '../../shared/ledger/accountant.ts';
import { buildBundle } from '../../shared/ledger/bundle.ts';
import type { BudgetCap, LedgerBundle } from '../../shared/ledger/bundle.ts';
import { toHex } from '../../shared/ledger/digest.ts';
import { entryHash, GENESIS_PREV_HASH, LEDGER_FORMAT, LedgerEntrySchema, signEntry } from '../../shared/ledger/entry.ts';
import type { KeyRotationEntry, LedgerEntry, Publication, PublicationEntry, RoundEntry, RoundSpend, SigningKey, UnsignedEntry } from '../../shared/ledger/entry.ts';
import { leafHash, MerkleTree } from '../../shared/ledger/merkle.ts';
import { buildReceipt } from '../../shared/ledger/receipt.ts';
import type { LedgerReceipt } from '../../shared/ledger/receipt.ts';
import { entryLeafData, signTreeHead, TREE_HEAD_FORMAT } from '../../shared/ledger/tree-head.ts';
import type { SignedTreeHead } from '../../shared/ledger/tree-head.ts';
import { accountSpend, verifyLedger, verifyLedgerWithTotal } from '../../shared/ledger/verify.ts';
import { nodeEd25519Verify } from '../auth/native-ed25519.ts';
import type { VerifyResult } from '../../shared/ledger/verify.ts';
import type { LaunchBudget } from '../../shared/protocol/messages.ts';
import type { CrashHook } from './crash-seam.ts';
import type { LedgerStore } from './store.ts';

export type RoundSpendInput = Omit<RoundSpend, 'rdp' | 'epsilonRound' | 'epsilonCumulative' | 'order'>;

export interface PrivacyLedgerOptions {
  store: LedgerStore;
  /** The signing key, or how to find it from the verified ledger's current key (null when new). */
  key: SigningKey | ((currentKey: string | null) => SigningKey);
  /** e.g. `portrait/0.1.0`, recorded in every entry. */
  software: string;
  clock?: () => number;
  /** The deployment budget; null: none. */
  cap?: BudgetCap | null;
  /** Test seam only (crash-seam.ts). */
  crash?: CrashHook;
}

export class LedgerCorruptError extends Error {
  constructor(readonly result: VerifyResult) {
    super(`the privacy ledger does not verify at entry ${result.firstBadEntry}: ${result.reason}`);
    this.name = 'LedgerCorruptError';
  }
}

export class PrivacyLedger {
  private queue: Promise<unknown> = Promise.resolve();
  private total: RdpTotal;
  private seq: number;
  private prevHash: string;
  private key: SigningKey;
  private readonly clock: () => number;
  /** The Merkle tree over every entry so far (the transparency log). */
  private tree: MerkleTree;
  /** The genesis key: the log's identity in its tree heads. */
  private readonly genesisKey: string;
  /** Every key-rotation entry so far: a receipt carries them, so a device can follow the key from genesis. */
  private rotations: KeyRotationEntry[];

  private constructor(private readonly options: PrivacyLedgerOptions, key: SigningKey, state: VerifyResult, total: RdpTotal, tree: MerkleTree, genesisKey: string, rotations: KeyRotationEntry[]) {
    this.clock = options.clock ?? Date.now;
    this.key = key;
    this.seq = state.entries;
    this.prevHash = state.headHash;
    this.total = total;
    this.tree = tree;
    this.genesisKey = genesisKey;
    this.rotations = rotations;
  }

  /** Verifies what the store holds (LedgerCorruptError if it does not) and writes genesis if empty. */
  static async open(options: PrivacyLedgerOptions): Promise<PrivacyLedger> {
    const stored = await options.store.all();
    const verified = await verifyLedgerWithTotal(stored, options.cap ? { delta: options.cap.delta, verify: nodeEd25519Verify } : { verify: nodeEd25519Verify });
    const { result: state, total: verifiedTotal } = verified;
    if (!state.ok || verifiedTotal === null) throw new LedgerCorruptError(state);
    const key = typeof options.key === 'function' ? options.key(state.currentKey) : options.key;
    const keyHex = toHex(key.publicKey);
    if (state.currentKey !== null && state.currentKey !== keyHex) throw new RangeError(`"key" expected the ledger's current key ${state.currentKey}, got ${keyHex}`);
    // The running total the verification built (an empty ledger's starts from the ledger's own orders).
    const ledger = new PrivacyLedger(options, key, { ...state, headHash: state.entries === 0 ? GENESIS_PREV_HASH : state.headHash }, verifiedTotal, verified.tree, verified.entries[0]?.keyId ?? keyHex, verified.entries.filter((e): e is KeyRotationEntry => e.kind === 'key-rotation'));
    if (state.entries === 0) await ledger.append({ kind: 'genesis', accountant: { method: ACCOUNTANT_METHOD, orders: [...LEDGER_ORDERS] } });
    return ledger;
  }

  get cap(): BudgetCap | null {
    return this.options.cap ?? null;
  }

  get publicKey(): string {
    return toHex(this.key.publicKey);
  }

  get entries(): number {
    return this.seq;
  }

  /** Cumulative epsilon at `delta` so far plus `extra` RDP (a projection); null when unbounded. */
  epsilon(delta: number, extra?: ArrayLike<number> | null): number | null {
    return this.total.epsilon(delta, extra)?.epsilon ?? null;
  }

  get orders(): readonly number[] {
    return this.total.orders;
  }

  /**
   * Runs `run` alone against this ledger: after every append and exclusive run queued before it, and
   * before any queued after. Appends use it; so does the launch budget check with its round creation
   * (server/ledger/budget.ts). `run` must not itself wait on the queue (no append inside).
   */
  exclusive<T>(run: () => Promise<T>): Promise<T> {
    const { store } = this.options;
    // A store other processes append to (a cluster's PostgreSQL) is locked deployment-wide, and
    // this ledger first takes in what they appended, so the check and the append see one chain.
    const step = store.exclusive ? () => store.exclusive!(async () => (await this.catchUp(), run())) : run;
    const next = this.queue.then(step, step);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Takes in the entries other writers of a shared store appended since this ledger's head: the
   * whole stored chain is verified again (as at open), and its total, tree and rotations replace
   * this ledger's. LedgerCorruptError when it does not verify; a RangeError when another writer
   * rotated the signing key away from this process's (a node must restart with the new key).
   */
  private async catchUp(): Promise<void> {
    if ((await this.options.store.since(this.seq)).length === 0) return;
    const stored = await this.options.store.all();
    const verified = await verifyLedgerWithTotal(stored, this.options.cap ? { delta: this.options.cap.delta, verify: nodeEd25519Verify } : { verify: nodeEd25519Verify });
    if (!verified.result.ok || verified.total === null) throw new LedgerCorruptError(verified.result);
    if (verified.result.currentKey !== this.publicKey) throw new RangeError(`the ledger's current key is ${verified.result.currentKey}, this process signs with ${this.publicKey}: restart it with the rotated key`);
    this.seq = verified.result.entries;
    this.prevHash = verified.result.headHash;
    this.total = verified.total;
    this.tree = verified.tree;
    this.rotations = verified.entries.filter((e): e is KeyRotationEntry => e.kind === 'key-rotation');
  }

  private async append(body: { kind: 'genesis'; accountant: { method: string; orders: number[] } } | { kind: 'round'; round: RoundSpend } | { kind: 'publication'; publication: Publication } | { kind: 'key-rotation'; newPublicKey: string; reason: string }, newKey?: SigningKey): Promise<LedgerEntry> {
    const unsigned = {
      format: LEDGER_FORMAT,
      seq: this.seq + 1,
      prevHash: this.prevHash,
      createdAt: new Date(this.clock()).toISOString(),
      software: this.options.software,
      keyId: toHex(this.key.publicKey),
      ...body,
    } as UnsignedEntry;
    const entry = signEntry(unsigned, this.key, newKey);
    const hash = await entryHash(entry);
    const leaf = await leafHash(entryLeafData(entry));
    await this.options.store.append(entry);
    this.seq = entry.seq;
    this.prevHash = hash;
    await this.tree.appendLeafHash(leaf);
    return entry;
  }

  /**
   * Appends a round's entry. For a release, the caller decodes the sum only after this
   * resolves; it throws (writing nothing) when the deployment cap, or `launchCap` (the cap the
   * round's launch set, server/ledger/budget.ts), would be exceeded, or when `guard` throws.
   */
  recordRound(input: RoundSpendInput, launchCap: BudgetCap | null = null, guard?: () => Promise<void>): Promise<RoundEntry> {
    return this.exclusive(async () => {
      // A cluster leader's lease check (server/cluster), inside the lock: a deposed leader enters nothing.
      await guard?.();
      const spend = accountSpend(input, this.total);
      const rdp = spendRdp(spend, this.total.orders);
      if (input.outcome === 'released') this.checkCaps(rdp, launchCap, `round ${input.roundId} would bring`);
      this.options.crash?.('before-ledger');
      const entry = (await this.append({ kind: 'round', round: spend })) as RoundEntry;
      this.total.add(rdp);
      this.options.crash?.('after-ledger');
      return entry;
    });
  }

  /**
   * Binds a stored model version to its digest (a `publication` entry, after the release entry
   * naming it: verifyLedger refuses one without). Spends nothing.
   */
  recordPublication(publication: Publication): Promise<PublicationEntry> {
    return this.exclusive(async () => (await this.append({ kind: 'publication', publication })) as PublicationEntry);
  }

  /**
   * The deployment cap and `launchCap` (those set), each with the epsilon spent so far at its delta
   * and the epsilon with `rdp` more (null: unbounded, also when `rdp` is null, a round without DP).
   */
  capProjections(rdp: ArrayLike<number> | null, launchCap: BudgetCap | null): LaunchBudget[] {
    const projections: LaunchBudget[] = [];
    for (const [cap, kind] of [[this.cap, 'deployment'], [launchCap, 'launch']] as const) {
      if (!cap) continue;
      const projected = rdp === null ? null : (this.total.epsilon(cap.delta, rdp)?.epsilon ?? null);
      projections.push({ kind, cap, spent: this.total.epsilon(cap.delta)?.epsilon ?? null, projected });
    }
    return projections;
  }

  /** Throws BudgetExceededError when `rdp` more would pass a cap (capProjections); `what` starts the message. */
  checkCaps(rdp: ArrayLike<number> | null, launchCap: BudgetCap | null, what: string): void {
    const over = passedCap(this.capProjections(rdp, launchCap));
    if (over) throw new BudgetExceededError(over.cap, over.projected, what, over.kind);
  }

  /** Rotation as a signed entry: signed by the current key and by the new one, which then signs. */
  rotateKey(newKey: SigningKey, reason: string): Promise<KeyRotationEntry> {
    return this.exclusive(async () => {
      const entry = (await this.append({ kind: 'key-rotation', newPublicKey: toHex(newKey.publicKey), reason }, newKey)) as KeyRotationEntry;
      this.key = newKey;
      this.rotations.push(entry);
      return entry;
    });
  }

  async all(): Promise<unknown[]> {
    return this.options.store.all();
  }

  /** Verifies the stored entries, or `entries` already read from the store. */
  async verify(entries?: readonly unknown[]): Promise<VerifyResult> {
    return verifyLedger(entries ?? (await this.options.store.all()), this.cap ? { delta: this.cap.delta, verify: nodeEd25519Verify } : { verify: nodeEd25519Verify });
  }

  /** The current head of the transparency log, signed by the current key (RFC 9162 Sec. 4.10). */
  async signHead(): Promise<SignedTreeHead> {
    return signTreeHead({ format: TREE_HEAD_FORMAT, genesisKey: this.genesisKey, treeSize: this.tree.size, rootHash: toHex(await this.tree.rootHash()), timestamp: this.clock() }, this.key);
  }

  /** The signed head of the ledger as it stands, after every append queued before the call. */
  treeHead(): Promise<SignedTreeHead> {
    return this.exclusive(() => this.signHead());
  }

  /**
   * RFC 9162 Sec. 2.1.4.1: the consistency proof from the tree of `first` entries to that of
   * `second` (default: the current one, whose signed head comes with it, taken at the same moment).
   */
  consistency(first: number, second?: number): Promise<{ first: number; second: number; proof: string[]; head?: SignedTreeHead }> {
    return this.exclusive(async () => {
      const to = second ?? this.tree.size;
      const proof = (await this.tree.consistencyProof(first, to)).map(toHex);
      return { first, second: to, proof, ...(second === undefined ? { head: await this.signHead() } : {}) };
    });
  }

  /**
   * RFC 9162 Sec. 2.1.3.1: the inclusion proof of entry `seq` (leaf seq - 1) in the tree of
   * `treeSize` entries (default: the current one, whose signed head comes with it).
   */
  inclusion(seq: number, treeSize?: number): Promise<{ seq: number; leafIndex: number; treeSize: number; leafHash: string; proof: string[]; head?: SignedTreeHead }> {
    return this.exclusive(async () => {
      const size = treeSize ?? this.tree.size;
      const proof = (await this.tree.inclusionProof(seq - 1, size)).map(toHex);
      return { seq, leafIndex: seq - 1, treeSize: size, leafHash: toHex(this.tree.leafHashAt(seq - 1)), proof, ...(treeSize === undefined ? { head: await this.signHead() } : {}) };
    });
  }

  /**
   * The receipt of a round's release entry for the devices that witness it: the entry, its
   * inclusion proof (RFC 9162 Sec. 2.1.3.1) in the current tree and that tree's signed head, and the
   * key rotations so far (shared/ledger/receipt.ts).
   */
  receipt(entry: RoundEntry): Promise<LedgerReceipt> {
    return this.exclusive(async () => {
      const proof = (await this.tree.inclusionProof(entry.seq - 1, this.tree.size)).map(toHex);
      return buildReceipt(entry, proof, await this.signHead(), this.rotations);
    });
  }

  /** The signed, self-contained bundle for offline audit (shared/ledger/bundle.ts). */
  exportBundle(): Promise<LedgerBundle> {
    return this.exclusive(async () => {
      const entries = (await this.options.store.all()).map((e) => LedgerEntrySchema.parse(e));
      const genesis = entries[0];
      if (genesis?.kind !== 'genesis' || entries.length !== this.tree.size) throw new Error(`the ledger store holds ${entries.length} entries, this ledger ${this.tree.size}: another writer?`);
      return buildBundle(entries, await this.signHead(), genesis.accountant, this.cap, this.key);
    });
  }
}

/** The first of `projections` whose cap is passed (unbounded counts as passed), or undefined. */
export function passedCap(projections: readonly LaunchBudget[]): LaunchBudget | undefined {
  return projections.find((p) => p.projected === null || p.projected > p.cap.epsilon);
}

/**
 * A release or launch refused by a budget: the deployment's (`server --epsilon-cap`) or the
 * launch's own (`round launch --epsilon-cap`); `projected` is null when unbounded.
 */
export class BudgetExceededError extends Error {
  constructor(
    readonly cap: BudgetCap,
    readonly projected: number | null,
    what: string,
    readonly kind: 'deployment' | 'launch' = 'deployment',
  ) {
    super(`${what} cumulative epsilon to ${projected === null ? 'unbounded (a round without differential privacy)' : projected.toFixed(4)} at delta ${cap.delta}, above the ${kind === 'deployment' ? 'deployment cap' : "launch's cap"} of ${cap.epsilon}`);
    this.name = 'BudgetExceededError';
  }
}

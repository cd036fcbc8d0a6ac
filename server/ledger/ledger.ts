/**
 * The coordinator's privacy ledger: appends signed, hash-chained entries to a LedgerStore
 * (docs/ledger.md). Opening verifies the stored chain and writes the genesis entry on first
 * use; a round entry's epsilons come from shared/ledger's accountant over every entry so far,
 * the same code `portrait audit verify` runs. Appends are serialised, and each resolves only
 * when the store has made the entry durable (write-ahead: before any sum is decoded).
 */
import { ACCOUNTANT_METHOD, LEDGER_ORDERS, RdpTotal, spendRdp } from '../../shared/ledger/accountant.ts';
import { buildBundle, signHead } from '../../shared/ledger/bundle.ts';
import type { BudgetCap, LedgerBundle } from '../../shared/ledger/bundle.ts';
import { toHex } from '../../shared/ledger/digest.ts';
import { entryHash, GENESIS_PREV_HASH, LEDGER_FORMAT, LedgerEntrySchema, signEntry } from '../../shared/ledger/entry.ts';
import type { KeyRotationEntry, LedgerEntry, RoundEntry, RoundSpend, SigningKey, UnsignedEntry } from '../../shared/ledger/entry.ts';
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

  private constructor(private readonly options: PrivacyLedgerOptions, key: SigningKey, state: VerifyResult, total: RdpTotal) {
    this.clock = options.clock ?? Date.now;
    this.key = key;
    this.seq = state.entries;
    this.prevHash = state.headHash;
    this.total = total;
  }

  /** Verifies what the store holds (LedgerCorruptError if it does not) and writes genesis if empty. */
  static async open(options: PrivacyLedgerOptions): Promise<PrivacyLedger> {
    const stored = await options.store.all();
    const { result: state, total: verifiedTotal } = await verifyLedgerWithTotal(stored, options.cap ? { delta: options.cap.delta, verify: nodeEd25519Verify } : { verify: nodeEd25519Verify });
    if (!state.ok || verifiedTotal === null) throw new LedgerCorruptError(state);
    const key = typeof options.key === 'function' ? options.key(state.currentKey) : options.key;
    const keyHex = toHex(key.publicKey);
    if (state.currentKey !== null && state.currentKey !== keyHex) throw new RangeError(`"key" expected the ledger's current key ${state.currentKey}, got ${keyHex}`);
    // The running total the verification built (an empty ledger's starts from the ledger's own orders).
    const ledger = new PrivacyLedger(options, key, { ...state, headHash: state.entries === 0 ? GENESIS_PREV_HASH : state.headHash }, verifiedTotal);
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
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async append(body: { kind: 'genesis'; accountant: { method: string; orders: number[] } } | { kind: 'round'; round: RoundSpend } | { kind: 'key-rotation'; newPublicKey: string; reason: string }, newKey?: SigningKey): Promise<LedgerEntry> {
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
    await this.options.store.append(entry);
    this.seq = entry.seq;
    this.prevHash = hash;
    return entry;
  }

  /**
   * Appends a round's entry. For a release, the caller decodes the sum only after this
   * resolves; it throws (writing nothing) when the deployment cap, or `launchCap` (the cap the
   * round's launch set, server/ledger/budget.ts), would be exceeded.
   */
  recordRound(input: RoundSpendInput, launchCap: BudgetCap | null = null): Promise<RoundEntry> {
    return this.exclusive(async () => {
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
      return entry;
    });
  }

  async all(): Promise<unknown[]> {
    return this.options.store.all();
  }

  async verify(): Promise<VerifyResult> {
    return verifyLedger(await this.options.store.all(), this.cap ? { delta: this.cap.delta, verify: nodeEd25519Verify } : { verify: nodeEd25519Verify });
  }

  /** The signed, self-contained bundle for offline audit. */
  exportBundle(): Promise<LedgerBundle> {
    return this.exclusive(async () => {
      const entries = (await this.options.store.all()).map((e) => LedgerEntrySchema.parse(e));
      const head = signHead({ entries: entries.length, hash: this.prevHash, keyId: toHex(this.key.publicKey), exportedAt: new Date(this.clock()).toISOString() }, this.key);
      return buildBundle(entries, head, { method: ACCOUNTANT_METHOD, orders: [...this.total.orders] }, this.cap);
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

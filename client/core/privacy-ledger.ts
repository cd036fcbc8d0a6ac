/**
 * The device's own privacy ledger: the rounds this client sent an update to (mechanism, z, q,
 * t, delta and what the accountant needs), and its own epsilon cap, enforced whatever the
 * coordinator says. Accounting is conservative on the device's side: a device knows it was
 * selected, not that selection was Poisson at the claimed rate, so every joined round counts
 * with q = 1 (no amplification by sampling). RDP of the distributed discrete Gaussian counting
 * the t survivors' noise (Kairouz, Liu, Steinke 2021, Theorem 1 / Prop. 14), composed over
 * rounds (Mironov 2017, Prop. 1), converted with Canonne, Kamath, Steinke 2020, Prop. 12.
 * Platform-free: state goes through `ClientLedgerStorage` (a JSON file in Node, IndexedDB or
 * localStorage in the browser). A round is recorded before its update leaves the device.
 * It also keeps the coordinator ledger's receipts this device witnessed (shared/ledger/receipt.ts:
 * the signed tree head over each SecAgg+ round's release entry, kept before the unmask shares
 * leave) and the ledger keys it trusts, so that it can later prove those rounds were entered.
 */
import { RdpTotal, spendRdp } from '../../shared/ledger/accountant.ts';
import type { LedgerReceipt } from '../../shared/ledger/receipt.ts';
import { accountedNoise } from '../../shared/privacy/config.ts';
import type { PrivacyConfig, PrivacyMode } from '../../shared/privacy/config.ts';

export interface JoinedRound {
  roundId: number;
  joinedAt: string;
  mode: PrivacyMode;
  noiseMultiplier: number;
  /** The rate the coordinator claimed (recorded, not trusted: accounting uses q = 1). */
  claimedQ: number | null;
  t: number;
  delta: number;
  l2Sensitivity: number | null;
  shareVariance: number | null;
  shares: number | null;
  paddedDimension: number | null;
}

export interface KeptReceipt {
  keptAt: string;
  receipt: LedgerReceipt;
}

export interface ClientLedgerState {
  version: 1;
  rounds: JoinedRound[];
  /** Receipts of the coordinator's ledger this device checked and kept, oldest first. */
  receipts?: KeptReceipt[];
  /** The coordinator ledger's keys this device trusts: its genesis key, then each rotation accepted since. */
  ledgerKeys?: string[];
}

export interface ClientLedgerStorage {
  load(): Promise<ClientLedgerState | null>;
  save(state: ClientLedgerState): Promise<void>;
}

export interface ClientEpsilonCap {
  epsilon: number;
  delta: number;
}

export class MemoryClientLedgerStorage implements ClientLedgerStorage {
  private state: string | null = null;
  async load(): Promise<ClientLedgerState | null> {
    return this.state === null ? null : (JSON.parse(this.state) as ClientLedgerState);
  }
  async save(state: ClientLedgerState): Promise<void> {
    this.state = JSON.stringify(state);
  }
}

/**
 * Storage over any text store: Node passes file reads and atomic writes, the browser
 * localStorage.getItem/setItem (or IndexedDB), so the ledger code is the same everywhere.
 */
export function textLedgerStorage(read: () => Promise<string | null>, write: (text: string) => Promise<void>): ClientLedgerStorage {
  return {
    load: async () => {
      const text = await read();
      return text === null ? null : (JSON.parse(text) as ClientLedgerState);
    },
    save: (state) => write(`${JSON.stringify(state)}\n`),
  };
}

export function checkEpsilonCap(cap: ClientEpsilonCap): ClientEpsilonCap {
  if (typeof cap !== 'object' || cap === null) throw new TypeError(`"epsilonCap" expected an object { epsilon, delta }, got ${cap === null ? 'null' : typeof cap}`);
  if (typeof cap.epsilon !== 'number' || !(cap.epsilon > 0) || !Number.isFinite(cap.epsilon)) throw new RangeError(`"epsilonCap.epsilon" expected a finite number > 0, got ${cap.epsilon}`);
  if (typeof cap.delta !== 'number' || !(cap.delta > 0 && cap.delta < 1)) throw new RangeError(`"epsilonCap.delta" expected a number in (0, 1), got ${cap.delta}`);
  return cap;
}

function joinedRound(roundId: number, config: PrivacyConfig | null, joinedAt: string): JoinedRound {
  if (!config || !config.differentiallyPrivate) {
    return { roundId, joinedAt, mode: 'none', noiseMultiplier: 0, claimedQ: null, t: 0, delta: 0, l2Sensitivity: null, shareVariance: null, shares: null, paddedDimension: null };
  }
  return {
    roundId,
    joinedAt,
    mode: config.mode,
    noiseMultiplier: config.noiseMultiplier,
    claimedQ: config.samplingRate,
    t: config.minSurvivors,
    delta: config.delta,
    ...accountedNoise(config),
  };
}

function roundRdp(r: JoinedRound, orders: readonly number[]): Float64Array | null {
  return spendRdp({ outcome: 'released', mode: r.mode, q: 1, delta: r.delta, l2Sensitivity: r.l2Sensitivity, shareVariance: r.shareVariance, shares: r.shares, paddedDimension: r.paddedDimension }, orders);
}

export class ClientPrivacyLedger {
  private readonly total = new RdpTotal();
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    private readonly storage: ClientLedgerStorage,
    readonly cap: ClientEpsilonCap,
    private readonly state: ClientLedgerState,
    private readonly clock: () => number,
  ) {
    for (const r of state.rounds) this.total.add(roundRdp(r, this.total.orders));
  }

  static async open(storage: ClientLedgerStorage, cap: ClientEpsilonCap, clock: () => number = Date.now): Promise<ClientPrivacyLedger> {
    checkEpsilonCap(cap);
    const state = (await storage.load()) ?? { version: 1, rounds: [] };
    if (state.version !== 1 || !Array.isArray(state.rounds)) throw new RangeError(`"state" expected a version 1 client ledger, got version ${String(state.version)}`);
    return new ClientPrivacyLedger(storage, cap, state, clock);
  }

  get rounds(): readonly JoinedRound[] {
    return this.state.rounds;
  }

  /** The ledger receipts kept so far, oldest first (what `portrait audit verify --receipt` reads). */
  get receipts(): readonly LedgerReceipt[] {
    return (this.state.receipts ?? []).map((k) => k.receipt);
  }

  /** The coordinator ledger's keys this device trusts (genesis first), or null before its first receipt. */
  get ledgerKeys(): readonly string[] | null {
    return this.state.ledgerKeys ?? null;
  }

  /** This device's epsilon so far at its cap's delta (null: unbounded). */
  get spent(): number | null {
    return this.total.epsilon(this.cap.delta)?.epsilon ?? null;
  }

  /** Epsilon after joining a round with `config` (null: a round without DP, unbounded). */
  projected(config: PrivacyConfig | null): number | null {
    return this.total.epsilon(this.cap.delta, roundRdp(joinedRound(0, config, ''), this.total.orders))?.epsilon ?? null;
  }

  /** Why this device must refuse the round, or null when it fits under its cap. */
  refusal(config: PrivacyConfig | null): string | null {
    const projected = this.projected(config);
    if (projected !== null && projected <= this.cap.epsilon) return null;
    return `joining would bring this device's epsilon to ${projected === null ? 'unbounded (no differential privacy)' : projected.toFixed(4)} at delta ${this.cap.delta}, above its own cap of ${this.cap.epsilon}`;
  }

  /**
   * Records a joined round durably; call before the update leaves the device. Every call appends:
   * round ids are the coordinator's and may repeat (a coordinator with a fresh data directory
   * numbers from 1 again), and counting a round twice over-counts, which is safe.
   */
  record(roundId: number, config: PrivacyConfig | null): Promise<void> {
    return this.serialised(async () => {
      const round = joinedRound(roundId, config, new Date(this.clock()).toISOString());
      this.state.rounds.push(round);
      this.total.add(roundRdp(round, this.total.orders));
    });
  }

  /**
   * Keeps a receipt the device verified (and the ledger keys it chained to, which it trusts from now
   * on) durably; call before the unmask shares leave the device.
   */
  keepReceipt(receipt: LedgerReceipt, ledgerKeys: readonly string[]): Promise<void> {
    return this.serialised(async () => {
      this.state.receipts = [...(this.state.receipts ?? []), { keptAt: new Date(this.clock()).toISOString(), receipt }];
      this.state.ledgerKeys = [...ledgerKeys];
    });
  }

  /** Runs `change` after every earlier one, then saves the state. */
  private serialised(change: () => Promise<void>): Promise<void> {
    const run = async () => {
      await change();
      await this.storage.save(this.state);
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

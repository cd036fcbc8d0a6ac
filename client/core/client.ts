/**
 * The federated learning client, platform-free (it will run in a browser Web Worker as it runs in
 * Node): connect with the enrollment token, check in when eligible, fetch the model only if
 * stale, train locally on the device's own examples, send the weight delta before the stage
 * deadline, and keep going across reconnects and coordinator restarts (socket.io-client
 * reconnects; every round starts afresh from the coordinator's announcements).
 * When the round carries privacy parameters, the delta is clipped, rounded and noised on the device
 * (Kairouz, Liu, Steinke 2021, Alg. 1, via shared/privacy) and only residues mod 2^32 leave it.
 * When the round also runs SecAgg+, the residues go out only masked, through a SecAggParticipant
 * (client/core/secagg-client.ts): advertise keys (signed with this device's Ed25519 key, pinned to
 * its enrollment at check-in) → share keys → masked input → unmask. Before it sends its unmask
 * shares the device checks the coordinator ledger's receipt of the round's release (round:receipt,
 * shared/ledger/receipt.ts) against the ledger key it pinned, and keeps it; without a valid receipt
 * it withholds them, so no sum is decoded that the ledger does not hold (docs/ledger.md).
 * Seams: `privatiseUpdate` (a float transform before DP) and `faults` (simulation only).
 */
import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import type { Example } from '../../shared/features/examples.ts';
import { computeLocalUpdate } from '../../shared/model/federated.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';
import { cryptoRandomBytes, randomId } from '../../shared/protocol/enrollment.ts';
import type { RandomBytes } from '../../shared/protocol/enrollment.ts';
import { isErrorCode } from '../../shared/protocol/errors.ts';
import type { ErrorBody } from '../../shared/protocol/errors.ts';
import { EVENTS } from '../../shared/protocol/events.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../../shared/protocol/events.ts';
import type { Ack, DeclineReason, RoundClosed, RoundConfigMessage, RoundOpen } from '../../shared/protocol/messages.ts';
import { RoundClosedSchema, RoundConfigEnvelopeSchema, RoundNotSelectedSchema, RoundOpenSchema, RoundReceiptSchema, SecAggWireConfigSchema } from '../../shared/protocol/messages.ts';
import type { RoundReceipt } from '../../shared/protocol/messages.ts';
import { headExtends, verifyReceipt } from '../../shared/ledger/receipt.ts';
import type { LedgerReceipt, WitnessedSpend } from '../../shared/ledger/receipt.ts';
import type { z } from 'zod';
import { toBase64 } from '../../shared/secagg/bytes.ts';
import { generateSigningKeyPair } from '../../shared/secagg/keys.ts';
import type { KeyPair } from '../../shared/secagg/keys.ts';
import type { ProtocolStage as SecAggStage } from '../../shared/secagg/stages.ts';
import { SecAggParticipant } from './secagg-client.ts';
import { encodeResidues, encodeWeights } from '../../shared/protocol/weights.ts';
import { privacyConfigFromParams, RoundPrivacyParamsSchema, unpackSigns } from '../../shared/protocol/privacy.ts';
import { parseMessage } from '../../shared/protocol/messages.ts';
import { accountedNoise, PRIVACY_MODES } from '../../shared/privacy/config.ts';
import type { PrivacyConfig, PrivacyMode } from '../../shared/privacy/config.ts';
import { privatiseUpdate } from '../../shared/privacy/mechanism.ts';
import { cryptoRandomSource } from '../../shared/privacy/random.ts';
import type { RandomSource } from '../../shared/privacy/random.ts';
import { ModelCache } from './model-cache.ts';
import { AnalyticsQuerySchema, deviceContribution, evaluateBlocks } from '../../shared/analytics/queries.ts';
import type { EvaluateQuery, SegmentsQuery } from '../../shared/analytics/queries.ts';
import { segmentCategories } from '../../shared/analytics/queries.ts';
import { segmentContribution } from '../../shared/analytics/segments.ts';
import { computePortrait } from '../../shared/model/portrait.ts';
import { evaluateContribution } from '../../shared/analytics/federated-evaluation.ts';
import { predictExamples } from '../../shared/model/evaluate.ts';
import type { BehaviourEvent } from '../../shared/features/events.ts';
import type { ClientPrivacyLedger } from './privacy-ledger.ts';
import type { FetchLike } from './model-cache.ts';
import type { DropStage } from './drop-stages.ts';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export { DROP_STAGES, SECAGG_DROP_STAGES } from './drop-stages.ts';
export type { DropStage } from './drop-stages.ts';

export type ClientEvent =
  | { type: 'connected' }
  | { type: 'disconnected'; reason: string }
  | { type: 'refused'; error: ErrorBody }
  | { type: 'checked-in'; roundId: number }
  | { type: 'not-selected'; roundId: number }
  | { type: 'selected'; roundId: number; modelVersion: number }
  | { type: 'model-fetched'; version: number; bytes: number; ms: number }
  | { type: 'trained'; roundId: number; examples: number; ms: number }
  | { type: 'update-sent'; roundId: number; bytes: number; ms: number }
  | { type: 'update-refused'; roundId: number; error: ErrorBody }
  /** This client refused the round's privacy (its own policy) and dropped out of it. */
  | { type: 'privacy-refused'; roundId: number; error: ErrorBody }
  | { type: 'deadline-missed'; roundId: number }
  | { type: 'dropped'; stage: DropStage; roundId: number }
  | { type: 'round-closed'; message: RoundClosed }
  /** A coordinator message that failed its schema; it was dropped (MALFORMED_MESSAGE). */
  | { type: 'malformed'; event: string; message: string }
  /** This device has no training examples, so it does not check in. */
  | { type: 'declined'; roundId: number; reason: string }
  /** The ledger receipt of this round's release verified and was kept: the unmask shares may go. */
  | { type: 'receipt-kept'; roundId: number; treeSize: number; leafIndex: number }
  /** No valid ledger receipt for this round: its unmask shares are withheld. */
  | { type: 'receipt-refused'; roundId: number; reason: string }
  | { type: 'secagg-finished'; roundId: number; status: 'done' | 'aborted' | 'refused' | 'dropped'; stage: SecAggStage | 'done'; reason?: string; bytesSent: number; computeMs: number }
  | { type: 'failed'; roundId: number; message: string };

export interface PrivatiseContext {
  round: RoundConfigMessage;
  examples: number;
}

export interface FederatedClientOptions {
  serverUrl: string;
  /** Enrollment token issued by the platform. */
  token: string;
  /** This device's training examples, built with the model's vocabulary and windows. */
  examples: (config: ModelConfig) => readonly Example[] | Promise<readonly Example[]>;
  /**
   * This device's own events, for federated analytics rounds (shared/analytics/queries.ts): the
   * query's bounded contribution is computed from them here and leaves only privatised (and, with
   * SecAgg+, masked), like a model update. Absent: the device declines analytics rounds.
   */
  analyticsEvents?: () => readonly BehaviourEvent[] | Promise<readonly BehaviourEvent[]>;
  /** Checked before each check-in (idle, charging...): false defers the check-in within the window. */
  eligible?: () => boolean;
  /**
   * Checked first at each round open: a code declines the round outright instead of deferring it
   * (the device's own privacy budget is spent, for good), so check-in need not wait for it. Default:
   * PRIVACY_NOT_ACCEPTED once `privacyLedger` is at its cap.
   */
  declineReason?: () => DeclineReason | null;
  /** DP / SecAgg seam: transforms the plain delta before it leaves the device (identity now). */
  privatiseUpdate?: (delta: Float32Array, context: PrivatiseContext) => Float32Array | Promise<Float32Array>;
  /** Privacy modes this device takes part in; a round in any other mode is refused (a dropout). Default: all four. */
  acceptPrivacyModes?: readonly PrivacyMode[];
  /** This device's own privacy ledger and cap (privacy-ledger.ts): rounds past the cap are refused, whatever the coordinator says. */
  privacyLedger?: ClientPrivacyLedger;
  /**
   * The coordinator ledger's genesis public key (hex, `GET /api/v1/ledger/public-key`): receipts must
   * chain to it. Default: trust on first use, the key of the first receipt (kept in `privacyLedger`).
   */
  ledgerPublicKey?: string;
  /** CSPRNG for rounding and noise; default crypto.getRandomValues (inject a seeded one only in tests). */
  privacyRandom?: RandomSource;
  fetch?: FetchLike;
  randomBytes?: RandomBytes;
  clock?: () => number;
  /** Ed25519 key pair signing this device's SecAgg+ advertisements; default: fresh from `privacyRandom`. */
  signingKeyPair?: KeyPair;
  /** Tests only: sees this device's own residues before they are masked (to check the unmasked sum). */
  inspectResidues?: (roundId: number, residues: Uint32Array) => void;
  /** Simulation only: vanish once at this stage, rejoining after `rejoinAfterMs` if given. */
  faults?: { dropAt?: DropStage; rejoinAfterMs?: number };
  onEvent?: (event: ClientEvent) => void;
  reconnectionDelayMs?: number;
}

export interface ClientStats {
  checkins: number;
  selected: number;
  updatesSent: number;
  updatesAccepted: number;
  refusals: number;
}

export class FederatedClient {
  readonly socket: ClientSocket;
  readonly models: ModelCache;
  readonly stats: ClientStats = { checkins: 0, selected: 0, updatesSent: 0, updatesAccepted: 0, refusals: 0 };
  private examplesFor: { key: string; examples: readonly Example[] } | null = null;
  private busyRound: number | null = null;
  /** A round that opened while this client was still busy with the previous one. */
  private pendingOpen: { message: RoundOpen; closesAt: number } | null = null;
  /** A round whose check-in opened while this device was not eligible; retried by `eligibilityChanged`. */
  private deferredOpen: { message: RoundOpen; closesAt: number } | null = null;
  private dropAt: DropStage | undefined;
  private rejoinAfterMs: number | undefined;
  private stopped = false;
  private readonly clock: () => number;
  private readonly randomBytes: RandomBytes;
  private readonly privacyRandom: RandomSource;
  private readonly signingKeys: KeyPair;
  /** The SecAgg+ session of the round this device is masking for, if any. */
  private secagg: SecAggParticipant | null = null;
  /** The ledger keys receipts must chain to (genesis first), once pinned; see `pinnedLedgerKeys`. */
  private ledgerKeys: string[] | null = null;
  /** The noise the SecAgg+ round in flight was announced with: its release entry must account for it. */
  private witnessed: { roundId: number; spend: WitnessedSpend } | null = null;
  /** The check of the latest receipt: null when it verified and was kept, else why not. */
  private receiptCheck: { roundId: number; outcome: Promise<string | null> } | null = null;
  /** Receipts kept by this process (the privacy ledger, when there is one, keeps them durably). */
  private readonly keptReceipts: LedgerReceipt[] = [];

  constructor(private readonly options: FederatedClientOptions) {
    this.clock = options.clock ?? Date.now;
    this.randomBytes = options.randomBytes ?? cryptoRandomBytes;
    this.privacyRandom = options.privacyRandom ?? cryptoRandomSource();
    this.dropAt = options.faults?.dropAt;
    this.signingKeys = options.signingKeyPair ?? generateSigningKeyPair(this.privacyRandom);
    if (options.ledgerPublicKey !== undefined && (typeof options.ledgerPublicKey !== 'string' || !/^[0-9a-f]{64}$/.test(options.ledgerPublicKey))) {
      throw new RangeError(`"ledgerPublicKey" expected 32 bytes as 64 lowercase hex digits, got ${typeof options.ledgerPublicKey === 'string' ? `${options.ledgerPublicKey.length} characters` : typeof options.ledgerPublicKey}`);
    }
    const fetchImpl: FetchLike = options.fetch ?? ((url) => fetch(url));
    this.models = new ModelCache(options.serverUrl, fetchImpl);
    const delay = options.reconnectionDelayMs ?? 250;
    this.socket = io(options.serverUrl, {
      auth: { token: options.token },
      transports: ['websocket'],
      autoConnect: false,
      reconnectionDelay: delay,
      reconnectionDelayMax: delay * 8,
    });
    this.socket.on('connect', () => this.emit({ type: 'connected' }));
    this.socket.on('disconnect', (reason) => this.emit({ type: 'disconnected', reason }));
    this.socket.on('connect_error', (err) => {
      const data = (err as Error & { data?: unknown }).data as Partial<ErrorBody> | undefined;
      if (data && isErrorCode(data.code)) this.emit({ type: 'refused', error: { code: data.code, message: String(data.message) } });
      // socket.io-client does not retry a connection the server refused (it retries only lost
      // ones); UNAVAILABLE is a passing refusal (a cluster node without its Redis link), so try
      // again after a jittered backoff, reaching through the load balancer a node that can serve.
      if (data?.code === 'UNAVAILABLE' && !this.socket.active) {
        const wait = delay * (4 + (4 * (crypto.getRandomValues(new Uint8Array(1))[0] as number)) / 256);
        setTimeout(() => !this.stopped && !this.socket.connected && this.socket.connect(), wait);
      }
    });
    // Every coordinator message is validated before it is acted on; a malformed one is dropped.
    this.socket.on(EVENTS.roundOpen, (m) => this.inbound(RoundOpenSchema, EVENTS.roundOpen, m, (open) => void this.onRoundOpen(open)));
    this.socket.on(EVENTS.roundConfig, (m) => this.inbound(RoundConfigEnvelopeSchema, EVENTS.roundConfig, m, (config) => void this.onRoundConfig(config as RoundConfigMessage)));
    this.socket.on(EVENTS.roundNotSelected, (m) => this.inbound(RoundNotSelectedSchema, EVENTS.roundNotSelected, m, ({ roundId }) => this.emit({ type: 'not-selected', roundId })));
    this.socket.on(EVENTS.roundClosed, (m) => this.inbound(RoundClosedSchema, EVENTS.roundClosed, m, (closed) => this.emit({ type: 'round-closed', message: closed as RoundClosed })));
    this.socket.on(EVENTS.roundReceipt, (m) => this.inbound(RoundReceiptSchema, EVENTS.roundReceipt, m, (message) => this.onReceipt(message)));
    this.socket.on(EVENTS.secagg, (m) => {
      const session = this.secagg;
      if (session) void session.receive(m).catch((err: unknown) => this.emit({ type: 'failed', roundId: session.roundId, message: err instanceof Error ? err.message : String(err) }));
    });
  }

  private inbound<T>(schema: z.ZodType<T>, name: string, raw: unknown, handle: (message: T) => void): void {
    let message: T;
    try {
      message = parseMessage(schema, name, raw);
    } catch (err) {
      this.emit({ type: 'malformed', event: name, message: err instanceof Error ? err.message : String(err) });
      return;
    }
    handle(message);
  }

  /**
   * The ledger receipts this device kept (oldest first): from its privacy ledger when it has one
   * (all of them, across restarts), else those of this process. `portrait audit verify --receipt`
   * reads them as a JSON array.
   */
  receipts(): readonly LedgerReceipt[] {
    return this.options.privacyLedger?.receipts ?? [...this.keptReceipts];
  }

  /**
   * The keys a receipt must chain to: the configured genesis key (with the rotations seen since,
   * if they start from it), else those pinned by the first receipt; null before any (trust on first use).
   */
  private pinnedLedgerKeys(): readonly string[] | null {
    const known = this.ledgerKeys ?? this.options.privacyLedger?.ledgerKeys ?? null;
    const configured = this.options.ledgerPublicKey;
    if (configured === undefined) return known;
    return known && known[0] === configured ? known : [configured];
  }

  /**
   * A receipt for the round this device contributed to: in a SecAgg+ round, checked (and kept) now
   * and awaited before its shares go; in a DP round without SecAgg+, its update left before the
   * release entry existed, so the receipt comes afterwards and is checked and kept as a witness only.
   */
  private onReceipt(message: RoundReceipt): void {
    const witnessed = this.witnessed;
    if (witnessed?.roundId !== message.roundId) return;
    const outcome = this.keepReceipt(message, witnessed.spend);
    if (this.secagg?.roundId === message.roundId) this.receiptCheck = { roundId: message.roundId, outcome };
    else this.witnessed = null;
  }

  private async keepReceipt(message: RoundReceipt, spend: WitnessedSpend): Promise<string | null> {
    const { roundId } = message;
    try {
      const verdict = await verifyReceipt(message.receipt, { roundId, pinnedKeys: this.pinnedLedgerKeys(), spend });
      if (!verdict.ok) {
        this.emit({ type: 'receipt-refused', roundId, reason: verdict.reason });
        return verdict.reason;
      }
      const kept = this.receipts().at(-1);
      const forked = kept ? await headExtends(kept.head, verdict.receipt.head, message.consistency) : null;
      if (forked) {
        this.emit({ type: 'receipt-refused', roundId, reason: forked });
        return forked;
      }
      // Kept (durably, with a privacy ledger) before the shares leave: the device can prove the round was entered.
      await this.options.privacyLedger?.keepReceipt(verdict.receipt, verdict.keys);
      this.ledgerKeys = verdict.keys;
      this.keptReceipts.push(verdict.receipt);
      this.emit({ type: 'receipt-kept', roundId, treeSize: verdict.receipt.head.treeSize, leafIndex: verdict.receipt.leafIndex });
      return null;
    } catch (err) {
      const reason = `the receipt could not be kept: ${err instanceof Error ? err.message : String(err)}`;
      this.emit({ type: 'receipt-refused', roundId, reason });
      return reason;
    }
  }

  /** Asked by the SecAgg+ participant before its unmask shares: null when this round's receipt verified and was kept. */
  private async receiptFor(roundId: number): Promise<string | null> {
    const check = this.receiptCheck;
    if (check && check.roundId === roundId) return check.outcome;
    const reason = `no ledger receipt for round ${roundId} came before its unmask request`;
    this.emit({ type: 'receipt-refused', roundId, reason });
    return reason;
  }

  /** The device's data changed (new events, retention): rebuild its examples at the next round. */
  refreshExamples(): void {
    this.examplesFor = null;
  }

  /** True while a round's training or upload is in progress. */
  get busy(): boolean {
    return this.busyRound !== null;
  }

  start(): this {
    this.stopped = false;
    this.socket.connect();
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.socket.disconnect();
    this.models.dispose();
  }

  private emit(event: ClientEvent): void {
    this.options.onEvent?.(event);
  }

  private nonce(): string {
    return randomId(this.randomBytes);
  }

  /** Simulated vanishing: disconnect now, come back later if asked to. */
  private drop(stage: DropStage, roundId: number): boolean {
    if (this.dropAt !== stage) return false;
    this.dropAt = undefined;
    this.emit({ type: 'dropped', stage, roundId });
    this.socket.disconnect();
    const rejoin = this.rejoinAfterMs ?? this.options.faults?.rejoinAfterMs;
    if (rejoin !== undefined) setTimeout(() => !this.stopped && this.socket.connect(), rejoin);
    return true;
  }

  /** Simulation and tests only: vanish once at `stage` of a later round, reconnecting after `rejoinAfterMs` if given. */
  dropOnceAt(stage: DropStage | undefined, rejoinAfterMs?: number): void {
    this.dropAt = stage;
    this.rejoinAfterMs = rejoinAfterMs;
  }

  private refused(roundId: number, ack: Ack): boolean {
    if (ack.ok) return false;
    this.stats.refusals++;
    this.emit({ type: 'update-refused', roundId, error: ack.error });
    return true;
  }

  /**
   * The device may have become eligible (the page went idle or hidden, the battery recovered): if
   * a round's check-in opened while it was not, and is still open, check in now.
   */
  eligibilityChanged(): void {
    const deferred = this.deferredOpen;
    if (!deferred || this.busyRound !== null || !this.socket.connected) return;
    const left = deferred.closesAt - this.clock();
    if (left <= 0) {
      this.deferredOpen = null;
      return;
    }
    void this.onRoundOpen({ roundId: deferred.message.roundId, checkinMs: left });
  }

  private async onRoundOpen(message: RoundOpen): Promise<void> {
    if (this.busyRound !== null) {
      this.pendingOpen = { message, closesAt: this.clock() + message.checkinMs };
      return;
    }
    const declined = this.options.declineReason?.() ?? this.budgetSpent();
    if (declined !== null) {
      this.deferredOpen = null;
      // No answer before check-in closed (disconnect or timeout) changes nothing: it declines the next round too.
      await this.decline(message.roundId, `declined at check-in: ${declined}`, declined, message.checkinMs).catch(() => undefined);
      return;
    }
    if (this.options.eligible && !this.options.eligible()) {
      // Not now (busy page, battery...): check in later in the window if the device becomes eligible.
      this.deferredOpen = { message, closesAt: this.clock() + message.checkinMs };
      return;
    }
    this.deferredOpen = null;
    try {
      if (message.task === 'analytics' && !this.options.analyticsEvents) {
        await this.decline(message.roundId, 'this device has no data source for analytics queries', 'QUERY_NOT_SUPPORTED', message.checkinMs);
        return;
      }
      // An analytics query or an evaluation counts every selected device, one without examples as zeros.
      if (message.task !== 'analytics' && message.task !== 'evaluate' && !(await this.hasExamples())) {
        // Say so, so check-in can close without waiting for this device; it is never selected.
        await this.decline(message.roundId, 'no training examples on this device', 'NO_EXAMPLES', message.checkinMs);
        return;
      }
      // The size of the ledger this device last witnessed: its next receipt must prove the ledger only grew since.
      const witnessedSize = this.receipts().at(-1)?.head.treeSize;
      const checkin = { roundId: message.roundId, nonce: this.nonce(), signingKey: toBase64(this.signingKeys.publicKey), ...(witnessedSize !== undefined ? { ledgerTreeSize: witnessedSize } : {}) };
      const ack = await this.socket.timeout(Math.max(1000, message.checkinMs)).emitWithAck(EVENTS.checkin, checkin);
      if (this.refused(message.roundId, ack)) return;
      this.stats.checkins++;
      this.emit({ type: 'checked-in', roundId: message.roundId });
      this.drop('checkin', message.roundId);
    } catch {
      // No answer before check-in closed (disconnect or timeout): wait for the next round.
    }
  }

  /**
   * PRIVACY_NOT_ACCEPTED once this device's own ledger is at its cap (or unbounded): every round
   * would be refused, so it declines at check-in rather than be selected and leave.
   */
  private budgetSpent(): DeclineReason | null {
    const ledger = this.options.privacyLedger;
    if (!ledger) return null;
    const spent = ledger.spent;
    return spent === null || spent >= ledger.cap.epsilon ? 'PRIVACY_NOT_ACCEPTED' : null;
  }

  /** False only when the cached model's features leave this device without a single example (no model yet: it cannot tell). */
  private async hasExamples(): Promise<boolean> {
    const model = this.models.current;
    if (!model) return true;
    return (await this.examplesForConfig(model.config)).length > 0;
  }

  /**
   * Tells the coordinator this device declines the round (check-in) or leaves it (once selected),
   * with the reason as a code only: `reason` (the text) stays on the device, in its own event.
   */
  private async decline(roundId: number, reason: string, code: DeclineReason, timeoutMs: number): Promise<void> {
    this.emit({ type: 'declined', roundId, reason });
    await this.socket.timeout(Math.max(1000, timeoutMs)).emitWithAck(EVENTS.checkin, { roundId, nonce: this.nonce(), decline: true, reason: code });
  }

  /**
   * Training ended after the round's deadline: nothing of it is sent, and the device says it left
   * (DEADLINE_MISSED), so a stage waiting for its answer can close now instead of at its deadline.
   */
  private async missedDeadline(roundId: number): Promise<void> {
    this.emit({ type: 'deadline-missed', roundId });
    await this.decline(roundId, 'training finished after the deadline: leaving the round', 'DEADLINE_MISSED', 0).catch(() => undefined);
  }

  private async examplesForConfig(config: ModelConfig): Promise<readonly Example[]> {
    const key = JSON.stringify(config);
    if (this.examplesFor?.key !== key) this.examplesFor = { key, examples: await this.options.examples(config) };
    return this.examplesFor.examples;
  }

  /**
   * The round's privacy, checked against this device's policy: null for a plain (`none`) round
   * it accepts, the rebuilt config and rotation signs for a DP round, `{ refused }` with the reason.
   */
  private acceptPrivacy(round: RoundConfigMessage): { config: PrivacyConfig; signs: Int8Array } | null | { refused: string } {
    const accepted = this.options.acceptPrivacyModes ?? PRIVACY_MODES;
    const refuse = (message: string): { refused: string } => {
      this.emit({ type: 'privacy-refused', roundId: round.roundId, error: { code: 'PRIVACY_NOT_ACCEPTED', message } });
      return { refused: message };
    };
    try {
      if (round.privacy === null || round.privacy === undefined) return accepted.includes('none') ? null : refuse('round without differential privacy (mode none) is not accepted by this device');
      const params = parseMessage(RoundPrivacyParamsSchema, 'round:config.privacy', round.privacy);
      if (!accepted.includes(params.mode)) return refuse(`privacy mode ${params.mode} is not accepted by this device`);
      // This device would add only 1/t of the noise: without masking, its update would be exposed.
      if (params.mode === 'distributed' && !round.secagg) return refuse('distributed DP without secure aggregation is not accepted: this device adds only 1/t of the noise, so its update must be masked');
      const config = privacyConfigFromParams(params);
      return { config, signs: unpackSigns('signs', params.signs, config.paddedDimension) };
    } catch (err) {
      return refuse(`invalid privacy parameters: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async onRoundConfig(round: RoundConfigMessage): Promise<void> {
    if (this.busyRound !== null) return;
    this.busyRound = round.roundId;
    const deadline = this.clock() + round.trainingMs;
    try {
      this.stats.selected++;
      this.emit({ type: 'selected', roundId: round.roundId, modelVersion: round.modelVersion });
      if (this.drop('config', round.roundId)) return;
      const privacy = this.acceptPrivacy(round);
      // A refusal leaves the cohort at once, so the round does not wait for this device's deadline.
      if (privacy && 'refused' in privacy) return await this.decline(round.roundId, privacy.refused, 'PRIVACY_NOT_ACCEPTED', deadline - this.clock());
      // An analytics query is checked before anything is recorded: one this device cannot answer leaves the cohort.
      const query = round.query === undefined ? null : parseMessage(AnalyticsQuerySchema, 'round:config.query', round.query);
      const source = this.options.analyticsEvents;
      if (query && query.statistic !== 'evaluate' && !source) return await this.decline(round.roundId, 'this device has no data source for analytics queries', 'QUERY_NOT_SUPPORTED', deadline - this.clock());
      const ledger = this.options.privacyLedger;
      if (ledger) {
        // The device's own budget; the round is recorded before anything of it leaves the device.
        const over = ledger.refusal(privacy ? privacy.config : null);
        if (over) {
          this.emit({ type: 'privacy-refused', roundId: round.roundId, error: { code: 'PRIVACY_NOT_ACCEPTED', message: over } });
          return await this.decline(round.roundId, over, 'PRIVACY_NOT_ACCEPTED', deadline - this.clock());
        }
        await ledger.record(round.roundId, privacy ? privacy.config : null);
      }
      if (query) {
        // The query's contribution, from this device's own data, takes the place of a model update and leaves the same way.
        const started = this.clock();
        const contribution = query.statistic === 'evaluate' ? await this.scoreVersions(query) : query.statistic === 'segments' ? await this.placeInSegment(query, await (source as NonNullable<typeof source>)()) : deviceContribution(query, await (source as NonNullable<typeof source>)());
        this.emit({ type: 'trained', roundId: round.roundId, examples: 1, ms: this.clock() - started });
        return await this.send(round, privacy, contribution, 1, deadline);
      }
      const fetchStarted = this.clock();
      const { model, fetched } = await this.models.ensure(round.modelVersion, round.modelUrl, round.parameters);
      if (fetched) this.emit({ type: 'model-fetched', version: model.version, bytes: model.bytes, ms: this.clock() - fetchStarted });
      const examples = await this.examplesForConfig(model.config);
      if (examples.length === 0) {
        await this.decline(round.roundId, 'no training examples on this device: leaving the round', 'NO_EXAMPLES', deadline - this.clock());
        return;
      }
      const trainStarted = this.clock();
      const update = await computeLocalUpdate(model.model, model.config, model.weights, examples, { ...round.train, shuffleSeed: round.roundId });
      this.emit({ type: 'trained', roundId: round.roundId, examples: update.examples, ms: this.clock() - trainStarted });
      if (this.drop('training', round.roundId)) return;
      const delta = this.options.privatiseUpdate ? await this.options.privatiseUpdate(update.delta, { round, examples: update.examples }) : update.delta;
      await this.send(round, privacy, delta, update.examples, deadline);
    } catch (err) {
      this.emit({ type: 'failed', roundId: round.roundId, message: err instanceof Error ? err.message : String(err) });
    } finally {
      this.busyRound = null;
      const pending = this.pendingOpen;
      this.pendingOpen = null;
      const left = pending ? pending.closesAt - this.clock() : 0;
      if (pending && left > 0 && pending.message.roundId > round.roundId && this.socket.connected) void this.onRoundOpen({ roundId: pending.message.roundId, checkinMs: left });
    }
  }

  /**
   * A federated evaluation: each version of the query scored on this device's own examples (built
   * with that version's vocabulary and windows), as the sufficient statistics of the metrics
   * (shared/analytics/federated-evaluation.ts). A device with no example to score contributes
   * zeros: leaving a SecAgg+ round once selected costs the others share holders.
   */
  private async scoreVersions(query: EvaluateQuery): Promise<Float32Array> {
    const scored = [];
    for (const block of evaluateBlocks(query)) {
      const { model } = await this.models.ensure(block.version, `/models/${block.version}/model.json`, block.parameters);
      const examples = await this.examplesForConfig(model.config);
      scored.push({ config: model.config, rows: predictExamples(model.model, model.config, examples), examples });
    }
    return evaluateContribution(query, scored);
  }

  /**
   * A segment report: this device's portrait with the query's (serving) model version, as a
   * one-hot over the query's cells (shared/analytics/segments.ts); zeros without events. The
   * portrait itself never leaves the device, only the masked, noised vector.
   */
  private async placeInSegment(query: SegmentsQuery, events: readonly BehaviourEvent[]): Promise<Float32Array> {
    const categories = segmentCategories(query);
    if (events.length === 0) return segmentContribution(query.by, categories, null);
    const { model } = await this.models.ensure(query.version as number, `/models/${query.version}/model.json`, query.parameters as number);
    const portrait = computePortrait(model.model, model.config, events, { historyStartDay: events.reduce((first, e) => Math.min(first, e.day), Number.POSITIVE_INFINITY) });
    return segmentContribution(query.by, categories, portrait);
  }

  /** Sends a round's vector (a model delta or a query's contribution): privatised, masked in a SecAgg+ round, else in one update message. */
  private async send(round: RoundConfigMessage, privacy: { config: PrivacyConfig; signs: Int8Array } | null, delta: Float32Array, examples: number, deadline: number): Promise<void> {
    if (round.secagg) {
      if (!privacy) throw new Error('a SecAgg+ round without DP parameters: nothing to mask');
      const residues = privatiseUpdate(delta, privacy.config, privacy.signs, this.privacyRandom);
      this.options.inspectResidues?.(round.roundId, residues.slice());
      if (this.clock() >= deadline) return await this.missedDeadline(round.roundId);
      await this.startSecAgg(round, residues, witnessedSpend(privacy.config));
      return;
    }
    // DP rounds weight clients uniformly, so the example count (private) is not sent: 1 stands in.
    const body = privacy ? encodeResidues(privatiseUpdate(delta, privacy.config, privacy.signs, this.privacyRandom)) : encodeWeights(delta);
    if (this.clock() >= deadline) return await this.missedDeadline(round.roundId);
    const payload = { roundId: round.roundId, nonce: this.nonce(), examples: privacy ? 1 : examples, delta: body };
    if (this.dropAt === 'upload') {
      this.socket.emit(EVENTS.update, payload, () => undefined);
      this.drop('upload', round.roundId);
      return;
    }
    const sendStarted = this.clock();
    this.stats.updatesSent++;
    // A privatised update's round is entered in the ledger after it left: its receipt may follow.
    if (privacy) this.witnessed = { roundId: round.roundId, spend: witnessedSpend(privacy.config) };
    const ack = await this.socket.timeout(Math.max(1000, deadline - this.clock())).emitWithAck(EVENTS.update, payload);
    if (this.refused(round.roundId, ack)) return;
    this.stats.updatesAccepted++;
    this.emit({ type: 'update-sent', roundId: round.roundId, bytes: payload.delta.byteLength, ms: this.clock() - sendStarted });
  }

  /** Hands the residues to a SecAgg+ participant and advertises its keys; later stages run on `secagg` events. */
  private async startSecAgg(round: RoundConfigMessage, residues: Uint32Array, witnessed: WitnessedSpend): Promise<void> {
    const wire = parseMessage(SecAggWireConfigSchema, 'round:config.secagg', round.secagg);
    const roundId = round.roundId;
    this.witnessed = { roundId, spend: witnessed };
    const session = new SecAggParticipant({
      roundId,
      wire,
      input: residues,
      signingSecretKey: this.signingKeys.secretKey,
      random: this.privacyRandom,
      send: async (message) => {
        const ack = await this.socket.timeout(Math.max(1000, wire.stageMs)).emitWithAck(EVENTS.secagg, { roundId, message });
        return ack;
      },
      beforeSend: (stage) => {
        if (this.drop(stage, roundId)) return true;
        return false;
      },
      onRefused: (_stage, error) => {
        this.stats.refusals++;
        this.emit({ type: 'update-refused', roundId, error });
      },
      beforeUnmask: () => this.receiptFor(roundId),
      onFinished: (outcome) => {
        const bytesSent = Object.values(session.bytesSent).reduce((a, b) => a + b, 0);
        if (outcome.status === 'done') this.stats.updatesAccepted++;
        this.emit({ type: 'secagg-finished', roundId, ...outcome, bytesSent, computeMs: session.computeMs });
        if (this.secagg === session) this.secagg = null;
      },
    });
    residues.fill(0);
    this.secagg = session;
    this.stats.updatesSent++;
    await session.start();
  }
}

/** The noise a round's release entry must account for, as this device was told it (shared/ledger/receipt.ts). */
function witnessedSpend(config: PrivacyConfig): WitnessedSpend {
  return {
    mode: config.mode,
    noiseMultiplier: config.noiseMultiplier,
    t: config.minSurvivors,
    delta: config.delta,
    ...accountedNoise(config),
  };
}

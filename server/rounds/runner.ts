/**
 * The round runner: the I/O around the pure round state machine of shared/protocol/round.ts. It
 * takes pending rounds from the RoundStore one at a time, announces check-in, selects the cohort,
 * sends configs, folds admitted updates into the FedAvg accumulator, runs the server optimiser,
 * commits the new model version, scores it on the held-out set, and records every step. Message
 * handlers are synchronous, so each message sees and replaces one consistent state.
 */
import type { Example } from '../../shared/features/examples.ts';
import type { HeadScores } from '../../shared/model/evaluate.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import { CheckinMessageSchema, DEFAULT_MAX_UPDATE_NORM, parseMessage, SecAggUploadSchema, UpdateMessageSchema } from '../../shared/protocol/messages.ts';
import type { DeclineReason } from '../../shared/protocol/messages.ts';
import type { ModelAnnouncement, RoundClosed, RoundConfigMessage, RoundOpen, RoundPrivacyRecord, RoundReceipt, RoundRecord } from '../../shared/protocol/messages.ts';
import { abortRound, acceptUpdate, checkIn, checkinComplete, checkRoundId, closeTraining, commitRound, declineRound, dropClient, markReported, openRound, selectCohort, trainingComplete } from '../../shared/protocol/round.ts';
import type { RoundState } from '../../shared/protocol/round.ts';
import { decodeResidues, decodeWeights } from '../../shared/protocol/weights.ts';
import { packSigns, privacyInput } from '../../shared/protocol/privacy.ts';
import type { PrivacyPolicy, RoundPrivacyParams } from '../../shared/protocol/privacy.ts';
import { buildPrivacyConfig, releasedNoiseStd } from '../../shared/privacy/config.ts';
import { decodeQuery, planQuery } from '../../shared/analytics/queries.ts';
import { decodeEvaluate } from '../../shared/analytics/federated-evaluation.ts';
import { storedModelConfig } from './launch-query.ts';
import type { AnalyticsQuery } from '../../shared/analytics/queries.ts';
import { roundDimension } from '../../shared/protocol/messages.ts';
import type { AnalyticsResult, RoundSpec } from '../../shared/protocol/messages.ts';
import type { PrivacyConfig } from '../../shared/privacy/config.ts';
import { addCentralNoise, decodeAggregate } from '../../shared/privacy/mechanism.ts';
import { addModular } from '../../shared/privacy/modular.ts';
import type { RandomSource } from '../../shared/privacy/random.ts';
import { randomSigns } from '../../shared/privacy/rotation.ts';
import { UpdateAccumulator } from '../aggregation/accumulator.ts';
import { plainRoundStep, privateRoundStep } from '../aggregation/bounds.ts';
import type { BoundedStep } from '../aggregation/bounds.ts';
import { configuredPrivacyRecord, pendingPrivacyRecord, PrivacyHistory } from './accounting.ts';
import type { ModelRegistry } from '../registry.ts';
import { asStorageError, isStorageFailure } from '../storage/failures.ts';
import type { StorageFailure } from '../storage/failures.ts';
import type { Fence, RoundStore } from '../storage/stores.ts';
import { fromBase64 } from '../../shared/secagg/bytes.ts';
import type { ServerMessage as SecAggServerMessage } from '../../shared/secagg/messages.ts';
import { checkSumHeadroom, roundParameters } from '../../shared/secagg/round-config.ts';
import { SecAggRound } from './secagg-session.ts';
import type { StageClose } from './secagg-session.ts';
import { Wakeup } from './wakeup.ts';
import type { Timers } from './wakeup.ts';
import type { RoundLedger } from '../ledger/round-hook.ts';
import type { LedgerReceipt } from '../../shared/ledger/receipt.ts';

/** What the runner needs from the transport (Socket.IO in the coordinator). */
export interface RoundTransport {
  /** Authenticated clients connected now (check-in closes early once all have checked in). */
  connectedClients(): number;
  broadcastRoundOpen(message: RoundOpen): void;
  sendConfig(clientId: string, message: RoundConfigMessage): void;
  sendNotSelected(clientId: string, roundId: number): void;
  /** One SecAgg+ server message (round keys, forwarded shares, unmask request, abort) to one client. */
  sendSecAgg(clientId: string, message: SecAggServerMessage): void;
  /** The ledger receipt of the round's release to one survivor, before its unmask request (and on the same ordered channel). */
  sendReceipt(clientId: string, message: RoundReceipt): void;
  broadcastRoundClosed(message: RoundClosed): void;
  announceModel(message: ModelAnnouncement): void;
}

export interface RunnerOptions {
  rounds: RoundStore;
  registry: ModelRegistry;
  transport: RoundTransport;
  /** The dataset of shoppers' events this coordinator holds (simulation only), marked on every round it runs. */
  simulationDataset?: string;
  /** Held-out examples for a model config (built with its vocabulary), scored after each commit. */
  evaluation?: (config: ModelConfig) => readonly Example[];
  /** Wall clock in ms. */
  clock: () => number;
  /** Timers the deadlines are waited for with (the host's by default; a virtual clock's in tests). */
  timers?: Timers;
  /** Selection randomness in [0, 1), crypto-backed in production. */
  uniform: () => number;
  /** Which privacy modes launches may use (central and none are opt-in). */
  privacyPolicy: PrivacyPolicy;
  /** CSPRNG for rotation signs and central noise (crypto.getRandomValues in production). */
  privacyRandom: RandomSource;
  /** The signed privacy ledger (server/ledger): entered before any sum is decoded, and on abort. */
  ledger?: RoundLedger;
  log: (line: string) => void;
  /**
   * A cluster leader's fence (server/cluster/lease.ts): the version a round commits is stored only
   * while this node still holds the lease (its round writes carry it through the RoundStore given).
   */
  fence?: () => Fence;
  /** Backoff of store writes that fail for want of storage (disk full, I/O error): first wait, doubling up to the longest; default 500 ms to 30 s. */
  storageRetry?: { firstMs: number; maxMs: number };
}

/**
 * An analytics round without DP (a baseline, `--allow-no-dp` only): the coordinator sees each
 * contribution in plaintext, so it checks each against the query's bound and sums them.
 */
interface PlainAnalytics {
  sum: Float64Array;
  bound: number;
  count: number;
}

/** The DP state of a round in flight: its config, public rotation signs and the modular sum. */
interface DpRound {
  config: PrivacyConfig;
  signs: Int8Array;
  sum: Uint32Array;
  count: number;
}

function decodeSigningKey(text: string): Uint8Array {
  try {
    return fromBase64('signingKey', text);
  } catch (err) {
    throw new ProtocolError('MALFORMED_MESSAGE', err instanceof Error ? err.message : String(err));
  }
}

export function modelUrl(version: number): string {
  return `/models/${version}/model.json`;
}

/** NaN metrics (e.g. AUC with one class present) become null so records stay valid JSON. */
function jsonMetrics(scores: HeadScores): Record<string, Record<string, number | null>> {
  const out: Record<string, Record<string, number | null>> = {};
  for (const [head, metrics] of Object.entries(scores)) {
    out[head] = Object.fromEntries(Object.entries(metrics ?? {}).map(([k, v]) => [k, Number.isFinite(v) ? v : null]));
  }
  return out;
}

const DECLINE_MEANING: Record<DeclineReason | 'UNSPECIFIED', string> = {
  PRIVACY_NOT_ACCEPTED: "the device's privacy policy or its own privacy budget",
  NO_EXAMPLES: 'no training examples on the device',
  DEADLINE_MISSED: 'the device finished training after the stage deadline',
  QUERY_NOT_SUPPORTED: 'the device cannot compute the analytics query (no data source for it)',
  UNSPECIFIED: 'no reason given',
};

/** e.g. "declined by 40 device(s): 40 PRIVACY_NOT_ACCEPTED (the device's privacy policy or its own privacy budget)". */
function describeDeclines(declined: Record<string, number>): string {
  const total = Object.values(declined).reduce((a, b) => a + b, 0);
  const parts = Object.entries(declined).map(([code, n]) => `${n} ${code} (${DECLINE_MEANING[code as DeclineReason] ?? code})`);
  return `declined by ${total} device(s): ${parts.join(', ')}`;
}

/** The task a round's check-in announces (absent for training, as before analytics rounds existed). */
function openTask(spec: Pick<RoundSpec, 'task' | 'query'>): Pick<RoundOpen, 'task'> {
  if (spec.task !== 'analytics' || !spec.query) return {};
  return { task: spec.query.statistic === 'evaluate' ? 'evaluate' : 'analytics' };
}

export class RoundRunner {
  private state: RoundState | null = null;
  private accumulator: UpdateAccumulator | null = null;
  private dp: DpRound | null = null;
  private plainAnalytics: PlainAnalytics | null = null;
  /** The SecAgg+ session of the round in flight, when it runs with secure aggregation. */
  private secagg: SecAggRound | null = null;
  /** Ed25519 verify keys pinned to enrollment pseudonyms at their first check-in (for SecAgg+ advertisements). */
  private readonly signingKeys = new Map<string, Uint8Array>();
  /** The released spend so far, for the cumulative epsilon of each release: read from the store at the first release, then kept up as rounds release and finish. */
  private history: PrivacyHistory | null = null;
  /** Devices that declined the round in flight (or left it once selected), with the code they gave. */
  private declines = new Map<string, DeclineReason | 'UNSPECIFIED'>();
  /** The ledger tree size under each checked-in device's last kept receipt (its check-in says), for its next receipt's consistency proof. */
  private ledgerSizes = new Map<string, number>();
  private lastRoundId = 0;
  /** Test hook: sees the unmasked SecAgg+ sum (the released aggregate, never an individual input). */
  onSecAggSum: ((roundId: number, sum: Uint32Array) => void) | null = null;
  private stopped = false;
  private readonly wakeup: Wakeup;
  /** Ends a storage backoff early only on stop (not on every device message: that would spin while the disk is full). */
  private readonly backoff: Wakeup;
  private failure: (Omit<StorageFailure, 'retryInMs'> & { retryAt: number }) | null = null;
  private loop: Promise<void> | null = null;

  constructor(private readonly options: RunnerOptions) {
    this.wakeup = new Wakeup(options.timers);
    this.backoff = new Wakeup(options.timers);
  }

  /** The store write being retried for want of storage, or null when none (readiness, server/http.ts /readyz). */
  get storageFailure(): StorageFailure | null {
    const f = this.failure;
    if (!f) return null;
    const { retryAt, ...rest } = f;
    return { ...rest, retryInMs: Math.max(0, retryAt - this.options.clock()) };
  }

  /** True while the loop is idle: waiting for a message, a launch or a deadline (not for a store or a worker). */
  get idle(): boolean {
    return this.wakeup.waiting;
  }

  /** Starts the loop; `lastIssuedRoundId` tells stale ids from unknown ones after a restart. */
  start(lastIssuedRoundId: number): void {
    this.lastRoundId = lastIssuedRoundId;
    this.loop ??= this.run();
  }

  /** A launch added pending rounds. */
  notifyLaunched(): void {
    this.wakeup.notify();
  }

  /** The stage of the round in flight, for new connections and status. */
  get current(): RoundState | null {
    return this.state;
  }

  roundOpenFor(now: number): RoundOpen | null {
    const s = this.state;
    return s && s.stage === 'checkin' ? { roundId: s.roundId, checkinMs: Math.max(0, s.stageEndsAt - now), ...openTask(s.spec) } : null;
  }

  /** The latest version (what rounds train) and, once one was promoted, the serving version and any candidate in rollout. */
  announcement(): ModelAnnouncement {
    const { record } = this.options.registry.current;
    const p = this.options.registry.serving;
    const ref = (version: number, parameters: number) => ({ version, modelUrl: modelUrl(version), parameters });
    return {
      ...ref(record.version, record.parameters),
      ...(p ? { serving: ref(p.version, p.parameters) } : {}),
      ...(p?.candidate ? { candidate: { ...ref(p.candidate.version, p.candidate.parameters), fraction: p.candidate.fraction } } : {}),
    };
  }

  private noRound(roundId: number): never {
    if (roundId <= this.lastRoundId) throw new ProtocolError('STALE_ROUND', `round ${roundId} is not running`);
    throw new ProtocolError('UNKNOWN_ROUND', `round ${roundId} does not exist`);
  }

  handleCheckin(clientId: string, raw: unknown): void {
    const message = parseMessage(CheckinMessageSchema, 'checkin', raw);
    if (!this.state) this.noRound(message.roundId);
    if (message.decline) {
      this.state = declineRound(this.state, clientId, message.roundId, message.nonce, this.options.clock());
      this.declines.set(clientId, message.reason ?? 'UNSPECIFIED');
      if (this.state.stage === 'training') this.secagg?.disconnect(clientId);
      this.wakeup.notify();
      return;
    }
    const pinned = this.signingKeys.get(clientId);
    const offered = message.signingKey === undefined ? undefined : decodeSigningKey(message.signingKey);
    if (pinned && offered && !offered.every((b, i) => b === pinned[i])) {
      throw new ProtocolError('UNAUTHENTICATED', '"signingKey" differs from the key pinned to this enrollment');
    }
    if (!offered && !pinned && this.state.spec.secagg) {
      throw new ProtocolError('INVALID_ARGUMENT', `"signingKey" is required: round ${this.state.roundId} uses secure aggregation`);
    }
    this.state = checkIn(this.state, clientId, message.roundId, message.nonce, this.options.clock());
    if (message.ledgerTreeSize !== undefined) this.ledgerSizes.set(clientId, message.ledgerTreeSize);
    if (offered && !pinned) this.signingKeys.set(clientId, offered);
    this.wakeup.notify();
  }

  /** One SecAgg+ upload; refusals (replayed, late, duplicated, mis-addressed...) throw with the core's code and change nothing. */
  handleSecAgg(clientId: string, raw: unknown): void {
    const upload = parseMessage(SecAggUploadSchema, 'secagg', raw);
    if (!this.state) this.noRound(upload.roundId);
    checkRoundId(this.state, upload.roundId);
    const secagg = this.secagg;
    if (!secagg) throw new ProtocolError('WRONG_STAGE', `round ${this.state.roundId} is not running a SecAgg+ session now`);
    // The unmask stage runs after the release entry, while the round is aggregating.
    const unmasking = this.state.stage === 'aggregating' && secagg.stage === 'unmask';
    if (this.state.stage !== 'training' && !unmasking) throw new ProtocolError('LATE_MESSAGE', `round ${this.state.roundId} is in stage "${this.state.stage}": the SecAgg+ stages are over`);
    if (this.options.clock() >= secagg.stageEndsAt) throw new ProtocolError('LATE_MESSAGE', `the deadline of SecAgg+ stage "${secagg.stage}" has passed`);
    const stage = secagg.stage;
    secagg.receive(clientId, upload.message);
    if (stage === 'masked-input') this.state = markReported(this.state, clientId);
    this.wakeup.notify();
  }

  handleUpdate(clientId: string, raw: unknown): void {
    const message = parseMessage(UpdateMessageSchema, 'update', raw);
    if (!this.state || !(this.accumulator || this.dp || this.plainAnalytics)) {
      if (this.state) this.noRoundStage(this.state);
      this.noRound(message.roundId);
    }
    if (this.secagg) throw new ProtocolError('WRONG_STAGE', `round ${this.state.roundId} uses secure aggregation: send the update as SecAgg+ messages`);
    const next = acceptUpdate(this.state, clientId, message.roundId, message.nonce, this.options.clock());
    if (this.dp) {
      // A privatised update: residues mod 2^32 of the padded length; only their sum is ever decoded.
      const residues = decodeResidues('delta', message.delta, this.dp.config.paddedDimension);
      addModular(this.dp.sum, residues);
      this.dp.count++;
    } else if (this.plainAnalytics) {
      const plain = this.plainAnalytics;
      const contribution = decodeWeights('delta', message.delta, plain.sum.length);
      let squares = 0;
      for (const v of contribution) squares += v * v;
      // Refused, not clipped: a device's own code never sends more than its query's bound.
      if (Math.sqrt(squares) > plain.bound * (1 + 1e-6)) throw new ProtocolError('CONTRIBUTION_OUT_OF_BOUNDS', `the contribution's L2 norm ${Math.sqrt(squares).toPrecision(4)} exceeds the query's bound ${plain.bound.toPrecision(4)}`);
      for (let i = 0; i < contribution.length; i++) plain.sum[i] = (plain.sum[i] as number) + (contribution[i] as number);
      plain.count++;
    } else if (this.accumulator) {
      const delta = decodeWeights('delta', message.delta, this.options.registry.parameters);
      this.accumulator.add(delta, message.examples);
    }
    this.state = next;
    this.wakeup.notify();
  }

  private noRoundStage(state: RoundState): never {
    throw new ProtocolError('WRONG_STAGE', `round ${state.roundId} is in stage "${state.stage}", not accepting updates`);
  }

  handleDisconnect(clientId: string): void {
    if (!this.state) return;
    this.secagg?.disconnect(clientId);
    this.state = dropClient(this.state, clientId);
    this.wakeup.notify();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const next = await this.options.rounds.nextPending();
        failures = 0;
        if (!next) {
          await this.wakeup.wait(60_000);
          continue;
        }
        await this.runRound(next);
      } catch (err) {
        // A store failure (disk full, I/O error) must not kill the coordinator, nor spin: log, back off (doubling), retry.
        const delay = this.retryDelay(failures++);
        this.options.log(`round loop: ${err instanceof Error ? err.name : 'error'}: ${err instanceof Error ? err.message : String(err)}; retrying in ${delay} ms`);
        await this.backoff.wait(delay);
      }
    }
  }

  private retryDelay(attempt: number): number {
    const { firstMs, maxMs } = this.options.storageRetry ?? { firstMs: 500, maxMs: 30_000 };
    return Math.min(maxMs, firstMs * 2 ** Math.min(attempt, 30));
  }

  /**
   * Runs a store or ledger write until it goes through. A write the storage cannot take (disk
   * full, I/O error: storage/failures.ts) is tried again after a backoff that doubles up to
   * storageRetry.maxMs, with one log line a try, and readiness reports it meanwhile; any other
   * error, or a stop, ends the tries with that error (a restart then finishes the round).
   */
  private async durably<T>(what: string, write: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await write();
        if (attempt > 0) {
          this.failure = null;
          this.options.log(`${what}: written after ${attempt} ${attempt === 1 ? 'retry' : 'retries'}`);
        }
        return result;
      } catch (err) {
        if (this.stopped || !isStorageFailure(err)) {
          this.failure = null;
          throw err;
        }
        const delay = this.retryDelay(attempt);
        const reason = (asStorageError(err) as Error).message;
        this.failure = { what, reason, since: this.failure?.since ?? this.iso(), attempts: attempt + 1, retryAt: this.options.clock() + delay };
        this.options.log(`${what} failed: ${reason}; retry ${attempt + 1} in ${delay} ms`);
        await this.backoff.wait(delay);
      }
    }
  }

  /**
   * Waits until `done` or the deadline, whichever comes first. The deadline ends the wait on its
   * own: a SecAgg+ stage whose `done` counts only answers and disconnects once waited forever for
   * a cohort member that stayed connected but silent (a device that missed its training deadline).
   */
  private async waitUntil(done: () => boolean, deadline: () => number): Promise<void> {
    const { clock } = this.options;
    while (!this.stopped && !done() && clock() < deadline()) await this.wakeup.wait(deadline() - clock() + 1);
  }

  private iso(): string {
    return new Date(this.options.clock()).toISOString();
  }

  private async runRound(record: RoundRecord): Promise<void> {
    const { rounds, registry, transport, clock, log } = this.options;
    const started = clock();
    const timings: Record<string, number> = {};
    const base = registry.current.record.version;
    this.lastRoundId = Math.max(this.lastRoundId, record.id);
    let state = openRound(record.id, base, record.config, started);
    this.state = state;
    this.declines = new Map();
    this.ledgerSizes = new Map();
    try {
      const analytics: AnalyticsQuery | null = record.config.task === 'analytics' && record.config.query ? record.config.query : null;
      const dimension = roundDimension(record.config, registry.parameters);
      await this.options.ledger?.beforeStart(record, dimension);
      const simulation = this.options.simulationDataset;
      await rounds.update(record.id, { status: 'running', stage: 'checkin', startedAt: this.iso(), baseModelVersion: base, ...(simulation ? { simulation: { dataset: simulation } } : {}) });
      log(`round ${record.id}: check-in open for ${record.config.deadlines.checkinMs} ms (model v${base})`);
      transport.broadcastRoundOpen({ roundId: record.id, checkinMs: record.config.deadlines.checkinMs, ...openTask(record.config) });
      await this.waitUntil(() => checkinComplete(this.current as RoundState, clock(), transport.connectedClients()), () => (this.current as RoundState).stageEndsAt);
      if (this.stopped) throw new ProtocolError('UNAVAILABLE', 'coordinator shut down');
      timings.checkinMs = clock() - started;

      state = selectCohort(this.state, this.options.uniform, clock(), transport.connectedClients());
      this.state = state;
      await rounds.update(record.id, { stage: state.stage, checkedIn: state.checkedIn.size, selected: state.cohort.size, selection: state.selection });
      if (state.stage === 'aborted') return await this.finish(record.id, state, started, timings);

      const { current } = registry;
      const privacySpec = record.config.privacy;
      let privacyParams: RoundPrivacyParams | null = null;
      let privacyRecord = pendingPrivacyRecord(privacySpec, Boolean(record.config.secagg));
      if (privacySpec && privacySpec.mode !== 'none') {
        const dpConfig = buildPrivacyConfig(privacyInput(privacySpec, dimension, state.selection, state.cohort.size, this.options.privacyPolicy));
        const signs = randomSigns(dpConfig.paddedDimension, this.options.privacyRandom);
        this.dp = { config: dpConfig, signs, sum: new Uint32Array(dpConfig.paddedDimension), count: 0 };
        privacyRecord = configuredPrivacyRecord(privacySpec, dpConfig, state.selection?.method ?? null, Boolean(record.config.secagg));
        privacyParams = {
          mode: privacySpec.mode,
          clip: dpConfig.clip,
          noiseMultiplier: dpConfig.noiseMultiplier,
          t: dpConfig.minSurvivors,
          delta: dpConfig.delta,
          population: dpConfig.population,
          dimension: dpConfig.dimension,
          granularity: dpConfig.granularity,
          roundingBeta: dpConfig.roundingBeta,
          signs: packSigns(signs),
        };
      } else if (analytics) {
        privacyRecord = { ...privacyRecord, samplingMethod: state.selection?.method ?? null, dimension };
        this.plainAnalytics = { sum: new Float64Array(dimension), bound: planQuery(analytics).bound, count: 0 };
      } else {
        privacyRecord = { ...privacyRecord, samplingMethod: state.selection?.method ?? null, dimension: current.weights.length };
        this.accumulator = new UpdateAccumulator(current.weights.length, record.config.aggregation.exampleCap, record.config.aggregation.maxUpdateNorm ?? DEFAULT_MAX_UPDATE_NORM);
      }
      const secaggSpec = record.config.secagg;
      if (secaggSpec) {
        if (!this.dp) throw new ProtocolError('INVALID_ARGUMENT', '"secagg" on needs integer updates from a DP mode; this round has privacy mode none');
        // Parameters and the 32-bit headroom for the cohort actually selected (the launch checked clientsPerRound).
        const cohort = [...state.cohort].sort();
        const parameters = roundParameters(secaggSpec, cohort.length);
        const headroom = checkSumHeadroom(this.dp.config, cohort.length);
        this.secagg = new SecAggRound({
          roundId: record.id,
          cohort,
          parameters,
          headroom,
          vectorLength: this.dp.config.paddedDimension,
          prg: secaggSpec.prg,
          stageMs: secaggSpec.stageMs,
          verifyKey: (id) => this.signingKeys.get(id),
          random: this.options.privacyRandom,
        });
        this.secagg.stageEndsAt = state.stageEndsAt;
        privacyRecord = { ...privacyRecord, secagg: 'on' };
        log(`round ${record.id}: SecAgg+ n=${parameters.n} k=${parameters.k} t=${parameters.t} (${parameters.regime}), headroom ${headroom.headroomBits.toFixed(1)} bits`);
      }
      await rounds.update(record.id, { privacy: privacyRecord, ...(this.secagg ? { secagg: this.secagg.record() } : {}) });
      const config: RoundConfigMessage = {
        roundId: record.id,
        modelVersion: base,
        modelUrl: modelUrl(base),
        parameters: current.weights.length,
        train: record.config.train,
        trainingMs: record.config.deadlines.trainingMs,
        privacy: privacyParams,
        secagg: null,
        ...(analytics ? { query: analytics } : {}),
      };
      for (const id of state.checkedIn) if (!state.cohort.has(id)) transport.sendNotSelected(id, record.id);
      for (const id of state.cohort) transport.sendConfig(id, this.secagg ? { ...config, secagg: this.secagg.configFor(id) } : config);
      log(`round ${record.id}: ${state.cohort.size} of ${state.checkedIn.size} checked-in clients selected (${state.selection?.method}, rate ${state.selection?.rate.toFixed(3)})`);
      const trainingStarted = clock();
      const secagg = this.secagg;
      let unmaskRequests: StageClose | null = null;
      if (secagg) {
        // Training ends with advertise-keys; then share-keys and masked-input, each with its own
        // deadline. The unmask requests wait for the release entry (below).
        unmaskRequests = await this.runSecAggStages(secagg, timings);
        if (!unmaskRequests) {
          const abort = secagg.session.summary().abort;
          state = abortRound(this.state, `SecAgg+ aborted at stage "${abort?.stage ?? secagg.stage}" (${abort?.code ?? 'BELOW_THRESHOLD'}): ${abort?.reason ?? 'too few clients left'}`);
          this.state = state;
          return await this.finish(record.id, state, started, timings);
        }
      } else {
        await this.waitUntil(() => trainingComplete(this.current as RoundState, clock()), () => (this.current as RoundState).stageEndsAt);
      }
      if (this.stopped) throw new ProtocolError('UNAVAILABLE', 'coordinator shut down');
      timings.trainingMs = clock() - trainingStarted;

      state = closeTraining(this.state);
      this.state = state;
      await rounds.update(record.id, { stage: state.stage, participants: state.reported.size });
      if (state.stage === 'aborted') return await this.finish(record.id, state, started, timings);
      const dp = this.dp;
      if (secagg) dp!.count = state.reported.size;
      if (dp && dp.config.mode === 'distributed' && dp.count < dp.config.minSurvivors) {
        state = abortRound(state, `too few survivors: ${dp.count} updates, fewer than the ${dp.config.minSurvivors} (t) whose noise the accountant counts`);
        this.state = state;
        return await this.finish(record.id, state, started, timings);
      }

      if (analytics) return await this.releaseAnalytics(record, analytics, state, privacyRecord, unmaskRequests, started, timings);

      const aggregationStarted = clock();
      const optimizerState = await registry.store.optimizerState(base);
      // Without DP the coordinator holds the plaintext updates anyway: their mean and the step it
      // makes are checked (server/aggregation/bounds.ts) before the release entry, so a round that
      // fails its bounds releases nothing; a DP sum is checked once decoded, after its release.
      const plain = dp ? null : plainRoundStep(this.accumulator as UpdateAccumulator, record.config.aggregation, current.weights, optimizerState);
      // Write-ahead (docs/ledger.md): the signed entry is durable before any sum is decoded, and in a
      // SecAgg+ round before the unmask requests go out (no sum can be reconstructed without their
      // shares); a cap breach throws here. Its receipt goes to the survivors with their requests.
      const receipt = await this.options.ledger?.beforeRelease(record.id);
      let bounded: BoundedStep;
      if (dp) {
        const decoded = await this.releaseDpSum(record, dp, privacyRecord, unmaskRequests, receipt ?? null, timings);
        bounded = privateRoundStep(decoded, dp.config, dp.count, record.config.aggregation, current.weights, optimizerState);
      } else {
        bounded = plain as BoundedStep;
        if (bounded.clipped) log(`round ${record.id}: ${bounded.clipped} of ${state.reported.size} updates clipped to norm ${(this.accumulator as UpdateAccumulator).maxNorm}`);
      }
      const { step } = bounded;
      const aggregate = { examples: bounded.examples, weight: bounded.weight, updateNorm: step.updateNorm, ...(bounded.clipped ? { clipped: bounded.clipped } : {}) };
      const model = await registry.commit(step.weights, record.id, step.state, this.iso(), this.options.fence?.());
      // The version now exists: bind it to its digest after its release entry (a crash before this is entered at the next start).
      const ledger = this.options.ledger;
      if (ledger) await this.durably(`round ${record.id}: entering the publication of model version ${model.version}`, () => ledger.afterCommit(model));
      timings.aggregationMs = clock() - aggregationStarted;
      let heads: Record<string, Record<string, number | null>> | undefined;
      const evaluation = this.options.evaluation?.(registry.current.config);
      if (evaluation && evaluation.length > 0) {
        const evaluationStarted = clock();
        heads = jsonMetrics(registry.evaluate(evaluation));
        timings.evaluationMs = clock() - evaluationStarted;
      }
      state = commitRound(state);
      this.state = state;
      await this.finish(record.id, state, started, timings, { modelVersion: model.version, metrics: heads ? { heads, aggregate } : { aggregate } });
      transport.announceModel(this.announcement());
    } catch (thrown) {
      const err = asStorageError(thrown);
      const reason = err instanceof ProtocolError ? err.message : `internal error: ${err instanceof Error ? err.message : String(err)}`;
      log(`round ${record.id}: aborted: ${reason}`);
      if (this.secagg) this.deliver(this.secagg.abort(reason));
      const aborted = this.state && this.state.stage !== 'aborted' && this.state.stage !== 'committed' ? abortRound(this.state, reason) : this.state;
      if (aborted && aborted.stage === 'aborted') await this.finish(record.id, aborted, started, timings).catch((finishErr: unknown) => log(`round ${record.id}: recording the abort failed: ${finishErr instanceof Error ? finishErr.message : String(finishErr)}`));
    } finally {
      this.accumulator?.dispose();
      this.accumulator = null;
      this.dp = null;
      this.plainAnalytics = null;
      this.secagg = null;
      this.state = null;
    }
  }

  /**
   * The release of an analytics round, after the same write-ahead ledger entry as a training
   * round (no model version: the entry names the query instead): the sum is unmasked (SecAgg+),
   * noised (central) and decoded, then recorded with its noise scale and the query's numbers.
   * Nothing is committed to the model registry and no model is announced.
   */
  private async releaseAnalytics(record: RoundRecord, query: AnalyticsQuery, closed: RoundState, privacy: RoundPrivacyRecord, unmaskRequests: StageClose | null, started: number, timings: Record<string, number>): Promise<void> {
    const { clock } = this.options;
    const releaseStarted = clock();
    const receipt = await this.options.ledger?.beforeRelease(record.id);
    let sum: ArrayLike<number>;
    let noiseStd = 0;
    let survivors: number;
    const dp = this.dp;
    if (dp) {
      sum = await this.releaseDpSum(record, dp, privacy, unmaskRequests, receipt ?? null, timings);
      survivors = dp.count;
      noiseStd = releasedNoiseStd(dp.config, survivors);
    } else {
      const plain = this.plainAnalytics as PlainAnalytics;
      sum = plain.sum;
      survivors = plain.count;
    }
    const plan = planQuery(query);
    const summary = query.statistic === 'evaluate' ? decodeEvaluate(query, await this.versionConfigs(query.versions), sum, noiseStd) : decodeQuery(query, sum, noiseStd, { seed: record.id });
    const result: AnalyticsResult = { ...plan, survivors, noiseStd, sum: Array.from(sum, (v) => Number(v)), summary };
    timings.aggregationMs = clock() - releaseStarted;
    const state = commitRound(closed);
    this.state = state;
    await this.finish(record.id, state, started, timings, { result });
  }

  /**
   * The release point of a DP round, training or analytics, after its release entry: the round's
   * epsilon is recorded as spent (in the record and the running history, whatever becomes of the
   * round, even if its final write fails), then the sum is reconstructed (SecAgg+ unmasking),
   * noised by the server in central mode, and decoded into update units.
   */
  private async releaseDpSum(record: RoundRecord, dp: DpRound, privacy: RoundPrivacyRecord, unmaskRequests: StageClose | null, receipt: LedgerReceipt | null, timings: Record<string, number>): Promise<Float32Array> {
    const { rounds } = this.options;
    this.history ??= PrivacyHistory.of(await rounds.list(Number.MAX_SAFE_INTEGER));
    const released = this.history.release(privacy);
    this.history.add({ ...record, privacy: released });
    await rounds.update(record.id, { privacy: released });
    if (this.secagg) dp.sum = await this.unmaskSum(this.secagg, unmaskRequests as StageClose, receipt, timings);
    // Without SecAgg+ a device's update left before the release entry existed: it gets the receipt
    // afterwards, to witness the round (it can later prove the round was entered), not to gate it.
    else if (receipt && this.state) await this.sendReceipts([...this.state.reported], record.id, receipt);
    const noised = dp.config.mode === 'central' ? addCentralNoise(dp.sum, dp.config, this.options.privacyRandom) : dp.sum;
    return decodeAggregate(noised, dp.config, dp.signs);
  }

  /** The configs of the versions an evaluate query scored (read from their stored model.json). */
  private async versionConfigs(versions: readonly number[]): Promise<ModelConfig[]> {
    const configs: ModelConfig[] = [];
    for (const version of versions) configs.push(await storedModelConfig(this.options.registry.store, version, 'decoding the evaluation'));
    return configs;
  }

  private deliver(close: StageClose | null): void {
    for (const { clientId, message } of close?.deliveries ?? []) this.options.transport.sendSecAgg(clientId, message);
  }

  private get secaggStageMs(): number {
    return this.current?.spec.secagg?.stageMs ?? 10_000;
  }

  /**
   * Drives advertise-keys (until the training deadline), share-keys and masked-input (each until
   * stageMs after its requests went out, or until every expected client answered or left). Returns
   * the unmask requests that closing masked-input made, undelivered: they go out only after the
   * release entry (unmaskSum). Null when the session aborted, its abort messages delivered.
   */
  private async runSecAggStages(secagg: SecAggRound, timings: Record<string, number>): Promise<StageClose | null> {
    const { clock } = this.options;
    let stageStarted = clock();
    for (;;) {
      const stage = secagg.stage;
      await this.waitUntil(() => secagg.stageComplete(), () => secagg.stageEndsAt);
      if (this.stopped) throw new ProtocolError('UNAVAILABLE', 'coordinator shut down');
      timings[`secagg.${stage}Ms`] = clock() - stageStarted;
      const close = await secagg.closeStage();
      if (close.outcome.status === 'aborted') {
        this.deliver(close);
        return null;
      }
      if (secagg.stage === 'unmask') return close;
      this.deliver(close);
      stageStarted = clock();
      secagg.stageEndsAt = stageStarted + this.secaggStageMs;
    }
  }

  /**
   * The unmask stage, after the release entry: each survivor gets the entry's receipt and then its
   * unmask request (a device sends its shares only once it has checked and kept the receipt), the
   * shares are collected until stageMs or until every survivor answered or left, and the session
   * reconstructs the sum mod 2^32 of the survivors' residues, nothing else. A stage that falls short
   * throws: the round aborts with its release entry standing (an over-count, never an under-count).
   */
  /**
   * The receipt to each device, with the consistency proof from the tree size it kept (RFC 9162
   * Sec. 2.1.4.1) when it named one at check-in and the ledger has grown since; a device that
   * named a size larger than the head gets none, and refuses the receipt (the ledger shrank).
   */
  private async sendReceipts(clientIds: readonly string[], roundId: number, receipt: LedgerReceipt): Promise<void> {
    const proofs = new Map<number, string[]>();
    const ledger = this.options.ledger;
    for (const clientId of clientIds) {
      const size = this.ledgerSizes.get(clientId);
      let consistency: { fromSize: number; proof: string[] } | undefined;
      if (ledger && size !== undefined && size < receipt.head.treeSize) {
        if (!proofs.has(size)) proofs.set(size, await ledger.consistency(size, receipt.head.treeSize));
        consistency = { fromSize: size, proof: proofs.get(size)! };
      }
      this.options.transport.sendReceipt(clientId, { roundId, receipt, ...(consistency ? { consistency } : {}) });
    }
  }

  private async unmaskSum(secagg: SecAggRound, requests: StageClose, receipt: LedgerReceipt | null, timings: Record<string, number>): Promise<Uint32Array> {
    const { clock } = this.options;
    const roundId = this.current?.roundId ?? 0;
    if (receipt) await this.sendReceipts(requests.deliveries.map((d) => d.clientId), roundId, receipt);
    this.deliver(requests);
    const stageStarted = clock();
    secagg.stageEndsAt = stageStarted + this.secaggStageMs;
    await this.waitUntil(() => secagg.stageComplete(), () => secagg.stageEndsAt);
    if (this.stopped) throw new ProtocolError('UNAVAILABLE', 'coordinator shut down');
    timings['secagg.unmaskMs'] = clock() - stageStarted;
    const unmaskStarted = clock();
    const close = await secagg.reconstruct();
    timings['secagg.reconstructMs'] = clock() - unmaskStarted;
    this.deliver(close);
    if (close.outcome.status === 'done') {
      this.onSecAggSum?.(roundId, close.outcome.sum.slice());
      return close.outcome.sum;
    }
    const reason = close.outcome.status === 'aborted' ? close.outcome.reason : 'session did not finish';
    throw new ProtocolError('BELOW_THRESHOLD', `SecAgg+ unmask stage fell short: ${reason}`);
  }

  private async finish(id: number, state: RoundState, started: number, timings: Record<string, number>, extra: { modelVersion?: number; metrics?: RoundRecord['metrics']; result?: AnalyticsResult } = {}): Promise<void> {
    const durationMs = this.options.clock() - started;
    const status = state.stage === 'committed' ? 'committed' : 'aborted';
    const declined: Record<string, number> = {};
    for (const code of this.declines.values()) declined[code] = (declined[code] ?? 0) + 1;
    // An abort names the devices that declined, by code: a round its devices' own privacy caps
    // refused otherwise reads as an ordinary shortfall.
    if (status === 'aborted' && this.declines.size > 0) state = { ...state, reason: `${state.reason ?? 'aborted'}; ${describeDeclines(declined)}` };
    const patch = {
      status,
      stage: state.stage,
      participants: state.reported.size,
      finishedAt: this.iso(),
      durationMs,
      timings,
      ...(this.declines.size > 0 ? { declined } : {}),
      ...(state.reason ? { reason: state.reason } : {}),
      ...(extra.modelVersion !== undefined ? { modelVersion: extra.modelVersion } : {}),
      ...(extra.metrics ? { metrics: extra.metrics } : {}),
      ...(extra.result ? { result: extra.result } : {}),
      ...(this.secagg ? { secagg: this.secagg.record() } : {}),
    } as const;
    // Every round reaches its final record and, aborted, its ledger entry, even through a full disk.
    const finished = await this.durably(`round ${id}: recording its ${status === 'committed' ? 'commit' : 'abort'}`, () => this.options.rounds.update(id, patch));
    this.history?.add(finished);
    const ledger = this.options.ledger;
    if (status === 'aborted' && ledger) await this.durably(`round ${id}: entering its abort in the ledger`, () => ledger.afterAbort(id, state.reason ?? 'aborted'));
    this.options.log(`round ${id}: ${status}${state.reason ? ` (${state.reason})` : ''} with ${state.reported.size} updates in ${durationMs} ms`);
    const closed: RoundClosed = { roundId: id, status };
    if (state.reason) closed.reason = state.reason;
    if (extra.modelVersion !== undefined) closed.modelVersion = extra.modelVersion;
    this.options.transport.broadcastRoundClosed(closed);
  }

  /** Stops the loop; a round in flight is aborted with "coordinator shut down". */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeup.notify();
    this.backoff.notify();
    await this.loop;
  }
}

/**
 * One round's SecAgg+ session on the coordinator (Bell et al. 2020, Sec. 3 over Bonawitz et al. 2017,
 * Sec. 4, Fig. 4): maps the cohort's pseudonymous client ids to Shamir indices 1..n, feeds each
 * upload to the pure `SecAggServerSession` (which does all the checking), tracks who answered and
 * who disconnected per stage so a stage can close early, and translates the core's refusals into
 * the wire's error codes one to one. It holds no input in the clear: the only vector it ever
 * returns is the unmasked sum, from `reconstruct`, which the runner calls after its release point.
 */
import { nodeEd25519Verify } from '../auth/native-ed25519.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import type { ErrorCode } from '../../shared/protocol/errors.ts';
import type { SecAggRecord, SecAggWireConfig } from '../../shared/protocol/messages.ts';
import type { RandomSource } from '../../shared/privacy/random.ts';
import { toBase64 } from '../../shared/secagg/bytes.ts';
import { ProtocolError as SecAggProtocolError } from '../../shared/secagg/errors.ts';
import type { ServerMessage } from '../../shared/secagg/messages.ts';
import type { OverflowHeadroom, SecAggParameters } from '../../shared/secagg/parameters.ts';
import type { PrgName } from '../../shared/secagg/prg.ts';
import { randomBytes } from '../../shared/secagg/random.ts';
import { SecAggServerSession } from '../../shared/secagg/server.ts';
import type { StageOutcome } from '../../shared/secagg/server.ts';
import { PROTOCOL_STAGES } from '../../shared/secagg/stages.ts';
import type { ProtocolStage } from '../../shared/secagg/stages.ts';
import { nodeMaskKeyCrypto, startX25519Workers } from './secagg-native-crypto.ts';
import { nodeMaskSink, nodeMaskWorkers } from './secagg-native-masks.ts';

export interface SecAggRoundOptions {
  roundId: number;
  /** The selected clients; their position in this list (+1) is their index. */
  cohort: readonly string[];
  parameters: SecAggParameters;
  headroom: OverflowHeadroom;
  vectorLength: number;
  prg: PrgName;
  stageMs: number;
  /** The Ed25519 verify key pinned to a client's enrollment pseudonym at check-in. */
  verifyKey: (clientId: string) => Uint8Array | undefined;
  /** CSPRNG for the public graph seed. */
  random: RandomSource;
}

/** What closing a stage produced: the messages to deliver (by client id) and the core's outcome. */
export interface StageClose {
  outcome: StageOutcome;
  deliveries: readonly { clientId: string; message: ServerMessage }[];
}

/** The wire code of a core refusal: the same name, except MALFORMED (the protocol's MALFORMED_MESSAGE). */
export function wireError(err: SecAggProtocolError): ProtocolError {
  const code: ErrorCode = err.code === 'MALFORMED' ? 'MALFORMED_MESSAGE' : err.code;
  return new ProtocolError(code, err.message);
}

/** Node's native Ed25519 check (server/auth/native-ed25519.ts), re-exported where the benches import it. */
export { nodeEd25519Verify };

function bytesOf(value: unknown): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + bytesOf(v), 0);
  if (typeof value === 'object' && value !== null) return Object.entries(value).reduce((sum, [k, v]) => sum + k.length + bytesOf(v), 0);
  return 8;
}

export class SecAggRound {
  readonly sessionId: string;
  readonly session: SecAggServerSession;
  readonly #options: SecAggRoundOptions;
  readonly #graphSeed: Uint8Array;
  readonly #indexOf = new Map<string, number>();
  readonly #answered: Record<ProtocolStage, Set<number>> = { 'advertise-keys': new Set(), 'share-keys': new Set(), 'masked-input': new Set(), unmask: new Set() };
  readonly #gone = new Set<number>();
  /** Payload bytes accepted per stage (sizes only, for the record and the benchmark). */
  readonly bytesReceived: Record<ProtocolStage, number> = { 'advertise-keys': 0, 'share-keys': 0, 'masked-input': 0, unmask: 0 };
  /** When the current stage's deadline passes, on the runner's clock (set by the runner). */
  stageEndsAt = 0;

  constructor(options: SecAggRoundOptions) {
    this.#options = options;
    this.sessionId = `portrait-round-${options.roundId}`;
    this.#graphSeed = randomBytes(options.random, 32);
    options.cohort.forEach((id, i) => this.#indexOf.set(id, i + 1));
    const { n, k, t } = options.parameters;
    if (n !== options.cohort.length) throw new RangeError(`"parameters.n" expected the cohort size ${options.cohort.length}, got ${n}`);
    this.session = new SecAggServerSession({
      config: { roundId: this.sessionId, n, k, t, graphSeed: this.#graphSeed, vectorLength: options.vectorLength, prg: options.prg },
      verifyKey: (index) => {
        const id = options.cohort[index - 1];
        return id === undefined ? undefined : options.verifyKey(id);
      },
      verifySignature: nodeEd25519Verify,
      maskKeyCrypto: nodeMaskKeyCrypto,
      maskSink: nodeMaskSink,
    });
    startUnmaskWorkers();
  }

  get stage(): ProtocolStage | 'done' | 'aborted' {
    const stage = this.session.stage;
    return stage;
  }

  indexOf(clientId: string): number | undefined {
    return this.#indexOf.get(clientId);
  }

  /** The client's view of the session: public parameters, its index, its neighbours' verify keys. */
  configFor(clientId: string): SecAggWireConfig {
    const index = this.#indexOf.get(clientId);
    if (index === undefined) throw new RangeError(`"clientId" is not in the cohort of round ${this.#options.roundId}`);
    const { n, k, t } = this.#options.parameters;
    const verifyKeys = this.session.graph.neighbours(index).flatMap((v) => {
      const key = this.#options.verifyKey(this.#options.cohort[v - 1]!);
      return key ? [{ index: v, key: toBase64(key) }] : [];
    });
    return { sessionId: this.sessionId, index, n, k, t, graphSeed: toBase64(this.#graphSeed), vectorLength: this.#options.vectorLength, prg: this.#options.prg, stageMs: this.#options.stageMs, verifyKeys };
  }

  /** One upload from an authenticated client; throws the wire ProtocolError that the ack carries. */
  receive(clientId: string, message: unknown): void {
    const index = this.#indexOf.get(clientId);
    if (index === undefined) throw new ProtocolError('NOT_IN_COHORT', `this client is not in the SecAgg+ cohort of round ${this.#options.roundId}`);
    const stage = this.session.stage;
    try {
      this.session.receive(index, message);
    } catch (err) {
      if (err instanceof SecAggProtocolError) throw wireError(err);
      throw err;
    }
    if (stage !== 'done' && stage !== 'aborted') {
      this.#answered[stage].add(index);
      this.bytesReceived[stage] += bytesOf(message);
    }
  }

  /** A disconnect: the client will not answer this or any later stage. */
  disconnect(clientId: string): void {
    const index = this.#indexOf.get(clientId);
    if (index !== undefined) this.#gone.add(index);
  }

  /** Clients who should answer the current stage: all, then whoever answered the previous one. */
  #expected(stage: ProtocolStage): readonly number[] {
    const i = PROTOCOL_STAGES.indexOf(stage);
    return i === 0 ? Array.from({ length: this.#options.parameters.n }, (_, j) => j + 1) : [...this.#answered[PROTOCOL_STAGES[i - 1]!]];
  }

  /** Every expected client answered or disconnected: the stage may close before its deadline. */
  stageComplete(): boolean {
    const stage = this.session.stage;
    if (stage === 'done' || stage === 'aborted') return true;
    const answered = this.#answered[stage];
    return this.#expected(stage).every((u) => answered.has(u) || this.#gone.has(u));
  }

  /** Closes advertise-keys, share-keys or masked-input; the unmask stage closes only through `reconstruct`. */
  async closeStage(): Promise<StageClose> {
    if (this.session.stage === 'unmask') throw new ProtocolError('INVALID_TRANSITION', 'the unmask stage closes only through reconstruct (after the release point)');
    return this.#close();
  }

  /** Closes the unmask stage: the unmasked sum mod 2^32, or an abort naming the stage. */
  async reconstruct(): Promise<StageClose> {
    if (this.session.stage !== 'unmask') throw new ProtocolError('INVALID_TRANSITION', `reconstruct needs the unmask stage, the session is in "${this.session.stage}"`);
    return this.#close();
  }

  async #close(): Promise<StageClose> {
    const outcome = await this.session.closeStage();
    if (outcome.status === 'done') return { outcome, deliveries: [] };
    const deliveries = outcome.messages.map((message) => ({ clientId: this.#options.cohort[message.to - 1]!, message }));
    return { outcome, deliveries };
  }

  /** Ends the session from outside (shutdown, a stage the runner gave up on), naming the stage. */
  abort(reason: string): StageClose | null {
    const stage = this.session.stage;
    if (stage === 'done' || stage === 'aborted') return null;
    const outcome = this.session.abort(reason);
    const deliveries = outcome.status === 'aborted' ? outcome.messages.map((message) => ({ clientId: this.#options.cohort[message.to - 1]!, message })) : [];
    return { outcome, deliveries };
  }

  /** The round record's `secagg` section: parameters, survivors and per-stage dropouts, counts only. */
  record(): SecAggRecord {
    const summary = this.session.summary();
    const { n, k, t } = this.#options.parameters;
    return {
      n,
      k,
      t,
      prg: this.#options.prg,
      survivors: summary.survivors.length,
      droppedPerStage: {
        'advertise-keys': summary.droppedPerStage['advertise-keys'].length,
        'share-keys': summary.droppedPerStage['share-keys'].length,
        'masked-input': summary.droppedPerStage['masked-input'].length,
        unmask: summary.droppedPerStage.unmask.length,
      },
      abortedStage: summary.abort?.stage ?? null,
      maxAbsSum: this.#options.headroom.maxAbsSum,
      headroomBits: this.#options.headroom.headroomBits,
    };
  }
}

/**
 * Starts (and warms) the unmask stage's worker threads while the round's first stages run, so that
 * the unmask waits for neither thread start-up nor fresh pages. Idempotent and cheap once done; a
 * failure here is not the round's: the unmask starts the workers again and fails there if it must.
 */
export function startUnmaskWorkers(): Promise<void> {
  return Promise.all([nodeMaskWorkers.start(), startX25519Workers()]).then(() => undefined, () => undefined);
}

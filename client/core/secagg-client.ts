/**
 * The device side of one round's SecAgg+ session (Bonawitz et al. 2017, Sec. 4, Fig. 4, client
 * rounds 0, 1, 2, 4; Bell et al. 2020, Sec. 3): wraps the pure `SecAggClient`, which does every check
 * (signatures against the enrollment-bound verify keys, neighbours, survivor consistency, never both
 * shares of a peer), and only moves its messages over the socket. The input it masks is the DP
 * residue vector mod 2^32 the device already computed; nothing else about it ever leaves the device.
 * Before it answers its unmask request it asks `beforeUnmask` (the device's ledger receipt check,
 * docs/ledger.md): a refusal withholds the shares, and the session ends on this side with its
 * secrets wiped.
 */
import type { Ack, SecAggWireConfig } from '../../shared/protocol/messages.ts';
import type { ErrorBody } from '../../shared/protocol/errors.ts';
import type { RandomSource } from '../../shared/privacy/random.ts';
import { fromBase64 } from '../../shared/secagg/bytes.ts';
import { SecAggClient } from '../../shared/secagg/client.ts';
import { ProtocolError as SecAggProtocolError } from '../../shared/secagg/errors.ts';
import type { ClientMessage } from '../../shared/secagg/messages.ts';
import type { ProtocolStage } from '../../shared/secagg/stages.ts';

/** The stage whose message a participant is about to send, for fault injection and events. */
export const SECAGG_SEND_STAGE: Record<ClientMessage['type'], ProtocolStage> = {
  'advertise-keys': 'advertise-keys',
  'share-keys': 'share-keys',
  'masked-input': 'masked-input',
  'unmask-shares': 'unmask',
};

export interface SecAggParticipantOptions {
  roundId: number;
  wire: SecAggWireConfig;
  /** The DP residues mod 2^32 (length wire.vectorLength). */
  input: Uint32Array;
  /** The device's Ed25519 secret key (64 bytes), whose public half it presented at check-in. */
  signingSecretKey: Uint8Array;
  random: RandomSource;
  /** Sends one message and resolves to the coordinator's ack. */
  send: (message: ClientMessage) => Promise<Ack>;
  /** Called before each send; returning true means the device vanished instead (simulation). */
  beforeSend?: (stage: ProtocolStage) => boolean;
  onRefused?: (stage: ProtocolStage, error: ErrorBody) => void;
  /** Asked before the unmask shares are computed: null sends them, a reason withholds them (status refused, RECEIPT_REFUSED). */
  beforeUnmask?: () => Promise<string | null>;
  /** The session ended on this side: done, aborted by the coordinator, or refused by this device. */
  onFinished?: (outcome: { status: 'done' | 'aborted' | 'refused' | 'dropped'; stage: ProtocolStage | 'done'; reason?: string }) => void;
}

export class SecAggParticipant {
  readonly roundId: number;
  readonly client: SecAggClient;
  /** Bytes this device sent in SecAgg+ messages, per stage (for the benchmark). */
  readonly bytesSent: Record<ProtocolStage, number> = { 'advertise-keys': 0, 'share-keys': 0, 'masked-input': 0, unmask: 0 };
  /** CPU time of this device's SecAgg+ work in ms (key generation, sharing, masking, unmask shares). */
  computeMs = 0;
  #finished = false;
  readonly #options: SecAggParticipantOptions;

  constructor(options: SecAggParticipantOptions) {
    this.#options = options;
    this.roundId = options.roundId;
    const keys = new Map(options.wire.verifyKeys.map((v) => [v.index, fromBase64('verifyKey', v.key)] as const));
    this.client = new SecAggClient({
      config: {
        roundId: options.wire.sessionId,
        n: options.wire.n,
        k: options.wire.k,
        t: options.wire.t,
        graphSeed: fromBase64('graphSeed', options.wire.graphSeed),
        vectorLength: options.wire.vectorLength,
        prg: options.wire.prg,
      },
      index: options.wire.index,
      input: options.input,
      signingSecretKey: options.signingSecretKey,
      verifyKey: (index) => keys.get(index),
      random: options.random,
      binaryMaskedInput: true,
    });
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Round 0: advertise this round's keys, signed with the enrollment key. */
  async start(): Promise<void> {
    const started = performance.now();
    const message = this.client.advertiseKeys();
    this.computeMs += performance.now() - started;
    await this.#send(message);
  }

  /** A server message (round keys, forwarded shares, unmask request, abort); replies when the stage asks for it. */
  async receive(message: unknown): Promise<void> {
    if (this.#finished) return;
    if (this.#options.beforeUnmask && this.#isOwnUnmaskRequest(message)) {
      const withheld = await this.#options.beforeUnmask();
      if (this.#finished) return;
      if (withheld !== null) return this.#withhold(withheld);
    }
    const stage = this.client.stage;
    let reply: ClientMessage | null;
    const started = performance.now();
    try {
      reply = await this.client.receive(message);
    } catch (err) {
      this.computeMs += performance.now() - started;
      if (!(err instanceof SecAggProtocolError)) throw err;
      // A refused server message (inconsistent survivors, both shares asked, bad signature...): this device drops out.
      if (err.code === 'WRONG_ROUND' || err.code === 'MISADDRESSED' || err.code === 'LATE_MESSAGE') return;
      this.#finish({ status: 'refused', stage: stage === 'done' || stage === 'aborted' ? 'done' : stage, reason: `${err.code}: ${err.message}` });
      return;
    }
    this.computeMs += performance.now() - started;
    if (reply === null) {
      const abort = this.client.abortReason;
      this.#finish({ status: 'aborted', stage: abort?.stage === 'done' || abort?.stage === 'aborted' || !abort ? 'done' : abort.stage, reason: abort ? `${abort.code}: ${abort.reason}` : 'aborted' });
      return;
    }
    await this.#send(reply);
    if (this.client.stage === 'done') this.#finish({ status: 'done', stage: 'done' });
  }

  /** An unmask request of this session addressed to this device (anything else goes to the core, which refuses or ignores it). */
  #isOwnUnmaskRequest(message: unknown): boolean {
    if (typeof message !== 'object' || message === null) return false;
    const m = message as { type?: unknown; roundId?: unknown; to?: unknown };
    return m.type === 'unmask-request' && m.roundId === this.#options.wire.sessionId && m.to === this.#options.wire.index && this.client.stage === 'unmask';
  }

  /** Ends the session without sending the unmask shares: the core takes a local abort, which wipes its keys and shares. */
  async #withhold(reason: string): Promise<void> {
    const { sessionId, index } = this.#options.wire;
    await this.client.receive({ type: 'abort', roundId: sessionId, to: index, stage: 'unmask', code: 'RECEIPT_REFUSED', reason }).catch(() => null);
    this.#finish({ status: 'refused', stage: 'unmask', reason: `RECEIPT_REFUSED: ${reason}` });
  }

  async #send(message: ClientMessage): Promise<void> {
    const stage = SECAGG_SEND_STAGE[message.type];
    if (this.#options.beforeSend?.(stage)) {
      this.#finish({ status: 'dropped', stage });
      return;
    }
    this.bytesSent[stage] += wireBytes(message);
    const ack = await this.#options.send(message);
    if (!ack.ok) {
      this.#options.onRefused?.(stage, ack.error);
      this.#finish({ status: 'refused', stage, reason: `${ack.error.code}: ${ack.error.message}` });
    }
  }

  #finish(outcome: { status: 'done' | 'aborted' | 'refused' | 'dropped'; stage: ProtocolStage | 'done'; reason?: string }): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#options.onFinished?.(outcome);
  }
}

/** Bytes a message occupies on the wire: binary as is, strings as characters (JSON framing ignored). */
export function wireBytes(value: unknown): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + wireBytes(v), 0);
  if (typeof value === 'object' && value !== null) return Object.entries(value).reduce((sum, [k, v]) => sum + k.length + wireBytes(v), 0);
  return 8;
}

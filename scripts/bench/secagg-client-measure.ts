/**
 * One SecAgg+ client timed stage by stage, for scripts/bench/secagg-client.ts: run in Node directly
 * and in Chromium from an esbuild bundle of this file (which installs it as
 * `globalThis.secaggClientBench`). Pure: the shared state machine with WebCrypto and
 * `crypto.getRandomValues`, so the same code is timed in both places. Messages cross as JSON (the
 * masked input as base64), as a page's would over Socket.IO.
 */
import { fromBase64 } from '../../shared/secagg/bytes.ts';
import { SecAggClient } from '../../shared/secagg/client.ts';
import type { ClientMessage, ServerMessage } from '../../shared/secagg/messages.ts';
import type { PrgName } from '../../shared/secagg/prg.ts';

export interface ClientSpec {
  readonly roundId: string;
  readonly n: number;
  readonly k: number;
  readonly t: number;
  /** base64 */
  readonly graphSeed: string;
  readonly vectorLength: number;
  readonly prg: PrgName;
  readonly index: number;
  /** base64 Ed25519 enrollment secret key of this client. */
  readonly signingSecretKey: string;
  /** base64 enrollment verify keys by index - 1. */
  readonly verifyKeys: readonly string[];
}

export interface TimedReply {
  readonly reply: ClientMessage | null;
  /** Wall time of this stage's client work (the call that consumes the server message and makes the reply). */
  readonly ms: number;
}

/** The benchmark's input vector (as scripts/bench/secagg.ts): structured, small. */
export const benchInput = (i: number, P: number) => Uint32Array.from({ length: P }, (_, j) => ((i * 7919 + j * 104_729) % 2001) - 1000);

export class TimedClient {
  readonly #client: SecAggClient;

  constructor(spec: ClientSpec) {
    const verifyKeys = spec.verifyKeys.map((key) => fromBase64('verifyKey', key));
    this.#client = new SecAggClient({
      config: { roundId: spec.roundId, n: spec.n, k: spec.k, t: spec.t, graphSeed: fromBase64('graphSeed', spec.graphSeed), vectorLength: spec.vectorLength, prg: spec.prg },
      index: spec.index,
      input: benchInput(spec.index - 1, spec.vectorLength),
      signingSecretKey: fromBase64('signingSecretKey', spec.signingSecretKey),
      verifyKey: (j) => verifyKeys[j - 1],
      random: (bytes) => crypto.getRandomValues(bytes),
    });
  }

  advertise(): TimedReply {
    const started = performance.now();
    const reply = this.#client.advertiseKeys();
    return { reply, ms: performance.now() - started };
  }

  async receive(message: ServerMessage): Promise<TimedReply> {
    const started = performance.now();
    const reply = await this.#client.receive(message);
    return { reply, ms: performance.now() - started };
  }
}

/** The page's entry points: one client at a time. */
export const secaggClientBench = {
  client: undefined as TimedClient | undefined,
  start(spec: ClientSpec): TimedReply {
    this.client = new TimedClient(spec);
    return this.client.advertise();
  },
  receive(message: ServerMessage): Promise<TimedReply> {
    if (this.client === undefined) throw new Error('no client started');
    return this.client.receive(message);
  },
};

(globalThis as unknown as { secaggClientBench: typeof secaggClientBench }).secaggClientBench = secaggClientBench;

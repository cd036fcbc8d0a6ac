/** Test helpers for SecAgg+: a seeded random source and an in-memory driver that plays one round with chosen dropouts. */
import nacl from 'tweetnacl';
import { expect } from 'vitest';
import { SecAggClient } from '../../../shared/secagg/client.ts';
import type { SecAggRoundConfig } from '../../../shared/secagg/config.ts';
import { generateSigningKeyPair, type KeyPair, type MaskKeyCrypto } from '../../../shared/secagg/keys.ts';
import type { ClientMessage, ServerMessage } from '../../../shared/secagg/messages.ts';
import type { MaskSinkFactory, PrgName } from '../../../shared/secagg/prg.ts';
import type { RandomSource } from '../../../shared/secagg/random.ts';
import { SecAggServerSession, type StageOutcome } from '../../../shared/secagg/server.ts';
import type { ProtocolStage } from '../../../shared/secagg/stages.ts';
import { xsalsa20Bytes } from '../../../shared/secagg/xsalsa20.ts';

/** Deterministic RandomSource: the XSalsa20 keystream of SHA-512(label), nonce = block counter. Tests only. */
export function seededRandom(label: string): RandomSource {
  const key = nacl.hash(new TextEncoder().encode(label)).slice(0, 32);
  let counter = 0;
  let buffer: Uint8Array = new Uint8Array(0);
  let offset = 0;
  return (bytes) => {
    for (let i = 0; i < bytes.length; i++) {
      if (offset === buffer.length) {
        const nonce = new Uint8Array(24);
        new DataView(nonce.buffer).setUint32(0, counter++, true);
        buffer = xsalsa20Bytes(key, nonce, 4096);
        offset = 0;
      }
      bytes[i] = buffer[offset++]!;
    }
    return bytes;
  };
}

export interface RoundSetup {
  n: number;
  k: number;
  t: number;
  vectorLength: number;
  prg?: PrgName;
  label?: string;
  serverVerifies?: boolean;
  inputs?: Uint32Array[];
  /** The server's X25519 / KDF for dropped clients (default: the isomorphic one). */
  maskKeyCrypto?: MaskKeyCrypto;
  /** Where the server's unmask adds masks (default: the isomorphic MaskApplier). */
  maskSink?: MaskSinkFactory;
}

export interface Round {
  config: SecAggRoundConfig;
  server: SecAggServerSession;
  clients: SecAggClient[];
  inputs: Uint32Array[];
  enrollment: KeyPair[];
}

export function setupRound(setup: RoundSetup): Round {
  const random = seededRandom(setup.label ?? `round-${setup.n}-${setup.k}-${setup.t}`);
  const graphSeed = random(new Uint8Array(32));
  const config: SecAggRoundConfig = {
    roundId: `r-${setup.label ?? 'test'}`,
    n: setup.n,
    k: setup.k,
    t: setup.t,
    graphSeed,
    vectorLength: setup.vectorLength,
    prg: setup.prg ?? 'aes-ctr',
  };
  const enrollment = Array.from({ length: setup.n }, () => generateSigningKeyPair(random));
  const verifyKey = (i: number) => enrollment[i - 1]?.publicKey;
  const inputs = setup.inputs ?? Array.from({ length: setup.n }, () => new Uint32Array(random(new Uint8Array(setup.vectorLength * 4)).buffer));
  const server = new SecAggServerSession({
    config,
    ...(setup.serverVerifies === false ? {} : { verifyKey }),
    ...(setup.maskKeyCrypto ? { maskKeyCrypto: setup.maskKeyCrypto } : {}),
    ...(setup.maskSink ? { maskSink: setup.maskSink } : {}),
  });
  const clients = inputs.map((input, i) => new SecAggClient({
    config,
    index: i + 1,
    input,
    signingSecretKey: enrollment[i]!.secretKey,
    verifyKey,
    random: seededRandom(`${setup.label ?? 'test'}-client-${i + 1}`),
  }));
  return { config, server, clients, inputs, enrollment };
}

export type Drops = Partial<Record<ProtocolStage, readonly number[]>>;

export interface RoundRun {
  outcome: StageOutcome;
  /** Every payload the server received, in order (what a recording coordinator would see). */
  received: ClientMessage[];
  /** Every payload the server sent. */
  sent: ServerMessage[];
}

/**
 * Plays the round; a client listed under a stage withholds its message for that stage and every later
 * one. `tamper` (a faulty or malicious client) may rewrite a message before the server gets it.
 */
export async function playRound(round: Round, drops: Drops = {}, tamper: (message: ClientMessage) => ClientMessage = (m) => m): Promise<RoundRun> {
  const { server, clients } = round;
  const gone = new Set<number>();
  const received: ClientMessage[] = [];
  const sent: ServerMessage[] = [];
  const deliver = (stage: ProtocolStage, from: number, reply: ClientMessage | null) => {
    if (drops[stage]?.includes(from)) gone.add(from);
    if (gone.has(from) || reply === null) return;
    const message = tamper(reply);
    received.push(message);
    server.receive(from, message);
  };
  for (const c of clients) deliver('advertise-keys', c.index, c.advertiseKeys());
  const order: ProtocolStage[] = ['share-keys', 'masked-input', 'unmask'];
  for (let s = 0; ; s++) {
    const outcome = await server.closeStage();
    if (outcome.status !== 'continue') {
      if (outcome.status === 'aborted') {
        for (const m of outcome.messages) if (!gone.has(m.to)) await clients[m.to - 1]!.receive(m);
      }
      return { outcome, received, sent };
    }
    for (const m of outcome.messages) {
      sent.push(m);
      if (gone.has(m.to)) continue;
      deliver(order[s]!, m.to, await clients[m.to - 1]!.receive(m));
    }
  }
}

export function plainSum(inputs: readonly Uint32Array[], members: Iterable<number>): Uint32Array {
  const sum = new Uint32Array(inputs[0]!.length);
  for (const u of members) {
    const x = inputs[u - 1]!;
    for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + x[i]!;
  }
  return sum;
}

export function survivorsAfter(n: number, drops: Drops): number[] {
  const out = new Set([...(drops['advertise-keys'] ?? []), ...(drops['share-keys'] ?? []), ...(drops['masked-input'] ?? [])]);
  return Array.from({ length: n }, (_, i) => i + 1).filter((u) => !out.has(u));
}

export async function expectExactSum(setup: RoundSetup, drops: Drops): Promise<void> {
  const round = setupRound(setup);
  const { outcome } = await playRound(round, drops);
  if (outcome.status !== 'done') throw new Error(`round did not finish: ${JSON.stringify(outcome.status === 'aborted' ? outcome.reason : outcome.status)}`);
  const survivors = survivorsAfter(setup.n, drops);
  expect(outcome.survivors).toEqual(survivors);
  expect(Array.from(outcome.sum)).toEqual(Array.from(plainSum(round.inputs, survivors)));
  const summary = round.server.summary();
  for (const stage of ['advertise-keys', 'share-keys', 'masked-input', 'unmask'] as const) {
    expect(summary.droppedPerStage[stage]).toEqual([...(drops[stage] ?? [])].sort((a, b) => a - b));
  }
}

/** Up to `count` pairwise non-adjacent clients such that no client has more than two of them as neighbours. */
export function spreadOut(round: Round, count: number): number[] {
  const graph = round.server.graph;
  const picked = new Set<number>();
  const droppedNeighbours = new Map<number, number>();
  for (let u = 1; u <= round.config.n && picked.size < count; u++) {
    const near = graph.neighbours(u);
    if (near.some((v) => picked.has(v) || (droppedNeighbours.get(v) ?? 0) >= 2)) continue;
    picked.add(u);
    for (const v of near) droppedNeighbours.set(v, (droppedNeighbours.get(v) ?? 0) + 1);
  }
  return [...picked];
}

/** Pearson chi-square of the top 8 bits of each word against uniform (255 degrees of freedom). */
export function chiSquareTopByte(values: Uint32Array): number {
  const counts = new Float64Array(256);
  for (const v of values) counts[v >>> 24]!++;
  const expected = values.length / 256;
  let chi = 0;
  for (const c of counts) chi += (c - expected) ** 2 / expected;
  return chi;
}

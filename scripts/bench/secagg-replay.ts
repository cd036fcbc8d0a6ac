/**
 * A SecAgg+ round's client messages, replayed into fresh server sessions so that the server's unmask
 * (issue 5: "server unmask throughput >= 0.5 x raw PRG") can be timed several times per round: one
 * unmask of 5-70 ms on this shared 2-vCPU machine varies 2-5x from run to run, and a round at
 * n = 1,000 costs minutes of client work, the unmask milliseconds. Used by scripts/bench/secagg.ts
 * (replays after each live round) and scripts/bench/secagg-unmask.ts (transcripts on disk).
 */
import { nodeMaskKeyCrypto } from '../../server/rounds/secagg-native-crypto.ts';
import { nodeMaskSink } from '../../server/rounds/secagg-native-masks.ts';
import { nodeEd25519Verify, startUnmaskWorkers } from '../../server/rounds/secagg-session.ts';
import type { SecAggRoundConfig } from '../../shared/secagg/config.ts';
import type { NeighbourGraph } from '../../shared/secagg/graph.ts';
import type { ClientMessage, MaskedInputMessage } from '../../shared/secagg/messages.ts';
import { SecAggServerSession } from '../../shared/secagg/server.ts';
import { meanRawPrg, probeRawPrg, type RawPrg } from './secagg-raw-prg.ts';

export interface RoundTranscript {
  readonly config: SecAggRoundConfig;
  /** Enrollment verify keys by client index - 1. */
  readonly verifyKeys: readonly Uint8Array[];
  /** Client messages in arrival order, per stage (masked inputs binary, 4 * config.vectorLength bytes each). */
  readonly advertise: readonly ClientMessage[];
  readonly share: readonly ClientMessage[];
  readonly masked: readonly MaskedInputMessage[];
  readonly unmask: readonly ClientMessage[];
}

export interface UnmaskReplay {
  readonly unmaskMs: number;
  /** Masked inputs validated and summed as they arrive (before the unmask, not in it). */
  readonly arrivalMs: number;
  /** Unmask shares validated and decoded as they arrive (before the unmask, not in it). */
  readonly sharesMs: number;
  /** Masks removed: one per survivor, one per surviving neighbour of each client dropped at masked-input. */
  readonly expansions: number;
  readonly dropped: number;
  /** Raw PRG at the same P: the mean of a probe right before and one right after the unmask. */
  readonly raw: RawPrg;
  /** unmask MB/s over the faster raw PRG's. */
  readonly ratio: number;
}

export interface ReplayOptions {
  /** OpenSSL X25519 / HKDF and AES-CTR mask workers, as the coordinator (default), or the isomorphic path. */
  readonly native?: boolean;
  /** Each raw PRG probe runs at least this long per implementation (default 300 ms). */
  readonly probeMs?: number;
}

/** Plays the transcript's stages into a fresh server session and times its unmask; refuses a sum other than `expected`. */
export async function replayUnmask(transcript: RoundTranscript, expected: Uint32Array, options: ReplayOptions = {}): Promise<UnmaskReplay> {
  const { config, verifyKeys } = transcript;
  const native = options.native ?? true;
  const probeMs = options.probeMs ?? 300;
  const P = config.vectorLength;
  if (native) await startUnmaskWorkers(); // as the coordinator does when a round is created
  const server = new SecAggServerSession({
    config,
    verifyKey: (i) => verifyKeys[i - 1],
    verifySignature: nodeEd25519Verify,
    ...(native ? { maskKeyCrypto: nodeMaskKeyCrypto, maskSink: nodeMaskSink } : {}),
  });
  for (const m of transcript.advertise) server.receive(m.from, m);
  await server.closeStage();
  for (const m of transcript.share) server.receive(m.from, m);
  await server.closeStage();
  const arrival = performance.now();
  for (const m of transcript.masked) server.receive(m.from, m);
  const arrivalMs = performance.now() - arrival;
  await server.closeStage();
  const sharesArrival = performance.now();
  for (const m of transcript.unmask) server.receive(m.from, m);
  const sharesMs = performance.now() - sharesArrival;
  const survivors = new Set(transcript.masked.map((m) => m.from));
  const dropped = server.summary().droppedPerStage['masked-input'];
  const expansions = maskExpansions(server.graph, survivors, dropped);
  const minExpansions = Math.min(50, expansions);
  const rawBefore = await probeRawPrg(P, probeMs, minExpansions);
  const started = performance.now();
  const outcome = await server.closeStage();
  const unmaskMs = performance.now() - started;
  const raw = meanRawPrg(rawBefore, await probeRawPrg(P, probeMs, minExpansions));
  if (outcome.status !== 'done') throw new Error(`replayed unmask did not finish: ${outcome.status}`);
  if (outcome.sum.length !== expected.length || !expected.every((v, i) => v === outcome.sum[i])) throw new Error('replayed unmask: the sum differs from the plain sum');
  const unmaskMBps = (expansions * 4 * P) / 1e6 / (unmaskMs / 1000);
  return { unmaskMs, arrivalMs, sharesMs, expansions, dropped: dropped.length, raw, ratio: unmaskMBps / raw.best };
}

/** Masks the server removes at unmask: one per survivor, one per surviving neighbour of each client dropped at masked-input. */
export function maskExpansions(graph: NeighbourGraph, survivors: ReadonlySet<number>, dropped: Iterable<number>): number {
  let count = survivors.size;
  for (const d of dropped) count += graph.neighbours(d).filter((v) => survivors.has(v)).length;
  return count;
}

/** The median and range of replayed ratios (or of any sample). */
export function spread(values: readonly number[]): { median: number; min: number; max: number } {
  if (values.length === 0) throw new RangeError('"values" expected at least one value');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/**
 * The one PRG throughput measurement both sides of scripts/bench/secagg-prg.ts run: in Node directly,
 * and in Chromium from an esbuild bundle of this file (which installs it as `globalThis.measureSecAggPrg`).
 * Pure: only WebCrypto and the shared/secagg PRGs, so the same code is timed in both places.
 */
import { prgByName, type PrgName } from '../../shared/secagg/prg.ts';

export interface PrgSample {
  readonly prg: PrgName;
  readonly words: number;
  /** Whole expansions of fresh-key masks: importKey (AES) + keystream, as the unmask path pays them. */
  readonly expandMBps: number;
  /** Masks added in place into an accumulator (`applyMask`), as clients and the server use them. */
  readonly applyMBps: number;
}

async function timeLoop(minMs: number, bytesPerCall: number, call: () => Promise<void>): Promise<number> {
  await call();
  let bytes = 0;
  const start = performance.now();
  while (performance.now() - start < minMs) {
    await call();
    bytes += bytesPerCall;
  }
  return bytes / 1e6 / ((performance.now() - start) / 1000);
}

export async function measureSecAggPrg(name: PrgName, words: number, minMs: number): Promise<PrgSample> {
  const prg = prgByName(name);
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const target = new Uint32Array(words);
  const expandMBps = await timeLoop(minMs, 4 * words, async () => {
    await prg.expand(seed, words);
  });
  const applyMBps = await timeLoop(minMs, 4 * words, () => prg.applyMask(seed, target, -1));
  return { prg: name, words, expandMBps, applyMBps };
}

(globalThis as { measureSecAggPrg?: typeof measureSecAggPrg }).measureSecAggPrg = measureSecAggPrg;

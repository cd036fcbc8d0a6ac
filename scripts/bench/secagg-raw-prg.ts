/**
 * The raw mask PRG that the SecAgg+ unmask target is measured against (issue 5: "server unmask
 * throughput at least half of the raw PRG throughput measured in the same run"): sequential
 * fresh-key AES-256-CTR expansions of P words, nothing added, in both implementations the code base
 * has: WebCrypto (what clients and the isomorphic server use) and OpenSSL through node:crypto on this
 * thread (what the coordinator's mask workers use), the keystream made in the same chunks
 * (NATIVE_CHUNK_WORDS). The target is checked against the faster of the two, so a faster
 * implementation in the unmask cannot flatter the ratio. Both are one stream on one thread, the
 * usual way a PRG's throughput is stated; the coordinator's unmask may use several worker threads
 * (two on the 2-vCPU dev machine), which docs/secagg.md says beside the results.
 */
import { createCipheriv } from 'node:crypto';
import { NATIVE_CHUNK_WORDS } from '../../server/rounds/secagg-native-masks.ts';
import { aesCtrPrg } from '../../shared/secagg/prg.ts';
import { cryptoRandomSource } from '../../shared/secagg/random.ts';

export interface RawPrg {
  /** MB/s of sequential WebCrypto expansions. */
  readonly webcrypto: number;
  /** MB/s of sequential OpenSSL (node:crypto) expansions on this thread. */
  readonly openssl: number;
  /** The faster of the two. */
  readonly best: number;
}

const CHUNK_WORDS = NATIVE_CHUNK_WORDS;
const ZERO_COUNTER = Buffer.alloc(16);
const zeros = Buffer.alloc(4 * CHUNK_WORDS);

/** One fresh-key OpenSSL AES-256-CTR keystream of P words, chunk by chunk (as the coordinator's mask workers make it). */
function opensslExpand(seed: Uint8Array, P: number): void {
  const cipher = createCipheriv('aes-256-ctr', seed, ZERO_COUNTER);
  for (let offset = 0; offset < P; offset += CHUNK_WORDS) cipher.update(zeros.subarray(0, 4 * Math.min(CHUNK_WORDS, P - offset)));
}

async function timed(P: number, minMs: number, minExpansions: number, expand: (seed: Uint8Array) => unknown): Promise<number> {
  await expand(cryptoRandomSource(new Uint8Array(32)));
  let expansions = 0;
  const started = performance.now();
  while (performance.now() - started < minMs || expansions < minExpansions) {
    await expand(cryptoRandomSource(new Uint8Array(32)));
    expansions++;
  }
  return (expansions * 4 * P) / 1e6 / ((performance.now() - started) / 1000);
}

/** Both implementations for at least `minMs` each (and at least `minExpansions` expansions), MB/s. */
export async function probeRawPrg(P: number, minMs: number, minExpansions = 1): Promise<RawPrg> {
  const webcrypto = await timed(P, minMs, minExpansions, (seed) => aesCtrPrg.expand(seed, P));
  const openssl = await timed(P, minMs, minExpansions, (seed) => opensslExpand(seed, P));
  return { webcrypto, openssl, best: Math.max(webcrypto, openssl) };
}

/** The mean of two probes (one before, one after the unmask), per implementation. */
export function meanRawPrg(a: RawPrg, b: RawPrg): RawPrg {
  const webcrypto = (a.webcrypto + b.webcrypto) / 2;
  const openssl = (a.openssl + b.openssl) / 2;
  return { webcrypto, openssl, best: Math.max(webcrypto, openssl) };
}

/** The injected randomness seam for SecAgg+ keys, seeds and Shamir coefficients (DESIGN: only WebCrypto in production). */

import type { RandomSource } from '../privacy/random.ts';
import { cryptoRandomSource as makeCryptoRandomSource } from '../privacy/random.ts';

/** One randomness seam for the whole core: the same type and WebCrypto source as shared/privacy. */
export type { RandomSource };
export const cryptoRandomSource: RandomSource = makeCryptoRandomSource();

export function randomBytes(random: RandomSource, length: number): Uint8Array {
  const out = random(new Uint8Array(length));
  if (!(out instanceof Uint8Array) || out.length !== length) {
    throw new RangeError(`"random" expected to return ${length} bytes, got ${out instanceof Uint8Array ? out.length : typeof out}`);
  }
  return out;
}

/** The injected randomness seam for SecAgg+ keys, seeds and Shamir coefficients (DESIGN: only WebCrypto in production). */

/** Fills `bytes` with random bytes and returns it. Production: `cryptoRandomSource`; tests inject a seeded source. */
export type RandomSource = (bytes: Uint8Array) => Uint8Array;

/** WebCrypto's getRandomValues refuses more than 65,536 bytes per call, so fill in chunks. */
export const cryptoRandomSource: RandomSource = (bytes) => {
  for (let offset = 0; offset < bytes.length; offset += 65_536) {
    const chunk = new Uint8Array(Math.min(65_536, bytes.length - offset));
    crypto.getRandomValues(chunk);
    bytes.set(chunk, offset);
    chunk.fill(0);
  }
  return bytes;
};

export function randomBytes(random: RandomSource, length: number): Uint8Array {
  const out = random(new Uint8Array(length));
  if (!(out instanceof Uint8Array) || out.length !== length) {
    throw new RangeError(`"random" expected to return ${length} bytes, got ${out instanceof Uint8Array ? out.length : typeof out}`);
  }
  return out;
}

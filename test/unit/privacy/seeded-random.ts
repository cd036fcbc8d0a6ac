/**
 * A seeded, deterministic RandomSource for tests only (xoshiro128** seeded by SplitMix32):
 * statistically good, NOT cryptographic. Production code injects crypto.getRandomValues.
 */
import type { RandomSource } from '../../../shared/privacy/random.ts';

export function seededRandom(seed: number): RandomSource {
  let s = seed >>> 0;
  const splitMix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const st = new Uint32Array([splitMix(), splitMix(), splitMix(), splitMix()]);
  const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;
  const next = (): number => {
    const result = Math.imul(rotl(Math.imul(st[1] as number, 5) >>> 0, 7), 9) >>> 0;
    const t = (st[1] as number) << 9;
    st[2] = (st[2] as number) ^ (st[0] as number);
    st[3] = (st[3] as number) ^ (st[1] as number);
    st[1] = (st[1] as number) ^ (st[2] as number);
    st[0] = (st[0] as number) ^ (st[3] as number);
    st[2] = (st[2] as number) ^ t;
    st[3] = rotl(st[3] as number, 11);
    return result;
  };
  return (bytes) => {
    for (let i = 0; i < bytes.length; i += 4) {
      const w = next();
      for (let b = 0; b < 4 && i + b < bytes.length; b++) bytes[i + b] = (w >>> (8 * b)) & 0xff;
    }
    return bytes;
  };
}

/**
 * A reproducible RandomSource for benchmarks that repeat the real mechanism: SeededRandom words as
 * bytes (little-endian). Not cryptographic; it stands in for crypto.getRandomValues only so that a
 * benchmark's repetitions can be run again. Devices and the coordinator never use it.
 */
import { SeededRandom } from '../../shared/features/seeded-random.ts';
import type { RandomSource } from '../../shared/privacy/random.ts';

/** The stream of (`seed`, `purpose`) for one `key` (a device, a repetition). */
export function seededSource(seed: number, purpose: number, key: number): RandomSource {
  const rng = new SeededRandom((seed * 16 + purpose) >>> 0, key >>> 0);
  return (bytes) => {
    const whole = bytes.byteOffset % 4 === 0 ? bytes.length >>> 2 : 0;
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, whole);
    for (let i = 0; i < whole; i++) words[i] = rng.nextUint32();
    for (let i = whole * 4; i < bytes.length; i += 4) {
      const w = rng.nextUint32();
      for (let b = 0; b < 4 && i + b < bytes.length; b++) bytes[i + b] = (w >>> (8 * b)) & 0xff;
    }
    return bytes;
  };
}

/** Shared holder sets at unmask: every choice is t live holders of its owner, rebuilds the secret, and few sets serve a Harary graph. */
import { describe, expect, it } from 'vitest';
import { buildNeighbourGraph } from '../../../shared/secagg/graph.ts';
import { HolderSetChooser } from '../../../shared/secagg/holder-sets.ts';
import { bigintToBytes, bytesToBigint, lagrangeAtZero, reconstructWithCoefficients, splitSecret } from '../../../shared/secagg/shamir.ts';
import { seededRandom } from './helpers.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Each client dropped with probability `rate`, from a seeded stream. */
function dropSome(n: number, rate: number, label: string): Set<number> {
  const random = seededRandom(label);
  const word = new Uint8Array(4);
  const dropped = new Set<number>();
  for (let u = 1; u <= n; u++) if (new DataView(random(word).buffer).getUint32(0) / 2 ** 32 < rate) dropped.add(u);
  return dropped;
}

describe('HolderSetChooser', () => {
  it('n=1000, k=114, t=80, 10% dropped: every choice is t of the owner\'s live holders, and ~n/25 sets serve all owners', () => {
    const [n, k, t] = [1000, 114, 80];
    const graph = buildNeighbourGraph(seededRandom('holders-1000')(new Uint8Array(32)), n, k);
    const dropped = dropSome(n, 0.1, 'holders-1000-drops');
    const survivors = Array.from({ length: n }, (_, i) => i + 1).filter((u) => !dropped.has(u));
    const chooser = new HolderSetChooser(graph, t);
    const seen = new Set<readonly number[]>();
    const check = (owner: number, holders: Set<number>) => {
      const set = chooser.choose(owner, holders);
      expect(set.xs).toHaveLength(t);
      expect(new Set(set.xs).size).toBe(t);
      expect(set.xs.every((x) => holders.has(x))).toBe(true);
      expect([...set.xs]).toEqual([...set.xs].sort((a, b) => a - b));
      if (!seen.has(set.xs)) {
        seen.add(set.xs);
        expect(set.coefficients).toEqual(lagrangeAtZero(set.xs));
      }
    };
    for (const u of chooser.inCircleOrder(survivors)) check(u, new Set([u, ...graph.neighbours(u)].filter((v) => !dropped.has(v))));
    const afterSurvivors = chooser.computed;
    for (const d of chooser.inCircleOrder([...dropped])) check(d, new Set(graph.neighbours(d).filter((v) => !dropped.has(v))));
    expect(afterSurvivors).toBeLessThanOrEqual(n / 15);
    expect(chooser.computed - afterSurvivors).toBeLessThanOrEqual(dropped.size / 2);
    expect(seen.size).toBe(chooser.computed);
  });

  it('the chosen shares rebuild each owner\'s secret (n=60, k=20, t=12, 20% dropped)', () => {
    const [n, k, t] = [60, 20, 12];
    const random = seededRandom('holders-60');
    const graph = buildNeighbourGraph(random(new Uint8Array(32)), n, k);
    const dropped = dropSome(n, 0.2, 'holders-60-drops');
    const chooser = new HolderSetChooser(graph, t);
    for (const u of chooser.inCircleOrder(Array.from({ length: n }, (_, i) => i + 1))) {
      const live = [u, ...graph.neighbours(u)].filter((v) => !dropped.has(v));
      if (live.length < t) continue;
      const secret = random(new Uint8Array(32));
      const shares = new Map(splitSecret(secret, t, [u, ...graph.neighbours(u)], random).map((s) => [s.x, s] as const));
      const { xs, coefficients } = chooser.choose(u, new Set(live));
      expect(hex(reconstructWithCoefficients(xs.map((x) => shares.get(x)!), coefficients))).toBe(hex(secret));
    }
    expect(chooser.computed).toBeLessThan(n / 2);
  });

  it('the complete graph needs one set for the whole round', () => {
    const graph = buildNeighbourGraph(seededRandom('holders-complete')(new Uint8Array(32)), 30, 29);
    const chooser = new HolderSetChooser(graph, 16);
    const live = new Set(Array.from({ length: 30 }, (_, i) => i + 1).filter((u) => u % 7 !== 0));
    for (const u of chooser.inCircleOrder([...live])) chooser.choose(u, live);
    expect(chooser.computed).toBe(1);
  });

  it('refuses fewer than t holders, naming the argument', () => {
    const graph = buildNeighbourGraph(seededRandom('holders-few')(new Uint8Array(32)), 20, 8);
    expect(() => new HolderSetChooser(graph, 5).choose(1, new Set([1, 2, 3]))).toThrow('"holders" expected at least t=5 holders, got 3');
  });
});

describe('graph positions', () => {
  it('are a bijection onto 0..n-1 and neighbours sit within floor(k/2) positions (or antipodal for odd k)', () => {
    for (const [n, k] of [[50, 8], [40, 9], [12, 11]] as const) {
      const graph = buildNeighbourGraph(seededRandom(`positions-${n}-${k}`)(new Uint8Array(32)), n, k);
      const positions = Array.from({ length: n }, (_, i) => graph.position(i + 1));
      expect([...positions].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      for (let u = 1; u <= n; u++) {
        for (const v of graph.neighbours(u)) {
          const d = Math.abs(graph.position(u) - graph.position(v));
          const circular = Math.min(d, n - d);
          expect(circular <= Math.floor(k / 2) || (k % 2 === 1 && circular === n / 2)).toBe(true);
        }
      }
      expect(() => graph.position(n + 1)).toThrow(RangeError);
    }
  });
});

describe('bytesToBigint', () => {
  it('equals the byte-by-byte big-endian value, leading zeros and the empty array included', () => {
    const random = seededRandom('bytes-to-bigint');
    for (let length = 0; length <= 40; length++) {
      const bytes = random(new Uint8Array(length));
      if (length > 2) bytes[0] = 0;
      let reference = 0n;
      for (const b of bytes) reference = reference * 256n + BigInt(b);
      expect(bytesToBigint(bytes)).toBe(reference);
    }
  });
});

describe('bigintToBytes', () => {
  it('is the inverse of bytesToBigint for every length up to 40, and refuses a value that does not fit', () => {
    const random = seededRandom('bigint-to-bytes');
    for (let length = 0; length <= 40; length++) {
      for (let trial = 0; trial < 5; trial++) {
        const bytes = random(new Uint8Array(length));
        if (trial === 0 && length > 0) bytes[0] = 0;
        if (trial === 1) bytes.fill(0xff);
        expect(Buffer.from(bigintToBytes(bytesToBigint(bytes), length)).toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
      }
      expect(() => bigintToBytes(1n << BigInt(8 * length), length)).toThrow(`"value" does not fit in ${length} bytes`);
    }
  });
});

/** Shared holder sets at unmask: every choice is t live holders of its owner, rebuilds the secret, and few sets serve a Harary graph. */
import { describe, expect, it } from 'vitest';
import { buildNeighbourGraph, type NeighbourGraph } from '../../../shared/secagg/graph.ts';
import { HolderSetChooser, RevealedShares } from '../../../shared/secagg/holder-sets.ts';
import { bigintToBytes, bytesToBigint, lagrangeAtZero, shareValue, splitSecret } from '../../../shared/secagg/shamir.ts';
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

/** `holders` of each owner revealing a share (value 1: only the choice of holders is under test). */
function revealed(graph: NeighbourGraph, holdersOf: ReadonlyMap<number, Iterable<number>>): RevealedShares {
  const shares = new RevealedShares(graph);
  for (const [owner, holders] of holdersOf) for (const h of holders) shares.addFrom(h, [[owner, 1n]]);
  return shares;
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
      const set = chooser.choose(owner, revealed(graph, new Map([[owner, holders]])));
      expect(set.xs).toHaveLength(t);
      expect(new Set(set.xs).size).toBe(t);
      expect(set.xs.every((x) => holders.has(x))).toBe(true);
      expect(Array.from(set.positions)).toEqual(set.xs.map((x) => graph.position(x)));
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
    const shares = new RevealedShares(graph);
    const secrets = new Map<number, Uint8Array>();
    for (let u = 1; u <= n; u++) {
      secrets.set(u, random(new Uint8Array(32)));
      for (const share of splitSecret(secrets.get(u)!, t, [u, ...graph.neighbours(u)], random)) if (!dropped.has(share.x)) shares.addFrom(share.x, [[u, shareValue(share.y)]]);
    }
    let rebuilt = 0;
    for (const u of chooser.inCircleOrder(Array.from({ length: n }, (_, i) => i + 1))) {
      if (shares.count(u) < t) {
        expect(() => chooser.reconstruct(u, shares)).toThrow(`"holders" expected at least t=${t} holders, got ${shares.count(u)}`);
        continue;
      }
      expect(hex(chooser.reconstruct(u, shares))).toBe(hex(secrets.get(u)!));
      rebuilt++;
    }
    expect(rebuilt).toBeGreaterThan(n / 2);
    expect(chooser.computed).toBeLessThan(n / 2);
  });

  it('the complete graph needs one set for the whole round', () => {
    const graph = buildNeighbourGraph(seededRandom('holders-complete')(new Uint8Array(32)), 30, 29);
    const chooser = new HolderSetChooser(graph, 16);
    const live = new Set(Array.from({ length: 30 }, (_, i) => i + 1).filter((u) => u % 7 !== 0));
    const shares = revealed(graph, new Map([...live].map((u) => [u, live])));
    for (const u of chooser.inCircleOrder([...live])) chooser.choose(u, shares);
    expect(chooser.computed).toBe(1);
  });

  it('with t = k + 1 every holder is needed, the antipodal one of odd k and the whole complete graph included', () => {
    for (const [n, k] of [[40, 9], [12, 11], [13, 12], [30, 6]] as const) {
      const random = seededRandom(`holders-all-${n}-${k}`);
      const graph = buildNeighbourGraph(random(new Uint8Array(32)), n, k);
      const chooser = new HolderSetChooser(graph, k + 1);
      const shares = new RevealedShares(graph);
      const secrets = Array.from({ length: n + 1 }, () => random(new Uint8Array(32)));
      for (let u = 1; u <= n; u++) for (const share of splitSecret(secrets[u]!, k + 1, [u, ...graph.neighbours(u)], random)) shares.addFrom(share.x, [[u, shareValue(share.y)]]);
      for (const u of chooser.inCircleOrder(Array.from({ length: n }, (_, i) => i + 1))) {
        expect(new Set(chooser.choose(u, shares).xs)).toEqual(new Set([u, ...graph.neighbours(u)]));
        expect(hex(chooser.reconstruct(u, shares))).toBe(hex(secrets[u]!));
      }
      expect(chooser.computed).toBe(k === n - 1 ? 1 : n);
    }
  });

  it('keeps a holder\'s shares only of itself and its neighbours, once each, and all or nothing', () => {
    const graph = buildNeighbourGraph(seededRandom('holders-refuse')(new Uint8Array(32)), 30, 6);
    const shares = new RevealedShares(graph);
    const [a, b] = graph.neighbours(1) as [number, number];
    const stranger = Array.from({ length: 30 }, (_, i) => i + 1).find((v) => v !== 1 && !graph.isNeighbour(1, v))!;
    expect(() => shares.addFrom(1, [[a, 5n], [stranger, 5n]])).toThrow(`client 1 holds no share of client ${stranger}`);
    expect(shares.count(a)).toBe(0);
    expect(() => shares.addFrom(1, [[a, 5n], [a, 6n]])).toThrow('client 1 revealed a share of one client twice');
    expect(shares.count(a)).toBe(0);
    shares.addFrom(1, [[1, 4n], [a, 5n]]);
    expect(() => shares.addFrom(1, [[b, 6n], [a, 6n]])).toThrow(`client 1 already revealed its share of client ${a}`);
    expect([shares.count(1), shares.count(a), shares.count(b)]).toEqual([1, 1, 0]);
  });

  it('does not reuse a set for an owner one of whose holders revealed nothing to it', () => {
    const [n, k, t] = [40, 10, 6];
    const random = seededRandom('holders-partial');
    const graph = buildNeighbourGraph(random(new Uint8Array(32)), n, k);
    const shares = new RevealedShares(graph);
    const owners = Array.from({ length: n }, (_, i) => graph.indexAt(i));
    const [first, second] = owners as [number, number];
    const secrets = new Map(owners.map((u) => [u, random(new Uint8Array(32))] as const));
    const reveal = (u: number, except?: number) => {
      for (const share of splitSecret(secrets.get(u)!, t, [u, ...graph.neighbours(u)], random)) if (share.x !== except) shares.addFrom(share.x, [[u, shareValue(share.y)]]);
    };
    reveal(first);
    const chooser = new HolderSetChooser(graph, t);
    const firstSet = chooser.choose(first, shares).xs;
    // A holder in the first owner's set, also a holder of the next owner on the circle, reveals
    // nothing for that next owner: the set must not be reused for it.
    const silent = firstSet.find((h) => h !== second && graph.isNeighbour(second, h))!;
    expect(silent).toBeDefined();
    reveal(second, silent);
    const secondSet = chooser.choose(second, shares).xs;
    expect(secondSet).not.toContain(silent);
    expect(secondSet).not.toBe(firstSet);
    expect(hex(chooser.reconstruct(first, shares))).toBe(hex(secrets.get(first)!));
    expect(hex(chooser.reconstruct(second, shares))).toBe(hex(secrets.get(second)!));
  });

  it('refuses fewer than t holders, naming the argument', () => {
    const graph = buildNeighbourGraph(seededRandom('holders-few')(new Uint8Array(32)), 20, 8);
    const holders = [1, ...graph.neighbours(1).slice(0, 2)];
    expect(() => new HolderSetChooser(graph, 5).choose(1, revealed(graph, new Map([[1, holders]])))).toThrow('"holders" expected at least t=5 holders, got 3');
    expect(() => new HolderSetChooser(graph, 5).choose(2, revealed(graph, new Map()))).toThrow('"holders" expected at least t=5 holders, got 0');
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

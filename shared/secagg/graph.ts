/**
 * The public neighbour graph of SecAgg+ (Bell et al. 2020, Sec. 3): a random Harary graph. Clients
 * sit on a circle in an order drawn from the public seed (Fisher-Yates over an XSalsa20 keystream),
 * and each is joined to its floor(k/2) nearest positions on either side, plus the antipodal position
 * when k is odd (which needs n even). Every client has exactly k neighbours; with k = n - 1 this is
 * the complete graph of the original protocol (Bonawitz et al. 2017). Client and server both derive
 * it from the seed, so the server cannot steer who is whose neighbour.
 */
import { expectBytes, expectInteger, utf8 } from './bytes.ts';
import { xsalsa20Words } from './xsalsa20.ts';

export const GRAPH_SEED_BYTES = 32;
const GRAPH_NONCE = (() => {
  const nonce = new Uint8Array(24);
  nonce.set(utf8('portrait/secagg+/graph'));
  return nonce;
})();

export interface NeighbourGraph {
  readonly n: number;
  readonly k: number;
  /** Sorted neighbour indices of client `index` (1-based), never including `index` itself. */
  neighbours(index: number): readonly number[];
  isNeighbour(a: number, b: number): boolean;
  /** Position 0..n-1 of client `index` on the circle: neighbours are the floor(k/2) nearest positions each way. */
  position(index: number): number;
  /** The client at `position` 0..n-1 of the circle (the inverse of `position`). */
  indexAt(position: number): number;
}

/** Structural checks on (n, k), with messages naming the field. */
export function checkGraphDegree(n: number, k: number): void {
  expectInteger('n', n, 3, 1_000_000);
  expectInteger('k', k, 2, n - 1);
  if (k % 2 === 1 && n % 2 === 1) {
    throw new RangeError(`"k" must be even when n is odd (a k-regular graph on ${n} nodes needs n*k even), got k=${k}`);
  }
}

/** Uniform permutation of 1..n from the seed, by Fisher-Yates with rejection sampling. */
export function seededPermutation(seed: Uint8Array, n: number): number[] {
  expectBytes('seed', seed, GRAPH_SEED_BYTES);
  let stream = xsalsa20Words(seed, GRAPH_NONCE, 2 * n + 64);
  let next = 0;
  const draw = (): number => {
    if (next === stream.length) stream = xsalsa20Words(seed, GRAPH_NONCE, stream.length * 2);
    return stream[next++]!;
  };
  const order = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = n - 1; i > 0; i--) {
    const range = i + 1;
    const limit = Math.floor(0x1_0000_0000 / range) * range;
    let w = draw();
    while (w >= limit) w = draw();
    const j = w % range;
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** The neighbours of the client at position p of the circle `order` (Harary graph, Bell et al. 2020, Sec. 3), sorted. */
function hararyNeighbours(order: readonly number[], p: number, k: number): number[] {
  const n = order.length;
  const list: number[] = [];
  for (let d = 1; d <= Math.floor(k / 2); d++) list.push(order[(p + d) % n]!, order[(p - d + n) % n]!);
  if (k % 2 === 1) list.push(order[(p + n / 2) % n]!);
  return list.sort((a, b) => a - b);
}

/**
 * One client's view of the graph: its sorted neighbours only, O(n) for the permutation plus O(k log k),
 * instead of the whole graph's O(n k) lists and sets, so a client's cost stays O(k) = O(log n) apart
 * from that one linear pass over the seed's permutation. Equal to `buildNeighbourGraph(...).neighbours(index)`.
 */
export function neighboursOf(seed: Uint8Array, n: number, k: number, index: number): number[] {
  checkGraphDegree(n, k);
  expectInteger('index', index, 1, n);
  const order = seededPermutation(seed, n);
  return hararyNeighbours(order, order.indexOf(index), k);
}

export function buildNeighbourGraph(seed: Uint8Array, n: number, k: number): NeighbourGraph {
  checkGraphDegree(n, k);
  const order = seededPermutation(seed, n);
  const lists: number[][] = Array.from({ length: n + 1 }, () => []);
  for (let p = 0; p < n; p++) lists[order[p]!] = hararyNeighbours(order, p, k);
  const sets = lists.map((l) => new Set(l));
  const positions = new Array<number>(n + 1).fill(-1);
  order.forEach((index, p) => (positions[index] = p));
  return {
    n,
    k,
    neighbours(index) {
      expectInteger('index', index, 1, n);
      return lists[index]!;
    },
    isNeighbour(a, b) {
      return a >= 1 && a <= n && sets[a]!.has(b);
    },
    position(index) {
      expectInteger('index', index, 1, n);
      return positions[index]!;
    },
    indexAt(position) {
      expectInteger('position', position, 0, n - 1);
      return order[position]!;
    },
  };
}

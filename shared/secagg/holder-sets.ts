/**
 * Which t shares rebuild each secret at unmask (Bonawitz et al. 2017, Sec. 4, Round 4, over Bell et
 * al. 2020's Harary graph, Sec. 3). Any t live holders rebuild the same secret, so the server may
 * pick them to share Lagrange coefficients: in the random graph every client's holders differ, but a
 * client's holders are the window of floor(k/2) circle positions either side of it, and owners taken
 * in circle order keep a set chosen from the window's forward end valid for about k - t / (1 - dropout)
 * further owners. At n = 1,000 (k = 114, t = 80, 10% dropout) this needs ~40 coefficient sets instead of
 * 1,000 (each `lagrangeAtZero` with t = 80 costs ~0.7 ms here). Nothing about what is revealed changes:
 * the server already holds every revealed share; it only chooses which t to interpolate.
 */
import type { NeighbourGraph } from './graph.ts';
import { lagrangeAtZero } from './shamir.ts';

export interface HolderSet {
  /** The t chosen evaluation points (holder indices), ascending. */
  readonly xs: readonly number[];
  /** Their Lagrange coefficients at 0, in the same order. */
  readonly coefficients: readonly bigint[];
}

/** Chosen sets kept for reuse: the owner just before in circle order almost always fits the last one. */
const RECENT = 4;

export class HolderSetChooser {
  readonly #graph: NeighbourGraph;
  readonly #t: number;
  readonly #recent: HolderSet[] = [];
  #computed = 0;

  constructor(graph: NeighbourGraph, t: number) {
    this.#graph = graph;
    this.#t = t;
  }

  /** Coefficient sets computed so far (for the benchmark's breakdown). */
  get computed(): number {
    return this.#computed;
  }

  /** Owners in circle order: consecutive owners then share most of their holders. */
  inCircleOrder(owners: readonly number[]): number[] {
    return [...owners].sort((a, b) => this.#graph.position(a) - this.#graph.position(b));
  }

  /**
   * t of `holders` (those that revealed a share of `owner`'s secret) with their coefficients: a
   * recent set if it lies within them, else the t holders furthest ahead of `owner` on the circle
   * (the antipodal neighbour of odd k last), which the next owners' windows still contain.
   */
  choose(owner: number, holders: Pick<ReadonlySet<number>, 'has' | 'size' | 'keys'>): HolderSet {
    if (holders.size < this.#t) throw new RangeError(`"holders" expected at least t=${this.#t} holders, got ${holders.size}`);
    for (const set of this.#recent) if (set.xs.every((x) => holders.has(x))) return set;
    const { n, k } = this.#graph;
    const origin = this.#graph.position(owner);
    const reach = Math.floor(k / 2);
    const ahead = (v: number): number => {
      let offset = (this.#graph.position(v) - origin + n) % n;
      if (offset > n / 2) offset -= n;
      return Math.abs(offset) <= reach ? offset : -n;
    };
    const xs = [...holders.keys()].sort((a, b) => ahead(b) - ahead(a)).slice(0, this.#t).sort((a, b) => a - b);
    const set: HolderSet = { xs, coefficients: lagrangeAtZero(xs) };
    this.#computed++;
    this.#recent.unshift(set);
    if (this.#recent.length > RECENT) this.#recent.pop();
    return set;
  }
}

/**
 * Which t shares rebuild each secret at unmask (Bonawitz et al. 2017, Sec. 4, Round 4, over Bell et
 * al. 2020's Harary graph, Sec. 3). Any t live holders rebuild the same secret, so the server may
 * pick them to share Lagrange coefficients: in the random graph every client's holders differ, but a
 * client's holders are the window of floor(k/2) circle positions either side of it, and owners taken
 * in circle order keep a set chosen from the window's forward end valid for about k - t / (1 - dropout)
 * further owners. At n = 1,000 (k = 114, t = 80) this needs ~30-40 coefficient sets instead of 1,000
 * (each `lagrangeAtZero` with t = 80 costs 0.15-0.3 ms here). Nothing about what is revealed changes:
 * the server already holds every revealed share; it only chooses which t to interpolate.
 *
 * Revealed values are kept by their holder's slot in the owner's window (offset on the circle), not
 * in a map by holder index: checking that a set lies within an owner's revealed shares and reading
 * its t values are then array reads, which at P = 10^4 was most of the main thread's unmask work
 * (docs/secagg.md, "Unmask bookkeeping by circle slots").
 */
import type { NeighbourGraph } from './graph.ts';
import { lagrangeAtZero, secretFromSum } from './shamir.ts';

export interface HolderSet {
  /** The t chosen evaluation points (holder indices), in the order of `positions`. */
  readonly xs: readonly number[];
  /** Their circle positions, backward-most first. */
  readonly positions: Int32Array;
  /** Their Lagrange coefficients at 0, in the same order. */
  readonly coefficients: readonly bigint[];
}

/** An owner's window on the circle: slot reach + d holds the client d positions ahead (-reach..reach), slot 2 reach + 1 the antipodal one of odd k. */
class Windows {
  readonly n: number;
  readonly reach: number;
  readonly slots: number;
  readonly #antipodal: boolean;

  constructor(n: number, k: number) {
    this.n = n;
    this.reach = Math.floor(k / 2);
    this.#antipodal = k % 2 === 1;
    this.slots = k + 1;
  }

  /** The slot of the client at `position` in the window of the owner at `origin`, or -1 when it is no holder of that owner. */
  slot(origin: number, position: number): number {
    const n = this.n;
    let d = position - origin;
    if (2 * d > n) d -= n;
    else if (2 * d <= -n) d += n;
    if (d <= this.reach && d >= -this.reach) return d + this.reach;
    return this.#antipodal && 2 * d === n ? this.slots - 1 : -1;
  }

  /** The circle position at `slot` of the owner at `origin`. */
  position(origin: number, slot: number): number {
    const d = slot === this.slots - 1 && this.#antipodal ? this.n / 2 : slot - this.reach;
    return (((origin + d) % this.n) + this.n) % this.n;
  }
}

/** Revealed share values of one kind of secret (self-mask seeds or mask keys), by owner, then by the holder's slot in the owner's window. */
export class RevealedShares {
  readonly #graph: NeighbourGraph;
  readonly #windows: Windows;
  readonly #byOwner = new Map<number, { values: (bigint | undefined)[]; count: number }>();

  constructor(graph: NeighbourGraph) {
    this.#graph = graph;
    this.#windows = new Windows(graph.n, graph.k);
  }

  /**
   * Keeps y = f(holder) of each owner's polynomial from one holder, all or nothing: every owner must
   * be the holder or one of its neighbours, each revealed once, or nothing is kept (RangeError).
   * `slots` are `check`'s answer for these owners when the caller has it already.
   */
  addFrom(holder: number, values: readonly (readonly [owner: number, value: bigint])[], slots = this.check(holder, values.map(([owner]) => owner))): void {
    values.forEach(([owner, value], j) => {
      let entry = this.#byOwner.get(owner);
      if (entry === undefined) this.#byOwner.set(owner, (entry = { values: new Array<bigint | undefined>(this.#windows.slots).fill(undefined), count: 0 }));
      entry.values[slots[j]!] = value;
      entry.count++;
    });
  }

  /** The slots `addFrom(holder, ...)` would fill for `owners`; throws (RangeError) where it would refuse. */
  check(holder: number, owners: readonly number[]): number[] {
    const origin = this.#graph.position(holder);
    if (new Set(owners).size !== owners.length) throw new RangeError(`client ${holder} revealed a share of one client twice`);
    return owners.map((owner) => {
      const slot = this.#windows.slot(this.#graph.position(owner), origin);
      if (slot < 0) throw new RangeError(`client ${holder} holds no share of client ${owner}`);
      if (this.#byOwner.get(owner)?.values[slot] !== undefined) throw new RangeError(`client ${holder} already revealed its share of client ${owner}`);
      return slot;
    });
  }

  /** How many holders revealed a share of `owner`'s secret. */
  count(owner: number): number {
    return this.#byOwner.get(owner)?.count ?? 0;
  }

  /** The values by slot (undefined where nothing was revealed), or undefined when nothing was. */
  valuesOf(owner: number): readonly (bigint | undefined)[] | undefined {
    return this.#byOwner.get(owner)?.values;
  }

  clear(): void {
    this.#byOwner.clear();
  }
}

/** Chosen sets kept for reuse: the owner just before in circle order almost always fits the last one. */
const RECENT = 4;

export class HolderSetChooser {
  readonly #graph: NeighbourGraph;
  readonly #windows: Windows;
  readonly #t: number;
  readonly #recent: HolderSet[] = [];
  /** The chosen set's slots in the current owner's window (scratch, reused). */
  readonly #slots: Int32Array;
  #computed = 0;

  constructor(graph: NeighbourGraph, t: number) {
    this.#graph = graph;
    this.#windows = new Windows(graph.n, graph.k);
    this.#t = t;
    this.#slots = new Int32Array(t);
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
   * t holders that revealed a share of `owner`'s secret, with their coefficients: a recent set if it
   * lies within them, else the t furthest ahead of `owner` on the circle (the antipodal neighbour of
   * odd k last), which the next owners' windows still contain. Leaves the set's slots in #slots.
   */
  choose(owner: number, shares: RevealedShares): HolderSet {
    const values = shares.valuesOf(owner) ?? [];
    const count = shares.count(owner);
    if (count < this.#t) throw new RangeError(`"holders" expected at least t=${this.#t} holders, got ${count}`);
    const origin = this.#graph.position(owner);
    for (const set of this.#recent) if (this.#fits(set, origin, values)) return set;
    const { slots, reach } = this.#windows;
    const chosen: number[] = [];
    for (let s = 2 * reach; s >= 0 && chosen.length < this.#t; s--) if (values[s] !== undefined) chosen.push(s);
    // count >= t, so if the window's 2 reach + 1 slots fall short the antipodal one was revealed
    if (chosen.length < this.#t && values[slots - 1] !== undefined && slots > 2 * reach + 1) chosen.unshift(slots - 1);
    chosen.reverse(); // backward-most first: a set that no longer fits a later owner fails at its first slot
    const positions = Int32Array.from(chosen, (s) => this.#windows.position(origin, s));
    const xs = Array.from(positions, (p) => this.#graph.indexAt(p));
    const set: HolderSet = { xs, positions, coefficients: lagrangeAtZero(xs) };
    this.#computed++;
    this.#recent.unshift(set);
    if (this.#recent.length > RECENT) this.#recent.pop();
    if (chosen.length !== this.#t || !this.#fits(set, origin, values)) throw new Error(`holder set of client ${owner} does not fit its revealed shares`);
    return set;
  }

  /** `owner`'s 32-byte secret sum_j lambda_j y_j over a chosen set (one reduction for the whole sum; `secretFromSum` refuses inconsistent shares). */
  reconstruct(owner: number, shares: RevealedShares): Uint8Array {
    const { coefficients } = this.choose(owner, shares);
    const values = shares.valuesOf(owner)!;
    const slots = this.#slots;
    let sum = 0n;
    for (let j = 0; j < coefficients.length; j++) sum += values[slots[j]!]! * coefficients[j]!;
    return secretFromSum(sum);
  }

  /** Whether every holder of `set` revealed a share to the owner at `origin`; if so its slots are left in #slots. */
  #fits(set: HolderSet, origin: number, values: readonly (bigint | undefined)[]): boolean {
    const slots = this.#slots;
    for (let j = 0; j < set.positions.length; j++) {
      const slot = this.#windows.slot(origin, set.positions[j]!);
      if (slot < 0 || values[slot] === undefined) return false;
      slots[j] = slot;
    }
    return true;
  }
}

/** The public per-round SecAgg+ configuration both state machines start from, with its structural checks. */
import { expectBytes, expectInteger } from './bytes.ts';
import { checkGraphDegree, GRAPH_SEED_BYTES } from './graph.ts';
import { PRG_NAMES, type PrgName } from './prg.ts';

export interface SecAggRoundConfig {
  readonly roundId: string;
  /** Cohort size; clients are indexed 1..n (their Shamir evaluation points). */
  readonly n: number;
  /** Neighbour degree; k = n - 1 is the complete graph. */
  readonly k: number;
  /** Shamir threshold over the k + 1 holders {u} + N(u). */
  readonly t: number;
  /** Public seed of the random Harary graph, chosen by the coordinator. */
  readonly graphSeed: Uint8Array;
  /** P: number of Z_2^32 coordinates per input. */
  readonly vectorLength: number;
  readonly prg: PrgName;
}

export const MAX_VECTOR_LENGTH = 2 ** 28;

/**
 * Structural checks only (graph exists, 2t > k + 1 so honest holders cannot be split into two
 * t-sets, t <= k so a dropped client's key is recoverable). Whether (k, t) is safe for a given
 * dropout / collusion model is `chooseParameters`' job, which the round runner calls first.
 */
export function checkRoundConfig(config: SecAggRoundConfig): SecAggRoundConfig {
  if (typeof config.roundId !== 'string' || config.roundId.length === 0 || config.roundId.length > 200) {
    throw new RangeError(`"roundId" expected a string of 1-200 characters, got ${JSON.stringify(config.roundId)}`);
  }
  checkGraphDegree(config.n, config.k);
  expectInteger('t', config.t, Math.floor((config.k + 1) / 2) + 1, config.k);
  expectBytes('graphSeed', config.graphSeed, GRAPH_SEED_BYTES);
  expectInteger('vectorLength', config.vectorLength, 1, MAX_VECTOR_LENGTH);
  if (!PRG_NAMES.includes(config.prg)) throw new RangeError(`"prg" expected one of ${PRG_NAMES.join(', ')}, got ${String(config.prg)}`);
  return config;
}

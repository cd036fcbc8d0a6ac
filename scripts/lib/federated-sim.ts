/**
 * An in-process federated simulation for tuning and privacy-utility runs: the same shared code
 * paths as a real coordinator round (computeLocalUpdate on each device; the accumulator's capped
 * example weighting, or in DP rounds privatiseUpdate → modular sum → decodeAggregate → uniform
 * mean; then serverStep), minus sockets, deadlines and storage. One LayersModel is reused for
 * every device, as each real device loads the same global weights into its own copy.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Example } from '../../shared/features/examples.ts';
import { computeLocalUpdate } from '../../shared/model/federated.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';
import type { AggregationConfig, TrainConfig } from '../../shared/protocol/messages.ts';
import { l2Norm } from '../../shared/privacy/clip.ts';
import type { PrivacyConfig } from '../../shared/privacy/config.ts';
import { decodeAggregate, privatiseUpdate } from '../../shared/privacy/mechanism.ts';
import { addModular } from '../../shared/privacy/modular.ts';
import type { RandomSource } from '../../shared/privacy/random.ts';
import { randomSigns } from '../../shared/privacy/rotation.ts';
import { uniformMean, UpdateAccumulator } from '../../server/aggregation/accumulator.ts';
import { serverStep } from '../../server/aggregation/server-optimizer.ts';

/** One simulated device: one user's local examples. */
export interface SimClient {
  userId: string;
  examples: readonly Example[];
}

/** Groups examples by user, in order of first appearance: one device per user. */
export function clientsFromExamples(examples: readonly Example[]): SimClient[] {
  const byUser = new Map<string, Example[]>();
  for (const e of examples) {
    const list = byUser.get(e.userId);
    if (list) list.push(e);
    else byUser.set(e.userId, [e]);
  }
  return [...byUser].map(([userId, list]) => ({ userId, examples: list }));
}

export type SimSelection = { method: 'fixed'; clientsPerRound: number } | { method: 'poisson'; rate: number };

export interface SimPrivacy {
  config: PrivacyConfig;
  /** The devices' CSPRNG (noise, rounding) and the coordinator's (rotation signs); seeded in tests. */
  random: RandomSource;
}

export interface FederatedSimOptions {
  train: TrainConfig;
  aggregation: AggregationConfig;
  selection: SimSelection;
  /**
   * Uniform draws in [0, 1) for cohort selection. Poisson sampling is what privacy amplification
   * is claimed for, so DP runs pass a crypto.getRandomValues source (the coordinator's
   * `cryptoUniform`); tests may pass a seeded one.
   */
  selectionUniform: () => number;
  /** Absent: a plain (mode `none`) round with FedAvg's capped example weighting. */
  privacy?: SimPrivacy;
  /** The first round's id; a device shuffles its examples with the round id as seed, as in client/core. */
  firstRoundId?: number;
}

export interface SimRoundResult {
  roundId: number;
  status: 'committed' | 'aborted';
  reason?: string;
  participants: number;
  updateNorm: number;
  meanLocalLoss: number;
  /** Mean L2 norm of the devices' raw (unclipped) deltas: what a clip norm is chosen against. */
  meanClientNorm: number;
}

export class FederatedSimulation {
  private current: Float32Array;
  private optimizerState: Uint8Array | undefined;
  private nextRoundId: number;

  constructor(
    private readonly model: tf.LayersModel,
    private readonly config: ModelConfig,
    initialWeights: Float32Array,
    private readonly clients: readonly SimClient[],
    private readonly options: FederatedSimOptions,
  ) {
    if (clients.length === 0) throw new RangeError('"clients" expected at least one client, got 0');
    const s = options.selection;
    if (s.method === 'fixed' && !(Number.isInteger(s.clientsPerRound) && s.clientsPerRound >= 1 && s.clientsPerRound <= clients.length)) {
      throw new RangeError(`"clientsPerRound" expected an integer in [1, ${clients.length}], got ${s.clientsPerRound}`);
    }
    if (s.method === 'poisson' && !(s.rate > 0 && s.rate <= 1)) throw new RangeError(`"rate" expected a number in (0, 1], got ${s.rate}`);
    if (options.privacy && options.privacy.config.dimension !== initialWeights.length) {
      throw new RangeError(`"privacy.config.dimension" expected ${initialWeights.length}, got ${options.privacy.config.dimension}`);
    }
    this.current = Float32Array.from(initialWeights);
    this.nextRoundId = options.firstRoundId ?? 1;
  }

  get weights(): Float32Array {
    return this.current;
  }

  /** This round's cohort: a uniform fixed-size subset, or each client independently with probability q. */
  private cohort(): SimClient[] {
    const s = this.options.selection;
    if (s.method === 'poisson') return this.clients.filter(() => this.options.selectionUniform() < s.rate);
    if (s.clientsPerRound === this.clients.length) return [...this.clients];
    const pool = [...this.clients];
    for (let i = 0; i < s.clientsPerRound; i++) {
      const j = i + Math.floor(this.options.selectionUniform() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j] as SimClient, pool[i] as SimClient];
    }
    return pool.slice(0, s.clientsPerRound);
  }

  async runRound(): Promise<SimRoundResult> {
    const roundId = this.nextRoundId++;
    const cohort = this.cohort().filter((c) => c.examples.length > 0);
    const privacy = this.options.privacy;
    const minimum = privacy && privacy.config.mode === 'distributed' ? privacy.config.minSurvivors : 1;
    if (cohort.length < minimum) {
      return { roundId, status: 'aborted', reason: `too few survivors: ${cohort.length} updates, fewer than ${minimum}`, participants: cohort.length, updateNorm: 0, meanLocalLoss: Number.NaN, meanClientNorm: Number.NaN };
    }
    const accumulator = privacy ? null : new UpdateAccumulator(this.current.length, this.options.aggregation.exampleCap);
    const dp = privacy ? { sum: new Uint32Array(privacy.config.paddedDimension), signs: randomSigns(privacy.config.paddedDimension, privacy.random) } : null;
    let lossSum = 0;
    let normSum = 0;
    try {
      for (const client of cohort) {
        const update = await computeLocalUpdate(this.model, this.config, this.current, client.examples, { ...this.options.train, shuffleSeed: roundId });
        lossSum += update.loss;
        normSum += l2Norm(update.delta);
        if (privacy && dp) addModular(dp.sum, privatiseUpdate(update.delta, privacy.config, privacy.config.rotation ? dp.signs : null, privacy.random));
        else accumulator?.add(update.delta, update.examples);
      }
      const mean = privacy && dp ? uniformMean(decodeAggregate(dp.sum, privacy.config, privacy.config.rotation ? dp.signs : null), cohort.length) : (accumulator as UpdateAccumulator).mean();
      let step;
      try {
        step = serverStep(this.options.aggregation, this.current, mean, this.optimizerState);
      } finally {
        mean.dispose();
      }
      this.current = step.weights;
      this.optimizerState = step.state.byteLength > 0 ? step.state : undefined;
      return { roundId, status: 'committed', participants: cohort.length, updateNorm: step.updateNorm, meanLocalLoss: lossSum / cohort.length, meanClientNorm: normSum / cohort.length };
    } finally {
      accumulator?.dispose();
    }
  }
}

/**
 * The model registry: the current global model (config + flat weights) over a ModelStore. It
 * creates version 1 from an initial config when the store is empty, commits each round's new
 * weights as the next version, and scores versions on the held-out evaluation set. One tfjs
 * LayersModel is kept for saving and scoring, so no tensors accumulate across rounds.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Example } from '../shared/features/examples.ts';
import { modelFromFiles, modelToFiles } from '../shared/model/artifacts.ts';
import { buildModel } from '../shared/model/build.ts';
import { scoreModel } from '../shared/model/evaluate.ts';
import type { HeadScores } from '../shared/model/evaluate.ts';
import type { ModelConfig } from '../shared/model/spec.ts';
import { flattenWeights, parameterCount, setFlatWeights } from '../shared/model/weights.ts';
import { ProtocolError } from '../shared/protocol/errors.ts';
import type { ModelRecord, ServingPointer } from '../shared/protocol/messages.ts';
import type { Fence, ModelStore } from './storage/stores.ts';

export interface InitialModel {
  config: ModelConfig;
  seed: number;
}

export interface CurrentModel {
  record: ModelRecord;
  config: ModelConfig;
  weights: Float32Array;
}

export class ModelRegistry {
  private constructor(
    readonly store: ModelStore,
    private model: tf.LayersModel,
    private currentModel: CurrentModel,
    private pointer: ServingPointer | null,
  ) {}

  /** The serving pointer (which version devices profile with); null: never set, the latest. */
  get serving(): ServingPointer | null {
    return this.pointer;
  }

  /** Stores a new serving pointer (durable when it resolves) and makes it the one announced. */
  async setServing(pointer: ServingPointer): Promise<void> {
    await this.store.setServing(pointer);
    this.pointer = pointer;
  }

  static async open(store: ModelStore, initial: InitialModel | undefined, now: () => string): Promise<ModelRegistry> {
    const latest = await store.latest();
    if (latest) {
      const files = await store.files(latest.version);
      if (!files) throw new Error(`model version ${latest.version} has a record but no files`);
      const { model, config } = await modelFromFiles(files);
      return new ModelRegistry(store, model, { record: latest, config, weights: flattenWeights(model) }, await store.serving());
    }
    if (!initial) throw new ProtocolError('UNAVAILABLE', 'the model store is empty and no initial model config was given');
    const model = buildModel(initial.config, initial.seed);
    const files = await modelToFiles(model, initial.config);
    const record = await store.add({ files, roundId: null, parentVersion: null, parameters: parameterCount(model) }, now());
    return new ModelRegistry(store, model, { record, config: initial.config, weights: flattenWeights(model) }, await store.serving());
  }

  /**
   * Takes in what other cluster nodes stored since (a version committed or bootstrapped there, a
   * promotion or rollout): the latest version and the serving pointer are read again from the
   * store. Returns whether the latest version changed.
   */
  async refresh(): Promise<boolean> {
    this.pointer = await this.store.serving();
    const latest = await this.store.latest();
    if (!latest || latest.version === this.currentModel.record.version) return false;
    const files = await this.store.files(latest.version);
    if (!files) throw new Error(`model version ${latest.version} has a record but no files`);
    const { model, config } = await modelFromFiles(files);
    this.model.dispose();
    this.model = model;
    this.currentModel = { record: latest, config, weights: flattenWeights(model) };
    return true;
  }

  get current(): CurrentModel {
    return this.currentModel;
  }

  get parameters(): number {
    return this.currentModel.weights.length;
  }

  /** Stores `weights` as the next version (atomically, files before record) and makes it current. */
  async commit(weights: Float32Array, roundId: number, optimizerState: Uint8Array, createdAt: string, fence?: Fence): Promise<ModelRecord> {
    setFlatWeights(this.model, weights);
    const files = await modelToFiles(this.model, this.currentModel.config);
    const newModel = { files, roundId, parentVersion: this.currentModel.record.version, parameters: weights.length };
    const record = await this.store.add(optimizerState.byteLength > 0 ? { ...newModel, optimizerState } : newModel, createdAt, fence);
    this.currentModel = { record, config: this.currentModel.config, weights: Float32Array.from(weights) };
    return record;
  }

  /**
   * Stores a bootstrap version: fresh weights (seeded) for `config`, whose vocabulary was built
   * from the released analytics rounds `derivedFrom`, and makes it current. No round trained it,
   * so it has no parent; its publication entry names those rounds instead (server/ledger).
   */
  async bootstrap(config: ModelConfig, seed: number, derivedFrom: readonly number[], createdAt: string): Promise<ModelRecord> {
    if (derivedFrom.length === 0) throw new RangeError('"derivedFrom" expected at least one analytics round');
    const model = buildModel(config, seed);
    try {
      const files = await modelToFiles(model, config);
      const weights = flattenWeights(model);
      const record = await this.store.add({ files, roundId: null, parentVersion: null, parameters: weights.length, derivedFrom: [...derivedFrom] }, createdAt);
      this.model.dispose();
      this.model = model;
      this.currentModel = { record, config, weights };
      return record;
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  /** Scores the current weights on held-out examples (metric names of the evaluate command). */
  evaluate(examples: readonly Example[]): HeadScores {
    setFlatWeights(this.model, this.currentModel.weights);
    return scoreModel(this.model, this.currentModel.config, examples);
  }

  dispose(): void {
    this.model.dispose();
  }
}

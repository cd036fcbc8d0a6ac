/**
 * The two portrait architectures as tfjs LayersModels with one output per head:
 *  - `mlp`: the seed article's Dense 64 relu → Dense 32 relu → heads, over the flat features;
 *  - `gru`: a GRU over the last N events (category embedding, event type, log price, age).
 * The `interests` head adds a per-category scorer to the trunk's logits: one small network,
 * shared by every category, reads that category's own signals (share and decayed share of the
 * user's history, and both scaled by log activity) and adds its score to the category's logit, in
 * the spirit of the wide part of Cheng et al. 2016 ("Wide & Deep Learning for Recommender
 * Systems", Sec. 3). Through the 32-unit trunk alone the head cannot carry a per-category "you
 * looked at it, you will look again" signal for 50 categories, and it lost to the own-history
 * heuristic on recall@5; sharing the scorer across categories generalises where a full
 * share→category matrix overfits. Optionally (`ownHistoryPrior`, off by default) the scorer is a
 * residual over the own-history score, starting at exactly the heuristic's ranking; on Tianchi it
 * did not beat the heuristic on recall@5 (docs/model.md), so the default model does not use it.
 * The category embedding is a bias-free Dense layer over one-hot slots rather than an Embedding
 * layer: tfjs-backend-wasm has no gradient kernel for Embedding's gather (UnsortedSegmentSum),
 * and the two are the same linear map.
 */
import * as tf from '@tensorflow/tfjs';
import { CATEGORY_SIGNAL_CHANNELS, featureBlocks, interestSlots, SEQUENCE_EVENT_CHANNELS } from '../features/extract.ts';
import type { ModelConfig } from './spec.ts';
import { headSpecs, headUnits } from './spec.ts';

export const EMBEDDING_UNITS = 16;
export const GRU_UNITS = 32;
/** Dropout on the MLP trunk: with ~3k training examples on Tianchi the trunk overfits without it. */
export const DROPOUT = 0.3;

export const CATEGORY_SCORER_UNITS = 8;
/** The category-signal channel holding log((n_c + p_c) / (N + 1)), the smoothed own-history score. */
export const OWN_HISTORY_CHANNEL = 3;
const OWN_HISTORY_PRIOR_LAYER = 'own_history_prior';

/** Every kernel is seeded, so a model (and a training run on a given backend) is reproducible from its seed. */
type SeededInit = (offset: number) => ReturnType<typeof tf.initializers.glorotUniform>;

/** Head kernels take seeds from 100 up, clear of the trunk's. */
function heads(config: ModelConfig, trunk: tf.SymbolicTensor, categorySignals: tf.SymbolicTensor, init: SeededInit, ownHistoryPrior: boolean): tf.SymbolicTensor[] {
  return headSpecs(config).map((spec, h) => {
    if (spec.name !== 'interests') {
      return tf.layers
        .dense({ units: headUnits(spec), activation: spec.kind === 'multiclass' ? 'softmax' : 'sigmoid', kernelInitializer: init(100 + h), name: `head_${spec.name}` })
        .apply(trunk) as tf.SymbolicTensor;
    }
    const k = headUnits(spec);
    let deep = tf.layers.dense({ units: k, kernelInitializer: init(90), name: 'interests_deep' }).apply(trunk) as tf.SymbolicTensor;
    deep = tf.layers.reshape({ targetShape: [k, 1], name: 'interests_deep_per_category' }).apply(deep) as tf.SymbolicTensor;
    const perCategory = tf.layers.concatenate({ name: 'interests_per_category' }).apply([categorySignals, deep]) as tf.SymbolicTensor;
    let own = tf.layers.dense({ units: CATEGORY_SCORER_UNITS, activation: 'relu', kernelInitializer: init(91), name: 'category_scorer_hidden' }).apply(perCategory) as tf.SymbolicTensor;
    if (ownHistoryPrior) {
      // Residual over the own-history heuristic: a linear read of the category signals starts as
      // exactly the log own-history score (channel OWN_HISTORY_CHANNEL), and the scorer, whose
      // output starts at zero, learns what to add to it. The untrained model ranks as the heuristic.
      own = tf.layers.dense({ units: 1, kernelInitializer: 'zeros', name: 'category_scorer' }).apply(own) as tf.SymbolicTensor;
      const prior = tf.layers.dense({ units: 1, useBias: false, kernelInitializer: 'zeros', name: OWN_HISTORY_PRIOR_LAYER }).apply(categorySignals) as tf.SymbolicTensor;
      own = tf.layers.add({ name: 'interests_residual' }).apply([prior, own]) as tf.SymbolicTensor;
    } else {
      own = tf.layers.dense({ units: 1, kernelInitializer: init(92), name: 'category_scorer' }).apply(own) as tf.SymbolicTensor;
    }
    const logits = tf.layers.flatten({ name: 'interests_logits' }).apply(own) as tf.SymbolicTensor;
    return tf.layers.activation({ activation: 'sigmoid', name: 'head_interests' }).apply(logits) as tf.SymbolicTensor;
  });
}

export interface BuildOptions {
  /** MLP only: the interests scorer learns a residual over the own-history score (see heads). */
  ownHistoryPrior: boolean;
}

export const DEFAULT_BUILD: BuildOptions = { ownHistoryPrior: false };

export function buildModel(config: ModelConfig, seed = 1, options: BuildOptions = DEFAULT_BUILD): tf.LayersModel {
  const init = (offset: number) => tf.initializers.glorotUniform({ seed: seed + offset });
  const [h1, h2] = config.hiddenUnits;
  if (config.architecture === 'mlp') {
    const { dense, interest, categorySignals } = featureBlocks(config.vocabulary);
    const denseIn = tf.input({ shape: [dense], name: 'behaviour_spending' });
    const interestIn = tf.input({ shape: [interest], name: 'interest_shares' });
    const signalsIn = tf.input({ shape: categorySignals, name: 'category_signals' });
    const all = tf.layers.concatenate({ name: 'features' }).apply([denseIn, interestIn]) as tf.SymbolicTensor;
    let x = tf.layers.dense({ units: h1, activation: 'relu', kernelInitializer: init(1), name: 'dense_1' }).apply(all) as tf.SymbolicTensor;
    x = tf.layers.dropout({ rate: DROPOUT, seed: seed + 5, name: 'dropout_1' }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.dense({ units: h2, activation: 'relu', kernelInitializer: init(2), name: 'dense_2' }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.dropout({ rate: DROPOUT, seed: seed + 6, name: 'dropout_2' }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: [denseIn, interestIn, signalsIn], outputs: heads(config, x, signalsIn, init, options.ownHistoryPrior), name: 'portrait_mlp' });
    if (options.ownHistoryPrior) {
      const prior = model.getLayer(OWN_HISTORY_PRIOR_LAYER);
      const kernel = tf.tidy(() => tf.oneHot([OWN_HISTORY_CHANNEL], CATEGORY_SIGNAL_CHANNELS).reshape([CATEGORY_SIGNAL_CHANNELS, 1]).toFloat());
      prior.setWeights([kernel]);
      kernel.dispose();
    }
    return model;
  }
  const n = config.sequenceLength;
  const categories = tf.input({ shape: [n, interestSlots(config.vocabulary)], name: 'categories' });
  const events = tf.input({ shape: [n, SEQUENCE_EVENT_CHANNELS], name: 'events' });
  const embedded = tf.layers
    .dense({ units: EMBEDDING_UNITS, useBias: false, kernelInitializer: init(1), name: 'category_embedding' })
    .apply(categories) as tf.SymbolicTensor;
  const steps = tf.layers.concatenate({ name: 'event_steps' }).apply([embedded, events]) as tf.SymbolicTensor;
  const state = tf.layers
    .gru({ units: GRU_UNITS, kernelInitializer: init(2), recurrentInitializer: init(3), name: 'gru' })
    .apply(steps) as tf.SymbolicTensor;
  const x = tf.layers.dense({ units: h2, activation: 'relu', kernelInitializer: init(4), name: 'dense_2' }).apply(state) as tf.SymbolicTensor;
  // The GRU's per-category signal is the category's share of the event window: [K+B] → [K, 1].
  const windowShares = tf.layers.globalAveragePooling1d({ name: 'window_category_shares' }).apply(categories) as tf.SymbolicTensor;
  // A fixed [I_K; 0] projection keeps the K vocabulary slots and drops the hashed buckets.
  const k = config.vocabulary.categories.length;
  const slotSelector = tf.layers.dense({ units: k, useBias: false, trainable: false, kernelInitializer: 'zeros', name: 'vocabulary_slots' });
  const vocabShares = slotSelector.apply(windowShares) as tf.SymbolicTensor;
  const signals = tf.layers.reshape({ targetShape: [k, 1], name: 'window_category_signals' }).apply(vocabShares) as tf.SymbolicTensor;
  const model = tf.model({ inputs: [categories, events], outputs: heads(config, x, signals, init, false), name: 'portrait_gru' });
  const selector = tf.tidy(() => tf.concat([tf.eye(k), tf.zeros([interestSlots(config.vocabulary) - k, k])], 0));
  slotSelector.setWeights([selector]);
  selector.dispose();
  return model;
}

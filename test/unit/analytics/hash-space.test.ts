/**
 * A deployment's first model when the catalog is unknown (shared/analytics/bootstrap.ts): the
 * hash-space vocabulary names no category, its model has no interests head and still builds,
 * trains and profiles with the hashed shares as features; a bootstrap that names categories
 * brings the interests head back, and one that keeps them changes no head.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../../client/node/tfjs-backend.ts';
import { hashSpaceVocabulary, headsForVocabulary, MAX_HASH_BUCKETS } from '../../../shared/analytics/bootstrap.ts';
import { buildExamples } from '../../../shared/features/examples.ts';
import { featureContext } from '../../../shared/features/extract.ts';
import { generateSyntheticUsers } from '../../../shared/features/synthetic.ts';
import { buildModel } from '../../../shared/model/build.ts';
import { computeLocalUpdate } from '../../../shared/model/federated.ts';
import { computePortrait } from '../../../shared/model/portrait.ts';
import { makeModelConfig } from '../../../shared/model/spec.ts';
import { flattenWeights } from '../../../shared/model/weights.ts';
import { dataConfig, modelConfigForVocabulary } from '../../../scripts/lib/central-config.ts';

describe('the hash-space start', () => {
  beforeAll(async () => {
    await useNodeBackend();
  });

  it('is a vocabulary of no category and N buckets, N in [1, 64]', () => {
    expect(hashSpaceVocabulary(16)).toEqual({ categories: [], hashBuckets: 16, popularity: [], logPriceMean: 0, logPriceStd: 1, spendingBounds: [0, 0] });
    for (const bad of [0, MAX_HASH_BUCKETS + 1, 2.5]) expect(() => hashSpaceVocabulary(bad)).toThrow(/"hashBuckets" expected an integer in \[1, 64\]/);
  });

  it('drops the interests head without named categories and brings it back when a bootstrap names them', () => {
    const none = hashSpaceVocabulary(8);
    const named = { ...none, categories: ['c1', 'c2'], popularity: [0.5, 0.5] };
    expect(headsForVocabulary(['interests', 'purchase', 'spending'], none, none)).toEqual(['purchase', 'spending']);
    expect(headsForVocabulary(['purchase', 'spending'], none, named)).toEqual(['interests', 'purchase', 'spending']);
    // A version that already named categories keeps its heads, with or without interests.
    expect(headsForVocabulary(['purchase', 'spending'], named, named)).toEqual(['purchase', 'spending']);
    expect(headsForVocabulary(['interests', 'purchase'], named, { ...named, categories: ['c3'] })).toEqual(['interests', 'purchase']);
  });

  it('builds a model that trains on a device and profiles without an interests head', async () => {
    const data = dataConfig();
    const vocabulary = hashSpaceVocabulary(16);
    const { sensitiveHeads: _derived, ...base } = modelConfigForVocabulary(vocabulary, data, 'mlp', false);
    const config = makeModelConfig({ ...base, heads: headsForVocabulary(base.heads, vocabulary, vocabulary), vocabulary });
    const users = [...generateSyntheticUsers({ users: 6, seed: 3 })];
    const startDay = Math.min(...users.flatMap((u) => u.events.map((e) => e.day)));
    const examples = buildExamples(users, featureContext(vocabulary, startDay), { windows: data.windows });
    expect(examples.length).toBeGreaterThan(0);
    const before = tf.memory().numTensors;
    const model = buildModel(config, 1);
    const weights = flattenWeights(model);
    const update = await computeLocalUpdate(model, config, weights, examples, { epochs: 1, batchSize: 16, learningRate: 0.05, optimizer: 'sgd', shuffleSeed: 1 });
    expect(update.delta).toHaveLength(weights.length);
    expect(update.delta.some((v) => v !== 0)).toBe(true);
    expect(Number.isFinite(update.loss)).toBe(true);
    const portrait = computePortrait(model, config, users[0]!.events);
    expect(Object.keys(portrait.heads).sort()).toEqual(['purchase', 'spending']);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

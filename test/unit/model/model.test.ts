import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../../client/node/tfjs-backend.ts';
import { prepareData } from '../../../shared/features/prepare.ts';
import type { PreparedData } from '../../../shared/features/prepare.ts';
import { syntheticDataset } from '../../../shared/features/synthetic.ts';
import { modelFromFiles, modelToFiles } from '../../../shared/model/artifacts.ts';
import { buildModel } from '../../../shared/model/build.ts';
import { predictExamples } from '../../../shared/model/evaluate.ts';
import { computeLocalUpdate } from '../../../shared/model/federated.ts';
import { computePortrait } from '../../../shared/model/portrait.ts';
import type { Architecture, ModelConfig } from '../../../shared/model/spec.ts';
import { makeModelConfig, ModelConfigSchema } from '../../../shared/model/spec.ts';
import { trainModel } from '../../../shared/model/train.ts';
import { flattenWeights, parameterCount, setFlatWeights, weightLayout } from '../../../shared/model/weights.ts';
import { loadModelDirectory, saveModelDirectory } from '../../../server/storage/model-files.ts';
import { dataConfig, modelConfigFor } from '../../../scripts/lib/central.ts';

let prepared: PreparedData;
const data = dataConfig({ sequenceLength: 12 });
const configs: Partial<Record<Architecture, ModelConfig>> = {};

beforeAll(async () => {
  await useNodeBackend();
  const dataset = syntheticDataset({ users: 120, seed: 3 });
  prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, true);
  configs.mlp = modelConfigFor(prepared, data, 'mlp', true);
  configs.gru = modelConfigFor(prepared, data, 'gru', true);
});

describe.each(['mlp', 'gru'] as const)('%s model', (arch) => {
  it('has one output per head with the right width', () => {
    const config = configs[arch] as ModelConfig;
    const model = buildModel(config, 1);
    const rows = predictExamples(model, config, prepared.examples.test.slice(0, 3));
    expect([...rows.keys()]).toEqual(config.heads);
    expect(rows.get('interests')?.[0]).toHaveLength(config.vocabulary.categories.length);
    expect(rows.get('purchase')?.[0]).toHaveLength(1);
    expect(rows.get('age')?.[0]).toHaveLength(5);
    const softmax = rows.get('spending')?.[0] as Float32Array;
    expect(softmax.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    model.dispose();
  });

  it('is reproducible from its seed: every kernel is seeded', () => {
    const config = configs[arch] as ModelConfig;
    const [a, b, c] = [buildModel(config, 5), buildModel(config, 5), buildModel(config, 6)];
    expect(Array.from(flattenWeights(a))).toEqual(Array.from(flattenWeights(b)));
    expect(Array.from(flattenWeights(a))).not.toEqual(Array.from(flattenWeights(c)));
    for (const m of [a, b, c]) m.dispose();
  });

  it('flattens weights in the documented order and back, exactly', () => {
    const config = configs[arch] as ModelConfig;
    const model = buildModel(config, 1);
    const flat = flattenWeights(model);
    expect(flat.length).toBe(parameterCount(model));
    const layout = weightLayout(model);
    expect(layout.at(-1)?.offset ?? 0).toBe(flat.length - (layout.at(-1)?.size ?? 0));
    const first = layout[0];
    expect(first && Array.from(flat.subarray(0, 5))).toEqual(Array.from((model.weights[0]?.read().dataSync() as Float32Array).subarray(0, 5)));
    const shifted = flat.map((v, i) => v + i * 1e-3);
    setFlatWeights(model, shifted);
    expect(Array.from(flattenWeights(model))).toEqual(Array.from(shifted));
    expect(() => setFlatWeights(model, new Float32Array(flat.length - 1))).toThrow(/expected \d+ weights, got/);
    model.dispose();
  });

  it('saves and loads in the tfjs format with its config, predicting identically', async () => {
    const config = configs[arch] as ModelConfig;
    const model = buildModel(config, 2);
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-model-')), 'v1');
    await saveModelDirectory(dir, model, config);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as { format: string; weightsManifest: { paths: string[] }[] };
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest[0]?.paths).toEqual(['weights.bin']);
    expect(fs.readdirSync(path.dirname(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const loaded = await loadModelDirectory(dir);
    expect(loaded.config).toEqual(config);
    expect(Array.from(flattenWeights(loaded.model))).toEqual(Array.from(flattenWeights(model)));
    const sample = prepared.examples.test.slice(0, 4);
    expect(predictExamples(loaded.model, config, sample).get('interests')).toEqual(predictExamples(model, config, sample).get('interests'));
    await expect(saveModelDirectory(dir, model, config)).rejects.toThrow(/refusing to overwrite/);
    const files = await modelToFiles(model, config);
    const again = await modelFromFiles(files);
    expect(Array.from(flattenWeights(again.model))).toEqual(Array.from(flattenWeights(model)));
    for (const m of [model, loaded.model, again.model]) m.dispose();
  });
});

describe('training', () => {
  it('lowers the loss, leaks no tensors, and a local update is the weight delta', async () => {
    const config = configs.mlp as ModelConfig;
    const model = buildModel(config, 1);
    const before = tf.memory().numTensors;
    const losses = await trainModel(model, config, prepared.examples.train, { epochs: 4, batchSize: 32, learningRate: 0.01, optimizer: 'adam', shuffleSeed: 1 });
    expect(losses).toHaveLength(4);
    expect(losses[3] as number).toBeLessThan(losses[0] as number);
    expect(tf.memory().numTensors).toBe(before);

    const global = flattenWeights(model);
    const update = await computeLocalUpdate(model, config, global, prepared.examples.train.slice(0, 4), { epochs: 1, batchSize: 4, learningRate: 0.05, optimizer: 'sgd', shuffleSeed: 2 });
    expect(update.examples).toBe(4);
    expect(update.delta.length).toBe(global.length);
    expect(update.delta.some((d) => d !== 0)).toBe(true);
    expect(Array.from(flattenWeights(model))).toEqual(Array.from(global)); // the model is handed back unchanged
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('computes a portrait from raw events with sensitive heads marked', () => {
    const config = configs.mlp as ModelConfig;
    const model = buildModel(config, 1);
    const user = prepared.users.test[0];
    expect(user).toBeDefined();
    const portrait = computePortrait(model, config, user?.events ?? []);
    expect(portrait.heads.interests?.top).toHaveLength(5);
    expect(portrait.heads.interests?.sensitive).toBe(false);
    expect(portrait.heads.age?.sensitive).toBe(true);
    const top = portrait.heads.interests?.top ?? [];
    for (let i = 1; i < top.length; i++) expect((top[i - 1]?.probability ?? 0) >= (top[i]?.probability ?? 0)).toBe(true);
    model.dispose();
  });
});

describe('model config', () => {
  it('refuses sensitive heads unless enabled, and lists them as sensitive', () => {
    const base = configs.mlp as ModelConfig;
    const { sensitiveHeads: _ignored, ...rest } = base;
    expect(() => makeModelConfig({ ...rest, heads: ['interests', 'age'], enableSensitiveHeads: false })).toThrow(/enableSensitiveHeads/);
    const ok = makeModelConfig({ ...rest, heads: ['interests', 'gender'], enableSensitiveHeads: true });
    expect(ok.sensitiveHeads).toEqual(['gender']);
    expect(ModelConfigSchema.safeParse({ ...ok, heads: ['interests', 'interests'] }).success).toBe(false);
  });
});

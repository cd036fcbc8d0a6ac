/**
 * Training throughput (examples/s) and per-user inference latency for both architectures on the
 * backend that loads here, side by side in one run on the same synthetic examples.
 * Usage: npx tsx scripts/bench/model.ts [--users N] [--epochs E]
 */
import * as tf from '@tensorflow/tfjs';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import { syntheticDataset } from '../../shared/features/synthetic.ts';
import { buildModel } from '../../shared/model/build.ts';
import { computePortrait } from '../../shared/model/portrait.ts';
import { trainModel } from '../../shared/model/train.ts';
import { parameterCount } from '../../shared/model/weights.ts';
import { dataConfig, modelConfigFor } from '../lib/central.ts';
import { appendBenchmark, markdownTable } from './report.ts';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const users = flag('users', 2000);
const epochs = flag('epochs', 2);
const backend = await useNodeBackend();
const dataset = syntheticDataset({ users, seed: 11 });
const data = dataConfig();
const prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, true);
const rows: (string | number)[][] = [];
for (const arch of ['mlp', 'gru'] as const) {
  const config = modelConfigFor(prepared, data, arch, false);
  const model = buildModel(config, 1);
  const examples = prepared.examples.train;
  const started = performance.now();
  await trainModel(model, config, examples, { epochs, batchSize: 64, learningRate: 0.003, optimizer: 'adam', shuffleSeed: 1 });
  const trainSeconds = (performance.now() - started) / 1000;
  const latencies: number[] = [];
  for (const user of prepared.users.test.slice(0, 100)) {
    const t = performance.now();
    computePortrait(model, config, user.events);
    latencies.push(performance.now() - t);
  }
  latencies.sort((a, b) => a - b);
  const pct = (q: number) => (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN).toFixed(2);
  rows.push([arch, parameterCount(model), examples.length, epochs, Math.round((examples.length * epochs) / trainSeconds), pct(0.5), pct(0.95)]);
  model.dispose();
}
const table = markdownTable(['model', 'parameters', 'train examples', 'epochs', 'train examples/s', 'portrait p50 ms', 'portrait p95 ms'], rows);
appendBenchmark('Model training throughput and on-device portrait latency', `${backend.name} (${tf.getBackend()})`, table,
  `Synthetic population of ${users} users (seed 11), batch 64, Adam. Portrait latency: features + one forward pass for one user, 100 test users. Ratio GRU/MLP training throughput: ${((rows[1]?.[4] as number) / (rows[0]?.[4] as number)).toFixed(3)}.`);

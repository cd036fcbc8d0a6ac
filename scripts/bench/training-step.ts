/**
 * Training-step throughput (the TRAINING SPEED issue): examples/s of the product's training step
 * as trainModel runs it (central training, Adam 0.003) and as computeLocalUpdate runs it (a
 * device's round at DEFAULT_TRAIN: SGD 0.02), on the real model (buildModel, the central default
 * config: MLP 64-32, non-sensitive heads) and real examples (synthetic:N through prepareData),
 * side by side in one run on one backend with a bare MLP of the same layer sizes (135 → 64 → 32 →
 * 54 sigmoid units, no dropout) trained by a plain optimizer.minimize loop, at batch 16 and 64.
 *
 * Each row also runs the loop as it was before the issue (`referenceTrain`: the loss taped op by
 * op through totalLoss, tf.train.adam / tf.train.sgd per variable), so the before/after ratio is
 * measured in the same run. Then, on one fixed batch, where a step's time goes: kernels per step
 * (tf.profile) and ms per step of the reference step, of each change alone, of the product's
 * steps, of the model's own forward and backward with no loss and no update (the floor the
 * comparison cannot go under without changing the model) and two parts of it (dropout; the
 * interests scorer's concatenation and its gradient's split), of the bare MLP's steps, and of the
 * per-batch host work (tensors from Example objects, the loss read); and, for a device's round,
 * what loading, flattening and restoring the weights costs against its training.
 *
 * Whole runs are the best of --repeats, the per-step costs the best of max(10, 2 × --repeats)
 * rounds; in both the product, the reference and the bare MLP are interleaved, so that load from
 * other work on a shared machine falls on all of them alike.
 * Usage: npx tsx scripts/bench/training-step.ts [--backend wasm|cpu] [--users 600] [--epochs 1]
 *        [--repeats 5] [--no-write]   (npm run bench:training-step)
 */
import * as tf from '@tensorflow/tfjs';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import type { Example } from '../../shared/features/examples.ts';
import { featureBlocks } from '../../shared/features/extract.ts';
import { prepareData } from '../../shared/features/prepare.ts';
import { SeededRandom } from '../../shared/features/seeded-random.ts';
import { syntheticDataset } from '../../shared/features/synthetic.ts';
import { inputTensors, outputsOf, targetArrays, targetTensors } from '../../shared/model/batches.ts';
import { buildModel } from '../../shared/model/build.ts';
import { computeLocalUpdate } from '../../shared/model/federated.ts';
import { batchLossTerms, disposeBatchLossTerms, FlatAdam, shuffled, totalLoss, trainingLoss, trainModel } from '../../shared/model/train.ts';
import type { TrainOptions } from '../../shared/model/train.ts';
import { flattenWeights, parameterCount, setFlatWeights } from '../../shared/model/weights.ts';
import { DEFAULT_TRAIN } from '../../shared/protocol/messages.ts';
import { clientsFromExamples } from '../lib/federated-sim.ts';
import { dataConfig, DEFAULT_CENTRAL, modelConfigFor } from '../lib/central-config.ts';
import { flag, numberOption, option } from './args.ts';
import { benchmarkKey, markdownTable, writeBenchmark } from './report.ts';

const backendName = option('--backend') ?? 'wasm';
if (backendName !== 'wasm' && backendName !== 'cpu') throw new RangeError(`"--backend" expected wasm or cpu, got ${backendName}`);
const users = numberOption('--users', 600);
const epochs = numberOption('--epochs', 1);
const repeats = numberOption('--repeats', 5);
for (const [name, value, min] of [['--users', users, 50], ['--epochs', epochs, 1], ['--repeats', repeats, 1]] as const) {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`"${name}" expected an integer >= ${min}, got ${value}`);
}
const BATCH_SIZES = [16, 64] as const;
const log = (line: string) => process.stderr.write(`${line}\n`);

const backend = await useNodeBackend(backendName);
const dataset = syntheticDataset({ users, seed: 11 });
const data = dataConfig();
const prepared = prepareData(dataset.users, dataset.startDay, dataset.days, data, false);
const config = modelConfigFor(prepared, data, 'mlp', false);
const examples = prepared.examples.train;
const central = { epochs, learningRate: DEFAULT_CENTRAL.learningRate, optimizer: 'adam' as const, shuffleSeed: 1 };
const local = { epochs, learningRate: DEFAULT_TRAIN.learningRate, optimizer: DEFAULT_TRAIN.optimizer, shuffleSeed: 1 };

/**
 * trainModel as it was before the issue (commit 19c46b6): targetTensors, the loss taped op by op
 * (totalLoss), tfjs's own optimizer, the loss read after every batch. Kept here as the measured
 * "before" and as a check that the product's losses are the same up to float rounding.
 */
async function referenceTrain(model: tf.LayersModel, examplesIn: readonly Example[], options: TrainOptions): Promise<number[]> {
  const optimizer = options.optimizer === 'adam' ? tf.train.adam(options.learningRate) : tf.train.sgd(options.learningRate);
  const source = new SeededRandom(options.shuffleSeed >>> 0);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const losses: number[] = [];
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const order = shuffled(examplesIn, () => source.next());
    let sum = 0;
    let batches = 0;
    for (let start = 0; start < order.length; start += options.batchSize) {
      const batch = order.slice(start, start + options.batchSize);
      const inputs = inputTensors(config, batch);
      const targets = targetTensors(config, batch);
      const cost = optimizer.minimize(() => totalLoss(model, inputs, targets, true, options.interestsRanking), true, variables);
      sum += cost ? ((await cost.data())[0] as number) : 0;
      cost?.dispose();
      tf.dispose(inputs);
      targets.forEach((t) => tf.dispose([t.target, t.mask]));
      batches++;
    }
    losses.push(sum / Math.max(1, batches));
  }
  optimizer.dispose();
  return losses;
}

/** computeLocalUpdate as it was before the issue: the same weight handling around referenceTrain. */
async function referenceLocalUpdate(model: tf.LayersModel, global: Float32Array, examplesIn: readonly Example[], options: TrainOptions): Promise<Float32Array> {
  setFlatWeights(model, global);
  await referenceTrain(model, examplesIn, options);
  const trained = flattenWeights(model);
  setFlatWeights(model, global);
  return trained.map((w, i) => w - (global[i] as number));
}

// The bare MLP: the flat feature vector in, the interests, purchase and spending labels out (54 units).
const BARE_OUTPUTS = config.vocabulary.categories.length + 1 + 3;
function bareModel(): tf.Sequential {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [examples[0]?.features.length ?? 0], units: 64, activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.dense({ units: 32, activation: 'relu', kernelInitializer: init(2) }),
      tf.layers.dense({ units: BARE_OUTPUTS, kernelInitializer: init(3) }),
    ],
  });
}

function bareBatch(batch: readonly Example[]): [tf.Tensor2D, tf.Tensor2D] {
  const width = batch[0]?.features.length ?? 0;
  const x = new Float32Array(batch.length * width);
  const y = new Float32Array(batch.length * BARE_OUTPUTS);
  batch.forEach((e, i) => {
    x.set(e.features, i * width);
    y.set(e.labels.interests, i * BARE_OUTPUTS);
    y[i * BARE_OUTPUTS + e.labels.interests.length] = e.labels.purchase;
    if (e.labels.spending !== undefined) y[i * BARE_OUTPUTS + e.labels.interests.length + 1 + e.labels.spending] = 1;
  });
  return [tf.tensor2d(x, [batch.length, width]), tf.tensor2d(y, [batch.length, BARE_OUTPUTS])];
}

/** The plain loop: one optimizer.minimize per batch on a sigmoid cross-entropy, the loss read per batch as trainModel does. */
async function bareTrain(model: tf.Sequential, examplesIn: readonly Example[], options: TrainOptions): Promise<void> {
  const optimizer = options.optimizer === 'adam' ? tf.train.adam(options.learningRate) : tf.train.sgd(options.learningRate);
  const source = new SeededRandom(options.shuffleSeed >>> 0);
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const order = shuffled(examplesIn, () => source.next());
    for (let start = 0; start < order.length; start += options.batchSize) {
      const [x, y] = bareBatch(order.slice(start, start + options.batchSize));
      const cost = optimizer.minimize(() => tf.losses.sigmoidCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar, true);
      await cost?.data();
      cost?.dispose();
      tf.dispose([x, y]);
    }
  }
  optimizer.dispose();
}

async function seconds(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

/** Best of `repeats` for each named run, the runs interleaved, after one untimed run of each (tfjs compiles and caches on first use). */
async function bestOf(runs: Record<string, () => Promise<unknown>>): Promise<Record<string, number>> {
  const best: Record<string, number> = {};
  for (const run of Object.values(runs)) await run();
  for (let r = 0; r < repeats; r++) {
    for (const [name, run] of Object.entries(runs)) best[name] = Math.min(best[name] ?? Infinity, await seconds(run));
  }
  return best;
}

const rate = (n: number, s: number) => Math.round(n / s);
const ratio = (a: number, b: number) => (a / b).toFixed(2);
const product = buildModel(config, 1);
const start = flattenWeights(product);
const bare = bareModel();
const bareStart = bare.getWeights().map((w) => w.clone());
const fresh = () => {
  setFlatWeights(product, start);
  bare.setWeights(bareStart);
};
log(`${examples.length} training examples of ${users} synthetic users; product ${parameterCount(product)} parameters, bare MLP ${bare.countParams()}; ${backend.name}`);

// 1. Whole training runs: examples/s of trainModel, computeLocalUpdate (all examples as one device) and the bare loop.
const rows: (string | number)[][] = [];
let maxLossGap = 0;
for (const [path, train] of [['trainModel (central)', central], ['computeLocalUpdate (device round)', local]] as const) {
  for (const batchSize of BATCH_SIZES) {
    const options = { ...train, batchSize };
    fresh();
    const before = await referenceTrain(product, examples, options);
    fresh();
    const after = await trainModel(product, config, examples, options);
    maxLossGap = Math.max(maxLossGap, ...after.map((l, i) => Math.abs(l - (before[i] as number)) / Math.abs(before[i] as number)));
    const best = await bestOf(
      path.startsWith('trainModel')
        ? {
            before: async () => (fresh(), referenceTrain(product, examples, options)),
            now: async () => (fresh(), trainModel(product, config, examples, options)),
            bare: async () => (fresh(), bareTrain(bare, examples, options)),
          }
        : {
            before: async () => referenceLocalUpdate(product, start, examples, options),
            now: async () => computeLocalUpdate(product, config, start, examples, options),
            bare: async () => (fresh(), bareTrain(bare, examples, options)),
          },
    );
    const n = examples.length * epochs;
    rows.push([path, `${options.optimizer} ${options.learningRate}`, batchSize, rate(n, best.before as number), rate(n, best.now as number), rate(n, best.bare as number), ratio(best.before as number, best.bare as number), ratio(best.now as number, best.bare as number)]);
    log(`${path} batch ${batchSize}: ${rows.at(-1)?.slice(3).join(' ')}`);
  }
}

// 2. Where a step's time goes, on one fixed batch of each size.
interface StepVariant {
  key: string;
  name: string;
  step: () => void;
}
interface StepCost {
  ms: number;
  kernels: number;
}
const variables = product.trainableWeights.map((w) => w.read() as tf.Variable);
/** ms per step (best of `rounds` runs of `steps` steps, the variants interleaved) and kernels per step. */
async function stepCosts(variants: readonly StepVariant[], steps: number, rounds: number): Promise<Record<string, StepCost>> {
  const costs: Record<string, StepCost> = {};
  for (const variant of variants) {
    for (let i = 0; i < 10; i++) variant.step();
    costs[variant.key] = { ms: Infinity, kernels: (await tf.profile(() => variant.step())).kernels.length };
  }
  for (let r = 0; r < rounds; r++) {
    for (const variant of variants) {
      const started = performance.now();
      for (let i = 0; i < steps; i++) variant.step();
      const cost = costs[variant.key] as StepCost;
      cost.ms = Math.min(cost.ms, (performance.now() - started) / steps);
    }
  }
  return costs;
}

/** More rounds than --repeats for the per-step costs: each is short (~0.1 s), and the least disturbed one is kept. */
const STEP_ROUNDS = Math.max(10, 2 * repeats);
const breakdown: (string | number)[][] = [];
const measured: Record<number, Record<string, StepCost>> = {};
for (const batchSize of BATCH_SIZES) {
  fresh();
  const batch = examples.slice(0, batchSize);
  const inputs = inputTensors(config, batch);
  const targets = targetTensors(config, batch);
  const terms = batchLossTerms(targetArrays(config, batch));
  const [bareX, bareY] = bareBatch(batch);
  const adam = tf.train.adam(central.learningRate);
  const flatAdam = new FlatAdam(variables, central.learningRate);
  const sgd = tf.train.sgd(local.learningRate);
  const bareAdam = tf.train.adam(central.learningRate);
  const bareSgd = tf.train.sgd(local.learningRate);
  const taped = () => totalLoss(product, inputs, targets, true);
  const fused = () => trainingLoss(product, inputs, terms);
  const [categories, channels] = featureBlocks(config.vocabulary).categorySignals;
  const [scorerSignals, scorerDeep, scorerBoth] = [tf.zeros([batchSize, categories, channels]), tf.zeros([batchSize, categories, 1]), tf.zeros([batchSize, categories, channels + 1])];
  const bareLoss = () => tf.losses.sigmoidCrossEntropy(bareY, bare.apply(bareX) as tf.Tensor) as tf.Scalar;
  const variants: StepVariant[] = [
    { key: 'beforeAdam', name: 'before: taped loss (totalLoss) + tf.train.adam', step: () => adam.minimize(taped, false, variables) },
    { key: 'tapedFlat', name: 'taped loss + FlatAdam', step: () => flatAdam.step(taped).dispose() },
    { key: 'fusedAdam', name: 'fused loss (fusedBatchLoss) + tf.train.adam', step: () => adam.minimize(fused, false, variables) },
    { key: 'nowAdam', name: 'now, central: fused loss + FlatAdam', step: () => flatAdam.step(fused).dispose() },
    { key: 'beforeSgd', name: 'before: taped loss + tf.train.sgd', step: () => sgd.minimize(taped, false, variables) },
    { key: 'nowSgd', name: 'now, device round: fused loss + tf.train.sgd', step: () => sgd.minimize(fused, false, variables) },
    {
      key: 'model',
      name: "the model's forward + backward alone (loss Σ outputs, no update)",
      step: () => {
        const { value, grads } = tf.variableGrads(() => tf.addN(outputsOf(product.apply(inputs, { training: true })).map((o) => tf.sum(o))) as tf.Scalar, variables);
        tf.dispose([value, ...Object.values(grads)]);
      },
    },
    {
      key: 'modelNoDropout',
      name: '… the same without dropout (training: false)',
      step: () => {
        const { value, grads } = tf.variableGrads(() => tf.addN(outputsOf(product.apply(inputs, { training: false })).map((o) => tf.sum(o))) as tf.Scalar, variables);
        tf.dispose([value, ...Object.values(grads)]);
      },
    },
    {
      key: 'concatSplit',
      name: "… of which the scorer's concat of [batch, 50, 4] with [batch, 50, 1] and its gradient's split",
      step: () => tf.dispose([tf.concat([scorerSignals, scorerDeep], 2), ...tf.split(scorerBoth, [channels, 1], 2)]),
    },
    { key: 'bareAdam', name: 'bare MLP: sigmoid cross-entropy + tf.train.adam', step: () => bareAdam.minimize(bareLoss, false) },
    { key: 'bareSgd', name: 'bare MLP: sigmoid cross-entropy + tf.train.sgd', step: () => bareSgd.minimize(bareLoss, false) },
    {
      key: 'host',
      name: 'host work per batch: tensors from Example objects, disposed',
      step: () => {
        const x = inputTensors(config, batch);
        const t = batchLossTerms(targetArrays(config, batch));
        tf.dispose(x);
        disposeBatchLossTerms(t);
      },
    },
    {
      key: 'read',
      name: 'reading a scalar back (the loss, once per batch)',
      step: () => {
        const cost = tf.scalar(1);
        cost.dataSync();
        cost.dispose();
      },
    },
  ];
  const costs = await stepCosts(variants, Math.max(10, Math.round(960 / batchSize)), STEP_ROUNDS);
  measured[batchSize] = costs;
  const bareAdamMs = (costs.bareAdam as StepCost).ms;
  const bareSgdMs = (costs.bareSgd as StepCost).ms;
  for (const variant of variants) {
    const cost = costs[variant.key] as StepCost;
    breakdown.push([batchSize, variant.name, cost.kernels, cost.ms.toFixed(3), ratio(cost.ms, bareAdamMs), ratio(cost.ms, bareSgdMs)]);
  }
  for (const optimizer of [adam, flatAdam, sgd, bareAdam, bareSgd]) optimizer.dispose();
  tf.dispose([...inputs, bareX, bareY, scorerSignals, scorerDeep, scorerBoth]);
  targets.forEach((t) => tf.dispose([t.target, t.mask]));
  disposeBatchLossTerms(terms);
}

// 3. A device's round: the weights loaded, trained, flattened and restored, per device of synthetic:N.
const devices = clientsFromExamples(examples);
const deviceOptions = { ...local, batchSize: DEFAULT_TRAIN.batchSize };
const deviceRound = await bestOf({
  round: async () => {
    for (const d of devices) await computeLocalUpdate(product, config, start, d.examples, deviceOptions);
  },
  weights: async () => {
    for (let i = 0; i < devices.length; i++) {
      setFlatWeights(product, start);
      flattenWeights(product);
      setFlatWeights(product, start);
    }
  },
});
const perDevice = (s: number) => ((s * 1000) / devices.length).toFixed(2);

const table = [
  markdownTable(['training step', 'optimizer', 'batch', 'before: examples/s', 'now: examples/s', 'bare MLP: examples/s', 'before: time ÷ bare', 'now: time ÷ bare'], rows),
  '',
  `Where a step's time goes: one fixed batch, ms per step (best of ${STEP_ROUNDS} interleaved rounds), kernels per step (tf.profile), and the time relative to the bare MLP's step at the same batch with each optimizer:`,
  '',
  markdownTable(['batch', 'step', 'kernels', 'ms/step', '÷ bare Adam step', '÷ bare SGD step'], breakdown),
  '',
  `A device's round (computeLocalUpdate at DEFAULT_TRAIN, each of the ${devices.length} devices with its own ${(examples.length / devices.length).toFixed(1)} examples on average): ${perDevice(deviceRound.round as number)} ms per device, of which loading, flattening and restoring the weights (setFlatWeights, flattenWeights, setFlatWeights) ${perDevice(deviceRound.weights as number)} ms.`,
].join('\n');

const verdict = rows.map((r) => `${String(r[0]).split(' ')[0]} ${String(r[1]).split(' ')[0]} batch ${r[2]} ${Number(r[7]) <= 2 ? 'met' : 'not met'} (${r[7]}x)`).join(', ');
const at = (batchSize: number, key: string) => (measured[batchSize]?.[key] as StepCost);
const percent = (batchSize: number, key: string) => `${((100 * at(batchSize, key).ms) / at(batchSize, 'nowAdam').ms).toFixed(1)} %`;
const share = (batchSize: number, key: string, of: string) => ratio(at(batchSize, key).ms, at(batchSize, of).ms);
const notes = [
  `Synthetic population of ${users} users (seed 11), ${examples.length} training examples, ${epochs} epoch(s) per run, best of ${repeats} interleaved runs. The product model is buildModel(config, 1) of the central default config (MLP 64-32, heads ${config.heads.join(', ')}; ${parameterCount(product)} parameters); the bare MLP is Dense 64 relu → Dense 32 relu → Dense ${BARE_OUTPUTS} on the flat ${examples[0]?.features.length}-value feature vector (${bare.countParams()} parameters), with the same optimizer as the row it is compared with. "before" is the training loop of commit 19c46b6 run in this process; the product's epoch losses equal it up to float rounding (largest relative gap ${maxLossGap.toExponential(1)}).`,
  `What was slow: on ${backend.name} a model this small costs per kernel launched (tfjs's bookkeeping, the tape, a clone of every tensor saved for the backward pass), not per flop: the before step's ${at(16, 'beforeAdam').kernels} kernels at batch 16 took ${at(16, 'beforeAdam').ms.toFixed(2)} ms. The loss taped op by op (clips, logs, masks and means of three heads and the listwise logSoftmax, each op and its gradient) was ${at(16, 'beforeAdam').kernels - at(16, 'fusedAdam').kernels} kernels more than the fused loss, and tf.train.adam ${at(16, 'fusedAdam').kernels - at(16, 'nowAdam').kernels} kernels more than FlatAdam (about 14 per variable, 14 variables). Building the batch's tensors from Example objects (${percent(16, 'host')} of the step at batch 16, ${percent(64, 'host')} at 64) and reading the loss after each batch (${percent(16, 'read')}) were left as they are, as was handling the flat weights in a device's round (above).`,
  `What remains: the model's own forward and backward pass, which this change does not touch, costs ${share(16, 'model', 'bareAdam')}x the bare MLP's whole Adam step at batch 16 and ${share(64, 'model', 'bareAdam')}x at batch 64, and ${share(16, 'model', 'bareSgd')}x and ${share(64, 'model', 'bareSgd')}x its SGD step. It has two more inputs, three heads and two dropout layers (${(at(16, 'model').ms - at(16, 'modelNoDropout').ms).toFixed(2)} ms at batch 16, ${(at(64, 'model').ms - at(64, 'modelNoDropout').ms).toFixed(2)} ms at 64), and the interests head's per-category scorer, whose concatenation of the [batch, 50, 4] signals with the [batch, 50, 1] scores and that concatenation's gradient (a split) tfjs-backend-${backend.name} 4.22 copies in JavaScript, row by row (${at(16, 'concatSplit').ms.toFixed(2)} ms at batch 16, ${at(64, 'concatSplit').ms.toFixed(2)} ms at 64). Within 2x of the bare MLP (first table): ${verdict}. Where the model's pass alone is near or over 2x, closing the rest takes a change to the model (shared/model/build.ts: e.g. the scorer's first layer as a Dense over the signals plus a per-unit weight on the score, the same function without the concatenation) or to tfjs.`,
].join('\n\n');

if (flag('--no-write')) process.stdout.write(`${table}\n\n${notes}\n`);
else {
  writeBenchmark({
    key: benchmarkKey('training-step', backend.name),
    title: `Training step: the product's vs a bare MLP's (${backend.name})`,
    tfjsBackend: `${backend.name} (${tf.getBackend()})`,
    table,
    notes,
  });
}
product.dispose();
bare.dispose();
tf.dispose(bareStart);

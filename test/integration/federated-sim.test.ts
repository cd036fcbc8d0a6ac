/**
 * The in-process federated simulation against the real thing: one device holding every example
 * with FedAvg (server lr 1) must reproduce centralised training exactly; a simulated round must
 * give the same model as one real coordinator round (real Socket.IO clients, SQLite, port 0) from
 * the same start; and its DP path (privatiseUpdate → modular sum → decodeAggregate) must decode
 * to the clipped uniform mean when the noise is negligible.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { clientsFromExamples, FederatedSimulation } from '../../scripts/lib/federated-sim.ts';
import type { FederatedSimOptions, SimClient } from '../../scripts/lib/federated-sim.ts';
import { SeededRandom } from '../../shared/features/seeded-random.ts';
import { buildModel } from '../../shared/model/build.ts';
import { trainModel } from '../../shared/model/train.ts';
import { flattenWeights } from '../../shared/model/weights.ts';
import type { AggregationConfig } from '../../shared/protocol/messages.ts';
import { buildPrivacyConfig } from '../../shared/privacy/config.ts';
import type { RandomSource } from '../../shared/privacy/random.ts';
import type { Population, TestClient, TestCoordinator } from './harness.ts';
import { examplesOf, launch, startClients, startTestCoordinator, stopAll, syntheticPopulation, tempDataDir, waitForRound } from './harness.ts';

const FEDAVG: AggregationConfig = { serverOptimizer: 'fedavg', serverLearningRate: 1, exampleCap: 64, beta1: 0.9, beta2: 0.99, tau: 1e-3 };

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

function seededUniform(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

/** A deterministic byte source for the tests only (xorshift32); devices use crypto.getRandomValues. */
function seededBytes(seed: number): RandomSource {
  let s = seed >>> 0 || 1;
  return (bytes) => {
    for (let i = 0; i < bytes.length; i++) {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      bytes[i] = s & 0xff;
    }
    return bytes;
  };
}

describe('in-process federated simulation', () => {
  let pop: Population;

  beforeAll(async () => {
    await useNodeBackend();
    pop = await syntheticPopulation();
  });

  it('with one device holding all examples, FedAvg at server lr 1 tracks centralised training exactly', async () => {
    const train = { epochs: 1, batchSize: 64, learningRate: 0.003, optimizer: 'adam' as const };
    const central = buildModel(pop.config, 1);
    const start = flattenWeights(central);
    await trainModel(central, pop.config, pop.prepared.examples.train, { ...train, shuffleSeed: 1 });
    const expected = flattenWeights(central);
    central.dispose();

    const model = buildModel(pop.config, 1);
    const sim = new FederatedSimulation(model, pop.config, start, [{ userId: 'pooled', examples: pop.prepared.examples.train }], {
      train,
      aggregation: FEDAVG,
      selection: { method: 'fixed', clientsPerRound: 1 },
      selectionUniform: seededUniform(1),
    });
    const result = await sim.runRound();
    model.dispose();
    expect(result).toMatchObject({ roundId: 1, status: 'committed', participants: 1 });
    expect(maxAbsDiff(sim.weights, start)).toBeGreaterThan(1e-3);
    // Equal up to float32 rounding of (trained − global) + global.
    expect(maxAbsDiff(sim.weights, expected)).toBeLessThan(1e-6);
  });

  it('decodes the DP path to the clipped uniform mean when the noise is negligible, and leaks no tensors', async () => {
    const model = buildModel(pop.config, 1);
    const start = flattenWeights(model);
    const clients = clientsFromExamples(pop.prepared.examples.train).slice(0, 5);
    const base: FederatedSimOptions = {
      train: { epochs: 1, batchSize: 16, learningRate: 0.05, optimizer: 'sgd' },
      aggregation: { ...FEDAVG, exampleCap: 1 },
      selection: { method: 'fixed', clientsPerRound: clients.length },
      selectionUniform: seededUniform(3),
    };
    const tensors = tf.memory().numTensors;
    const plain = new FederatedSimulation(model, pop.config, start, clients, base);
    await plain.runRound();
    const privacy = buildPrivacyConfig({ mode: 'distributed', clip: 100, noiseMultiplier: 1e-7, minSurvivors: clients.length, delta: 1e-6, population: 1000, dimension: start.length });
    const dp = new FederatedSimulation(model, pop.config, start, clients, { ...base, privacy: { config: privacy, random: seededBytes(9) } });
    const result = await dp.runRound();
    expect(result.status).toBe('committed');
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
    // Clip 100 clips nothing; what is left is the rounding grid (granularity per coordinate).
    expect(maxAbsDiff(dp.weights, plain.weights)).toBeLessThan(4 * privacy.granularity);
    expect(maxAbsDiff(dp.weights, start)).toBeGreaterThan(20 * privacy.granularity);
  });

  it('aborts a distributed-DP round with fewer than t devices, as the coordinator does', async () => {
    const model = buildModel(pop.config, 1);
    const start = flattenWeights(model);
    const clients = clientsFromExamples(pop.prepared.examples.train).slice(0, 3);
    const privacy = buildPrivacyConfig({ mode: 'distributed', clip: 1, noiseMultiplier: 1, minSurvivors: 4, delta: 1e-6, population: 1000, dimension: start.length });
    const sim = new FederatedSimulation(model, pop.config, start, clients, {
      train: { epochs: 1, batchSize: 16, learningRate: 0.05, optimizer: 'sgd' },
      aggregation: FEDAVG,
      selection: { method: 'fixed', clientsPerRound: 3 },
      selectionUniform: seededUniform(1),
      privacy: { config: privacy, random: seededBytes(1) },
    });
    const result = await sim.runRound();
    model.dispose();
    expect(result.status).toBe('aborted');
    expect(result.reason).toMatch(/fewer than 4/);
    expect(sim.weights).toEqual(start);
  });

  it('rejects a cohort larger than the population, naming the argument', () => {
    const model = buildModel(pop.config, 1);
    const clients: SimClient[] = clientsFromExamples(pop.prepared.examples.train).slice(0, 2);
    expect(() => new FederatedSimulation(model, pop.config, flattenWeights(model), clients, { train: { epochs: 1, batchSize: 16, learningRate: 0.05, optimizer: 'sgd' }, aggregation: FEDAVG, selection: { method: 'fixed', clientsPerRound: 3 }, selectionUniform: seededUniform(1) })).toThrow(
      /"clientsPerRound" expected an integer in \[1, 2\], got 3/,
    );
    model.dispose();
  });
});

describe('in-process simulation versus one real coordinator round', () => {
  const dataDir = tempDataDir();
  let coordinator: TestCoordinator;
  let clients: TestClient[];

  beforeAll(async () => {
    await useNodeBackend();
    coordinator = await startTestCoordinator(dataDir);
    clients = await startClients(coordinator, 4);
  });

  afterAll(async () => {
    stopAll(clients ?? []);
    await coordinator?.close();
  });

  it('gives the same model from the same start (only the float summation order differs)', async () => {
    const pop = await syntheticPopulation();
    const start = Float32Array.from(coordinator.registry.current.weights);
    const train = { epochs: 2, batchSize: 4, learningRate: 0.05, optimizer: 'sgd' as const };
    const aggregation = { serverOptimizer: 'fedavg' as const, serverLearningRate: 1, exampleCap: 3 };
    const [launched] = await launch(coordinator, { rounds: 1, clientsPerRound: 4, minClients: 4, train, aggregation, deadlines: { checkinMs: 3_000, trainingMs: 10_000 }, privacy: { mode: 'none' } });
    const record = await waitForRound(coordinator, launched!.id);
    expect(record.status).toBe('committed');
    expect(record.participants).toBe(4);
    const real = coordinator.registry.current.weights;

    const users = pop.prepared.users.train.slice(0, 4);
    const simClients = users.map((u) => ({ userId: u.userId, examples: examplesOf(u, pop.dataset.startDay)(pop.config) }));
    const model = buildModel(pop.config, 1);
    const sim = new FederatedSimulation(model, pop.config, start, simClients, {
      train,
      aggregation: { ...FEDAVG, exampleCap: 3 },
      selection: { method: 'fixed', clientsPerRound: 4 },
      selectionUniform: seededUniform(1),
      firstRoundId: launched!.id,
    });
    await sim.runRound();
    model.dispose();
    expect(maxAbsDiff(real, start)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(sim.weights, real)).toBeLessThan(1e-5);
  });
});

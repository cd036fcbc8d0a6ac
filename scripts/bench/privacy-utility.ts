/**
 * Privacy-utility table (issue 4): interests micro-AUC and recall@5 on held-out users after
 * federated training with the distributed discrete Gaussian mechanism exactly as devices run it
 * (privatiseUpdate per device, modular sum, decodeAggregate; Kairouz, Liu, Steinke 2021, Alg. 1-2),
 * at target epsilons, next to non-private federated and centralised training on the same split.
 * Cohorts are Poisson-sampled at rate q; t (the survivors whose noise is counted) is a lower bound
 * on the cohort size, and z is calibrated with the round accountant (roundsEpsilon: RDP of the
 * subsampled distributed discrete Gaussian, slack included) so that the rounds run spend at most
 * the target epsilon at delta.
 * Usage: npx tsx scripts/bench/privacy-utility.ts [--dataset tianchi:DIR|synthetic:N] [--rounds 20]
 *        [--q 0.15] [--clip 0.5] [--epsilons 1,4,8,none] [--delta 1e-6] [--epochs 1] [--lr 0.02]
 *        [--server-optimizer fedavg|fedadam] [--server-lr 1] [--tau 1e-3] [--central-epochs 30 (0: report
 *        the untrained model instead)] [--dry (print only)]
 */
import { useNodeBackend } from '../../client/node/tfjs-backend.ts';
import { cryptoUniform } from '../../server/coordinator.ts';
import { buildModel } from '../../shared/model/build.ts';
import { scoreModel } from '../../shared/model/evaluate.ts';
import { flattenWeights, setFlatWeights } from '../../shared/model/weights.ts';
import type { AggregationConfig } from '../../shared/protocol/messages.ts';
import { calibrateNoise } from '../../shared/privacy/calibrate.ts';
import { buildPrivacyConfig, roundsEpsilon } from '../../shared/privacy/config.ts';
import type { PrivacyConfig } from '../../shared/privacy/config.ts';
import { cryptoRandomSource } from '../../shared/privacy/random.ts';
import { loadDataset } from '../import/resolve.ts';
import { DEFAULT_CENTRAL, trainCentral } from '../lib/central.ts';
import { clientsFromExamples, FederatedSimulation } from '../lib/federated-sim.ts';
import { benchmarkKey, markdownTable, writeBenchmark } from './report.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const spec = arg('dataset', 'tianchi:../shared/data/tianchi-ecomm');
const rounds = Number(arg('rounds', '20'));
const q = Number(arg('q', '0.15'));
const clip = Number(arg('clip', '0.5'));
const delta = Number(arg('delta', '1e-6'));
const epsilons = arg('epsilons', '1,4,8,none').split(',');
const epochs = Number(arg('epochs', '1'));
const lr = Number(arg('lr', '0.02'));
const serverOptimizer = arg('server-optimizer', 'fedavg') === 'fedadam' ? 'fedadam' : 'fedavg';
const serverLr = Number(arg('server-lr', '1'));
const tau = Number(arg('tau', '1e-3'));
const centralEpochs = Number(arg('central-epochs', String(DEFAULT_CENTRAL.epochs)));
const log = (line: string) => process.stderr.write(`${line}\n`);

const backend = (await useNodeBackend()).name;
const dataset = await loadDataset(spec);
const central = await trainCentral(dataset, { ...DEFAULT_CENTRAL, epochs: centralEpochs, log });
const { prepared, config } = central;
const centralScores = central.result.heads.interests;
central.model.dispose();
log(`central: interests microAuc ${centralScores?.microAuc?.toFixed(4)} recall@5 ${centralScores?.recallAt5?.toFixed(4)}`);

const clients = clientsFromExamples(prepared.examples.train);
const population = clients.length;
const expected = q * population;
// t: about three standard deviations below the expected Poisson cohort, so a round aborts rarely.
const t = Math.max(1, Math.floor(expected - 3 * Math.sqrt(expected * (1 - q))));
// FedAvg with a server learning rate: an adaptive server optimiser would rescale the DP noise
// coordinate by coordinate (it normalises by the noisy second moment) and random-walk.
const aggregation: AggregationConfig = { serverOptimizer, serverLearningRate: serverLr, exampleCap: 64, beta1: 0.9, beta2: 0.99, tau };
const train = { epochs, batchSize: 16, learningRate: lr, optimizer: 'sgd' as const };
const initial = buildModel(config, 1);
const initialWeights = flattenWeights(initial);

function privacyConfig(noiseMultiplier: number): PrivacyConfig {
  return buildPrivacyConfig({
    mode: 'distributed',
    clip,
    noiseMultiplier,
    minSurvivors: t,
    delta,
    population,
    dimension: initialWeights.length,
    samplingRate: q,
    poissonSampling: true,
    expectedClients: Math.max(t, Math.round(expected)),
  });
}

interface Row {
  target: string;
  epsilon: number;
  z: number;
  microAuc: number;
  recallAt5: number;
  committed: number;
  meanCohort: number;
  seconds: number;
}

const rows: Row[] = [];
for (const target of epsilons) {
  const started = performance.now();
  let privacy: PrivacyConfig | undefined;
  let achieved = Infinity;
  if (target !== 'none') {
    const calibrated = calibrateNoise(Number(target), (z) => roundsEpsilon(privacyConfig(z), rounds), 1e-4);
    privacy = privacyConfig(calibrated.noiseMultiplier);
    achieved = calibrated.epsilon;
  }
  const sim = new FederatedSimulation(initial, config, initialWeights, clients, {
    train,
    aggregation,
    selection: { method: 'poisson', rate: q },
    selectionUniform: cryptoUniform,
    ...(privacy ? { privacy: { config: privacy, random: cryptoRandomSource() } } : {}),
  });
  let committed = 0;
  let cohortSum = 0;
  for (let r = 0; r < rounds; r++) {
    const result = await sim.runRound();
    if (result.status === 'committed') committed++;
    cohortSum += result.participants;
    log(`epsilon ${target}: round ${result.roundId} ${result.status} ${result.participants} devices, update norm ${result.updateNorm.toFixed(4)}, mean device norm ${result.meanClientNorm.toFixed(4)}`);
  }
  setFlatWeights(initial, sim.weights);
  const scores = scoreModel(initial, config, prepared.examples.test).interests;
  const row: Row = {
    target,
    epsilon: achieved,
    z: privacy?.noiseMultiplier ?? 0,
    microAuc: scores?.microAuc ?? Number.NaN,
    recallAt5: scores?.recallAt5 ?? Number.NaN,
    committed,
    meanCohort: cohortSum / rounds,
    seconds: (performance.now() - started) / 1000,
  };
  rows.push(row);
  log(`epsilon ${target}: microAuc ${row.microAuc.toFixed(4)} recall@5 ${row.recallAt5.toFixed(4)} z ${row.z.toFixed(3)} in ${row.seconds.toFixed(0)} s`);
}
initial.dispose();

const table = markdownTable(
  ['training', 'target ε', 'ε spent (δ ' + String(delta) + ')', 'noise multiplier z', 'clip C', 'rounds (committed)', 'Poisson q (mean cohort)', 't', 'interests micro-AUC', 'recall@5', 'seconds'],
  [
    ...rows.map((r) => [
      r.target === 'none' ? 'federated, no DP' : 'federated, distributed DGauss',
      r.target === 'none' ? '-' : r.target,
      r.target === 'none' ? '∞ (no DP)' : r.epsilon.toFixed(3),
      r.target === 'none' ? '-' : r.z.toFixed(3),
      r.target === 'none' ? '-' : clip,
      `${rounds} (${r.committed})`,
      `${q} (${r.meanCohort.toFixed(0)})`,
      r.target === 'none' ? '-' : t,
      r.microAuc.toFixed(4),
      r.recallAt5.toFixed(4),
      r.seconds.toFixed(0),
    ]),
    // --central-epochs 0 skips the baseline's training: the row is then the untrained model every run starts from.
    [centralEpochs === 0 ? 'untrained model (round 0)' : 'centralised, no DP', '-', centralEpochs === 0 ? '-' : '∞ (no DP)', '-', '-', centralEpochs === 0 ? '-' : `${centralEpochs} epochs`, '-', '-', (centralScores?.microAuc ?? Number.NaN).toFixed(4), (centralScores?.recallAt5 ?? Number.NaN).toFixed(4), central.result.training.seconds.toFixed(0)],
  ],
);
const notes = [
  `Same split and ${prepared.users.test.length} held-out users for every row; one device per training user with examples (${population}); Poisson sampling at q, t = floor(qN − 3·sqrt(qN(1−q))) survivors counted.`,
  `Local training: ${epochs} epoch of SGD lr ${lr}, batch 16; server: ${serverOptimizer === 'fedadam' ? `FedAdam (τ ${tau})` : 'FedAvg'} with server lr ${serverLr}; DP rows weight devices uniformly (the coordinator's rule), the no-DP row by capped example count.`,
  `z calibrated per row with the round accountant (roundsEpsilon: subsampled distributed discrete Gaussian with its slack) for the rounds run; every device privatised with privatiseUpdate (clip → rotate → conditional rounding → discrete Gaussian → mod 2^32) from crypto.getRandomValues.`,
].join('\n');
// --dry: tuning runs print the table without writing it to docs/benchmarks.md.
if (process.argv.includes('--dry')) process.stdout.write(`${table}\n${notes}\n`);
// One section per dataset and set of rows (the epsilons, and whether the centralised baseline was trained):
// docs/privacy.md cites runs of different rows side by side.
else writeBenchmark({
  key: benchmarkKey('privacy-utility', dataset.name, `epsilons=${epsilons.join(',')}${centralEpochs > 0 ? '+central' : ''}`),
  title: `Privacy-utility (${dataset.name}): ε ${epsilons.join(', ')}${centralEpochs > 0 ? ' and centralised' : ''}`,
  tfjsBackend: backend,
  table,
  notes,
});

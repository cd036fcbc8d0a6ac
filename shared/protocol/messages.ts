/**
 * Every message of the federated round protocol as a zod schema: what clients send (check-in,
 * update), what the coordinator sends (model announcement, round open, round config, not
 * selected, round closed), the per-round configuration an operator launches, and the round record
 * the REST API and CLI report. Types are inferred from the schemas, so the wire and the code
 * cannot drift; every incoming payload is parsed, since types do not check the wire.
 */
import { z } from 'zod';
import { ProtocolError } from './errors.ts';
import type { ErrorBody } from './errors.ts';
import type { RoundPrivacyParams } from './privacy.ts';
import { ROUND_STAGES } from './stages.ts';
import { LedgerReceiptSchema } from '../ledger/receipt.ts';
import { PRIVACY_MODES } from '../privacy/config.ts';
import type { PrivacyMode } from '../privacy/config.ts';
import { DEFAULT_PRG, PRG_NAMES } from '../secagg/prg.ts';
import type { PrgName } from '../secagg/prg.ts';
import { chooseParameters } from '../secagg/parameters.ts';
import { PROTOCOL_STAGES } from '../secagg/stages.ts';
import { AnalyticsQuerySchema, planQuery, queryBound } from '../analytics/queries.ts';
import type { AnalyticsQuery, AnalyticsSummary, QueryPlan } from '../analytics/queries.ts';

/** A fresh random value per client message; a repeat within a round is a replay. */
export const NonceSchema = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'expected 16-64 base64url characters');

export const RoundIdSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
export const ModelVersionSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** Largest example count a client may claim; FedAvg caps the weight further per round. */
export const MAX_CLAIMED_EXAMPLES = 1_000_000;

/** Base64 of a 32-byte key (44 characters with padding). */
export const Key32Schema = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected base64 of 32 bytes');

export const CheckinMessageSchema = z
  .object({
    roundId: RoundIdSchema,
    nonce: NonceSchema,
    /** The device's Ed25519 verify key for SecAgg+ advertisements, pinned to its enrollment pseudonym on first use. */
    signingKey: Key32Schema.optional(),
    /** True: this client declines the round (no training examples), so check-in can close without waiting for it. */
    decline: z.literal(true).optional(),
    /** Why, as a code only (no free text leaves the device): counted on the round record and named when the round aborts. */
    reason: z.enum(['NO_EXAMPLES', 'PRIVACY_NOT_ACCEPTED', 'DEADLINE_MISSED', 'QUERY_NOT_SUPPORTED']).optional(),
    /**
     * The size of the ledger tree under the last receipt this device kept: its receipt for this
     * round then comes with a consistency proof from that size (RFC 9162 Sec. 2.1.4), so the device
     * checks that the ledger only grew since.
     */
    ledgerTreeSize: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  })
  .strict()
  .refine((m) => m.reason === undefined || m.decline === true, { message: '"reason" goes only with "decline"', path: ['reason'] });
export type CheckinMessage = z.infer<typeof CheckinMessageSchema>;
export type DeclineReason = NonNullable<CheckinMessage['reason']>;

/** Binary in the browser (ArrayBuffer) and in Node (Buffer, a Uint8Array); checked for size later. */
export const BinarySchema = z.custom<Uint8Array | ArrayBuffer>((v) => v instanceof Uint8Array || v instanceof ArrayBuffer, 'expected binary data');

export const UpdateMessageSchema = z
  .object({
    roundId: RoundIdSchema,
    nonce: NonceSchema,
    examples: z.number().int().min(1).max(MAX_CLAIMED_EXAMPLES),
    /** Float32 little-endian weight delta; see weights.ts. */
    delta: BinarySchema,
  })
  .strict();
export type UpdateMessage = z.infer<typeof UpdateMessageSchema>;

export type Ack = { ok: true } | { ok: false; error: ErrorBody };

/**
 * The ranges a launch's numbers must fall in, refused with INVALID_ARGUMENT naming the field.
 * Outside them a round is no meaningful private round, or its arithmetic leaves the range it is
 * computed in: a noise multiplier of 1e-300 squares to a grid noise variance of 0 (no noise, and
 * an accountant that cannot count it), one below 0.1 spends an epsilon in the hundreds per round;
 * a sampling rate below 1e-6 selects nobody from any fleet a coordinator holds; a delta below
 * 1e-30 is no tighter in any practical sense. docs/protocol.md, "Launch limits".
 */
export const LAUNCH_LIMITS = {
  clip: { min: 1e-6, max: 1e6 },
  noiseMultiplier: { min: 0.1, max: 1e4 },
  delta: { min: 1e-30 },
  samplingRate: { min: 1e-6, max: 1 },
  tau: { min: 1e-9, max: 1e3 },
  maxUpdateNorm: { min: 1e-6, max: 1e6 },
} as const;

/** L2 bound on each plaintext update of a round without DP, when the launch gives none: honest deltas measure 0.2–20 here (docs/protocol.md). */
export const DEFAULT_MAX_UPDATE_NORM = 100;

/** Local training defaults; lr 0.1 diverges on the summed multi-label loss (docs/model.md, federated tuning). */
export const DEFAULT_TRAIN = { epochs: 1, batchSize: 16, learningRate: 0.02, optimizer: 'sgd' } as const;

export const TrainConfigSchema = z
  .object({
    epochs: z.number().int().min(1).max(100).default(DEFAULT_TRAIN.epochs),
    batchSize: z.number().int().min(1).max(4096).default(DEFAULT_TRAIN.batchSize),
    learningRate: z.number().positive().max(10).default(DEFAULT_TRAIN.learningRate),
    optimizer: z.enum(['sgd', 'adam']).default(DEFAULT_TRAIN.optimizer),
  })
  .strict();
export type TrainConfig = z.infer<typeof TrainConfigSchema>;

export const SERVER_OPTIMIZERS = ['fedavg', 'fedadam'] as const;
export type ServerOptimizerName = (typeof SERVER_OPTIMIZERS)[number];

export const AggregationConfigSchema = z
  .object({
    serverOptimizer: z.enum(SERVER_OPTIMIZERS).default('fedavg'),
    /** Defaults to 1 for FedAvg (plain averaging) and 0.01 for FedAdam (Reddi et al. 2021, Sec. 5). */
    serverLearningRate: z.number().positive().max(100).optional(),
    /** A client's FedAvg weight is min(examples, exampleCap), so one heavy user cannot dominate. */
    exampleCap: z.number().int().min(1).max(MAX_CLAIMED_EXAMPLES).default(64),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.99),
    /** FedAdam's adaptivity τ (Reddi et al. 2021, Alg. 2); below 1e-9 it rounds to 0 in Float32 and 0/0 makes the step NaN. */
    tau: z.number().min(LAUNCH_LIMITS.tau.min).max(LAUNCH_LIMITS.tau.max).default(1e-3),
    /**
     * Rounds without DP: the coordinator clips each plaintext update to this L2 norm before
     * averaging (default DEFAULT_MAX_UPDATE_NORM), so no single client can move the model further.
     * DP rounds are bounded by `privacy.clip` instead (and their decoded sum is checked against it).
     */
    maxUpdateNorm: z.number().min(LAUNCH_LIMITS.maxUpdateNorm.min).max(LAUNCH_LIMITS.maxUpdateNorm.max).optional(),
  })
  .strict();
export type AggregationConfig = z.infer<typeof AggregationConfigSchema> & { serverLearningRate: number };

export const DeadlinesSchema = z
  .object({
    checkinMs: z.number().int().min(50).max(3_600_000).default(10_000),
    trainingMs: z.number().int().min(50).max(3_600_000).default(60_000),
  })
  .strict();

export const SELECTION_METHODS = ['fixed', 'poisson'] as const;

/** Defaults of a launch's privacy section (docs/privacy.md, "In rounds"). */
export const DEFAULT_PRIVACY = { mode: 'distributed', clip: 1, noiseMultiplier: 1, delta: 1e-6, population: 100_000 } as const;

/**
 * A round's privacy section as an operator launches it. `t` is the number of survivors whose
 * noise the accountant counts (default: the round's minClients); the sampling rate q comes from
 * the round's selection. Cross-field checks (delta < 1/population, noise sizing) run through
 * `buildPrivacyConfig` when the coordinator admits the launch.
 */
export const PrivacySpecSchema = z
  .object({
    mode: z.enum(PRIVACY_MODES).default(DEFAULT_PRIVACY.mode),
    clip: z.number().min(LAUNCH_LIMITS.clip.min).max(LAUNCH_LIMITS.clip.max).default(DEFAULT_PRIVACY.clip),
    /** In a DP mode within LAUNCH_LIMITS.noiseMultiplier (checked in parseLaunchRequest, which knows the mode); ignored in `none`. */
    noiseMultiplier: z.number().min(0).max(LAUNCH_LIMITS.noiseMultiplier.max).optional(),
    delta: z.number().min(LAUNCH_LIMITS.delta.min).lt(1).default(DEFAULT_PRIVACY.delta),
    t: z.number().int().min(1).max(100_000).optional(),
    /** Users who could ever take part; delta must be below 1/population. */
    population: z.number().int().min(1).max(1e12).default(DEFAULT_PRIVACY.population),
  })
  .strict();

export interface PrivacySpec {
  mode: PrivacyMode;
  clip: number;
  /** 0 for `none`. */
  noiseMultiplier: number;
  delta: number;
  t: number;
  population: number;
}

/** Smallest cohort SecAgg+ runs with (a neighbour graph of degree >= 2). */
export const SECAGG_MIN_COHORT = 3;

/** SecAgg+ options of a launch (docs/secagg.md, "Parameters"); k and t override `chooseParameters` within its safe bounds. */
export const SecAggSpecSchema = z
  .object({
    mode: z.enum(['on', 'off']).default('on'),
    k: z.number().int().min(2).max(100_000).optional(),
    t: z.number().int().min(2).max(100_000).optional(),
    /** Fraction of the cohort the parameters must tolerate dropping over the round. */
    dropoutRate: z.number().min(0).lt(1).default(0.1),
    /** Fraction of the cohort that may collude with the coordinator. */
    corruptFraction: z.number().min(0).lt(0.5).default(0.1),
    /** Deadline of each of share-keys, masked-input and unmask (advertise-keys ends with the training deadline). */
    stageMs: z.number().int().min(50).max(3_600_000).default(10_000),
    prg: z.enum(PRG_NAMES).default(DEFAULT_PRG),
  })
  .strict();

/** A round's resolved SecAgg+ options; `RoundSpec.secagg` is null when secure aggregation is off. */
export interface SecAggSpec {
  k?: number;
  t?: number;
  dropoutRate: number;
  corruptFraction: number;
  stageMs: number;
  prg: PrgName;
}

/**
 * What a round asks of its devices: `train` (a model update) or `analytics` (a federated analytics
 * query, shared/analytics/queries.ts: a bounded statistic of the device's own data, released only
 * as a noised, securely aggregated sum through the same pipeline and ledger as training).
 */
export const ROUND_TASKS = ['train', 'analytics'] as const;
export type RoundTask = (typeof ROUND_TASKS)[number];
/** What a round's check-in announces: its task, with federated evaluation (an analytics query that needs examples) told apart. */
export const OPEN_TASKS = ['train', 'analytics', 'evaluate'] as const;
export type OpenTask = (typeof OPEN_TASKS)[number];

/** One round's configuration as an operator launches it (`privacy`/`secagg` are the seams for DP and SecAgg). */
export const RoundSpecSchema = z
  .object({
    task: z.enum(ROUND_TASKS).default('train'),
    /** The analytics query of a round whose task is `analytics`; its bound is the round's clip. */
    query: AnalyticsQuerySchema.optional(),
    clientsPerRound: z.number().int().min(1).max(100_000),
    minClients: z.number().int().min(1).max(100_000).optional(),
    selection: z.enum(SELECTION_METHODS).default('fixed'),
    /** Poisson sampling rate q; when absent, q = min(1, clientsPerRound / checked-in clients). */
    samplingRate: z.number().min(LAUNCH_LIMITS.samplingRate.min).max(LAUNCH_LIMITS.samplingRate.max).optional(),
    train: TrainConfigSchema.default({ ...DEFAULT_TRAIN }),
    aggregation: AggregationConfigSchema.default({ serverOptimizer: 'fedavg', exampleCap: 64, beta1: 0.9, beta2: 0.99, tau: 1e-3 }),
    deadlines: DeadlinesSchema.default({ checkinMs: 10_000, trainingMs: 60_000 }),
    /** Absent: the default, distributed DP with DEFAULT_PRIVACY. */
    privacy: PrivacySpecSchema.optional(),
    /** `on`/`off` or an options object; absent: on with distributed DP when the default (k, t) exist for clientsPerRound, else off. */
    secagg: z.union([z.enum(['on', 'off']), SecAggSpecSchema]).nullable().optional(),
    /**
     * The launch's own budget: the deployment's cumulative epsilon at `privacy.delta` (every
     * released round, as the ledger counts them) must stay at most this. Checked at launch against
     * the projection, and again before each of its rounds starts and before each release
     * (docs/ledger.md "Budgets"); it can only tighten the deployment cap.
     */
    epsilonCap: z.number().gt(0).finite().optional(),
  })
  .strict();

export type RoundSpecInput = z.input<typeof RoundSpecSchema>;

export interface RoundSpec extends Omit<z.infer<typeof RoundSpecSchema>, 'task' | 'minClients' | 'aggregation' | 'privacy' | 'secagg'> {
  /** Absent in records written before analytics rounds existed (training). */
  task?: RoundTask;
  minClients: number;
  aggregation: AggregationConfig;
  /** null only in records written before DP existed (treated as `none`). */
  privacy: PrivacySpec | null;
  /** null: secure aggregation off (and in records written before it existed). */
  secagg: SecAggSpec | null;
}

/**
 * One cap a launch was checked against, in the launch reply (`201 { rounds, budget }`, present
 * when there is a cap): the cumulative epsilon at `cap.delta` spent so far and projected once the
 * pending and the launched rounds have run at full release (null: unbounded).
 */
export interface LaunchBudget {
  kind: 'deployment' | 'launch';
  cap: { epsilon: number; delta: number };
  spent: number | null;
  projected: number | null;
}

export const LaunchRequestSchema = RoundSpecSchema.extend({ rounds: z.number().int().min(1).max(1000).default(1) }).strict();
export type LaunchRequest = z.input<typeof LaunchRequestSchema>;

/** Share of the cohort that must survive a distributed-DP round when the launch does not say. */
export const DEFAULT_SURVIVOR_SHARE = 0.8;

/**
 * Default minClients. In `distributed` mode it is also the default `t`, the survivors whose noise
 * shares the accountant counts: each device adds 1/t of the target variance, so a t far below the
 * cohort over-noises the sum (t = 2 in a cohort of 100 adds 50 times the noise needed). The
 * default there is 80% of the cohort; elsewhere (noise not split across devices) 2.
 */
export function defaultMinClients(clientsPerRound: number, mode: PrivacyMode): number {
  const floor = Math.max(1, Math.min(clientsPerRound, 2));
  return mode === 'distributed' ? Math.max(floor, Math.floor(DEFAULT_SURVIVOR_SHARE * clientsPerRound)) : floor;
}

/** Parses a launch request and fills the derived defaults; throws `INVALID_ARGUMENT` naming the field. */
export function parseLaunchRequest(body: unknown): { rounds: number; spec: RoundSpec } {
  const parsed = LaunchRequestSchema.safeParse(body);
  if (!parsed.success) throw new ProtocolError('INVALID_ARGUMENT', describeIssues(parsed.error));
  const { rounds, ...rest } = parsed.data;
  if (rest.task === 'analytics' && !rest.query) throw new ProtocolError('INVALID_ARGUMENT', '"query" is required: an analytics round computes a query on the devices');
  if (rest.task !== 'analytics' && rest.query) throw new ProtocolError('INVALID_ARGUMENT', '"query" goes only with "task" analytics');
  const p = rest.privacy ?? PrivacySpecSchema.parse({});
  // An analytics round's clip is its query's bound on one device's contribution: the sensitivity
  // the accountant counts is the query's, whatever clip the launch gave.
  if (rest.query?.statistic === 'evaluate' && rest.query.blocks) throw new ProtocolError('INVALID_ARGUMENT', '"query.blocks" is filled in by the coordinator from the versions\' configs; a launch names only "versions"');
  // (An evaluate query's bound comes from its versions' configs: the coordinator sets it with the blocks.)
  if (rest.query && rest.query.statistic !== 'evaluate') p.clip = queryBound(rest.query);
  const minClients = rest.minClients ?? defaultMinClients(rest.clientsPerRound, p.mode);
  if (minClients > rest.clientsPerRound) throw new ProtocolError('INVALID_ARGUMENT', `"minClients" expected at most clientsPerRound (${rest.clientsPerRound}), got ${minClients}`);
  if (rest.samplingRate !== undefined && rest.selection !== 'poisson') throw new ProtocolError('INVALID_ARGUMENT', '"samplingRate" applies only to selection "poisson"');
  const serverLearningRate = rest.aggregation.serverLearningRate ?? (rest.aggregation.serverOptimizer === 'fedadam' ? 0.01 : 1);
  const t = p.t ?? minClients;
  if (t > rest.clientsPerRound) throw new ProtocolError('INVALID_ARGUMENT', `"privacy.t" expected at most clientsPerRound (${rest.clientsPerRound}), got ${t}`);
  if (p.population < rest.clientsPerRound) throw new ProtocolError('INVALID_ARGUMENT', `"privacy.population" expected at least clientsPerRound (${rest.clientsPerRound}): every cohort is drawn from it, got ${p.population}`);
  const { min: zMin, max: zMax } = LAUNCH_LIMITS.noiseMultiplier;
  if (p.mode !== 'none' && p.noiseMultiplier !== undefined && !(p.noiseMultiplier >= zMin && p.noiseMultiplier <= zMax)) {
    throw new ProtocolError('INVALID_ARGUMENT', `"privacy.noiseMultiplier" expected a number in [${zMin}, ${zMax}] in mode ${p.mode}, got ${p.noiseMultiplier}`);
  }
  const noiseMultiplier = p.mode === 'none' ? 0 : (p.noiseMultiplier ?? DEFAULT_PRIVACY.noiseMultiplier);
  const privacy: PrivacySpec = { mode: p.mode, clip: p.clip, noiseMultiplier, delta: p.delta, t, population: p.population };
  if (rest.epsilonCap !== undefined && privacy.mode === 'none') throw new ProtocolError('INVALID_ARGUMENT', `"epsilonCap" needs differential privacy: rounds in privacy mode none have unbounded epsilon`);
  const secagg = resolveSecAgg(rest.secagg, privacy.mode, rest.clientsPerRound);
  const maxUpdateNorm = rest.aggregation.maxUpdateNorm ?? DEFAULT_MAX_UPDATE_NORM;
  return { rounds, spec: { ...rest, minClients, aggregation: { ...rest.aggregation, serverLearningRate, maxUpdateNorm }, privacy, secagg } };
}

/**
 * `--secagg`: required with distributed DP (whose noise is only private once masked): a distributed
 * launch with secagg off, or a cohort for which the dropout / collusion rates admit no parameters,
 * is refused. Off by default in the other modes. On is refused with privacy mode `none` (plain Float32 updates cannot be masked
 * in Z_2^32) and for cohorts below SECAGG_MIN_COHORT. With `central` or `local` it is allowed: the
 * updates are integer residues too, and masking still hides each one from the coordinator.
 */
function resolveSecAgg(raw: z.infer<typeof RoundSpecSchema>['secagg'], mode: PrivacyMode, clientsPerRound: number): SecAggSpec | null {
  const explicit = raw !== undefined && raw !== null;
  const options = typeof raw === 'object' && raw !== null ? raw : SecAggSpecSchema.parse({ mode: raw === 'off' ? 'off' : 'on' });
  // Distributed DP puts only 1/t of the noise on each device (Kairouz, Liu, Steinke 2021, Sec. 4):
  // an unmasked update would reach the coordinator under-noised, so masking is not optional there.
  const feasible = clientsPerRound >= SECAGG_MIN_COHORT && (options.k !== undefined || options.t !== undefined || defaultsFeasible(options, clientsPerRound));
  if (mode === 'distributed' && (options.mode === 'off' || !feasible)) {
    const why = options.mode === 'off' ? '"secagg" is off' : clientsPerRound < SECAGG_MIN_COHORT ? `SecAgg+ needs clientsPerRound >= ${SECAGG_MIN_COHORT}, got ${clientsPerRound}` : `the default dropout and collusion rates admit no SecAgg+ parameters for clientsPerRound ${clientsPerRound} (give "secagg.k" and "secagg.t", or a larger cohort)`;
    throw new ProtocolError('INVALID_ARGUMENT', `"privacy.mode" distributed needs secure aggregation, but ${why}: each device adds only 1/t of the noise, so its update must be masked; use --secagg on with a larger cohort, or --dp local (each device adds the full noise)`);
  }
  if (!explicit) return mode === 'distributed' ? withoutMode(options) : null;
  if (options.mode === 'off') return null;
  if (mode === 'none') throw new ProtocolError('INVALID_ARGUMENT', '"secagg" on needs integer updates, but "privacy.mode" none sends plain Float32 deltas; use --secagg off or a DP mode');
  if (clientsPerRound < SECAGG_MIN_COHORT) throw new ProtocolError('INVALID_ARGUMENT', `"secagg" on needs clientsPerRound >= ${SECAGG_MIN_COHORT}, got ${clientsPerRound}`);
  if (options.k !== undefined && options.k > clientsPerRound - 1) throw new ProtocolError('INVALID_ARGUMENT', `"secagg.k" expected at most clientsPerRound - 1 = ${clientsPerRound - 1}, got ${options.k}`);
  return withoutMode(options);
}

function defaultsFeasible(options: z.infer<typeof SecAggSpecSchema>, n: number): boolean {
  if (n < SECAGG_MIN_COHORT) return false;
  try {
    chooseParameters({ n, dropoutRate: options.dropoutRate, corruptFraction: options.corruptFraction });
    return true;
  } catch {
    return false;
  }
}

function withoutMode(options: z.infer<typeof SecAggSpecSchema>): SecAggSpec {
  const { mode: _mode, k, t, ...rest } = options;
  return { ...rest, ...(k !== undefined ? { k } : {}), ...(t !== undefined ? { t } : {}) };
}

/** The length of the vector a round's devices contribute: the model's parameters, or its query's dimension. */
export function roundDimension(spec: Pick<RoundSpec, 'task' | 'query'>, modelParameters: number): number {
  return spec.task === 'analytics' && spec.query ? planQuery(spec.query).dimension : modelParameters;
}

export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `"${i.path.join('.') || '(root)'}": ${i.message}`).join('; ');
}

/** Parses an incoming payload or throws `MALFORMED_MESSAGE` naming the bad fields. */
export function parseMessage<T>(schema: z.ZodType<T>, name: string, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ProtocolError('MALFORMED_MESSAGE', `${name}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

export interface ModelRef {
  version: number;
  /** Path of model.json on the coordinator, e.g. `/models/3/model.json`. */
  modelUrl: string;
  parameters: number;
}

/** The latest version (what rounds train), and which versions devices profile with. */
export interface ModelAnnouncement extends ModelRef {
  /** The serving version; absent: the latest (no version was ever promoted). */
  serving?: ModelRef;
  /** A staged rollout: this share of devices profiles with `candidate` instead of `serving`. */
  candidate?: ModelRef & { fraction: number };
}

export interface RoundOpen {
  roundId: number;
  /** What the round asks (absent: train): a device without training examples still answers an analytics query; an evaluation needs examples. */
  task?: OpenTask;
  /** Check-in closes this many ms after the message was sent (relative, so clock skew does not matter). */
  checkinMs: number;
}

export interface RoundConfigMessage {
  roundId: number;
  modelVersion: number;
  modelUrl: string;
  parameters: number;
  train: TrainConfig;
  /** The update must arrive within this many ms of the message. */
  trainingMs: number;
  /** null: no DP (`none`), the update is plain Float32; else the client privatises (see privacy.ts). */
  privacy: RoundPrivacyParams | null;
  /** null: no secure aggregation, the update goes in one `update` message; else this client's SecAgg+ session. */
  secagg: SecAggWireConfig | null;
  /** Analytics rounds: the query whose contribution the device sends instead of a model update. */
  query?: AnalyticsQuery;
}

/**
 * One client's view of a round's SecAgg+ session (the public `SecAggRoundConfig` of shared/secagg,
 * its own index, and the enrollment-bound verify keys of its neighbours in the public graph).
 */
export const SecAggWireConfigSchema = z
  .object({
    sessionId: z.string().min(1).max(200),
    index: z.number().int().min(1).max(1_000_000),
    n: z.number().int().min(SECAGG_MIN_COHORT).max(1_000_000),
    k: z.number().int().min(2).max(1_000_000),
    t: z.number().int().min(2).max(1_000_000),
    graphSeed: Key32Schema,
    vectorLength: z.number().int().min(1).max(2 ** 28),
    prg: z.enum(PRG_NAMES),
    /** Deadline of each stage after advertise-keys, in ms after the previous stage's server message. */
    stageMs: z.number().int().min(1),
    verifyKeys: z.array(z.object({ index: z.number().int().min(1).max(1_000_000), key: Key32Schema }).strict()).max(1_000_000),
  })
  .strict();
export type SecAggWireConfig = z.infer<typeof SecAggWireConfigSchema>;

/** A SecAgg+ client message on the wire: the pure core's message (parsed by the session) inside the round envelope. */
export const SecAggUploadSchema = z.object({ roundId: RoundIdSchema, message: z.unknown() }).strict();
export type SecAggUpload = z.infer<typeof SecAggUploadSchema>;

export interface RoundNotSelected {
  roundId: number;
}

// Coordinator -> device messages are validated on the device too: a malformed or hostile one is
// dropped with an error code, never acted on. Model URLs must be paths on the coordinator itself.
const ModelPathSchema = z.string().max(500).regex(/^\/(?!\/)[A-Za-z0-9._~\-/]*$/, 'expected a path on the coordinator, like /models/3/model.json');

const ModelRefSchema = z.object({ version: z.number().int().min(1), modelUrl: ModelPathSchema, parameters: z.number().int().min(1).max(2 ** 28) }).strict();
export const ModelAnnouncementSchema = ModelRefSchema.extend({ serving: ModelRefSchema.optional(), candidate: ModelRefSchema.extend({ fraction: z.number().min(0).max(1) }).strict().optional() }).strict();
export const RoundOpenSchema = z.object({ roundId: RoundIdSchema, checkinMs: z.number().int().min(0).max(3_600_000), task: z.enum(OPEN_TASKS).optional() }).strict();
export const RoundNotSelectedSchema = z.object({ roundId: RoundIdSchema }).strict();
export const RoundClosedSchema = z.object({ roundId: RoundIdSchema, status: z.enum(['committed', 'aborted']), reason: z.string().max(2_000).optional(), modelVersion: z.number().int().min(1).optional() }).strict();
/** The envelope of a round config; `privacy` and `secagg` are parsed by the device with their own schemas. */
export const RoundConfigEnvelopeSchema = z
  .object({
    roundId: RoundIdSchema,
    modelVersion: z.number().int().min(1),
    modelUrl: ModelPathSchema,
    parameters: z.number().int().min(1).max(2 ** 28),
    train: TrainConfigSchema,
    trainingMs: z.number().int().min(1).max(3_600_000),
    privacy: z.unknown(),
    secagg: z.unknown(),
    query: z.unknown().optional(),
  })
  .strict();

/**
 * `round:receipt`: sent to each SecAgg+ survivor just before its unmask request, once the round's
 * release entry is durable. The device checks the receipt (shared/ledger/receipt.ts) and keeps it
 * before it sends its unmask shares; without a valid one it withholds them (docs/ledger.md).
 */
export const RoundReceiptSchema = z
  .object({
    roundId: RoundIdSchema,
    receipt: LedgerReceiptSchema,
    /** RFC 9162 Sec. 2.1.4.1: the consistency proof from the tree size the device named at check-in to the receipt's head. */
    consistency: z.object({ fromSize: z.number().int().positive(), proof: z.array(z.string().regex(/^[0-9a-f]{64}$/)).max(64) }).strict().optional(),
  })
  .strict();
export type RoundReceipt = z.infer<typeof RoundReceiptSchema>;

export interface RoundClosed {
  roundId: number;
  status: 'committed' | 'aborted';
  reason?: string;
  modelVersion?: number;
}

/**
 * What an analytics round released: the noised sum of its devices' contributions (value units),
 * the standard deviation of the noise on each of its coordinates, and the decoded numbers with
 * their 95 % intervals.
 */
export interface AnalyticsResult extends QueryPlan {
  survivors: number;
  noiseStd: number;
  sum: number[];
  summary: AnalyticsSummary;
}

export const ROUND_STATUSES = ['pending', 'running', 'committed', 'aborted'] as const;
export type RoundStatus = (typeof ROUND_STATUSES)[number];

const MetricValue = z.number().nullable();

/**
 * What each round records about its privacy: the parameters and everything the accountant needs.
 * Epsilons are null until a sum is released (and always for `none`, whose epsilon is infinite).
 */
export const RoundPrivacyRecordSchema = z.object({
  mode: z.enum(PRIVACY_MODES),
  differentiallyPrivate: z.boolean(),
  clip: z.number(),
  noiseMultiplier: z.number(),
  t: z.number().int(),
  delta: z.number(),
  population: z.number().int(),
  /** q the accountant used: the recorded Poisson rate, else 1. */
  q: z.number().nullable(),
  samplingMethod: z.enum(SELECTION_METHODS).nullable(),
  dimension: z.number().int().nullable(),
  paddedDimension: z.number().int().nullable(),
  granularity: z.number().nullable(),
  l2Sensitivity: z.number().nullable(),
  /** Noise variance per share on the grid and how many shares were counted. */
  shareVariance: z.number().nullable(),
  shares: z.number().int().nullable(),
  /** True once the (noised) sum was decoded: from then on the round's epsilon is spent. */
  released: z.boolean(),
  epsilonRound: z.number().nullable(),
  epsilonCumulative: z.number().nullable(),
  order: z.number().nullable(),
  secagg: z.enum(['on', 'off']),
});
export type RoundPrivacyRecord = z.infer<typeof RoundPrivacyRecordSchema>;

/** What a SecAgg+ round records: parameters, how many masked inputs made the sum, who dropped at which stage (counts only). */
export const SecAggRecordSchema = z.object({
  n: z.number().int(),
  k: z.number().int(),
  t: z.number().int(),
  prg: z.enum(PRG_NAMES),
  /** Clients whose masked input is in the sum. */
  survivors: z.number().int(),
  droppedPerStage: z.object({ 'advertise-keys': z.number().int(), 'share-keys': z.number().int(), 'masked-input': z.number().int(), unmask: z.number().int() }),
  /** The stage that fell short, when the session aborted. */
  abortedStage: z.enum(PROTOCOL_STAGES).nullable(),
  /** Largest possible |coordinate| of the sum and the 32-bit headroom left (docs/secagg.md, "Overflow"). */
  maxAbsSum: z.number().nullable(),
  headroomBits: z.number().nullable(),
});
export type SecAggRecord = z.infer<typeof SecAggRecordSchema>;

export const RoundRecordSchema = z.object({
  id: RoundIdSchema,
  status: z.enum(ROUND_STATUSES),
  stage: z.enum(ROUND_STAGES).nullable(),
  reason: z.string().optional(),
  config: z.custom<RoundSpec>((v) => typeof v === 'object' && v !== null),
  selection: z.object({ method: z.enum(SELECTION_METHODS), rate: z.number().nullable() }).nullable(),
  checkedIn: z.number().int(),
  selected: z.number().int(),
  participants: z.number().int(),
  baseModelVersion: z.number().int().nullable(),
  modelVersion: z.number().int().nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  durationMs: z.number().nullable(),
  timings: z.record(z.string(), z.number()),
  metrics: z
    .object({
      heads: z.record(z.string(), z.record(z.string(), MetricValue)).optional(),
      /** `clipped`: plaintext updates the coordinator scaled down to `aggregation.maxUpdateNorm` (rounds without DP; absent when none was). */
      aggregate: z.object({ examples: z.number(), weight: z.number(), updateNorm: z.number(), clipped: z.number().int().optional() }).optional(),
    })
    .nullable(),
  privacy: RoundPrivacyRecordSchema.optional(),
  secagg: SecAggRecordSchema.nullable().optional(),
  /**
   * Set when the coordinator held shoppers' events (`portrait server --dataset`, the demo): the
   * dataset it held; its held-out metrics come from them. Absent on a production coordinator.
   */
  simulation: z.object({ dataset: z.string() }).optional(),
  /** Analytics rounds: the released result (shared/analytics/queries.ts). */
  result: z.custom<AnalyticsResult>((v) => typeof v === 'object' && v !== null).optional(),
  /** Devices that declined the round or left it once selected, by the reason code they gave (absent: none did). */
  declined: z.record(z.string(), z.number().int()).optional(),
  /** Only on the round in flight, from the coordinator's memory: progress of the current stage. */
  live: z
    .object({ stage: z.enum(ROUND_STAGES), checkedIn: z.number().int(), selected: z.number().int(), reported: z.number().int(), dropped: z.number().int(), stageEndsInMs: z.number() })
    .optional(),
});
export type RoundRecord = z.infer<typeof RoundRecordSchema>;

/**
 * Which version devices profile with (issue 18): the serving version, promoted explicitly or by a
 * paired federated evaluation, apart from the latest trained one; and optionally a candidate that
 * a deterministic share of devices (by a key of their own, not per page load) profiles with.
 */
export interface ServingPointer {
  version: number;
  parameters: number;
  promotedAt: string;
  /** How it was promoted: the evaluation round whose comparison allowed it, or an operator's override. */
  reason: string;
  candidate: { version: number; parameters: number; fraction: number } | null;
}

export const ModelRecordSchema = z.object({
  version: ModelVersionSchema,
  createdAt: z.string(),
  roundId: z.number().int().nullable(),
  parentVersion: z.number().int().nullable(),
  parameters: z.number().int(),
  bytes: z.number().int(),
  sha256: z.string(),
  /**
   * A bootstrap version (issue 18): fresh weights on a vocabulary built from these analytics
   * rounds' released sums (post-processing, no further privacy cost); no round or parent trained it.
   */
  derivedFrom: z.array(z.number().int().min(1)).optional(),
});
export type ModelRecord = z.infer<typeof ModelRecordSchema>;

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
import { PRIVACY_MODES } from '../privacy/config.ts';
import type { PrivacyMode } from '../privacy/config.ts';

/** A fresh random value per client message; a repeat within a round is a replay. */
export const NonceSchema = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'expected 16-64 base64url characters');

export const RoundIdSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
export const ModelVersionSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** Largest example count a client may claim; FedAvg caps the weight further per round. */
export const MAX_CLAIMED_EXAMPLES = 1_000_000;

export const CheckinMessageSchema = z.object({ roundId: RoundIdSchema, nonce: NonceSchema }).strict();
export type CheckinMessage = z.infer<typeof CheckinMessageSchema>;

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

export const TrainConfigSchema = z
  .object({
    epochs: z.number().int().min(1).max(100).default(1),
    batchSize: z.number().int().min(1).max(4096).default(16),
    learningRate: z.number().positive().max(10).default(0.05),
    optimizer: z.enum(['sgd', 'adam']).default('sgd'),
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
    /** FedAdam's adaptivity τ (Reddi et al. 2021, Alg. 2). */
    tau: z.number().positive().default(1e-3),
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
    clip: z.number().positive().max(1e6).default(DEFAULT_PRIVACY.clip),
    noiseMultiplier: z.number().min(0).max(1e6).optional(),
    delta: z.number().gt(0).lt(1).default(DEFAULT_PRIVACY.delta),
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

/** One round's configuration as an operator launches it (`privacy`/`secagg` are the seams for DP and SecAgg). */
export const RoundSpecSchema = z
  .object({
    clientsPerRound: z.number().int().min(1).max(100_000),
    minClients: z.number().int().min(1).max(100_000).optional(),
    selection: z.enum(SELECTION_METHODS).default('fixed'),
    /** Poisson sampling rate q; when absent, q = min(1, clientsPerRound / checked-in clients). */
    samplingRate: z.number().gt(0).max(1).optional(),
    train: TrainConfigSchema.default({ epochs: 1, batchSize: 16, learningRate: 0.05, optimizer: 'sgd' }),
    aggregation: AggregationConfigSchema.default({ serverOptimizer: 'fedavg', exampleCap: 64, beta1: 0.9, beta2: 0.99, tau: 1e-3 }),
    deadlines: DeadlinesSchema.default({ checkinMs: 10_000, trainingMs: 60_000 }),
    /** Absent: the default, distributed DP with DEFAULT_PRIVACY. */
    privacy: PrivacySpecSchema.optional(),
    secagg: z.null().default(null),
  })
  .strict();

export type RoundSpecInput = z.input<typeof RoundSpecSchema>;

export interface RoundSpec extends Omit<z.infer<typeof RoundSpecSchema>, 'minClients' | 'aggregation' | 'privacy'> {
  minClients: number;
  aggregation: AggregationConfig;
  /** null only in records written before DP existed (treated as `none`). */
  privacy: PrivacySpec | null;
}

export const LaunchRequestSchema = RoundSpecSchema.extend({ rounds: z.number().int().min(1).max(1000).default(1) }).strict();
export type LaunchRequest = z.input<typeof LaunchRequestSchema>;

/** Parses a launch request and fills the derived defaults; throws `INVALID_ARGUMENT` naming the field. */
export function parseLaunchRequest(body: unknown): { rounds: number; spec: RoundSpec } {
  const parsed = LaunchRequestSchema.safeParse(body);
  if (!parsed.success) throw new ProtocolError('INVALID_ARGUMENT', describeIssues(parsed.error));
  const { rounds, ...rest } = parsed.data;
  const minClients = rest.minClients ?? Math.max(1, Math.min(rest.clientsPerRound, 2));
  if (minClients > rest.clientsPerRound) throw new ProtocolError('INVALID_ARGUMENT', `"minClients" expected at most clientsPerRound (${rest.clientsPerRound}), got ${minClients}`);
  if (rest.samplingRate !== undefined && rest.selection !== 'poisson') throw new ProtocolError('INVALID_ARGUMENT', '"samplingRate" applies only to selection "poisson"');
  const serverLearningRate = rest.aggregation.serverLearningRate ?? (rest.aggregation.serverOptimizer === 'fedadam' ? 0.01 : 1);
  const p = rest.privacy ?? PrivacySpecSchema.parse({});
  const t = p.t ?? minClients;
  if (t > rest.clientsPerRound) throw new ProtocolError('INVALID_ARGUMENT', `"privacy.t" expected at most clientsPerRound (${rest.clientsPerRound}), got ${t}`);
  if (p.mode !== 'none' && p.noiseMultiplier === 0) throw new ProtocolError('INVALID_ARGUMENT', `"privacy.noiseMultiplier" expected a number > 0 in mode ${p.mode}, got 0`);
  const noiseMultiplier = p.mode === 'none' ? 0 : (p.noiseMultiplier ?? DEFAULT_PRIVACY.noiseMultiplier);
  const privacy: PrivacySpec = { mode: p.mode, clip: p.clip, noiseMultiplier, delta: p.delta, t, population: p.population };
  return { rounds, spec: { ...rest, minClients, aggregation: { ...rest.aggregation, serverLearningRate }, privacy } };
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

export interface ModelAnnouncement {
  version: number;
  /** Path of model.json on the coordinator, e.g. `/models/3/model.json`. */
  modelUrl: string;
  parameters: number;
}

export interface RoundOpen {
  roundId: number;
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
  /** Seam: null until secure aggregation lands (with DP the server sums the residues itself). */
  secagg: null;
}

export interface RoundNotSelected {
  roundId: number;
}

export interface RoundClosed {
  roundId: number;
  status: 'committed' | 'aborted';
  reason?: string;
  modelVersion?: number;
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
  secagg: z.literal('off'),
});
export type RoundPrivacyRecord = z.infer<typeof RoundPrivacyRecordSchema>;

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
      aggregate: z.object({ examples: z.number(), weight: z.number(), updateNorm: z.number() }).optional(),
    })
    .nullable(),
  privacy: RoundPrivacyRecordSchema.optional(),
  /** Only on the round in flight, from the coordinator's memory: progress of the current stage. */
  live: z
    .object({ stage: z.enum(ROUND_STAGES), checkedIn: z.number().int(), selected: z.number().int(), reported: z.number().int(), dropped: z.number().int(), stageEndsInMs: z.number() })
    .optional(),
});
export type RoundRecord = z.infer<typeof RoundRecordSchema>;

export const ModelRecordSchema = z.object({
  version: ModelVersionSchema,
  createdAt: z.string(),
  roundId: z.number().int().nullable(),
  parentVersion: z.number().int().nullable(),
  parameters: z.number().int(),
  bytes: z.number().int(),
  sha256: z.string(),
});
export type ModelRecord = z.infer<typeof ModelRecordSchema>;

/**
 * The coordinator's HTTP side (express): model files in the standard tfjs layout with immutable
 * caching per version, and the REST API for scripts under /api/v1 with bearer tokens
 * (`operator` may launch, `auditor` may only read). The one place a ProtocolError becomes an HTTP
 * answer: `{ code, message }` with the code's status.
 */
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { errorBody, ProtocolError } from '../shared/protocol/errors.ts';
import { ENROLLMENT_BATCH_LIMITS } from '../shared/protocol/enrollment.ts';
import { issueEnrollmentTokensInSlices } from './auth/enrollment-batches.ts';
import { nodeEd25519Sign } from './auth/native-ed25519.ts';
import { parseLaunchRequest, roundDimension } from '../shared/protocol/messages.ts';
import type { BootstrapReply } from './bootstrap.ts';
import { resolveLaunchQuery } from './rounds/launch-query.ts';
import type { ServingPointer } from '../shared/protocol/messages.ts';
import { checkRoundPrivacy } from '../shared/protocol/privacy.ts';
import type { PrivacyPolicy } from '../shared/protocol/privacy.ts';
import { checkRoundSecAgg } from '../shared/secagg/round-config.ts';
import type { RoundRecord } from '../shared/protocol/messages.ts';
import { WEIGHTS_FILE } from '../shared/model/artifacts.ts';
import { authenticate, requireRole } from './auth/api-tokens.ts';
import { dashboardRouter } from './dashboard/index.ts';
import { complianceRouter } from './dashboard/compliance.ts';
import { launchWithinBudget } from './ledger/budget.ts';
import type { PrivacyLedger } from './ledger/ledger.ts';
import { ledgerRouter } from './ledger/routes.ts';
import { browserRouter } from './browser/routes.ts';
import type { ModelRegistry } from './registry.ts';
import { EpsilonProjections } from './rounds/projection.ts';
import type { RoundRunner } from './rounds/runner.ts';
import { asStorageError } from './storage/failures.ts';
import { modelDigest } from './storage/model-digest.ts';
import type { Readiness } from './storage/readiness.ts';
import type { ApiTokenRecord, ApiTokenStore, RoundStore } from './storage/stores.ts';
import type { ClusterNode } from './cluster/membership.ts';

export interface HttpOptions {
  rounds: RoundStore;
  tokens: ApiTokenStore;
  registry: ModelRegistry;
  runner: () => RoundRunner;
  connectedClients: () => number;
  platformSecretKey?: Uint8Array;
  /** Lets the demo shop page fetch enrollment tokens (server/browser/routes.ts); needs platformSecretKey. */
  demoShopTokens?: boolean;
  /** Which privacy modes launches may use; default: neither central nor none. */
  privacyPolicy?: PrivacyPolicy;
  clock: () => number;
  /** The privacy ledger: launch budget check, /api/v1/ledger for auditors, the compliance page. */
  ledger?: PrivacyLedger;
  /** Whether a model version's files are bound by a publication entry (checked at start, server/ledger/round-hook.ts); absent: every stored version is served. */
  modelPublished?: (version: number) => boolean;
  /** The SHA-256 a version's publication binds: every file served is hashed again and refused unless its version's files still match it. */
  publishedDigest?: (version: number) => string | undefined;
  /** POST /api/v1/models/promote and /rollout (server/promotion.ts): the serving pointer. */
  promoteModel?: (body: unknown) => Promise<ServingPointer>;
  rolloutModel?: (body: unknown) => Promise<ServingPointer>;
  /** POST /api/v1/models/bootstrap (server/bootstrap.ts): a version whose vocabulary comes from released analytics rounds. */
  bootstrapModel?: (body: unknown) => Promise<BootstrapReply>;
  /** Fewest devices a segment query may run over (default MIN_SEGMENT_COHORT). */
  minSegmentCohort?: number;
  /** What a category-counts query counts over when its launch gives no list (the shop's catalog); default the serving model's vocabulary. */
  catalogCategories?: readonly string[];
  /** GET /readyz: whether what the coordinator records can be made durable now (storage/readiness.ts); default: ready. */
  readiness?: () => Promise<Readiness>;
  /** On a cluster node: launches wake the leader wherever it runs (server/cluster/router.ts); default: this process's runner. */
  onLaunched?: () => void;
  /** On a cluster node: this node, whether it leads the rounds, and the live nodes (GET /api/v1/cluster, /status). */
  cluster?: () => { nodeId: string; leading: boolean; nodes: readonly ClusterNode[] };
}

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** A cluster as /status and /api/v1/cluster show it: each node's devices, readiness and which one leads the rounds. */
function clusterView(c: { nodeId: string; leading: boolean; nodes: readonly ClusterNode[] }) {
  return { node: c.nodeId, leading: c.leading, leader: c.nodes.find((n) => n.leader)?.nodeId ?? null, connectedClients: c.nodes.reduce((sum, n) => sum + n.connections, 0), nodes: c.nodes };
}

function positiveInt(name: string, text: unknown, max: number): number {
  const n = typeof text === 'string' && /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new ProtocolError('INVALID_ARGUMENT', `"${name}" expected an integer in [1, ${max}], got ${JSON.stringify(text)}`);
  return n;
}

/** A JSON body field that must be an integer in [1, max]: a number, not a string or `[5]` that stringifies to one. */
function bodyInt(name: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) throw new ProtocolError('INVALID_ARGUMENT', `"${name}" expected an integer in [1, ${max}], got ${JSON.stringify(value)}`);
  return value;
}

/**
 * A request body express.json could not read, as the API's error (body-parser's http-errors carry
 * a status and a type): an unknown Content-Encoding or a charset other than UTF-8 is 415, a body
 * that does not decompress as labelled or does not match its length 400; otherwise null (500).
 */
function bodyReadError(err: unknown): ProtocolError | null {
  const e = err as { type?: unknown; status?: unknown; code?: unknown; charset?: unknown; encoding?: unknown } | null;
  if (typeof e !== 'object' || e === null || typeof e.status !== 'number' || e.status < 400 || e.status >= 500) return null;
  switch (e.type) {
    case 'entity.parse.failed':
      return new ProtocolError('MALFORMED_MESSAGE', 'request body is not valid JSON');
    case 'entity.too.large':
      return new ProtocolError('PAYLOAD_TOO_LARGE', 'request body too large');
    case 'charset.unsupported':
      return new ProtocolError('UNSUPPORTED_MEDIA_TYPE', `request body charset ${JSON.stringify(String(e.charset ?? '')).slice(0, 40)} is not read: send UTF-8 JSON`);
    case 'encoding.unsupported':
      return new ProtocolError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding ${JSON.stringify(String(e.encoding ?? '')).slice(0, 40)} is not read: send identity, gzip, deflate or br`);
    case 'request.aborted':
    case 'request.size.invalid':
      return new ProtocolError('MALFORMED_MESSAGE', 'request body does not match its Content-Length');
    default:
      // zlib's own error (Z_DATA_ERROR, brotli's ERR_...), passed on with status 400 and no type.
      return e.status === 400 && typeof e.code === 'string' ? new ProtocolError('MALFORMED_MESSAGE', 'request body does not decompress as its Content-Encoding says') : null;
  }
}

type Handler = (req: Request, res: Response, token: ApiTokenRecord) => Promise<void>;

export function createHttpApp(options: HttpOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // What every device fetches without credentials (the client bundle, tfjs .wasm files, the global
  // model and its announcement) is public: a shop on its own origin embeds portrait.js, and its
  // worker fetches these across origins. Nothing else (API, dashboards, tokens) gets CORS headers.
  app.use(['/portrait', '/models'], (_req, res, next) => {
    res.set({ 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin' });
    next();
  });

  app.use('/dashboard/compliance', complianceRouter());
  app.use('/dashboard', dashboardRouter());
  // The browser client bundle, tfjs .wasm files and the demo shop (server/browser).
  app.use(browserRouter(options.platformSecretKey && options.demoShopTokens ? { platformSecretKey: options.platformSecretKey, clock: options.clock } : { clock: options.clock }));

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });

  // Readiness: 503 UNAVAILABLE while storage takes no writes (a full disk), with what is being retried.
  app.get('/readyz', async (_req, res, next) => {
    try {
      const report = options.readiness ? await options.readiness() : { ready: true };
      res.status(report.ready ? 200 : 503).set('Cache-Control', 'no-store').json(report);
    } catch (err) {
      next(err);
    }
  });

  app.get('/models/current', (_req, res) => {
    res.set('Cache-Control', 'no-cache').json(options.runner().announcement());
  });

  app.get('/models/:version/:file', async (req, res, next) => {
    try {
      const version = positiveInt('version', req.params.version, Number.MAX_SAFE_INTEGER);
      const file = req.params.file;
      if (file !== 'model.json' && file !== WEIGHTS_FILE) throw new ProtocolError('NOT_FOUND', `no file ${JSON.stringify(file)} in a model version`);
      const record = await options.registry.store.get(version);
      if (!record) throw new ProtocolError('NOT_FOUND', `model version ${version} does not exist`);
      if (options.modelPublished && !options.modelPublished(version)) throw new ProtocolError('MODEL_NOT_PUBLISHED', `model version ${version} has no publication entry in the privacy ledger binding its files: not served`);
      const bound = options.publishedDigest?.(version);
      const etag = `"${bound ?? record.sha256}-${file === 'model.json' ? 'j' : 'w'}"`;
      res.set({ 'Cache-Control': IMMUTABLE, ETag: etag });
      if (req.get('if-none-match') === etag) {
        res.status(304).end();
        return;
      }
      const files = await options.registry.store.files(version);
      if (!files) throw new ProtocolError('NOT_FOUND', `model version ${version} has no files`);
      // Files replaced under a running coordinator are refused from the next request, not served until a restart's check.
      const digest = bound === undefined ? undefined : modelDigest(files).sha256;
      if (digest !== bound) throw new ProtocolError('MODEL_NOT_PUBLISHED', `model version ${version}'s files have SHA-256 ${digest}, but its publication entry binds ${bound}: the files were replaced after publication; not served`);
      if (file === 'model.json') res.type('application/json').send(JSON.stringify(files.modelJson));
      else res.type('application/octet-stream').send(Buffer.from(files.weights.buffer, files.weights.byteOffset, files.weights.byteLength));
    } catch (err) {
      next(err);
    }
  });

  const api = express.Router();
  api.use(express.json({ limit: '64kb' }));
  // `describe` names the refused action in the FORBIDDEN message when it is not the permission itself.
  const route = (action: 'read' | 'launch', handler: Handler, describe: string = action) => async (req: Request, res: Response, next: NextFunction) => {
    try {
      const token = await authenticate(options.tokens, req.get('authorization'), options.clock());
      requireRole(token, action, describe);
      await handler(req, res, token);
    } catch (err) {
      next(err);
    }
  };

  // A round as the API serves it: the stored record, the live progress of the round in flight, and
  // for a round still to release, the epsilon it will spend (the dashboard warns when it is large).
  const projections = new EpsilonProjections(() => options.registry.parameters);
  const asServed = (record: RoundRecord): RoundRecord & { projectedEpsilonRound?: number | null } => {
    const projectedEpsilonRound = projections.of(record);
    const served = projectedEpsilonRound === undefined ? record : { ...record, projectedEpsilonRound };
    const s = options.runner().current;
    // A finished record has no live part: the runner keeps the final state a moment after the record is written.
    if (!s || s.roundId !== record.id || record.status === 'committed' || record.status === 'aborted') return served;
    return {
      ...served,
      live: { stage: s.stage, checkedIn: s.checkedIn.size, selected: s.cohort.size, reported: s.reported.size, dropped: s.dropped.size, stageEndsInMs: Math.max(0, s.stageEndsAt - options.clock()) },
    };
  };

  api.post('/rounds', route('launch', async (req, res) => {
    const { rounds, spec } = parseLaunchRequest(req.body);
    // Every device of the round, the accountant and the ledger entry see the query as fixed here.
    await resolveLaunchQuery(spec, { registry: options.registry, ...(options.catalogCategories ? { catalogCategories: options.catalogCategories } : {}), ...(options.minSegmentCohort !== undefined ? { minSegmentCohort: options.minSegmentCohort } : {}), ...(options.modelPublished ? { modelPublished: options.modelPublished } : {}) });
    const dp = spec.privacy ? checkRoundPrivacy(spec.privacy, roundDimension(spec, options.registry.parameters), spec.clientsPerRound, options.privacyPolicy ?? { allowCentral: false, allowNone: false }) : null;
    if (spec.secagg) checkRoundSecAgg(spec.secagg, spec.clientsPerRound, dp);
    if (spec.epsilonCap !== undefined && !options.ledger) throw new ProtocolError('INVALID_ARGUMENT', '"epsilonCap" needs the privacy ledger, which this coordinator runs without (give it a ledger, or a data directory)');
    const create = () => options.rounds.createRounds(Array.from({ length: rounds }, () => spec), new Date(options.clock()).toISOString());
    const { created, budget } = options.ledger ? await launchWithinBudget(options.ledger, options.rounds, spec, rounds, options.registry.parameters, create) : { created: await create(), budget: [] };
    (options.onLaunched ?? (() => options.runner().notifyLaunched()))();
    const served = created.map(asServed);
    res.status(201).json(budget.length > 0 ? { rounds: served, budget } : { rounds: served });
  }));

  api.get('/rounds', route('read', async (req, res) => {
    const limit = req.query.limit === undefined ? 50 : positiveInt('limit', req.query.limit, 1000);
    res.json({ rounds: (await options.rounds.list(limit)).map(asServed) });
  }));

  api.get('/rounds/:id', route('read', async (req, res) => {
    const id = positiveInt('id', req.params.id, Number.MAX_SAFE_INTEGER);
    const record = await options.rounds.get(id);
    if (!record) throw new ProtocolError('NOT_FOUND', `round ${id} does not exist`);
    res.json(asServed(record));
  }));

  api.get('/models', route('read', async (_req, res) => {
    res.json({ current: options.registry.current.record.version, serving: options.registry.serving, models: await options.registry.store.list() });
  }));

  api.post('/models/bootstrap', route('launch', async (req, res) => {
    if (!options.bootstrapModel) throw new ProtocolError('UNAVAILABLE', 'this coordinator cannot bootstrap model versions');
    res.status(201).json(await options.bootstrapModel(req.body));
  }, 'bootstrap a model version'));

  api.post('/models/promote', route('launch', async (req, res) => {
    if (!options.promoteModel) throw new ProtocolError('UNAVAILABLE', 'this coordinator cannot promote model versions');
    res.json({ serving: await options.promoteModel(req.body) });
  }, 'promote a model version'));

  api.post('/models/rollout', route('launch', async (req, res) => {
    if (!options.rolloutModel) throw new ProtocolError('UNAVAILABLE', 'this coordinator cannot stage rollouts');
    res.json({ serving: await options.rolloutModel(req.body) });
  }, 'stage a rollout'));

  api.get('/models/:version', route('read', async (req, res) => {
    const version = positiveInt('version', req.params.version, Number.MAX_SAFE_INTEGER);
    const record = await options.registry.store.get(version);
    if (!record) throw new ProtocolError('NOT_FOUND', `model version ${version} does not exist`);
    res.json({ ...record, files: { modelJson: `/models/${version}/model.json`, weights: `/models/${version}/${WEIGHTS_FILE}` } });
  }));

  api.get('/status', route('read', async (_req, res) => {
    const s = options.runner().current;
    res.json({
      model: options.runner().announcement(),
      connectedClients: options.connectedClients(),
      ...(options.cluster ? { cluster: clusterView(options.cluster()) } : {}),
      round: s ? { id: s.roundId, stage: s.stage, checkedIn: s.checkedIn.size, selected: s.cohort.size, reported: s.reported.size, dropped: s.dropped.size, stageEndsInMs: Math.max(0, s.stageEndsAt - options.clock()) } : null,
    });
  }));

  api.get('/cluster', route('read', async (_req, res) => {
    if (!options.cluster) throw new ProtocolError('NOT_FOUND', 'this coordinator runs alone (the embedded default), not as a node of a cluster');
    res.json(clusterView(options.cluster()));
  }));

  api.post('/enrollment-tokens', route('launch', async (req, res) => {
    if (!options.platformSecretKey) throw new ProtocolError('UNAVAILABLE', 'this coordinator holds no platform key; tokens come from the platform');
    const body = (req.body ?? {}) as { count?: unknown; ttlSeconds?: unknown };
    const { maxCount, defaultTtlSeconds, maxTtlSeconds } = ENROLLMENT_BATCH_LIMITS;
    const count = body.count === undefined ? 1 : bodyInt('count', body.count, maxCount);
    const ttlSeconds = body.ttlSeconds === undefined ? defaultTtlSeconds : bodyInt('ttlSeconds', body.ttlSeconds, maxTtlSeconds);
    // Signed in slices that yield to the event loop: 10,000 at once would hold it for about half a second.
    const batch = await issueEnrollmentTokensInSlices(options.platformSecretKey, { count, ttlSeconds, now: options.clock(), sign: nodeEd25519Sign, cancelled: () => req.socket.destroyed });
    res.status(201).json(batch);
  }, 'issue enrollment tokens'));

  if (options.ledger) api.use('/ledger', ledgerRouter({ ledger: options.ledger, tokens: options.tokens, modelHeads: () => options.registry.current.config.heads, clock: options.clock }));
  api.use((_req, _res, next) => next(new ProtocolError('NOT_FOUND', 'no such API endpoint')));
  app.use('/api/v1', api);
  // Any other path answers the API's JSON 404, not Express's HTML page; Socket.IO's own requests
  // reach this app too (engine.io passes them on) and are left alone.
  app.use((req, _res, next) => next(req.path.startsWith('/socket.io/') ? undefined : new ProtocolError('NOT_FOUND', `no such path ${req.path}`)));

  app.use((thrown: unknown, _req: Request, res: Response, _next: NextFunction) => {
    // A write the storage could not take (a store that does not map it itself: the ledger's, model files) is UNAVAILABLE.
    const err = asStorageError(thrown);
    const refusal = err instanceof ProtocolError ? err : bodyReadError(err);
    if (refusal) res.status(refusal.httpStatus).json(refusal.toJSON());
    else res.status(500).json(errorBody(err));
  });
  return app;
}

/**
 * The coordinator process: express and Socket.IO on one HTTP server and port, the model registry,
 * and the round runner. On start, rounds a previous process left pending or running are marked
 * aborted ("coordinator restarted"), so a crash never leaves a round that looks alive.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import type { UserRecord } from '../shared/features/dataset.ts';
import type { Example } from '../shared/features/examples.ts';
import type { ModelConfig } from '../shared/model/spec.ts';
import { buildExamples } from '../shared/features/examples.ts';
import { featureContext } from '../shared/features/extract.ts';
import { cryptoRandomSource } from '../shared/privacy/random.ts';
import type { RandomSource } from '../shared/privacy/random.ts';
import { createHttpApp } from './http.ts';
import { bootstrapModel } from './bootstrap.ts';
import { promoteVersion, rolloutVersion } from './promotion.ts';
import { ModelRegistry } from './registry.ts';
import type { InitialModel } from './registry.ts';
import { RoundRunner } from './rounds/runner.ts';
import { SocketLayer } from './socket.ts';
import type { PrivacyLedger } from './ledger/ledger.ts';
import { LedgerRoundHook } from './ledger/round-hook.ts';
import type { CoordinatorIo } from './socket.ts';
import { ReadinessCheck } from './storage/readiness.ts';
import type { ApiTokenStore, ModelStore, RoundStore } from './storage/stores.ts';
import type { ClusterWiring } from './cluster/wiring.ts';
import { clusterTransport, ClusterRouter } from './cluster/router.ts';
import { LeaderLease } from './cluster/lease.ts';
import { Membership } from './cluster/membership.ts';
import type { ClusterNode } from './cluster/membership.ts';
import { fencedRounds } from './cluster/fenced.ts';

/** How long a closing coordinator lets HTTP requests in flight finish before it drops their connections. */
const CLOSE_GRACE_MS = 1_000;

export const RESTART_REASON = 'coordinator restarted while the round was in flight';
export const LEADER_LOST_REASON = 'the node leading the round was lost while the round was in flight';

export interface EvaluationSet {
  /** Held-out (test) users; examples are built with the current model's vocabulary and windows. */
  users: readonly UserRecord[];
  startDay: number;
}

export interface CoordinatorOptions {
  port?: number;
  /** When `port` is taken, listen on a free one instead (the returned `port` says which) rather than failing with EADDRINUSE. */
  freePortIfBusy?: boolean;
  host?: string;
  rounds: RoundStore;
  models: ModelStore;
  tokens: ApiTokenStore;
  platformPublicKey: Uint8Array;
  /** Only where the coordinator is also the platform (embedded default): enables token issuing. */
  platformSecretKey?: Uint8Array;
  /**
   * The demo shop's stand-in for the shop platform: POST /shop/enrollment-token hands any page a
   * token (needs platformSecretKey). Off by default; `portrait demo` and `server --demo-shop` turn it on.
   */
  demoShopTokens?: boolean;
  initialModel?: InitialModel;
  evaluation?: EvaluationSet;
  /**
   * The dataset of shoppers' events this coordinator was given (`--dataset`, the demo's synthetic
   * population): simulation only, and marked on the record of every round it runs.
   */
  simulationDataset?: string;
  /**
   * Which version devices profile with: `latest` (default; the demo) follows training until a
   * version is promoted; `promoted` (a shop's production) pins the version of the first start, so
   * a newly trained or bootstrapped version is served only once promoted (server/promotion.ts).
   */
  servingPolicy?: 'latest' | 'promoted';
  /** Fewest devices a segment query may run over (default MIN_SEGMENT_COHORT, shared/analytics/segments.ts); tests lower it. */
  minSegmentCohort?: number;
  /**
   * The shop's public catalog categories (`portrait server --catalog`): what a category-counts
   * analytics query counts over when its launch gives no list; default the serving model's vocabulary.
   */
  catalogCategories?: readonly string[];
  /** Largest protocol message accepted (bigger ones are refused with PAYLOAD_TOO_LARGE); default: twice the weight vector plus 64 KiB, at least 1 MiB. */
  maxMessageBytes?: number;
  clock?: () => number;
  /** Selection randomness in [0, 1); default crypto.getRandomValues. */
  uniform?: () => number;
  /** Allow launches in `central` mode (the trusted server adds the noise); default false. */
  allowCentralDp?: boolean;
  /** Allow launches in `none` mode (no DP, baselines only; marked in every record); default false. */
  allowNoDp?: boolean;
  /** CSPRNG for rotation signs and central noise; default crypto.getRandomValues. */
  privacyRandom?: RandomSource;
  /** The signed privacy ledger (server/ledger): write-ahead entries, launch budget, auditor API. */
  ledger?: PrivacyLedger;
  log?: (line: string) => void;
  /** Readiness probe of the storage (the embedded default writes a small file to its data directory): rejects when it takes no writes. */
  storageProbe?: () => Promise<void>;
  /** Called last by close() (closes the database of the embedded default). */
  onClose?: () => void | Promise<void>;
  /**
   * A node of a cluster (server/cluster/node.ts): the stores are shared with other nodes, devices
   * may connect to any node, and the node holding the rounds lease runs every round.
   */
  cluster?: ClusterWiring;
  /** Test seam: sees each SecAgg+ round's unmasked sum (the released aggregate, never an input), on whichever runner runs it. */
  onSecAggSum?: (roundId: number, sum: Uint32Array) => void;
}

export interface Coordinator {
  url: string;
  port: number;
  registry: ModelRegistry;
  runner: RoundRunner;
  sockets: SocketLayer;
  io: CoordinatorIo;
  /** On a cluster node: the live nodes, and whether this one leads the rounds now. */
  cluster?: { nodeId: string; nodes(): readonly ClusterNode[]; leading(): boolean };
  close(): Promise<void>;
}

export function cryptoUniform(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] as number / 2 ** 32;
}

export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const clock = options.clock ?? Date.now;
  const log = options.log ?? (() => undefined);
  const iso = () => new Date(clock()).toISOString();
  const cluster = options.cluster;
  // A cluster's first start (version 1, its publication) is made by one node; the others wait and read it.
  const alone = cluster?.initLock ?? (<T>(run: () => Promise<T>) => run());
  const registry = await alone(() => ModelRegistry.open(options.models, options.initialModel, iso));
  // On one process, what a previous process left unfinished is aborted; on a cluster, other nodes
  // may be running it: a node that takes the rounds lease aborts what the lost leader left running.
  if (!cluster) {
    const aborted = await options.rounds.abortUnfinished(RESTART_REASON, iso());
    if (aborted > 0) log(`marked ${aborted} unfinished round(s) aborted: ${RESTART_REASON}`);
  }
  const lastIssued = async () => (await options.rounds.list(1))[0]?.id ?? 0;

  // Held-out examples are built with the serving model's vocabulary, again when a bootstrap version changes it.
  let evaluation: ((config: ModelConfig) => readonly Example[]) | undefined;
  if (options.evaluation) {
    const set = options.evaluation;
    let built: { key: string; examples: Example[] } | null = null;
    evaluation = (config) => {
      const key = JSON.stringify([config.vocabulary, config.windows]);
      if (built?.key !== key) built = { key, examples: buildExamples(set.users, featureContext(config.vocabulary, set.startDay), { windows: config.windows }) };
      return built.examples;
    };
    evaluation(registry.current.config);
  }

  const httpServer = createServer();
  const maxMessageBytes = options.maxMessageBytes ?? Math.max(1 << 20, registry.parameters * 8 + 65_536);
  // Socket.IO closes a socket whose message exceeds its buffer; keep that well above the protocol's
  // own limit so an oversized message is refused with PAYLOAD_TOO_LARGE and the socket stays up.
  // A cluster node takes WebSocket connections only: a long-polling session's requests would need
  // to reach the same node each time (sticky sessions at the load balancer), a WebSocket is one connection.
  const io: CoordinatorIo = new Server(httpServer, { maxHttpBufferSize: 2 * maxMessageBytes + (1 << 20), serveClient: false, ...(cluster ? { adapter: cluster.adapter, transports: ['websocket'] } : {}) });
  let membership: Membership | undefined;
  const sockets = new SocketLayer(io, { platformPublicKey: options.platformPublicKey, clock, log, maxMessageBytes, ...(cluster ? { cluster: { connectedClients: () => membership?.connections ?? 0 } } : {}) });
  const privacyPolicy = { allowCentral: options.allowCentralDp === true, allowNone: options.allowNoDp === true };
  const nextModelVersion = async () => ((await options.models.latest())?.version ?? 0) + 1;
  // A node without its Redis link cannot reach the devices on other nodes: it neither takes the lease nor keeps it.
  const lease = cluster ? new LeaderLease({ pool: cluster.pool, holder: cluster.nodeId, ttlMs: cluster.leaseTtlMs, canLead: () => cluster.ready(), onAcquired: (token) => takeOver(token), onLost: () => stepDown(), log }) : undefined;
  const ledgerHook = options.ledger ? new LedgerRoundHook(options.ledger, options.rounds, nextModelVersion) : undefined;
  await alone(async () => {
    const entered = await ledgerHook?.enterUnrecordedAborts();
    if (entered) log(`privacy ledger: entered ${entered} aborted round(s) it lacked`);
    // Every stored version's files against its publication entry; a start refuses when they disagree.
    const publications = await ledgerHook?.enterUnrecordedPublications(options.models);
    if (publications) log(`privacy ledger: entered the publication of ${publications} model version(s) it lacked`);
  });
  // A cluster leader's round writes, ledger entries and commits carry its fencing token (server/cluster/lease.ts).
  const runnerLedger = ledgerHook && lease ? ledgerHook.guarded(() => lease.check()) : ledgerHook;
  let router: ClusterRouter | undefined;
  const transport = cluster ? clusterTransport(sockets, () => router) : sockets;
  const makeRunner = () => {
    const made = new RoundRunner({
      rounds: lease ? fencedRounds(options.rounds, () => lease.fence()) : options.rounds,
      registry,
      transport,
      clock,
      uniform: options.uniform ?? cryptoUniform,
      privacyPolicy,
      privacyRandom: options.privacyRandom ?? cryptoRandomSource(),
      log,
      ...(lease ? { fence: () => lease.fence() } : {}),
      ...(options.simulationDataset ? { simulationDataset: options.simulationDataset } : {}),
      ...(evaluation ? { evaluation } : {}),
      ...(runnerLedger ? { ledger: runnerLedger } : {}),
    });
    if (options.onSecAggSum) made.onSecAggSum = options.onSecAggSum;
    return made;
  };
  let runner = makeRunner();
  let leading = false;
  // Taking the lease: what the lost leader left running is aborted (under this node's fence) and
  // entered in the ledger (a release it entered stands), then this node runs the rounds.
  const takeOver = async (token: number) => {
    await ledgerHook?.learnPublications();
    await registry.refresh();
    for (const r of await options.rounds.unfinished()) {
      if (r.status !== 'running') continue;
      await options.rounds.update(r.id, { status: 'aborted', stage: 'aborted', reason: LEADER_LOST_REASON, finishedAt: iso() }, { lease: lease!.name, token });
      transport.broadcastRoundClosed({ roundId: r.id, status: 'aborted', reason: LEADER_LOST_REASON });
      log(`round ${r.id}: aborted, ${LEADER_LOST_REASON}`);
    }
    const entered = await ledgerHook?.enterUnrecordedAborts();
    if (entered) log(`privacy ledger: entered ${entered} aborted round(s) it lacked`);
    runner = makeRunner();
    await router?.lead(true);
    leading = true;
    runner.start(await lastIssued());
    void membership?.beat();
  };
  const stepDown = async () => {
    leading = false;
    await router?.lead(false).catch(() => undefined);
    const stopping = runner;
    runner = makeRunner();
    await stopping.stop();
    void membership?.beat();
  };
  if (cluster) {
    router = new ClusterRouter(io, {
      nodeId: cluster.nodeId,
      messaging: cluster.messaging,
      channel: cluster.channel,
      leaderRunner: () => (leading ? runner : null),
      announcement: () => runner.announcement(),
      onModelChanged: async () => {
        // Publications first: a version is announced here (and current) only once this node may serve it.
        await ledgerHook?.learnPublications();
        await registry.refresh();
        sockets.announceModel(router!.announcement());
      },
      clock,
      log,
    });
    await router.start();
    sockets.attach(router);
  } else {
    sockets.attach(runner);
  }
  const readiness = new ReadinessCheck({ storageFailure: () => runner.storageFailure, clock, ...(options.storageProbe ? { probe: options.storageProbe } : {}), ...(cluster ? { probes: 'this node cannot reach its PostgreSQL or Redis' } : {}) });
  if (options.servingPolicy === 'promoted' && !registry.serving) {
    const { record } = registry.current;
    await registry.setServing({ version: record.version, parameters: record.parameters, promotedAt: iso(), reason: 'the version at the first start with promoted serving', candidate: null });
    log(`serving model v${record.version}: later versions are served only once promoted (portrait model promote)`);
  }
  const announce = () => transport.announceModel(runner.announcement());
  const modelPublished = ledgerHook ? (version: number) => ledgerHook.isPublished(version) : undefined;
  const publishedDigest = ledgerHook ? (version: number) => ledgerHook.publishedDigest(version) : undefined;
  const promotionDeps = { rounds: options.rounds, registry, ...(modelPublished ? { modelPublished } : {}), announce, clock };
  const httpOptions = { rounds: options.rounds, tokens: options.tokens, registry, runner: () => runner, connectedClients: () => sockets.connectedClients(), privacyPolicy, clock, readiness: () => readiness.report(),
    ...(router ? { onLaunched: () => router!.launched(), cluster: () => ({ nodeId: cluster!.nodeId, leading, nodes: membership?.nodes ?? [] }) } : {}), ...(options.catalogCategories ? { catalogCategories: options.catalogCategories } : {}),
    ...(options.minSegmentCohort !== undefined ? { minSegmentCohort: options.minSegmentCohort } : {}),
    promoteModel: (body: unknown) => promoteVersion(promotionDeps, body),
    rolloutModel: (body: unknown) => rolloutVersion(promotionDeps, body),
    bootstrapModel: (body: unknown) => bootstrapModel({ rounds: options.rounds, registry, runner, ...(ledgerHook ? { ledger: ledgerHook } : {}), announce, clock }, body), ...(options.ledger ? { ledger: options.ledger } : {}), ...(modelPublished ? { modelPublished } : {}), ...(publishedDigest ? { publishedDigest } : {}) };
  httpServer.on('request', createHttpApp(options.platformSecretKey ? { ...httpOptions, platformSecretKey: options.platformSecretKey, demoShopTokens: options.demoShopTokens === true } : httpOptions));

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(port, options.host ?? '127.0.0.1', () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
  try {
    try {
      await listen(options.port ?? 0);
    } catch (err) {
      if (!(options.freePortIfBusy === true && (err as NodeJS.ErrnoException).code === 'EADDRINUSE')) throw err;
      await listen(0);
    }
  } catch (err) {
    // Nothing listens: let the Socket.IO server go with it (the caller closes the stores).
    void io.close();
    throw err;
  }
  const { port } = httpServer.address() as AddressInfo;
  const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
  if (cluster && lease) {
    membership = new Membership({ pool: cluster.pool, nodeId: cluster.nodeId, url: cluster.advertiseUrl?.(port) ?? `http://${host}:${port}`, periodMs: cluster.heartbeatMs, report: () => ({ connections: sockets.localClients(), ready: cluster.ready(), leader: leading }), log });
    await membership.start();
    lease.start();
  } else {
    runner.start(await lastIssued());
  }
  log(`coordinator on http://${host}:${port} (model v${registry.current.record.version}, ${registry.parameters} parameters)`);

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    registry,
    runner,
    sockets,
    io,
    ...(cluster ? { cluster: { nodeId: cluster.nodeId, nodes: () => membership?.nodes ?? [], leading: () => leading } } : {}),
    close: () =>
      (closing ??= (async () => {
        // A leader hands its lease back first, so another node takes the rounds at once.
        await lease?.stop();
        await membership?.stop();
        leading = false;
        await runner.stop();
        // io.close() ends every Socket.IO session and stops listening; the HTTP server then waits
        // for its open connections. A browser may hold one with no request on it (a speculative
        // preconnect), which Node would keep until the headers timeout (a minute): after a short
        // grace for requests in flight, the rest are closed.
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => httpServer.closeAllConnections(), CLOSE_GRACE_MS);
          void io.close(() => {
            clearTimeout(force);
            resolve();
          });
        });
        registry.dispose();
        await options.onClose?.();
      })()),
  };
}

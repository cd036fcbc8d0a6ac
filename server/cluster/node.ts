/**
 * One node of a cluster: `portrait server --postgres URL --redis URL`. Any number of nodes, on one
 * machine or many, behind one address form one deployment:
 *
 * - PostgreSQL holds what the embedded default keeps in SQLite (rounds, model versions and their
 *   files, the ledger, API tokens: server/storage/postgres.ts), the rounds lease and the nodes.
 * - Redis joins the nodes' Socket.IO servers through the official Redis Streams adapter
 *   (@socket.io/redis-streams-adapter): chosen over the Pub/Sub adapter because a stream survives
 *   a short Redis outage without losing the packets sent meanwhile, which a round in flight needs.
 * - The key directory (`--data-dir`) is the deployment's, the same on every node (a shared secret
 *   volume): the platform key pair, the ledger key unless kept elsewhere, the bootstrap API tokens.
 *   The first node to start creates them, alone (an advisory lock), with version 1 and the genesis
 *   entry; the others read them.
 *
 * A node that cannot reach PostgreSQL or Redis at start fails with UNAVAILABLE naming which, and
 * holds nothing open. A node that loses Redis while running reports unready, ends its devices'
 * sessions (they reconnect through the load balancer to a node that has it) and refuses new ones
 * until Redis is back.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { createClient } from 'redis';
import type { BudgetCap } from '../../shared/ledger/bundle.ts';
import { checkBudgetCap } from '../../shared/ledger/bundle.ts';
import { errorBody, ProtocolError } from '../../shared/protocol/errors.ts';
import type { ErrorBody } from '../../shared/protocol/errors.ts';
import { createApiToken } from '../auth/api-tokens.ts';
import { writeApiTokens } from '../auth/bootstrap-tokens.ts';
import { loadOrCreatePlatformKey } from '../auth/platform-key.ts';
import { startCoordinator } from '../coordinator.ts';
import type { Coordinator, CoordinatorOptions } from '../coordinator.ts';
import { crashHookFromEnv } from '../ledger/crash-seam.ts';
import { ledgerKeyFile, softwareVersion } from '../ledger/data-dir.ts';
import { resolveLedgerKey } from '../ledger/key.ts';
import { PrivacyLedger } from '../ledger/ledger.ts';
import { openPostgresStores, withoutPassword } from '../storage/postgres.ts';
import type { ClusterMessaging } from './router.ts';
import { ADVISORY_LOCKS, withSessionLock } from '../storage/postgres-migrations.ts';

export const POSTGRES_URL_ENV = 'PORTRAIT_POSTGRES_URL';
export const REDIS_URL_ENV = 'PORTRAIT_REDIS_URL';
/** The name of the Redis stream and Pub/Sub channels a deployment's nodes share (default `portrait:socket.io`): deployments sharing one Redis each name their own. */
export const REDIS_STREAM_ENV = 'PORTRAIT_REDIS_STREAM';
/**
 * Test seam, never set in production: the directory where the node leading a SecAgg+ round writes
 * its unmasked sum (`round-<id>.bin`, the aggregate that is released, never an input), so a test
 * can check it against the inputs the devices masked on other nodes.
 */
export const SECAGG_SUM_DIR_ENV = 'PORTRAIT_TEST_SECAGG_SUM_DIR';

export interface ClusterNodeOptions extends Omit<CoordinatorOptions, 'rounds' | 'models' | 'tokens' | 'platformPublicKey' | 'platformSecretKey' | 'onClose' | 'ledger' | 'storageProbe' | 'cluster'> {
  postgresUrl: string;
  redisUrl: string;
  /** The deployment's key directory, the same on every node (see above). */
  keyDir: string;
  /** The ledger signing key's file; default PORTRAIT_LEDGER_KEY_FILE, else ledger-key.json in keyDir. */
  ledgerKeyFile?: string;
  /** The shop platform's public key; default the key directory's own pair (the cluster is also the platform). */
  platformPublicKey?: Uint8Array;
  epsilonCap?: BudgetCap;
  /** Default: host name, process id and a random suffix. */
  nodeId?: string;
  /** The rounds lease's lifetime unrenewed (default 6 s): a dead leader's rounds are taken over within it plus a third of it. */
  leaseTtlMs?: number;
  /** Membership heartbeat period (default 1 s). */
  heartbeatMs?: number;
  /** The address other nodes and operators reach this node at (default: its listening address, or its host name when it listens on every interface). */
  advertiseUrl?: string;
  /** The Redis stream and channel prefix the nodes' adapter shares (default `portrait:socket.io`); a test gives each cluster its own. */
  redisStream?: string;
}

async function connectRedis(url: string, log: (line: string) => void) {
  let started = false;
  const client = createClient({
    url,
    socket: {
      connectTimeout: 3_000,
      // At start a Redis that does not answer fails the start; once running, retry with a capped backoff.
      reconnectStrategy: (retries: number, cause: Error) => (started ? Math.min(100 * 2 ** retries, 2_000) : cause),
    },
  });
  client.on('error', (err: Error) => {
    if (started) log(`redis: ${err.message}`);
  });
  try {
    await client.connect();
  } catch (err) {
    // A client whose connect failed may already be closed: nothing more to release.
    if (client.isOpen) client.destroy();
    throw new ProtocolError('UNAVAILABLE', `Redis at ${withoutPassword(url)} is unreachable: ${err instanceof Error ? err.message : String(err)}`);
  }
  started = true;
  return client;
}

export async function startClusterNode(options: ClusterNodeOptions): Promise<Coordinator & { nodeId: string }> {
  const { postgresUrl, redisUrl, keyDir, ledgerKeyFile: keyFileOption, platformPublicKey, epsilonCap, nodeId: givenId, leaseTtlMs, heartbeatMs, redisStream, advertiseUrl, ...rest } = options;
  const log = options.log ?? (() => undefined);
  if (epsilonCap) checkBudgetCap(epsilonCap);
  const nodeId = givenId ?? `${os.hostname()}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const stores = await openPostgresStores(postgresUrl, { log });
  let redis: Awaited<ReturnType<typeof connectRedis>> | undefined;
  let subscriber: Awaited<ReturnType<typeof connectRedis>> | undefined;
  try {
    redis = await connectRedis(redisUrl, log);
    const initLock = <T>(run: () => Promise<T>) => withSessionLock(stores.pool, ADVISORY_LOCKS.clusterInit, run);
    const keyFile = ledgerKeyFile(keyDir, keyFileOption !== undefined ? { keyFile: keyFileOption } : {});
    // Test seams, never set in production (crash-seam.ts; SECAGG_SUM_DIR_ENV below).
    const crash = crashHookFromEnv(process.env);
    const sumDir = process.env[SECAGG_SUM_DIR_ENV];
    const { ledger, platform } = await initLock(async () => {
      const platform = platformPublicKey ? { publicKey: platformPublicKey } : loadOrCreatePlatformKey(keyDir);
      const ledger = await PrivacyLedger.open({ store: stores.ledger, key: (current) => resolveLedgerKey(keyFile, current, current === null), software: softwareVersion(), cap: epsilonCap ?? null, ...(options.clock ? { clock: options.clock } : {}), ...(crash ? { crash } : {}) });
      if ((await stores.tokens.all()).length === 0) {
        // The tokens are shown once, in that file: a key directory that takes no writes is refused before any is stored.
        try {
          fs.accessSync(keyDir, fs.constants.W_OK);
        } catch (err) {
          throw new ProtocolError('UNAVAILABLE', `the key directory ${keyDir} takes no writes, so the bootstrap API tokens could not be handed out: ${err instanceof Error ? err.message : String(err)}`);
        }
        const now = new Date().toISOString();
        const operator = await createApiToken(stores.tokens, 'bootstrap operator', 'operator', now);
        const auditor = await createApiToken(stores.tokens, 'bootstrap auditor', 'auditor', now);
        log(`API tokens written to ${writeApiTokens(keyDir, { operator: operator.token, auditor: auditor.token })}`);
      }
      return { ledger, platform };
    });
    const link = redis;
    const channel = redisStream ?? (process.env[REDIS_STREAM_ENV] || 'portrait:socket.io');
    // A connection in subscriber mode takes no other command: device messages to the leader and its answers arrive on it.
    subscriber = link.duplicate();
    subscriber.on('error', () => undefined);
    await subscriber.connect();
    const listening = subscriber;
    const messaging: ClusterMessaging = {
      publish: (name, message) => link.publish(name, message),
      subscribe: (name, listener) => listening.subscribe(name, listener, true),
      unsubscribe: (name) => listening.unsubscribe(name),
    };
    const coordinator = await startCoordinator({
      ...rest,
      rounds: stores.rounds,
      models: stores.models,
      tokens: stores.tokens,
      ledger,
      platformPublicKey: platform.publicKey,
      ...('secretKey' in platform ? { platformSecretKey: platform.secretKey } : {}),
      // Ready while PostgreSQL answers and the Redis link is up.
      storageProbe: async () => {
        await stores.pool.query('SELECT 1');
        if (!link.isReady) throw new Error(`Redis at ${withoutPassword(redisUrl)} is unreachable`);
      },
      ...(sumDir ? { onSecAggSum: (roundId: number, sum: Uint32Array) => fs.writeFileSync(path.join(sumDir, `round-${roundId}.bin`), sum) } : {}),
      cluster: {
        nodeId,
        pool: stores.pool,
        // The stream carries emits to devices; server-side events (device messages forwarded to the
        // leader, its answers) go over Pub/Sub channels named by channelPrefix: both take the
        // deployment's name, so deployments sharing one Redis never hear each other.
        adapter: createAdapter(link, { streamName: channel, channelPrefix: channel, heartbeatInterval: 1_000, heartbeatTimeout: 3_000 }),
        leaseTtlMs: leaseTtlMs ?? 6_000,
        heartbeatMs: heartbeatMs ?? 1_000,
        initLock,
        messaging,
        channel,
        ready: () => link.isReady && listening.isReady,
        advertiseUrl: (port: number) => advertiseUrl ?? (rest.host === '0.0.0.0' || rest.host === '::' ? `http://${os.hostname()}:${port}` : `http://${rest.host ?? '127.0.0.1'}:${port}`),
      },
      onClose: async () => {
        listening.destroy();
        link.destroy();
        await stores.close();
      },
    });
    // Without Redis this node cannot reach the leader or the other nodes' devices: its devices go
    // elsewhere (the load balancer sees /readyz fail), and new ones are refused until it is back.
    link.on('reconnecting', () => {
      log('redis: connection lost; ending this node\'s device sessions until it is back');
      // The connections are closed, not the sessions ended: socket.io-client reconnects after a
      // lost connection (through the load balancer, to a node that has Redis), never after a disconnect the server sent.
      for (const socket of coordinator.io.sockets.sockets.values()) socket.conn.close();
    });
    coordinator.io.use((_socket, next) => {
      if (link.isReady) return next();
      const body: ErrorBody = errorBody(new ProtocolError('UNAVAILABLE', 'this node has lost its Redis link: connect to another node'));
      next(Object.assign(new Error(body.message), { data: body }));
    });
    log(`cluster node ${nodeId} (PostgreSQL ${withoutPassword(postgresUrl)}, Redis ${withoutPassword(redisUrl)})`);
    return { ...coordinator, nodeId };
  } catch (err) {
    if (subscriber?.isOpen) subscriber.destroy();
    redis?.destroy();
    await stores.close();
    throw err;
  }
}

/**
 * What a coordinator needs to run as one node of a cluster (server/cluster/node.ts builds it):
 * its id, the PostgreSQL pool the lease and membership use, the Socket.IO adapter that joins it to
 * the other nodes, and the lock under which one node makes the deployment's first start.
 */
import type pg from 'pg';
import type { ServerOptions } from 'socket.io';
import type { ClusterMessaging } from './router.ts';

export interface ClusterWiring {
  nodeId: string;
  pool: pg.Pool;
  /** The Socket.IO adapter (Redis Streams: server/cluster/node.ts). */
  adapter: ServerOptions['adapter'];
  /** Redis Pub/Sub for device messages to the leader and its answers (server/cluster/router.ts). */
  messaging: ClusterMessaging;
  /** The deployment's name in Redis: its stream, its adapter channels, its Pub/Sub channels. */
  channel: string;
  /** How long the rounds lease lasts unrenewed: the failover bound (plus a renewal period). */
  leaseTtlMs: number;
  /** How often this node writes its membership row. */
  heartbeatMs: number;
  /** Runs `run` alone across the cluster (a PostgreSQL advisory lock). */
  initLock<T>(run: () => Promise<T>): Promise<T>;
  /** Whether this node can serve now (its Redis connection is up), reported in its membership row; a node that cannot does not lead. */
  ready(): boolean;
  /** The address other nodes and operators reach this node at, shown in the cluster view (default: its listening address). */
  advertiseUrl?: (port: number) => string;
}

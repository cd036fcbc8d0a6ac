/**
 * Which coordinator nodes are alive, and what each holds: every node writes its row of
 * `cluster_nodes` once a period (devices connected, ready, leading) and reads every row seen
 * within three periods. The leader counts devices across the cluster from it (check-in closes once
 * every connected device answered), and each node's dashboard and /api/v1/cluster show it.
 */
import type pg from 'pg';

export interface ClusterNode {
  nodeId: string;
  url: string;
  startedAt: string;
  seenAt: string;
  connections: number;
  ready: boolean;
  leader: boolean;
}

export interface MembershipOptions {
  pool: pg.Pool;
  nodeId: string;
  url: string;
  periodMs: number;
  /** What this node reports each period. */
  report: () => { connections: number; ready: boolean; leader: boolean };
  log: (line: string) => void;
}

export class Membership {
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> = Promise.resolve();
  private alive: ClusterNode[] = [];
  private readonly startedAt = new Date().toISOString();

  constructor(private readonly options: MembershipOptions) {}

  /** The nodes seen within three periods, as of the last beat (this node included once it has beaten). */
  get nodes(): readonly ClusterNode[] {
    return this.alive;
  }

  /** Devices connected to every live node, as of the last beat. */
  get connections(): number {
    return this.alive.reduce((sum, n) => sum + n.connections, 0);
  }

  async start(): Promise<void> {
    await this.beat();
    const loop = () => {
      this.timer = setTimeout(() => {
        this.beating = this.beat().finally(() => {
          if (this.timer) loop();
        });
      }, this.options.periodMs);
    };
    loop();
  }

  /** Writes this node's row now and reads the cluster's (also called when something changes that others should see soon). */
  async beat(): Promise<void> {
    const { pool, nodeId, url, periodMs } = this.options;
    const { connections, ready, leader } = this.options.report();
    try {
      await pool.query(
        `INSERT INTO cluster_nodes (node_id, url, started_at, seen_at, connections, ready, leader) VALUES ($1, $2, $3, now(), $4, $5, $6)
         ON CONFLICT (node_id) DO UPDATE SET url = EXCLUDED.url, seen_at = now(), connections = EXCLUDED.connections, ready = EXCLUDED.ready, leader = EXCLUDED.leader`,
        [nodeId, url, this.startedAt, connections, ready, leader],
      );
      const { rows } = await pool.query<{ node_id: string; url: string; started_at: Date; seen_at: Date; connections: number; ready: boolean; leader: boolean }>(
        "SELECT node_id, url, started_at, seen_at, connections, ready, leader FROM cluster_nodes WHERE seen_at > now() - $1 * interval '1 millisecond' ORDER BY started_at, node_id",
        [3 * periodMs],
      );
      this.alive = rows.map((r) => ({ nodeId: r.node_id, url: r.url, startedAt: r.started_at.toISOString(), seenAt: r.seen_at.toISOString(), connections: r.connections, ready: r.ready, leader: r.leader }));
    } catch (err) {
      this.options.log(`cluster membership: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Stops beating and removes this node's row, so the others stop counting it at once. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.beating;
    await this.options.pool.query('DELETE FROM cluster_nodes WHERE node_id = $1', [this.options.nodeId]).catch(() => undefined);
  }
}

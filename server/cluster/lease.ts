/**
 * The round leader's lease: one row of `cluster_leases` in PostgreSQL, held by one node at a time
 * for `ttlMs` and renewed every `ttlMs / 3`. A node takes an expired lease with the next fencing
 * token (Kleppmann, "How to do distributed locking", 2016: a lock service must hand out
 * monotonically increasing fencing tokens, and the storage must refuse writes with an older one);
 * the stores check that token on every write a leader makes (server/storage/stores.ts Fence), so
 * a leader that stalled past its lease (a long GC pause, a partition) changes nothing once another
 * node holds it. Expiry is judged by PostgreSQL's clock alone, so nodes' clocks may disagree.
 */
import type pg from 'pg';
import { FencedError } from '../storage/stores.ts';
import type { Fence } from '../storage/stores.ts';

export const ROUNDS_LEASE = 'rounds';

export interface LeaseOptions {
  pool: pg.Pool;
  /** This node's id (the `holder` column). */
  holder: string;
  name?: string;
  /** How long a lease lasts without renewal: the bound on a failover, plus one renewal period. */
  ttlMs: number;
  /** Whether this node may lead now (a node that lost its Redis link cannot reach other nodes' devices): when not, it hands a held lease back and takes none. */
  canLead?: () => boolean;
  /** Called with the new fencing token each time this node takes the lease. */
  onAcquired: (token: number) => Promise<void> | void;
  /** Called when this node learns it no longer holds the lease it held (or cannot reach the store to renew it). */
  onLost: (reason: string) => Promise<void> | void;
  log: (line: string) => void;
}

export class LeaderLease {
  private token: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> = Promise.resolve();
  private stopped = false;
  readonly name: string;

  constructor(private readonly options: LeaseOptions) {
    this.name = options.name ?? ROUNDS_LEASE;
  }

  get held(): boolean {
    return this.token !== null;
  }

  /** The fence of the lease this node holds; FencedError when it holds none. */
  fence(): Fence {
    if (this.token === null) throw new FencedError({ lease: this.name, token: 0 });
    return { lease: this.name, token: this.token };
  }

  /** Checks in the store that this node still holds the lease with its token (FencedError when not). */
  async check(): Promise<void> {
    const fence = this.fence();
    const { rows } = await this.options.pool.query<{ token: string }>('SELECT token FROM cluster_leases WHERE name = $1 AND holder = $2 AND expires_at > now()', [this.name, this.options.holder]);
    if (Number(rows[0]?.token) !== fence.token) throw new FencedError(fence);
  }

  start(): void {
    const period = Math.max(50, Math.floor(this.options.ttlMs / 3));
    const tick = () => {
      this.ticking = this.tick().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, period);
      });
    };
    tick();
  }

  private async tick(): Promise<void> {
    const { pool, holder, ttlMs, log } = this.options;
    try {
      const canLead = this.options.canLead?.() ?? true;
      if (this.token !== null && !canLead) {
        const token = this.token;
        await this.lose('this node cannot lead now (its Redis link is down): handed back');
        await pool.query('UPDATE cluster_leases SET expires_at = now() WHERE name = $1 AND holder = $2 AND token = $3', [this.name, holder, token]);
        return;
      }
      if (!canLead) return;
      if (this.token !== null) {
        const { rowCount } = await pool.query("UPDATE cluster_leases SET expires_at = now() + $4 * interval '1 millisecond' WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > now()", [this.name, holder, this.token, ttlMs]);
        if (rowCount === 1) return;
        await this.lose('another node took the lease after it expired');
        return;
      }
      // Take the lease when there is none or it has expired; the token only ever grows.
      const { rows } = await pool.query<{ token: string }>(
        `INSERT INTO cluster_leases (name, holder, token, expires_at) VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
         ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, token = cluster_leases.token + 1, expires_at = EXCLUDED.expires_at
         WHERE cluster_leases.expires_at <= now()
         RETURNING token`,
        [this.name, holder, ttlMs],
      );
      const token = rows[0]?.token;
      if (token === undefined || this.stopped) return;
      this.token = Number(token);
      log(`took the "${this.name}" lease (fencing token ${this.token})`);
      await this.options.onAcquired(this.token);
    } catch (err) {
      if (this.token !== null) await this.lose(`the store cannot renew it: ${err instanceof Error ? err.message : String(err)}`);
      else log(`lease: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async lose(reason: string): Promise<void> {
    const token = this.token;
    this.token = null;
    this.options.log(`lost the "${this.name}" lease (fencing token ${token}): ${reason}`);
    await this.options.onLost(reason);
  }

  /** Stops renewing; a held lease is handed back (expired now) so another node takes it at its next try. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    if (this.token === null) return;
    const token = this.token;
    this.token = null;
    await this.options.pool.query('UPDATE cluster_leases SET expires_at = now() WHERE name = $1 AND holder = $2 AND token = $3', [this.name, this.options.holder, token]).catch(() => undefined);
  }
}

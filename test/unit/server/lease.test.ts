/**
 * The rounds lease on a real PostgreSQL database: of two nodes one holds it; a holder that may not
 * lead (its Redis link is down) hands it back and the other takes it with a larger fencing token;
 * the deposed holder's fence is refused by the store; a holder that stops hands it back at once.
 */
import { describe, expect, it } from 'vitest';
import { LeaderLease } from '../../../server/cluster/lease.ts';
import { FencedError } from '../../../server/storage/stores.ts';
import { parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import { databaseForTest, postgresAvailable, storesForTest } from '../../helpers/postgres.ts';

const available = await postgresAvailable();

async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!available)('LeaderLease on PostgreSQL', () => {
  it('gives the lease to one node, moves it with a larger token when its holder may not lead, and fences the deposed holder', async () => {
    const stores = await storesForTest(await databaseForTest());
    const tokens: Record<string, number[]> = { a: [], b: [] };
    const lost: string[] = [];
    const mayLead: Record<string, boolean> = { a: true, b: true };
    const lease = (holder: string) =>
      new LeaderLease({ pool: stores.pool, holder, ttlMs: 600, canLead: () => mayLead[holder]!, onAcquired: (t) => void tokens[holder]!.push(t), onLost: () => void lost.push(holder), log: () => undefined });
    const a = lease('a');
    a.start();
    await until(() => a.held, 5_000, 'a to take the lease');
    const b = lease('b');
    b.start();
    await new Promise((r) => setTimeout(r, 700));
    expect([a.held, b.held]).toEqual([true, false]);

    const [round] = await stores.rounds.createRounds([parseLaunchRequest({ clientsPerRound: 3, privacy: { mode: 'local' } }).spec], '2026-01-01T00:00:00.000Z');
    const fenceA = a.fence();
    await stores.rounds.update(round!.id, { stage: 'checkin' }, fenceA);

    mayLead.a = false;
    await until(() => b.held, 5_000, 'b to take the lease');
    expect(a.held).toBe(false);
    expect(lost).toEqual(['a']);
    expect(tokens.b[0]).toBeGreaterThan(tokens.a[0]!);
    await expect(a.check()).rejects.toBeInstanceOf(FencedError);
    await expect(stores.rounds.update(round!.id, { stage: 'training' }, fenceA)).rejects.toBeInstanceOf(FencedError);
    expect((await stores.rounds.get(round!.id))?.stage).toBe('checkin');
    await b.check();

    // A holder that stops hands the lease back at once: the other takes it well before it would expire.
    mayLead.a = true;
    await b.stop();
    await until(() => a.held, 1_000, 'a to take the handed-back lease');
    await a.stop();
  }, 30_000);
});

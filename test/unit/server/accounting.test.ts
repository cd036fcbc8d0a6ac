import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPrivacyConfig } from '../../../shared/privacy/config.ts';
import { parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import type { PrivacySpec, RoundRecord } from '../../../shared/protocol/messages.ts';
import { privacyInput } from '../../../shared/protocol/privacy.ts';
import { configuredPrivacyRecord, PrivacyHistory, releasedPrivacyRecord } from '../../../server/rounds/accounting.ts';
import { openDatabase, SqliteRoundStore } from '../../../server/storage/sqlite.ts';

function released(delta: number, id: number, history: readonly RoundRecord[]) {
  const { spec } = parseLaunchRequest({ rounds: 1, clientsPerRound: 4, minClients: 3, privacy: { clip: 0.5, noiseMultiplier: 1.5, delta, population: 1000 } });
  const privacy = spec.privacy as PrivacySpec;
  const config = buildPrivacyConfig(privacyInput(privacy, 1000, { method: 'fixed', rate: 1 }, 4, { allowCentral: false, allowNone: false }));
  return { spec, record: releasedPrivacyRecord(configuredPrivacyRecord(privacy, config, 'fixed'), history, id) };
}

describe('releasedPrivacyRecord', () => {
  it('composes every earlier released round into the cumulative epsilon, whatever delta it was released at', () => {
    const first = released(1e-5, 1, []);
    const alone = released(1e-6, 2, []);
    const history = [{ id: 1, status: 'committed', privacy: first.record } as unknown as RoundRecord];
    const second = released(1e-6, 2, history);
    expect(second.record.epsilonRound).toBe(alone.record.epsilonRound);
    // Two rounds' RDP composed: strictly more than one round alone (never an under-count).
    expect(second.record.epsilonCumulative as number).toBeGreaterThan((alone.record.epsilonCumulative as number) * 1.2);
  });

  it('reports the cumulative epsilon as unbounded once a model was released without DP', () => {
    const history = [{ id: 1, status: 'committed', privacy: { mode: 'none', differentiallyPrivate: false, released: false } } as unknown as RoundRecord];
    const second = released(1e-6, 2, history);
    expect(second.record.epsilonRound).toEqual(expect.any(Number));
    expect(second.record.epsilonCumulative).toBeNull();
    const aborted = [{ id: 1, status: 'aborted', privacy: { mode: 'none', differentiallyPrivate: false, released: false } } as unknown as RoundRecord];
    expect(released(1e-6, 2, aborted).record.epsilonCumulative).toBe(released(1e-6, 2, []).record.epsilonRound);
  });

  it('spends nothing for an unreleased round in the history', () => {
    const first = released(1e-6, 1, []);
    const history = [{ id: 1, status: 'aborted', privacy: { ...first.record, released: false } } as unknown as RoundRecord];
    const second = released(1e-6, 2, history);
    expect(second.record.epsilonCumulative).toBe(second.record.epsilonRound);
  });

  it("kept up round by round, gives what the whole history gives; counts a release once, whatever the round's status", () => {
    const spend = (id: number, delta: number) => released(delta, id, []).record;
    const rounds = [
      { id: 1, status: 'committed', privacy: spend(1, 1e-6) },
      { id: 2, status: 'committed', privacy: spend(2, 1e-5) },
      // Released, then aborted: the spend stands.
      { id: 3, status: 'aborted', privacy: spend(3, 1e-6) },
      // Released, but its final write failed: still running in the store; the spend stands too.
      { id: 4, status: 'running', privacy: spend(4, 1e-6) },
      // Running, not released yet: nothing spent.
      { id: 5, status: 'running', privacy: { ...spend(5, 1e-6), released: false } },
    ] as unknown as RoundRecord[];
    const pending = released(1e-6, 6, []);
    const whole = PrivacyHistory.of(rounds).release(pending.record);
    const kept = PrivacyHistory.of([]);
    for (const r of rounds) {
      kept.add(r);
      kept.add({ ...r, status: 'committed' } as RoundRecord); // the same round again, e.g. at its finish
    }
    expect(kept.release(pending.record)).toEqual(whole);
    // Rounds 1-4 count; round 5 does not.
    expect(whole.epsilonCumulative).toBeCloseTo(released(1e-6, 6, rounds.slice(0, 4)).record.epsilonCumulative as number, 12);
    expect(whole.epsilonCumulative as number).toBeGreaterThan(released(1e-6, 6, rounds.slice(0, 3)).record.epsilonCumulative as number);
    // The order records come in does not change the sum: oldest first, as the ledger adds them.
    expect(PrivacyHistory.of([...rounds].reverse()).release(pending.record)).toEqual(whole);
    // Round 5 counts once it is released.
    kept.add({ ...rounds[4]!, privacy: spend(5, 1e-6) } as RoundRecord);
    expect(kept.release(pending.record).epsilonCumulative as number).toBeGreaterThan(whole.epsilonCumulative as number);
  });

  it('marks a SecAgg+ round as such from launch, before any cohort is selected (real SQLite store)', async () => {
    const db = openDatabase(fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-acct-')));
    const store = new SqliteRoundStore(db);
    const withSecAgg = parseLaunchRequest({ clientsPerRound: 10, privacy: { mode: 'distributed' } }).spec;
    const without = parseLaunchRequest({ clientsPerRound: 10, privacy: { mode: 'local' } }).spec;
    expect(withSecAgg.secagg).not.toBeNull();
    const [a, b] = await store.createRounds([withSecAgg, without], new Date(0).toISOString());
    expect((await store.get(a!.id))!.privacy).toMatchObject({ mode: 'distributed', secagg: 'on', released: false });
    expect((await store.get(b!.id))!.privacy).toMatchObject({ mode: 'local', secagg: 'off' });
    db.close();
  });
});

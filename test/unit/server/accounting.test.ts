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

  it('kept up round by round, gives what the whole history gives; counts finished rounds once, and no unfinished one', () => {
    const rounds = [1, 2, 3, 4].map((id) => ({ id, status: id === 4 ? 'running' : id === 3 ? 'aborted' : 'committed', privacy: released(id === 2 ? 1e-5 : 1e-6, id, []).record }) as unknown as RoundRecord);
    const pending = released(1e-6, 5, []);
    const whole = PrivacyHistory.of(rounds).release(pending.record);
    const kept = PrivacyHistory.of([]);
    for (const r of rounds) {
      kept.add(r);
      kept.add(r); // a second finish of the same round (a failed write retried)
    }
    expect(kept.release(pending.record)).toEqual(whole);
    // Rounds 1-3 count (round 3 was released before it aborted); round 4 is still running.
    expect(whole.epsilonCumulative).toBe(released(1e-6, 5, rounds.slice(0, 3)).record.epsilonCumulative);
    expect(whole.epsilonCumulative as number).toBeGreaterThan(released(1e-6, 5, rounds.slice(0, 2)).record.epsilonCumulative as number);
    // A round finished later is counted when it is added, not before.
    const late = { ...rounds[3]!, status: 'committed' } as RoundRecord;
    expect(kept.release(pending.record).epsilonCumulative).toBe(whole.epsilonCumulative);
    kept.add(late);
    expect(kept.release(pending.record).epsilonCumulative).toBe(released(1e-6, 5, [...rounds.slice(0, 3), late]).record.epsilonCumulative);
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

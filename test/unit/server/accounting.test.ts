import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPrivacyConfig } from '../../../shared/privacy/config.ts';
import { parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import type { PrivacySpec, RoundRecord } from '../../../shared/protocol/messages.ts';
import { privacyInput } from '../../../shared/protocol/privacy.ts';
import { configuredPrivacyRecord, recordRdp, releasedPrivacyRecord, type RdpCache } from '../../../server/rounds/accounting.ts';
import { openDatabase, SqliteRoundStore } from '../../../server/storage/sqlite.ts';

function released(delta: number, id: number, history: readonly RoundRecord[], cache?: RdpCache) {
  const { spec } = parseLaunchRequest({ rounds: 1, clientsPerRound: 4, minClients: 3, privacy: { clip: 0.5, noiseMultiplier: 1.5, delta, population: 1000 } });
  const privacy = spec.privacy as PrivacySpec;
  const config = buildPrivacyConfig(privacyInput(privacy, 1000, { method: 'fixed', rate: 1 }, 4, { allowCentral: false, allowNone: false }));
  return { spec, record: releasedPrivacyRecord(configuredPrivacyRecord(privacy, config, 'fixed'), history, id, cache) };
}

describe('releasedPrivacyRecord', () => {
  it('composes every earlier released round into the cumulative epsilon, whatever delta it was released at', () => {
    const first = released(1e-5, 1, []);
    const alone = released(1e-6, 2, []);
    const history = [{ id: 1, privacy: first.record } as unknown as RoundRecord];
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
    const history = [{ id: 1, privacy: { ...first.record, released: false } } as unknown as RoundRecord];
    const second = released(1e-6, 2, history);
    expect(second.record.epsilonCumulative).toBe(second.record.epsilonRound);
  });

  it('caches the curves of finished rounds only, and gives the same epsilon with or without the cache', () => {
    const first = released(1e-5, 1, []);
    const running = released(1e-5, 2, []);
    const history = [{ id: 1, status: 'committed', privacy: first.record }, { id: 2, status: 'running', privacy: running.record }] as unknown as RoundRecord[];
    const cache: RdpCache = new Map();
    const cold = released(1e-6, 3, history, cache);
    expect([...cache.keys()]).toEqual([1]);
    expect(cache.get(1)).toEqual(recordRdp(first.record));
    const warm = released(1e-6, 3, history, cache);
    expect(warm.record.epsilonCumulative).toBe(cold.record.epsilonCumulative);
    expect(released(1e-6, 3, history).record.epsilonCumulative).toBe(cold.record.epsilonCumulative);
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

/**
 * The epsilon per round the REST API projects for a round still to release: from its spec while
 * pending, from its configured privacy record once selected (the two agree at q = 1, and both are
 * what the release then records), Poisson q below 1 giving less; null without DP; nothing once the
 * round has released or finished, whose record says what it spent.
 */
import { describe, expect, it } from 'vitest';
import { buildPrivacyConfig } from '../../../shared/privacy/config.ts';
import { parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import type { LaunchRequest, PrivacySpec, RoundRecord } from '../../../shared/protocol/messages.ts';
import { privacyInput } from '../../../shared/protocol/privacy.ts';
import { configuredPrivacyRecord, releasedPrivacyRecord } from '../../../server/rounds/accounting.ts';
import { EpsilonProjections } from '../../../server/rounds/projection.ts';
import { MemoryRoundStore } from '../../../server/storage/memory.ts';

const DIMENSION = 1000;

async function pendingRound(request: Omit<LaunchRequest, 'rounds'>): Promise<RoundRecord> {
  const { spec } = parseLaunchRequest({ rounds: 1, ...request });
  const [record] = await new MemoryRoundStore().createRounds([spec], new Date(0).toISOString());
  return record!;
}

function configured(record: RoundRecord): RoundRecord {
  const privacy = record.config.privacy as PrivacySpec;
  const config = buildPrivacyConfig(privacyInput(privacy, DIMENSION, { method: 'fixed', rate: 1 }, record.config.clientsPerRound, { allowCentral: false, allowNone: true }));
  return { ...record, status: 'running', privacy: configuredPrivacyRecord(privacy, config, 'fixed', true) };
}

describe('EpsilonProjections', () => {
  const DP = { clientsPerRound: 4, minClients: 3, privacy: { clip: 0.5, noiseMultiplier: 1.5, delta: 1e-6, population: 1000 } };

  it('projects a pending round from its spec, and a selected one from its record, as its release then records', async () => {
    const projections = new EpsilonProjections(() => DIMENSION);
    const pending = await pendingRound(DP);
    const selected = configured(pending);
    const fromSpec = projections.of(pending);
    const fromRecord = projections.of(selected);
    const spent = releasedPrivacyRecord(selected.privacy!, [], selected.id).epsilonRound;
    expect(fromSpec).toBeGreaterThan(2);
    expect(fromSpec).toBeCloseTo(spent!, 9);
    expect(fromRecord).toBeCloseTo(spent!, 9);
    // More noise, less epsilon; a Poisson rate below 1 amplifies the guarantee.
    expect(projections.of(await pendingRound({ ...DP, privacy: { ...DP.privacy, noiseMultiplier: 8 } }))).toBeLessThan(fromSpec! / 4);
    expect(projections.of(await pendingRound({ ...DP, selection: 'poisson', samplingRate: 0.1 }))).toBeLessThan(fromSpec!);
  });

  it('is null without DP and absent once the record says what was spent', async () => {
    const projections = new EpsilonProjections(() => DIMENSION);
    expect(projections.of(await pendingRound({ clientsPerRound: 4, privacy: { mode: 'none' } }))).toBeNull();
    const selected = configured(await pendingRound(DP));
    const released = { ...selected, privacy: releasedPrivacyRecord(selected.privacy!, [], selected.id) };
    expect(projections.of(released)).toBeUndefined();
    expect(projections.of({ ...selected, status: 'aborted' })).toBeUndefined();
    expect(projections.of({ ...released, status: 'committed' })).toBeUndefined();
  });
});

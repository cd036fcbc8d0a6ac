/**
 * The runner's ledger hook over a real RoundStore: a release is entered from the round record
 * as the runner left it (parameters, cohort, survivors, versions) with the round record
 * accountant's epsilon; a release past the cap (the deployment's, or the launch's own from the
 * round's config) throws the ProtocolError the runner turns into an abort, and the abort is then
 * entered at zero spend.
 */
import { describe, expect, it } from 'vitest';
import { LedgerEntrySchema } from '../../../shared/ledger/entry.ts';
import { buildPrivacyConfig } from '../../../shared/privacy/config.ts';
import { ProtocolError } from '../../../shared/protocol/errors.ts';
import { parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import type { PrivacySpec } from '../../../shared/protocol/messages.ts';
import { privacyInput } from '../../../shared/protocol/privacy.ts';
import { configuredPrivacyRecord, releasedPrivacyRecord } from '../../../server/rounds/accounting.ts';
import { PrivacyLedger } from '../../../server/ledger/ledger.ts';
import { MemoryLedgerStore } from '../../../server/ledger/memory.ts';
import { LedgerRoundHook } from '../../../server/ledger/round-hook.ts';
import { MemoryRoundStore } from '../../../server/storage/memory.ts';
import { fixedClock, seededKey } from './fixtures.ts';

async function setup(cap: number | null, epsilonCap?: number) {
  const rounds = new MemoryRoundStore();
  const { spec } = parseLaunchRequest({ rounds: 1, clientsPerRound: 4, minClients: 3, privacy: { clip: 0.5, noiseMultiplier: 1.5, delta: 1e-6, population: 1000 }, ...(epsilonCap === undefined ? {} : { epsilonCap }) });
  const [record] = await rounds.createRounds([spec, spec], new Date(0).toISOString());
  const privacy = spec.privacy as PrivacySpec;
  const config = buildPrivacyConfig(privacyInput(privacy, 1000, { method: 'fixed', rate: 1 }, 4, { allowCentral: false, allowNone: false }));
  for (const id of [1, 2]) await rounds.update(id, { status: 'running', baseModelVersion: 3, selected: 4, participants: 4, selection: { method: 'fixed', rate: 1 }, privacy: configuredPrivacyRecord(privacy, config, 'fixed') });
  const ledger = await PrivacyLedger.open({ store: new MemoryLedgerStore(), key: seededKey(1), software: 'portrait/test', clock: fixedClock(), cap: cap === null ? null : { epsilon: cap, delta: 1e-6 } });
  const hook = new LedgerRoundHook(ledger, rounds, async () => 4);
  return { rounds, ledger, hook, record: record!, expected: releasedPrivacyRecord(configuredPrivacyRecord(privacy, config, 'fixed'), [], 1) };
}

describe('LedgerRoundHook', () => {
  it('enters a release from the round record with the round accountant\'s epsilon', async () => {
    const { ledger, hook, expected } = await setup(100);
    await hook.beforeRelease(1);
    const entry = LedgerEntrySchema.parse((await ledger.all())[1]);
    if (entry.kind !== 'round') throw new Error('expected a round entry');
    expect(entry.round).toMatchObject({ roundId: 1, outcome: 'released', modelVersionIn: 3, modelVersionOut: 4, cohortSize: 4, survivors: 4, t: 3, q: 1, mode: 'distributed' });
    expect(entry.round.epsilonRound).toBe(expected.epsilonRound);
  });

  it('refuses a release past the cap with the ProtocolError the runner aborts on, then enters the abort at zero', async () => {
    const { ledger, hook, expected } = await setup(1);
    expect(expected.epsilonRound).toBeGreaterThan(1);
    const err = await hook.beforeRelease(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe('BUDGET_EXCEEDED');
    expect((err as Error).message).toMatch(/^privacy budget: round 1 would bring cumulative epsilon to \d+\.\d{4} at delta 0\.000001, above the deployment cap of 1; nothing was released$/);
    expect(ledger.entries).toBe(1);
    await hook.afterAbort(1, (err as Error).message);
    const entry = LedgerEntrySchema.parse((await ledger.all())[1]);
    expect(entry.kind === 'round' && entry.round).toMatchObject({ outcome: 'aborted', epsilonRound: 0, reason: expect.stringMatching(/^privacy budget/) });
  });

  it("refuses a release past the launch cap in the round's record, on a ledger without a deployment cap", async () => {
    const { ledger, hook, expected } = await setup(null, 1);
    expect(expected.epsilonRound).toBeGreaterThan(1);
    const err = await hook.beforeRelease(1).catch((e: unknown) => e);
    expect((err as ProtocolError).code).toBe('BUDGET_EXCEEDED');
    expect((err as Error).message).toMatch(/^privacy budget: round 1 would bring cumulative epsilon to \d+\.\d{4} at delta 0\.000001, above the launch's cap of 1; nothing was released$/);
    expect(ledger.entries).toBe(1);
    // A launch cap above the round's epsilon lets it through.
    const loose = await setup(null, 1000);
    await loose.hook.beforeRelease(1);
    expect(loose.ledger.entries).toBe(2);
  });

  it('refuses to start a round whose projection already passes a cap, before anything is entered', async () => {
    const { ledger, hook, rounds } = await setup(null, 1);
    const record = (await rounds.get(1))!;
    const err = await hook.beforeStart(record, 1000).catch((e: unknown) => e);
    expect((err as ProtocolError).code).toBe('BUDGET_EXCEEDED');
    expect((err as Error).message).toMatch(/^privacy budget: at its projection, round 1 would bring cumulative epsilon to \d+\.\d{4} at delta 0\.000001, above the launch's cap of 1; not started$/);
    expect(ledger.entries).toBe(1);
    // Under the deployment cap alone, the same.
    const deployment = await setup(1);
    await expect(deployment.hook.beforeStart((await deployment.rounds.get(1))!, 1000)).rejects.toThrow(/above the deployment cap of 1; not started$/);
    // Loose caps, or none: it starts.
    const loose = await setup(1000, 1000);
    await expect(loose.hook.beforeStart((await loose.rounds.get(1))!, 1000)).resolves.toBeUndefined();
    const none = await setup(null);
    await expect(none.hook.beforeStart((await none.rounds.get(1))!, 1000)).resolves.toBeUndefined();
  });
});

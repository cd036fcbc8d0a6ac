/** The one-line round summary `round launch --wait` and `round status` print. */
import { describe, expect, it } from 'vitest';
import { parseLaunchRequest } from '../../../shared/protocol/messages.ts';
import type { RoundRecord } from '../../../shared/protocol/messages.ts';
import { describeRound } from '../../../scripts/cli/round.ts';
import { MemoryRoundStore } from '../../../server/storage/memory.ts';

async function record(request: Record<string, unknown>, patch: Partial<RoundRecord>): Promise<RoundRecord> {
  const store = new MemoryRoundStore();
  const [created] = await store.createRounds([parseLaunchRequest({ clientsPerRound: 4, ...request }).spec], new Date(0).toISOString());
  return store.update(created!.id, patch);
}

describe('describeRound', () => {
  it("shows the launch's cap and the devices that declined a committed round, by code", async () => {
    const r = await record({ epsilonCap: 4 }, { status: 'committed', modelVersion: 2, participants: 3, durationMs: 900, declined: { PRIVACY_NOT_ACCEPTED: 1 } });
    expect(describeRound(r)).toBe('round 1 committed → model v2, 3 participants, 900 ms [distributed DP, z=1, C=1, t=3, launch cap ε≤4] [declined by 1 PRIVACY_NOT_ACCEPTED]');
  });

  it('leaves the declines of an aborted round to its reason, which names them', async () => {
    const r = await record({}, { status: 'aborted', reason: 'too few updates; declined by 4 device(s): 4 NO_EXAMPLES (no training examples on the device)', declined: { NO_EXAMPLES: 4 } });
    expect(describeRound(r)).toBe('round 1 aborted: too few updates; declined by 4 device(s): 4 NO_EXAMPLES (no training examples on the device) [distributed DP, z=1, C=1, t=3]');
  });

  it('prints a finished round once, even when it still carries the live stage of the runner (the "aborted aborted:" race)', async () => {
    const r = await record({}, { status: 'aborted', reason: 'too few clients' });
    const served = { ...r, live: { stage: 'aborted', checkedIn: 0, selected: 0, reported: 0, dropped: 0, stageEndsInMs: 0 } } as RoundRecord;
    expect(describeRound(served)).toBe('round 1 aborted: too few clients [distributed DP, z=1, C=1, t=3]');
  });
});

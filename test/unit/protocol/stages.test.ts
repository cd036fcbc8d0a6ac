/** The round stage machine: every transition in the table is allowed, every other one throws INVALID_TRANSITION. */
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../shared/protocol/errors.ts';
import { assertTransition, ROUND_STAGES, TRANSITIONS } from '../../../shared/protocol/stages.ts';

describe('round stage machine', () => {
  const pairs = ROUND_STAGES.flatMap((from) => ROUND_STAGES.map((to) => [from, to] as const));

  it('allows exactly the transitions in the table', () => {
    const allowed = pairs.filter(([from, to]) => TRANSITIONS[from].includes(to));
    expect(allowed).toEqual([
      ['checkin', 'training'],
      ['checkin', 'aborted'],
      ['training', 'aggregating'],
      ['training', 'aborted'],
      ['aggregating', 'committed'],
      ['aggregating', 'aborted'],
    ]);
    for (const [from, to] of allowed) expect(assertTransition(from, to)).toBe(to);
  });

  it.each(pairs.filter(([from, to]) => !TRANSITIONS[from].includes(to)))('rejects %s → %s', (from, to) => {
    let thrown: unknown;
    try {
      assertTransition(from, to);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ProtocolError);
    expect((thrown as ProtocolError).code).toBe('INVALID_TRANSITION');
    expect((thrown as ProtocolError).message).toContain(`"${from}"`);
  });
});

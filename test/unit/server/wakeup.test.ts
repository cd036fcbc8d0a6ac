import { describe, expect, it } from 'vitest';
import { Wakeup } from '../../../server/rounds/wakeup.ts';

describe('Wakeup', () => {
  it('ends a wait on notify, long before its timeout', async () => {
    const w = new Wakeup();
    const started = Date.now();
    const waiting = w.wait(60_000);
    w.notify();
    await waiting;
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('keeps a notify that came while nobody waited, for the next wait only', async () => {
    const w = new Wakeup();
    w.notify();
    const started = Date.now();
    await w.wait(60_000);
    expect(Date.now() - started).toBeLessThan(1_000);
    // The latch is spent: the following wait runs to its timeout.
    const second = Date.now();
    await w.wait(50);
    expect(Date.now() - second).toBeGreaterThanOrEqual(45);
  });
});

/**
 * The handshake pacer (server/handshake-pacer.ts): admitted work runs first come, first served, in
 * turns of at most its slice, with the event loop's other work (here a setImmediate queued from
 * outside) running between turns; one failing handshake does not stall the rest.
 */
import { describe, expect, it } from 'vitest';
import { HandshakePacer } from '../../../server/handshake-pacer.ts';

const busy = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

describe('handshake pacer', () => {
  it('runs everything in order, in turns that let other work in between', async () => {
    const pacer = new HandshakePacer(5);
    const events: string[] = [];
    for (let i = 0; i < 20; i++) pacer.admit(() => {
      busy(2);
      events.push(`h${i}`);
    });
    expect(pacer.waiting).toBe(20);
    // Other work arriving while the storm waits: it must not wait for all twenty.
    setImmediate(() => setImmediate(() => events.push('other')));
    await new Promise<void>((resolve) => pacer.admit(resolve));
    const handshakes = events.filter((e) => e !== 'other');
    expect(handshakes).toEqual(Array.from({ length: 20 }, (_, i) => `h${i}`));
    const other = events.indexOf('other');
    expect(other).toBeGreaterThan(0);
    expect(other).toBeLessThan(20);
    expect(pacer.waiting).toBe(0);
  });

  it('goes on after a handshake that throws', async () => {
    const pacer = new HandshakePacer(5);
    const ran: number[] = [];
    pacer.admit(() => ran.push(1));
    pacer.admit(() => {
      throw new Error('a failing handshake');
    });
    pacer.admit(() => ran.push(3));
    await new Promise<void>((resolve) => pacer.admit(resolve));
    expect(ran).toEqual([1, 3]);
    expect(() => new HandshakePacer(0)).toThrow(RangeError);
  });
});

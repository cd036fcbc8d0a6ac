import { describe, expect, it } from 'vitest';
import { parseEvent, dayFromDate, dateFromDay } from '../../shared/features/events.ts';

describe('event schema', () => {
  it('normalises ts to day', () => {
    const e = parseEvent({ userId: 'u', ts: Date.UTC(2019, 5, 10, 13), type: 'buy', itemId: 'i', category: 'c', price: 3 });
    expect(e.day).toBe(dayFromDate('20190610'));
    expect(dateFromDay(e.day)).toBe('2019-06-10');
  });
  it('names the bad field', () => {
    expect(() => parseEvent({ userId: 'u', day: 1, type: 'stare', itemId: 'i', category: 'c' })).toThrow(/type/);
  });
});

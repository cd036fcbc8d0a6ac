/**
 * The one behaviour-event schema every part of Portrait speaks: importers, the synthetic
 * population, the browser's `portrait.track`, and feature extraction all use it.
 */
import { z } from 'zod';

export const EVENT_TYPES = ['view', 'click', 'favourite', 'cart', 'buy'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const MS_PER_DAY = 86_400_000;

/** The UTC day (days since the Unix epoch, events' `day`) of a time in ms since the epoch. */
export function dayFromMs(ms: number): number {
  return Math.floor(ms / MS_PER_DAY);
}

/** Prices above this (in the dataset's currency) are treated as absurd by cleaning. */
export const MAX_PLAUSIBLE_PRICE = 1_000_000;

const id = z.string().min(1).max(128);

/** Wire/input form: either `ts` (ms since the Unix epoch) or `day` (whole days since it) must be given. */
export const BehaviourEventInputSchema = z
  .object({
    userId: id,
    ts: z.number().int().nonnegative().optional(),
    day: z.number().int().nonnegative().optional(),
    type: z.enum(EVENT_TYPES),
    itemId: id,
    category: id,
    brand: id.optional(),
    price: z.number().finite().nonnegative().optional(),
  })
  .strict()
  .refine((e) => e.ts !== undefined || e.day !== undefined, {
    message: 'an event needs "ts" (ms since epoch) or "day" (days since epoch)',
    path: ['day'],
  });

export type BehaviourEventInput = z.input<typeof BehaviourEventInputSchema>;

/** Normalised form: `day` is always present (UTC days since the Unix epoch). */
export interface BehaviourEvent {
  userId: string;
  day: number;
  ts?: number;
  type: EventType;
  itemId: string;
  category: string;
  brand?: string;
  price?: number;
}

/** Parses and normalises one event; throws a ZodError naming the bad field. */
export function parseEvent(input: unknown): BehaviourEvent {
  const e = BehaviourEventInputSchema.parse(input);
  const day = e.day ?? dayFromMs(e.ts as number);
  const event: BehaviourEvent = { userId: e.userId, day, type: e.type, itemId: e.itemId, category: e.category };
  if (e.ts !== undefined) event.ts = e.ts;
  if (e.brand !== undefined) event.brand = e.brand;
  if (e.price !== undefined) event.price = e.price;
  return event;
}

export function dayFromDate(yyyymmdd: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(yyyymmdd);
  if (!m) throw new RangeError(`"date" expected YYYYMMDD, got ${JSON.stringify(yyyymmdd)}`);
  return Math.floor(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / MS_PER_DAY);
}

export function dateFromDay(day: number): string {
  return new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
}

/** Orders events by time; ties keep their input order (Array.prototype.sort is stable). */
export function sortEvents(events: BehaviourEvent[]): BehaviourEvent[] {
  return [...events].sort((a, b) => a.day - b.day || (a.ts ?? 0) - (b.ts ?? 0));
}

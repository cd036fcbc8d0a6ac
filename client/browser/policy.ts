/**
 * The polite-participation rules of the browser client, pure: given the page's config, what the
 * device reports (idle, hidden, battery) and what it has already spent today and in total, may it
 * check in to a round now? Every "no" carries its reason, which `portrait.status()` shows.
 */
import { z } from 'zod';
import type { PrivacyMode } from '../../shared/privacy/config.ts';

export const PoliteConfigSchema = z
  .object({
    /** Local training CPU time per UTC day, in ms. */
    dailyCpuMs: z.number().int().min(0).default(60_000),
    /** Bytes uploaded (protocol messages) per UTC day. */
    dailyUploadBytes: z.number().int().min(0).default(2_000_000),
    /** This device's own epsilon cap over its lifetime (user-level, delta as announced by rounds). */
    privacyCapEpsilon: z.number().positive().default(10),
    /** Pause below this battery level when not charging (0..1). */
    minBatteryLevel: z.number().min(0).max(1).default(0.2),
    /** Take part only while the page is idle (requestIdleCallback) or hidden. */
    requireIdle: z.boolean().default(true),
    /** Privacy modes this page accepts; `none` (no DP) is refused by default. */
    acceptPrivacyModes: z.array(z.enum(['distributed', 'central', 'local', 'none'])).min(1).default(['distributed', 'local']),
    /** Events older than this many days are deleted from the device. */
    retentionDays: z.number().int().min(1).max(366).default(30),
    /** At most this many events are kept (the oldest go first). */
    maxEvents: z.number().int().min(10).max(1_000_000).default(5_000),
  })
  .strict();

export type PoliteConfigInput = z.input<typeof PoliteConfigSchema>;
export type PoliteConfig = z.infer<typeof PoliteConfigSchema> & { acceptPrivacyModes: PrivacyMode[] };

export function parsePoliteConfig(input: unknown): PoliteConfig {
  return PoliteConfigSchema.parse(input ?? {});
}

/** What the page's main thread observes and forwards to the worker. */
export interface DeviceSignals {
  /** The last requestIdleCallback fired recently and no input followed. */
  idle: boolean;
  hidden: boolean;
  /** null where the Battery API is absent (then battery never blocks). */
  battery: { level: number; charging: boolean; saver: boolean } | null;
}

/** What this device has spent, persisted in IndexedDB. */
export interface DeviceUsage {
  /** UTC day (days since the epoch) the daily counters belong to. */
  day: number;
  cpuMs: number;
  uploadBytes: number;
  /** Cumulative epsilon of the rounds this device contributed to. */
  epsilonSpent: number;
}

export type Decision = { eligible: true } | { eligible: false; reason: string };

/** Daily counters reset when the UTC day changes; the epsilon never does. */
export function usageForDay(usage: DeviceUsage, day: number): DeviceUsage {
  return usage.day === day ? usage : { day, cpuMs: 0, uploadBytes: 0, epsilonSpent: usage.epsilonSpent };
}

/**
 * A round the device declines outright rather than defers: its own privacy cap is spent, for good
 * (epsilon never resets), so it says so at check-in (PRIVACY_NOT_ACCEPTED) and the coordinator
 * neither waits for it nor reads its silence as a dropout.
 */
export function declineReason(config: PoliteConfig, usage: DeviceUsage): 'PRIVACY_NOT_ACCEPTED' | null {
  return usage.epsilonSpent >= config.privacyCapEpsilon ? 'PRIVACY_NOT_ACCEPTED' : null;
}

export function participationDecision(config: PoliteConfig, signals: DeviceSignals, usage: DeviceUsage): Decision {
  if (config.requireIdle && !signals.idle && !signals.hidden) return { eligible: false, reason: 'page in use (waiting for idle or hidden)' };
  const b = signals.battery;
  if (b?.saver) return { eligible: false, reason: 'battery saver is on' };
  if (b && !b.charging && b.level < config.minBatteryLevel) return { eligible: false, reason: `battery low (${Math.round(b.level * 100)}%)` };
  if (usage.cpuMs >= config.dailyCpuMs) return { eligible: false, reason: `daily CPU-time cap reached (${usage.cpuMs} of ${config.dailyCpuMs} ms)` };
  if (usage.uploadBytes >= config.dailyUploadBytes) return { eligible: false, reason: `daily upload cap reached (${usage.uploadBytes} of ${config.dailyUploadBytes} bytes)` };
  if (usage.epsilonSpent >= config.privacyCapEpsilon) return { eligible: false, reason: `own privacy cap reached (epsilon ${usage.epsilonSpent.toFixed(3)} of ${config.privacyCapEpsilon})` };
  return { eligible: true };
}

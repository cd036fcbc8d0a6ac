/**
 * The browser client's pure parts, in Node: the polite-participation decision, daily counters,
 * on-device examples and wire sizes.
 */
import { describe, expect, it } from 'vitest';
import { deviceExamples, deviceStartDay } from '../../client/browser/device-data.ts';
import { declineReason, parsePoliteConfig, participationDecision, usageForDay } from '../../client/browser/policy.ts';
import type { DeviceSignals, DeviceUsage } from '../../client/browser/policy.ts';
import { wireBytes } from '../../client/browser/wire.ts';
import { syntheticPopulation } from '../integration/harness.ts';

const idle: DeviceSignals = { idle: true, hidden: false, battery: { level: 0.9, charging: false, saver: false } };
const fresh: DeviceUsage = { day: 100, cpuMs: 0, uploadBytes: 0, epsilonSpent: 0 };

describe('participationDecision', () => {
  const config = parsePoliteConfig({ dailyCpuMs: 1000, dailyUploadBytes: 5000, privacyCapEpsilon: 2, minBatteryLevel: 0.3 });

  it('defaults accept only distributed DP and require idle', () => {
    const d = parsePoliteConfig({});
    expect(d.acceptPrivacyModes).toEqual(['distributed', 'local']);
    expect(d.requireIdle).toBe(true);
    expect(() => parsePoliteConfig({ dailyCpuMs: -1 })).toThrow(/dailyCpuMs/);
    expect(() => parsePoliteConfig({ bogus: 1 })).toThrow();
  });

  it('takes part when idle or hidden, within every cap', () => {
    expect(participationDecision(config, idle, fresh)).toEqual({ eligible: true });
    expect(participationDecision(config, { ...idle, idle: false, hidden: true }, fresh)).toEqual({ eligible: true });
    expect(participationDecision(parsePoliteConfig({ requireIdle: false }), { ...idle, idle: false }, fresh)).toEqual({ eligible: true });
  });

  it('says why it pauses', () => {
    const cases: [DeviceSignals, DeviceUsage, RegExp][] = [
      [{ ...idle, idle: false }, fresh, /page in use/],
      [{ ...idle, battery: { level: 0.9, charging: true, saver: true } }, fresh, /saver/],
      [{ ...idle, battery: { level: 0.1, charging: false, saver: false } }, fresh, /battery low \(10%\)/],
      [idle, { ...fresh, cpuMs: 1000 }, /CPU-time cap/],
      [idle, { ...fresh, uploadBytes: 5000 }, /upload cap/],
      [idle, { ...fresh, epsilonSpent: 2 }, /privacy cap/],
    ];
    for (const [signals, usage, reason] of cases) {
      const d = participationDecision(config, signals, usage);
      expect(d.eligible).toBe(false);
      expect(d.eligible ? '' : d.reason).toMatch(reason);
    }
    // Charging lifts the low-battery pause; no Battery API never blocks.
    expect(participationDecision(config, { ...idle, battery: { level: 0.1, charging: true, saver: false } }, fresh).eligible).toBe(true);
    expect(participationDecision(config, { ...idle, battery: null }, fresh).eligible).toBe(true);
  });

  it('declines outright (PRIVACY_NOT_ACCEPTED) only once its own privacy cap is spent; every other cap only defers', () => {
    expect(declineReason(config, { ...fresh, epsilonSpent: 2 })).toBe('PRIVACY_NOT_ACCEPTED');
    expect(declineReason(config, { ...fresh, epsilonSpent: config.privacyCapEpsilon })).toBe('PRIVACY_NOT_ACCEPTED');
    expect(declineReason(config, { ...fresh, epsilonSpent: config.privacyCapEpsilon * 0.99 })).toBeNull();
    expect(declineReason(config, { ...fresh, cpuMs: 1e9, uploadBytes: 1e12 })).toBeNull();
  });

  it('resets the daily counters on a new UTC day, never the epsilon', () => {
    const used = { day: 100, cpuMs: 900, uploadBytes: 4000, epsilonSpent: 1.5 };
    expect(usageForDay(used, 100)).toBe(used);
    expect(usageForDay(used, 101)).toEqual({ day: 101, cpuMs: 0, uploadBytes: 0, epsilonSpent: 1.5 });
  });
});

describe('on-device data', () => {
  it('builds the model windows ending on the device\'s last day of events, with no profile labels', async () => {
    const pop = await syntheticPopulation();
    const user = pop.prepared.users.train[0]!;
    const shift = 20_000 - user.events.reduce((m, e) => Math.max(m, e.day), 0);
    const events = user.events.map((e) => ({ ...e, userId: 'self', day: e.day + shift }));
    const start = deviceStartDay(events, pop.config);
    expect(start + Math.max(...pop.config.windows.cutOffsets) + pop.config.windows.horizonDays).toBe(20_001);
    const examples = deviceExamples(events, pop.config);
    expect(examples.length).toBeGreaterThan(0);
    expect(examples.length).toBeLessThanOrEqual(pop.config.windows.cutOffsets.length);
    for (const e of examples) {
      expect(e.labels.age).toBeUndefined();
      expect(e.labels.gender).toBeUndefined();
      expect(e.features.every(Number.isFinite)).toBe(true);
    }
    expect(deviceExamples([], pop.config)).toEqual([]);
  });
});

describe('wireBytes', () => {
  it('counts JSON plus binary attachments, not the ack callback', () => {
    const json = wireBytes('checkin', [{ roundId: 1, nonce: 'abc' }, () => undefined]);
    expect(json).toBe(JSON.stringify(['checkin', { roundId: 1, nonce: 'abc' }]).length);
    const binary = wireBytes('update', [{ roundId: 1, delta: new Uint8Array(4000) }]);
    expect(binary).toBeGreaterThan(4000);
    expect(binary).toBeLessThan(4100);
  });
});

/**
 * The browser client's pure parts, in Node: the polite-participation decision, daily counters,
 * on-device examples (the model's windows on the device's clock, and what a device without an
 * example waits for), the demo shop's sample histories and catalogue names, and wire sizes.
 */
import { describe, expect, it } from 'vitest';
import { DEVICE_USER, deviceExamples, deviceReadiness, deviceWindowsFor } from '../../client/browser/device-data.ts';
import { declineReason, parsePoliteConfig, participationDecision, usageForDay } from '../../client/browser/policy.ts';
import type { DeviceSignals, DeviceUsage } from '../../client/browser/policy.ts';
import { wireBytes } from '../../client/browser/wire.ts';
import { exampleReadiness } from '../../shared/features/device-windows.ts';
import { dateFromDay, parseEvent } from '../../shared/features/events.ts';
import type { BehaviourEvent } from '../../shared/features/events.ts';
import { DEFAULT_WINDOWS } from '../../shared/features/windows.ts';
import { sampleHistory, shopCatalogue } from '../../server/browser/routes.ts';
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
  const TODAY = 20_000;
  const click = (day: number, k = 0): BehaviourEvent => ({ userId: DEVICE_USER, day, type: 'click', itemId: `i1-${k}`, category: 'c1', price: 9 });

  it('anchors the model windows on the device\'s clock: the last label window ends today, with no profile labels', async () => {
    const pop = await syntheticPopulation();
    const user = pop.prepared.users.train[0]!;
    // The user's history ends four days before the device's today: a device anchored on its
    // latest event would put its last cut four days earlier.
    const shift = TODAY - 4 - user.events.reduce((m, e) => Math.max(m, e.day), 0);
    const events = user.events.map((e) => ({ ...e, userId: DEVICE_USER, day: e.day + shift }));
    const w = deviceWindowsFor(events, pop.config, TODAY);
    expect(w.anchorDay).toBe(TODAY);
    expect(w.startDay + Math.max(...pop.config.windows.cutOffsets) + pop.config.windows.horizonDays).toBe(TODAY + 1);
    const examples = deviceExamples(events, pop.config, TODAY);
    expect(examples.length).toBeGreaterThan(0);
    expect(examples.length).toBeLessThanOrEqual(pop.config.windows.cutOffsets.length);
    expect(examples.map((e) => e.cutDay)).toEqual(w.cutDays.slice(w.cutDays.length - examples.length));
    expect(deviceReadiness(events, pop.config, TODAY)).toEqual({ examples: examples.length, waitingFor: null, readyDay: null });
    for (const e of examples) {
      expect(e.labels.age).toBeUndefined();
      expect(e.labels.gender).toBeUndefined();
      expect(e.features.every(Number.isFinite)).toBe(true);
    }
    expect(deviceExamples([], pop.config, TODAY)).toEqual([]);
    // A clock behind the device's events never cuts them off: the windows end on the latest one.
    expect(deviceWindowsFor([click(TODAY + 2)], pop.config, TODAY).anchorDay).toBe(TODAY + 2);
  });

  it('has an example for every event 3 to 9 days old (default windows) and ignores events older than the windows', async () => {
    const pop = await syntheticPopulation();
    expect(pop.config.windows).toEqual(DEFAULT_WINDOWS);
    for (let age = 0; age <= 12; age++) {
      const count = deviceExamples([click(TODAY - age)], pop.config, TODAY).length;
      expect(deviceReadiness([click(TODAY - age)], pop.config, TODAY).examples, `age ${age}`).toBe(count);
      // History [start, cut) with cuts at today-5..today-2: an event 3 days old is before the last cut only.
      expect(count, `age ${age}`).toBe(age < 3 || age > 9 ? 0 : Math.min(4, age - 2));
    }
    // An event older than the windows adds nothing to the features of one inside them.
    const inside = deviceExamples([click(TODAY - 4)], pop.config, TODAY);
    const withOld = deviceExamples([click(TODAY - 25, 1), click(TODAY - 4)], pop.config, TODAY);
    expect(withOld.map((e) => Array.from(e.features))).toEqual(inside.map((e) => Array.from(e.features)));
  });

  it('says what a device without an example waits for, computed from its days and the windows', () => {
    const today = exampleReadiness([TODAY, TODAY], DEFAULT_WINDOWS, TODAY);
    expect(today.examples).toBe(0);
    expect(today.readyDay).toBe(TODAY + 3);
    expect(today.waitingFor).toContain('in the 3 days from it');
    expect(today.waitingFor).toContain('events from 3 to 9 days ago');
    expect(today.waitingFor).toContain('you have events on 1 day (today)');
    expect(today.waitingFor).toContain(`ready on ${dateFromDay(TODAY + 3)} (in 3 days)`);

    const two = exampleReadiness([TODAY - 1, TODAY - 2, TODAY], DEFAULT_WINDOWS, TODAY);
    expect(two.waitingFor).toContain('you have events on 3 days (2 days ago, yesterday and today)');
    expect(two.waitingFor).toContain('(tomorrow)');
    expect(two.readyDay).toBe(TODAY + 1);

    // Other windows, other words: a 2-day horizon and cuts at 2..3.
    const other = exampleReadiness([TODAY], { cutOffsets: [2, 3], horizonDays: 2 }, TODAY);
    expect(other.waitingFor).toContain('in the 2 days from it, so it needs events from 2 to 4 days ago');
    expect(other.readyDay).toBe(TODAY + 2);

    expect(exampleReadiness([], DEFAULT_WINDOWS, TODAY).waitingFor).toMatch(/there are no events on this device/);
    const old = exampleReadiness([TODAY - 20, TODAY - 12], DEFAULT_WINDOWS, TODAY);
    expect(old).toMatchObject({ examples: 0, readyDay: null });
    expect(old.waitingFor).toContain(`your events (${dateFromDay(TODAY - 20)} and ${dateFromDay(TODAY - 12)}) are older than that`);
    expect(exampleReadiness([TODAY - 3, TODAY], DEFAULT_WINDOWS, TODAY)).toEqual({ examples: 1, waitingFor: null, readyDay: null });
  });

  it('gives the shop\'s sample histories, on the device\'s own days, an example at every cut', async () => {
    const pop = await syntheticPopulation();
    for (const deviceToday of [TODAY, TODAY + 37]) {
      for (let i = 0; i < 30; i++) {
        const events = sampleHistory(i, deviceToday).events.map((e) => parseEvent({ userId: DEVICE_USER, ...e }));
        expect(Math.max(...events.map((e) => e.day)), `history ${i}`).toBe(deviceToday - 1);
        // Even after the shopper's first events of today.
        const withToday = [...events, click(deviceToday)];
        expect(deviceExamples(withToday, pop.config, deviceToday).length, `history ${i}`).toBe(pop.config.windows.cutOffsets.length);
      }
    }
  });

  it('names the synthetic categories in Chinese and English, one distinct name per stable id', () => {
    const { shop } = shopCatalogue();
    const names = Object.entries(shop.categoryNames);
    expect(names).toHaveLength(400);
    expect(new Set(names.map(([, n]) => n.zh)).size).toBe(400);
    expect(new Set(names.map(([, n]) => n.en)).size).toBe(400);
    for (const [id, n] of names) {
      expect(id).toMatch(/^c\d+$/);
      expect(n.zh).toMatch(/[\u4e00-\u9fff]/);
      expect(n.en).toMatch(/^[A-Z][A-Za-z' &-]+( \d+)?$/);
    }
    for (const p of shop.products) {
      expect(p.category).toMatch(/^c\d+$/);
      expect(p.names.en.startsWith(shop.categoryNames[p.category]!.en)).toBe(true);
      expect(p.names.zh.startsWith(shop.categoryNames[p.category]!.zh)).toBe(true);
      expect(p.name).not.toMatch(/C\d+ item/);
    }
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

/**
 * The page API of the browser client (`portrait.track`, `portrait.profile`, `portrait.status`):
 * starts the Web Worker that does all the work, forwards behaviour events and what the main
 * thread observes (idle via requestIdleCallback and input, visibility, Battery API), and keeps a
 * record of every message the worker sent. Nothing heavy runs on the main thread.
 */
import type { BehaviourEventInput } from '../../shared/features/events.ts';
import type { ExplanationLanguage } from '../../shared/model/explain.ts';
import type { DisplayName } from '../../shared/features/catalog-names.ts';
import type { ClientStatus, ExplainResult, PageToWorker, ProfileResult, RoundLogEntry, WireEntry, WorkerInit, WorkerToPage } from './messages.ts';
import type { DeviceSignals, PoliteConfigInput } from './policy.ts';

/** `userId` is optional on the device: every stored event belongs to this device's one user. */
export type TrackedEvent = Omit<BehaviourEventInput, 'userId'> & { userId?: string };

export interface PortraitOptions {
  /** Coordinator base URL; default: the page's origin. */
  server?: string;
  /** Enrollment token from the shop platform. */
  token: string;
  policy?: PoliteConfigInput;
  backend?: string;
  database?: string;
  /** No input for this long (and an idle callback) counts as idle; default 2 s. */
  idleAfterMs?: number;
  /** Worker script URL; default `${server}/portrait/worker.js`. */
  workerUrl?: string;
  /** `onPortrait`: quiet time after the last new event before the portrait is recomputed; default 1 s. */
  portraitDebounceMs?: number;
}

export interface PortraitClient {
  track(event: TrackedEvent | TrackedEvent[]): Promise<number>;
  profile(): Promise<ProfileResult>;
  /** Why this portrait: each head's prediction explained by the shopper's own events, computed in the worker (nothing leaves the device). */
  explain(options?: { language?: ExplanationLanguage; categoryNames?: Record<string, DisplayName> }): Promise<ExplainResult>;
  status(): ClientStatus | null;
  /** Why the worker could not start (no backend loaded, no IndexedDB...), or null. */
  error(): string | null;
  /** Everything the device sent, oldest first. */
  wire(): readonly WireEntry[];
  /** Local training times reported by the worker (ms per round, with the backend). */
  trainings(): readonly { roundId: number; ms: number; backend: string }[];
  onStatus(listener: (status: ClientStatus) => void): () => void;
  onWire(listener: (entry: WireEntry) => void): () => void;
  /** This device's steps in each round (checked in, declined and why, trained, SecAgg+ done...), oldest first. */
  rounds(): readonly RoundLogEntry[];
  onRound(listener: (entry: RoundLogEntry) => void): () => void;
  /**
   * The portrait, recomputed in the worker whenever events are stored or cleared (debounced) and
   * when a newer model is announced; the first call starts this and gets one at once.
   */
  onPortrait(listener: (result: ProfileResult) => void): () => void;
  /** Deletes every event and counter this client stored on the device. */
  clear(): Promise<void>;
  stop(): void;
}

interface BatteryManagerLike extends EventTarget {
  level: number;
  charging: boolean;
}

function startWorker(url: string): Worker {
  if (new URL(url, location.href).origin === location.origin) return new Worker(url);
  // A worker must be same-origin; a cross-origin coordinator's script is loaded from a blob shim.
  const shim = new Blob([`importScripts(${JSON.stringify(url)});`], { type: 'text/javascript' });
  return new Worker(URL.createObjectURL(shim));
}

export function startPortrait(options: PortraitOptions): PortraitClient {
  const server = (options.server ?? location.origin).replace(/\/$/, '');
  const worker = startWorker(options.workerUrl ?? `${server}/portrait/worker.js`);
  const post = (message: PageToWorker) => worker.postMessage(message);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const wireLog: WireEntry[] = [];
  const trainings: { roundId: number; ms: number; backend: string }[] = [];
  const statusListeners = new Set<(s: ClientStatus) => void>();
  const wireListeners = new Set<(e: WireEntry) => void>();
  const roundLog: RoundLogEntry[] = [];
  const roundListeners = new Set<(e: RoundLogEntry) => void>();
  const portraitListeners = new Set<(r: ProfileResult) => void>();
  let watchingPortrait = false;
  let lastStatus: ClientStatus | null = null;
  let startError: Error | null = null;
  let nextId = 1;

  worker.addEventListener('message', (event: MessageEvent<WorkerToPage>) => {
    const m = event.data;
    if (m.type === 'reply') {
      if (m.id === 0 && !m.ok) startError = new Error(m.error);
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (p) (m.ok ? p.resolve(m.value) : p.reject(new Error(m.error)));
    } else if (m.type === 'status') {
      lastStatus = m.status;
      for (const l of statusListeners) l(m.status);
    } else if (m.type === 'wire') {
      wireLog.push(m.entry);
      for (const l of wireListeners) l(m.entry);
    } else if (m.type === 'round') {
      roundLog.push(m.entry);
      for (const l of roundListeners) l(m.entry);
    } else if (m.type === 'portrait') {
      for (const l of portraitListeners) l(m.result);
    } else {
      trainings.push({ roundId: m.roundId, ms: m.ms, backend: m.backend });
    }
  });

  const call = <T>(make: (id: number) => PageToWorker): Promise<T> => {
    if (startError) return Promise.reject(startError);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      post(make(id));
    });
  };

  const init: WorkerInit = { serverUrl: server, token: options.token, policy: options.policy ?? {} };
  if (options.backend !== undefined) init.backend = options.backend;
  if (options.database !== undefined) init.database = options.database;
  post({ type: 'init', init });

  const stopSignals = watchDevice(options.idleAfterMs ?? 2_000, (signals) => post({ type: 'signals', signals }));

  return {
    track: (event) => call<number>((id) => ({ type: 'track', id, events: (Array.isArray(event) ? event : [event]) as BehaviourEventInput[] })),
    profile: () => call<ProfileResult>((id) => ({ type: 'profile', id })),
    explain: (o = {}) => call<ExplainResult>((id) => ({ type: 'explain', id, language: o.language ?? 'en', ...(o.categoryNames ? { categoryNames: o.categoryNames } : {}) })),
    status: () => lastStatus,
    error: () => startError?.message ?? null,
    wire: () => wireLog,
    trainings: () => trainings,
    onStatus: (l) => {
      statusListeners.add(l);
      return () => statusListeners.delete(l);
    },
    onWire: (l) => {
      wireListeners.add(l);
      return () => wireListeners.delete(l);
    },
    rounds: () => roundLog,
    onRound: (l) => {
      roundListeners.add(l);
      return () => roundListeners.delete(l);
    },
    onPortrait: (l) => {
      portraitListeners.add(l);
      if (!watchingPortrait) {
        watchingPortrait = true;
        post({ type: 'watch-portrait', debounceMs: options.portraitDebounceMs ?? 1_000 });
      }
      return () => portraitListeners.delete(l);
    },
    clear: () => call<void>((id) => ({ type: 'clear', id })),
    stop: () => {
      stopSignals();
      post({ type: 'stop' });
      setTimeout(() => worker.terminate(), 500);
    },
  };
}

/**
 * Idle: an idle callback ran and no input came for `idleAfterMs`. Hidden: visibilityState.
 * Battery: level and charging from navigator.getBattery where present (the API exposes no saver
 * flag, so saver mode is read as "low battery and discharging").
 */
function watchDevice(idleAfterMs: number, send: (signals: DeviceSignals) => void): () => void {
  let lastInput = performance.now();
  let battery: DeviceSignals['battery'] = null;
  let last = '';
  let stopped = false;
  const publish = (idle: boolean) => {
    const signals: DeviceSignals = { idle, hidden: document.visibilityState === 'hidden', battery };
    const key = JSON.stringify(signals);
    if (key !== last) {
      last = key;
      send(signals);
    }
  };
  const onInput = () => {
    lastInput = performance.now();
    publish(false);
  };
  const inputs = ['pointerdown', 'keydown', 'wheel', 'touchstart', 'scroll'] as const;
  for (const name of inputs) addEventListener(name, onInput, { passive: true, capture: true });
  const onVisibility = () => publish(performance.now() - lastInput >= idleAfterMs);
  document.addEventListener('visibilitychange', onVisibility);
  const idleLoop = () => {
    if (stopped) return;
    const ric = globalThis.requestIdleCallback as typeof requestIdleCallback | undefined;
    const next = () => setTimeout(idleLoop, Math.max(250, idleAfterMs / 2));
    if (ric) {
      ric(() => {
        publish(performance.now() - lastInput >= idleAfterMs);
        next();
      }, { timeout: idleAfterMs * 4 });
    } else {
      publish(performance.now() - lastInput >= idleAfterMs);
      next();
    }
  };
  idleLoop();
  const getBattery = (navigator as Navigator & { getBattery?: () => Promise<BatteryManagerLike> }).getBattery;
  if (getBattery) {
    void getBattery.call(navigator).then((b) => {
      const read = () => {
        battery = { level: b.level, charging: b.charging, saver: false };
        publish(performance.now() - lastInput >= idleAfterMs);
      };
      b.addEventListener('levelchange', read);
      b.addEventListener('chargingchange', read);
      read();
    }, () => undefined);
  }
  return () => {
    stopped = true;
    for (const name of inputs) removeEventListener(name, onInput, { capture: true });
    document.removeEventListener('visibilitychange', onVisibility);
  };
}

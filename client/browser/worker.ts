/**
 * The browser client's Web Worker: tfjs (the fastest backend that loads: webgl, then wasm with its
 * .wasm files from the coordinator, then cpu), the IndexedDB event store, and the platform-free
 * FederatedClient of client/core. The page's main thread only forwards events and device signals,
 * so local training never blocks it. Only protocol messages leave; each is recorded (`wire`).
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { parseEvent } from '../../shared/features/events.ts';
import type { BehaviourEvent } from '../../shared/features/events.ts';
import { selectBackend } from '../../shared/model/backend.ts';
import type { BackendCandidate } from '../../shared/model/backend.ts';
import { computePortrait } from '../../shared/model/portrait.ts';
import { explainPortrait } from '../../shared/model/explain.ts';
import type { ExplanationLanguage } from '../../shared/model/explain.ts';
import type { DisplayName } from '../../shared/features/catalog-names.ts';
import type { CachedModel } from '../core/model-cache.ts';
import { EVENTS } from '../../shared/protocol/events.ts';
import { ModelAnnouncementSchema } from '../../shared/protocol/messages.ts';
import type { ModelAnnouncement } from '../../shared/protocol/messages.ts';
import { profileModel } from '../../shared/protocol/rollout.ts';
import { cryptoRandomBytes, randomId } from '../../shared/protocol/enrollment.ts';
import { FederatedClient } from '../core/client.ts';
import type { ClientEvent } from '../core/client.ts';
import type { FetchLike } from '../core/model-cache.ts';
import { ClientPrivacyLedger, textLedgerStorage } from '../core/privacy-ledger.ts';
import { DEVICE_USER, dayOf, deviceExamples, deviceReadiness } from './device-data.ts';
import { EventStore } from './event-store.ts';
import type { ActivityState, ClientStatus, ExplainResult, PageToWorker, ProfileResult, RoundLogEntry, WireEntry, WorkerInit, WorkerToPage } from './messages.ts';
import { declineReason, parsePoliteConfig, participationDecision, usageForDay } from './policy.ts';
import type { DeviceSignals, DeviceUsage, PoliteConfig } from './policy.ts';
import { wireBytes } from './wire.ts';

const USAGE_KEY = 'usage';
const LEDGER_KEY = 'privacy-ledger';

/** Where the retained history starts: the earliest event's day (a loop: a spread of a long history overflows the stack). */
function firstDay(events: readonly BehaviourEvent[]): number {
  return events.reduce((first, e) => Math.min(first, e.day), Number.POSITIVE_INFINITY);
}
const ROLLOUT_KEY = 'rollout-key';
/** Delta at which this device reads its own epsilon (the cap is an (epsilon, delta) pair). */
const CAP_DELTA = 1e-6;

interface WorkerScope {
  postMessage(message: WorkerToPage): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<PageToWorker>) => void): void;
}
const scope = globalThis as unknown as WorkerScope;

/** `allowSoftwareWebgl`: only when webgl is asked for by name (benchmarks); the automatic chain skips it. */
function browserBackendCandidates(serverUrl: string, allowSoftwareWebgl: boolean): BackendCandidate[] {
  const use = async (name: string) => {
    if (!(await tf.setBackend(name))) throw new Error(`${name} backend did not initialise`);
    // A backend can register yet fail on its first kernel (no WebGL context in a headless worker).
    tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)).dataSync());
  };
  return [
    {
      name: 'webgl',
      load: async () => {
        const renderer = webglRenderer();
        if (renderer === null) throw new Error('no WebGL in this worker (OffscreenCanvas)');
        // Software WebGL (SwiftShader, llvmpipe) is slower than wasm and blocks the worker for seconds.
        if (!allowSoftwareWebgl && /swiftshader|llvmpipe|software/i.test(renderer)) throw new Error(`software WebGL renderer (${renderer})`);
        await use('webgl');
      },
    },
    {
      name: 'wasm',
      load: async () => {
        setWasmPaths(`${serverUrl}/portrait/wasm/`);
        await use('wasm');
      },
    },
    { name: 'cpu', load: () => use('cpu') },
  ];
}

/** The WebGL renderer string of an OffscreenCanvas context, or null without WebGL. */
function webglRenderer(): string | null {
  if (typeof OffscreenCanvas === 'undefined') return null;
  const gl = new OffscreenCanvas(1, 1).getContext('webgl2') ?? new OffscreenCanvas(1, 1).getContext('webgl');
  if (!gl) return null;
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
  gl.getExtension('WEBGL_lose_context')?.loseContext();
  return String(renderer);
}

class BrowserDevice {
  private client: FederatedClient | null = null;
  private signals: DeviceSignals = { idle: false, hidden: false, battery: null };
  private usage: DeviceUsage = { day: 0, cpuMs: 0, uploadBytes: 0, epsilonSpent: 0 };
  private announced: ModelAnnouncement | null = null;
  private currentRound: number | null = null;
  /** The day the client core's cached examples were built for (the windows end on the device's today). */
  private examplesDay: number | null = null;
  /** Set once the page asks for portraits to be pushed (`onPortrait`). */
  private portraitWatch: { debounceMs: number; timer: ReturnType<typeof setTimeout> | null; running: boolean; again: boolean } | null = null;
  private readonly status: ClientStatus;

  private constructor(
    private readonly init: WorkerInit,
    private readonly policy: PoliteConfig,
    private readonly store: EventStore,
    private readonly ledger: ClientPrivacyLedger,
    backend: string,
  ) {
    this.status = {
      state: 'starting',
      reason: null,
      backend,
      connected: false,
      modelVersion: null,
      announcedVersion: null,
      events: 0,
      roundsContributed: 0,
      lastRound: null,
      privacy: { epsilonSpent: 0, epsilonCap: policy.privacyCapEpsilon, rounds: 0, acceptModes: [...policy.acceptPrivacyModes] },
      today: { cpuMs: 0, cpuCapMs: policy.dailyCpuMs, uploadBytes: 0, uploadCapBytes: policy.dailyUploadBytes },
      lastTrainingMs: null,
      training: null,
    };
  }

  static async start(init: WorkerInit): Promise<BrowserDevice> {
    const policy = parsePoliteConfig(init.policy);
    const choice = await selectBackend(browserBackendCandidates(init.serverUrl, init.backend === 'webgl'), init.backend);
    const store = await EventStore.open(init.database ?? 'portrait');
    // The device's own privacy ledger (client/core/privacy-ledger.ts), kept in IndexedDB.
    const storage = textLedgerStorage(async () => (await store.getRecord<string>(LEDGER_KEY)) ?? null, (text) => store.putRecord(LEDGER_KEY, text));
    const ledger = await ClientPrivacyLedger.open(storage, { epsilon: policy.privacyCapEpsilon, delta: CAP_DELTA });
    const device = new BrowserDevice(init, policy, store, ledger, choice.name);
    await device.load();
    device.connect();
    return device;
  }

  private today(): number {
    return dayOf(Date.now());
  }

  private async load(): Promise<void> {
    this.usage = usageForDay((await this.store.getRecord<DeviceUsage>(USAGE_KEY)) ?? this.usage, this.today());
    this.usage.epsilonSpent = this.ledger.spent ?? Number.POSITIVE_INFINITY;
    this.status.events = await this.store.prune(this.retention());
  }

  private retention(): { keepFromDay: number; maxEvents: number } {
    return { keepFromDay: this.today() - this.policy.retentionDays, maxEvents: this.policy.maxEvents };
  }

  private connect(): void {
    const recordingFetch: FetchLike = async (url) => {
      this.wire({ kind: 'http', name: `GET ${new URL(url).pathname}`, bytes: 0 });
      return fetch(url);
    };
    const client = new FederatedClient({
      serverUrl: this.init.serverUrl,
      token: this.init.token,
      examples: async (config) => {
        this.examplesDay = this.today();
        return deviceExamples(await this.store.all(), config, this.examplesDay);
      },
      analyticsEvents: () => this.store.all(),
      eligible: () => this.decide(),
      declineReason: () => {
        // Each round opens here first: examples built on an earlier day have stale windows.
        if (this.examplesDay !== null && this.examplesDay !== this.today()) {
          this.client?.refreshExamples();
          void this.refreshReadiness();
        }
        return declineReason(this.policy, this.usage);
      },
      acceptPrivacyModes: this.policy.acceptPrivacyModes,
      privacyLedger: this.ledger,
      fetch: recordingFetch,
      reconnectionDelayMs: 500,
      onEvent: (event) => void this.onClientEvent(event),
    });
    client.socket.onAnyOutgoing((event: string, ...args: unknown[]) => {
      const roundId = (args[0] as { roundId?: unknown } | undefined)?.roundId;
      this.wire({ kind: 'socket', name: event, bytes: wireBytes(event, args), roundId: typeof roundId === 'number' ? roundId : null });
    });
    client.socket.on(EVENTS.modelCurrent, (raw) => {
      const parsed = ModelAnnouncementSchema.safeParse(raw);
      if (!parsed.success) return; // a malformed announcement is ignored, never fetched
      const m = parsed.data;
      // A new latest version, a promotion or a rollout: each can change the model the portrait comes from.
      const newer = JSON.stringify(m) !== JSON.stringify(this.announced);
      this.announced = m;
      this.status.announcedVersion = m.version;
      this.pushStatus();
      if (newer) this.schedulePortrait(0);
    });
    client.socket.io.on('open', () => this.wire({ kind: 'socket', name: 'connect (enrollment token)', bytes: this.init.token.length }));
    this.client = client.start();
    this.setState('offline');
  }

  private wire(entry: Omit<WireEntry, 'at' | 'roundId'> & { roundId?: number | null }): void {
    const full: WireEntry = { at: Date.now(), roundId: entry.roundId ?? this.currentRound, kind: entry.kind, name: entry.name, bytes: entry.bytes };
    this.usage.uploadBytes += full.bytes;
    scope.postMessage({ type: 'wire', entry: full });
  }

  private decide(): boolean {
    this.usage = usageForDay(this.usage, this.today());
    const decision = participationDecision(this.policy, this.signals, this.usage);
    this.status.reason = decision.eligible ? null : decision.reason;
    if (!decision.eligible) this.setState('paused');
    return decision.eligible;
  }

  /** The round log the page shows: this device's own steps, round by round. */
  private logRound(entry: Omit<RoundLogEntry, 'at'>): void {
    scope.postMessage({ type: 'round', entry: { at: Date.now(), ...entry } });
  }

  /** Examples for the cached model's windows, or what the device waits for (pushed in the status). */
  private async refreshReadiness(): Promise<ClientStatus['training']> {
    const config = this.client?.models.current?.config;
    const training = config ? deviceReadiness(await this.store.all(), config, this.today()) : null;
    this.status.training = training;
    this.pushStatus();
    return training;
  }

  private async onClientEvent(event: ClientEvent): Promise<void> {
    // A decline for want of examples is said as what the device is waiting for.
    const declined = event.type === 'declined' ? ((await this.declineWords(event.reason)) ?? event.reason) : null;
    this.recordRoundStep(event, declined);
    switch (event.type) {
      case 'connected':
        this.status.connected = true;
        this.setState('waiting');
        break;
      case 'disconnected':
        this.status.connected = false;
        this.setState('offline');
        break;
      case 'checked-in':
        this.currentRound = event.roundId;
        this.setState('checked-in');
        break;
      case 'not-selected':
        this.setState('waiting');
        break;
      case 'selected':
        this.currentRound = event.roundId;
        this.status.lastRound = event.roundId;
        this.setState('training');
        break;
      case 'model-fetched':
        this.status.modelVersion = event.version;
        await this.refreshReadiness();
        break;
      case 'trained':
        this.usage.cpuMs += event.ms;
        this.status.lastTrainingMs = event.ms;
        scope.postMessage({ type: 'trained', roundId: event.roundId, ms: event.ms, backend: this.status.backend ?? 'unknown' });
        break;
      case 'update-sent':
        this.status.roundsContributed++;
        this.setState('waiting');
        break;
      case 'secagg-finished':
        if (event.status === 'done') this.status.roundsContributed++;
        else this.status.reason = `secure aggregation ${event.status} at ${event.stage}${event.reason ? `: ${event.reason}` : ''}`;
        this.setState('waiting');
        break;
      case 'privacy-refused':
      case 'update-refused':
        this.status.reason = event.error.message;
        this.setState('waiting');
        break;
      case 'declined':
        this.status.reason = declined;
        this.setState('waiting');
        break;
      case 'failed':
        this.status.reason = event.message;
        this.setState('waiting');
        break;
      case 'deadline-missed':
        this.status.reason = `missed the deadline of round ${event.roundId}`;
        this.setState('waiting');
        break;
      case 'round-closed':
        this.currentRound = null;
        this.setState('waiting');
        break;
      default:
        break;
    }
    await this.store.putRecord(USAGE_KEY, this.usage);
  }

  /** What the device waits for, when `reason` is a decline for want of examples. */
  private async declineWords(reason: string): Promise<string | null> {
    if (!/^no training examples/.test(reason)) return null;
    return (await this.refreshReadiness())?.waitingFor ?? null;
  }

  private recordRoundStep(event: ClientEvent, declined: string | null): void {
    switch (event.type) {
      case 'checked-in':
      case 'not-selected':
      case 'update-sent':
      case 'deadline-missed':
        this.logRound({ roundId: event.roundId, event: event.type });
        break;
      case 'selected':
        this.logRound({ roundId: event.roundId, event: event.type, stage: `model v${event.modelVersion}` });
        break;
      case 'trained':
        this.logRound({ roundId: event.roundId, event: event.type, ms: Math.round(event.ms) });
        break;
      case 'declined':
        this.logRound({ roundId: event.roundId, event: event.type, reason: declined ?? event.reason });
        break;
      case 'secagg-finished':
        this.logRound({ roundId: event.roundId, event: event.type, status: event.status, stage: event.stage, ...(event.reason ? { reason: event.reason } : {}) });
        break;
      case 'privacy-refused':
      case 'update-refused':
        this.logRound({ roundId: event.roundId, event: event.type, reason: event.error.message });
        break;
      case 'failed':
        this.logRound({ roundId: event.roundId, event: event.type, reason: event.message });
        break;
      case 'round-closed':
        this.logRound({ roundId: event.message.roundId, event: 'closed', status: event.message.status, ...(event.message.reason ? { reason: event.message.reason } : {}) });
        break;
      default:
        break;
    }
  }

  private setState(state: ActivityState): void {
    this.status.state = state;
    this.pushStatus();
  }

  pushStatus(): void {
    const s = this.status;
    this.usage.epsilonSpent = this.ledger.spent ?? Number.POSITIVE_INFINITY;
    s.privacy.epsilonSpent = this.usage.epsilonSpent;
    s.privacy.rounds = this.ledger.rounds.length;
    s.today.cpuMs = Math.round(this.usage.cpuMs);
    s.today.uploadBytes = this.usage.uploadBytes;
    scope.postMessage({ type: 'status', status: structuredClone(s) });
  }

  setSignals(signals: DeviceSignals): void {
    this.signals = signals;
    if (this.status.state === 'paused' && participationDecision(this.policy, signals, usageForDay(this.usage, this.today())).eligible) {
      this.status.reason = null;
      this.setState(this.status.connected ? 'waiting' : 'offline');
      // A round whose check-in opened while the page was busy may still be open: join it now.
      this.client?.eligibilityChanged();
    }
  }

  async track(inputs: readonly unknown[]): Promise<number> {
    const events: BehaviourEvent[] = inputs.map((input) => parseEvent({ userId: DEVICE_USER, ...(input as object) }));
    this.status.events = await this.store.add(events, this.retention());
    this.client?.refreshExamples();
    await this.refreshReadiness();
    this.schedulePortrait();
    return this.status.events;
  }

  /** Pushes a portrait now and whenever events or the announced model change, `debounceMs` after the last change. */
  watchPortrait(debounceMs: number): void {
    this.portraitWatch ??= { debounceMs, timer: null, running: false, again: false };
    this.portraitWatch.debounceMs = debounceMs;
    this.schedulePortrait(0);
  }

  private schedulePortrait(delayMs = this.portraitWatch?.debounceMs ?? 0): void {
    const watch = this.portraitWatch;
    if (!watch) return;
    if (watch.timer !== null) clearTimeout(watch.timer);
    watch.timer = setTimeout(() => {
      watch.timer = null;
      void this.pushPortrait(watch);
    }, delayMs);
  }

  private async pushPortrait(watch: NonNullable<BrowserDevice['portraitWatch']>): Promise<void> {
    if (watch.running) {
      // One computation at a time; the changes meanwhile get one more after it.
      watch.again = true;
      return;
    }
    watch.running = true;
    try {
      const result = await this.profile().catch((err: unknown): ProfileResult => ({ portrait: null, modelVersion: this.status.modelVersion, reason: err instanceof Error ? err.message : String(err) }));
      scope.postMessage({ type: 'portrait', result });
    } finally {
      watch.running = false;
      if (watch.again) {
        watch.again = false;
        this.schedulePortrait(0);
      }
    }
  }

  /**
   * A random key of this device's own (IndexedDB), deciding its arm of a staged rollout
   * (shared/protocol/rollout.ts) the same way on every visit; it never leaves the device, and
   * "forget me" replaces it.
   */
  private async rolloutKey(): Promise<string> {
    const kept = await this.store.getRecord<string>(ROLLOUT_KEY);
    if (typeof kept === 'string' && kept.length > 0) return kept;
    const key = randomId(cryptoRandomBytes);
    await this.store.putRecord(ROLLOUT_KEY, key);
    return key;
  }

  async profile(): Promise<ProfileResult> {
    const inputs = await this.portraitInputs();
    if ('reason' in inputs) return { portrait: null, ...inputs };
    const { cached, events } = inputs;
    // Synchronous from here: the model cannot be swapped or disposed under the forward pass.
    const portrait = computePortrait(cached.model, cached.config, events, { historyStartDay: firstDay(events) });
    return { portrait, modelVersion: cached.version };
  }

  /**
   * Why this portrait (shared/model/explain.ts): integrated gradients of each head's prediction
   * against a shopper with no history, grouped into sentences about the shopper's own events, for
   * the same model and history as `profile()`. Computed here in the worker; nothing of it is sent.
   */
  async explain(language: ExplanationLanguage, categoryNames?: Readonly<Record<string, DisplayName>>): Promise<ExplainResult> {
    const inputs = await this.portraitInputs();
    if ('reason' in inputs) return { explanation: null, ...inputs };
    const { cached, events } = inputs;
    const explanation = explainPortrait(cached.model, cached.config, events, { historyStartDay: firstDay(events), language, ...(categoryNames ? { categoryNames } : {}) });
    return { explanation, modelVersion: cached.version };
  }

  /** The model the portrait comes from (fetched if needed) and the device's events, or why there is no portrait yet. */
  private async portraitInputs(): Promise<{ cached: CachedModel; events: BehaviourEvent[] } | { modelVersion: number | null; reason: string }> {
    const client = this.client;
    if (!client) return { modelVersion: null, reason: 'not started' };
    // A round trains on the cached model's weights in place: wait for the global weights to return.
    for (let waited = 0; client.busy && waited < 60_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    const events = await this.store.all();
    let cached = client.models.current;
    const announced = this.announced;
    // The portrait comes from the serving version (or this device's rollout arm), never from an
    // unpromoted one; rounds may train a newer one (both are HTTP-cached, immutable).
    // The device's rollout key is read (IndexedDB) only while a rollout is staged: it decides nothing otherwise.
    const target = announced ? profileModel(announced, announced.candidate ? await this.rolloutKey() : 'no-rollout') : null;
    if (target && (!cached || cached.version !== target.version)) {
      cached = (await client.models.ensure(target.version, target.modelUrl, target.parameters)).model;
      this.status.modelVersion = cached.version;
      await this.refreshReadiness();
    }
    if (!cached) return { modelVersion: null, reason: 'no model yet (waiting for the coordinator)' };
    if (events.length === 0) return { modelVersion: cached.version, reason: 'no events on this device yet' };
    return { cached, events };
  }

  /**
   * Forget me: every event and counter goes, but not the device's privacy ledger. It holds no
   * behaviour (round ids and the epsilon each spent), and erasing it would let the device spend
   * its whole privacy cap again on the same shopper.
   */
  async clear(): Promise<void> {
    await this.store.clear([LEDGER_KEY]);
    // The counters go too (in memory as on disk, or the next event would write them back); the spend stays, from the ledger.
    this.usage = { ...this.usage, cpuMs: 0, uploadBytes: 0 };
    this.status.today = { ...this.status.today, cpuMs: 0, uploadBytes: 0 };
    this.client?.refreshExamples();
    this.status.events = 0;
    await this.refreshReadiness();
    this.schedulePortrait(0);
  }

  stop(): void {
    this.client?.stop();
    this.store.close();
    this.setState('stopped');
  }
}

let device: Promise<BrowserDevice> | null = null;
let pendingSignals: DeviceSignals | null = null;

function reply(id: number, work: () => Promise<unknown>): void {
  const ready = device ?? Promise.reject(new Error('portrait worker not initialised'));
  ready
    .then(() => work())
    .then(
      (value) => scope.postMessage({ type: 'reply', id, ok: true, value }),
      (err: unknown) => scope.postMessage({ type: 'reply', id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
}

scope.addEventListener('message', (event) => {
  const message = event.data;
  switch (message.type) {
    case 'init':
      device ??= BrowserDevice.start(message.init).then((d) => {
        if (pendingSignals) d.setSignals(pendingSignals);
        d.pushStatus();
        return d;
      });
      device.catch((err: unknown) => scope.postMessage({ type: 'reply', id: 0, ok: false, error: err instanceof Error ? err.message : String(err) }));
      break;
    case 'track':
      reply(message.id, async () => (await device)?.track(message.events));
      break;
    case 'profile':
      reply(message.id, async () => (await device)?.profile());
      break;
    case 'explain':
      reply(message.id, async () => (await device)?.explain(message.language, message.categoryNames));
      break;
    case 'clear':
      reply(message.id, async () => (await device)?.clear());
      break;
    case 'watch-portrait':
      void device?.then((d) => d.watchPortrait(message.debounceMs));
      break;
    case 'signals':
      pendingSignals = message.signals;
      void device?.then((d) => d.setSignals(message.signals));
      break;
    case 'stop':
      void device?.then((d) => d.stop());
      break;
    default:
      break;
  }
});

/**
 * The page ↔ worker messages of the browser client (postMessage, structured clone). The page
 * forwards events and what it observes of the device; the worker answers requests and pushes its
 * status and a record of everything it sent to the coordinator.
 */
import type { BehaviourEventInput } from '../../shared/features/events.ts';
import type { Portrait } from '../../shared/model/portrait.ts';
import type { ExplanationLanguage, PortraitExplanation } from '../../shared/model/explain.ts';
import type { DisplayName } from '../../shared/features/catalog-names.ts';
import type { DeviceSignals, PoliteConfigInput } from './policy.ts';

export interface WorkerInit {
  /** Coordinator base URL (socket, models, wasm files). */
  serverUrl: string;
  token: string;
  policy: PoliteConfigInput;
  /** Force one tfjs backend (`webgl`, `wasm`, `cpu`); default: the fastest that loads. */
  backend?: string;
  /** IndexedDB database name (one per shop origin by default). */
  database?: string;
}

/** One thing that left the device: a Socket.IO message or an HTTP request, and its size. */
export interface WireEntry {
  at: number;
  /** Round it belongs to, when it is part of one. */
  roundId: number | null;
  kind: 'socket' | 'http';
  /** Socket.IO event name or `GET /path`. */
  name: string;
  bytes: number;
}

export type ActivityState = 'starting' | 'offline' | 'waiting' | 'paused' | 'checked-in' | 'training' | 'uploading' | 'stopped';

export interface ClientStatus {
  state: ActivityState;
  /** Why the client is paused (policy), or the last refusal. */
  reason: string | null;
  backend: string | null;
  connected: boolean;
  /** Model version this device holds, and the newest one the coordinator announced. */
  modelVersion: number | null;
  announcedVersion: number | null;
  events: number;
  roundsContributed: number;
  lastRound: number | null;
  privacy: { epsilonSpent: number; epsilonCap: number; rounds: number; acceptModes: string[] };
  today: { cpuMs: number; cpuCapMs: number; uploadBytes: number; uploadCapBytes: number };
  lastTrainingMs: number | null;
  /**
   * Training examples this device has for the cached model's windows, and, when none, what it
   * waits for (computed from its event days and the windows); null before a model is known.
   */
  training: { examples: number; waitingFor: string | null; readyDay: number | null } | null;
}

/** One step of this device in one round, as its client core reported it (the shop's round log). */
export interface RoundLogEntry {
  at: number;
  roundId: number;
  /** `checked-in`, `declined`, `selected`, `trained`, `update-sent`, `secagg-finished`, `closed`, ... */
  event: string;
  /** `secagg-finished`: done, aborted, refused or dropped; `closed`: the round's outcome. */
  status?: string;
  stage?: string;
  /** Why the device declined, left or failed, in words (it stays on the device). */
  reason?: string;
  /** `trained`: local training time. */
  ms?: number;
}

export type PageToWorker =
  | { type: 'init'; init: WorkerInit }
  | { type: 'track'; id: number; events: BehaviourEventInput[] }
  | { type: 'profile'; id: number }
  /** Why this portrait: attributions computed in the worker (shared/model/explain.ts); names are the shop's display names. */
  | { type: 'explain'; id: number; language: ExplanationLanguage; categoryNames?: Record<string, DisplayName> }
  | { type: 'clear'; id: number }
  /** From now on, push a fresh portrait when events or the model change (debounced). */
  | { type: 'watch-portrait'; debounceMs: number }
  | { type: 'signals'; signals: DeviceSignals }
  | { type: 'stop' };

export type WorkerToPage =
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: string }
  | { type: 'status'; status: ClientStatus }
  | { type: 'wire'; entry: WireEntry }
  | { type: 'trained'; roundId: number; ms: number; backend: string }
  | { type: 'round'; entry: RoundLogEntry }
  | { type: 'portrait'; result: ProfileResult };

export type ExplainResult = { explanation: PortraitExplanation; modelVersion: number } | { explanation: null; modelVersion: number | null; reason: string };

export type ProfileResult = { portrait: Portrait; modelVersion: number } | { portrait: null; modelVersion: number | null; reason: string };

/**
 * The fleet simulator: N simulated devices, each holding one user's data, spread over worker
 * threads so every core trains, with injectable faults (vanish at a given stage, random dropout
 * per round, slow devices, devices that vanish mid-upload). Devices authenticate with enrollment
 * tokens, passed in or issued by the coordinator's REST API with an operator token.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { UserRecord } from '../../shared/features/dataset.ts';
import { SeededRandom } from '../../shared/features/seeded-random.ts';
import { DROP_STAGES } from '../core/client.ts';
import type { ClientEvent, DropStage } from '../core/client.ts';
import type { DeviceFaults, DeviceSpec, ParentToWorker, WorkerInit, WorkerToParent } from './simulator-worker.ts';
import type { ClientEpsilonCap } from '../core/privacy-ledger.ts';

export interface FleetFaults {
  /** Per round, each device that checked in vanishes with this probability at a random stage (and rejoins). */
  dropout?: number;
  /** This fraction of devices (the first ones) vanish once at `stage`, then rejoin. */
  dropAt?: { stage: DropStage; fraction: number };
  /** This fraction of devices wait `delayMs` between training and upload. */
  slow?: { fraction: number; delayMs: number };
  /** This fraction of devices vanish mid-upload once and never come back. */
  vanishMidUpload?: number;
  /** How long a dropped device stays away before reconnecting (default 500 ms). */
  rejoinAfterMs?: number;
}

export interface FleetOptions {
  serverUrl: string;
  /** One simulated device per user, in order. */
  users: readonly UserRecord[];
  /** First day of the training windows (the dataset's). */
  startDay: number;
  /** Enrollment tokens, one per device; otherwise issued over REST with `operatorToken`. */
  tokens?: readonly string[];
  operatorToken?: string;
  /** Worker threads (default: the number of cores, at most the number of devices). */
  workers?: number;
  faults?: FleetFaults;
  /** Seeds fault assignment (simulation randomness, never privacy randomness). */
  seed?: number;
  backend?: string;
  /** Each device's own privacy cap (client/core/privacy-ledger.ts). */
  epsilonCap?: ClientEpsilonCap;
  reconnectionDelayMs?: number;
  onEvent?: (index: number, event: ClientEvent) => void;
}

export interface FleetStats {
  devices: number;
  workers: number;
  backend: string;
  /** Events by type over the fleet's life. */
  events: Record<string, number>;
  /** Devices that vanished, by stage. */
  dropped: Record<string, number>;
  trainingMs: number;
  uploadMs: number;
  modelFetchMs: number;
  /** Bytes the devices sent for their updates: the plain update, or every SecAgg+ message of the session. */
  updateBytes: number;
  modelBytes: number;
}

export interface Fleet {
  readonly size: number;
  readonly workers: number;
  stats(): FleetStats;
  /** Resolves once `count` devices (default all) are connected, per the devices' own events. */
  waitConnected(count?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<FleetStats>;
}

const WORKER_URL = new URL('./simulator-worker.ts', import.meta.url);

/** Defined only in the compiled CLI (scripts/build-cli.ts): its build of the worker, relative to this source file. */
declare const PORTRAIT_COMPILED_WORKER: string | undefined;

/**
 * The worker thread's module: the compiled CLI's own build of it, or else (run from the sources,
 * as under vitest or tsx) the TypeScript through tsx: a tiny ESM bootstrap (a data: URL)
 * registers tsx's loader in the new thread, then imports the worker module. (Node 20 ignores
 * `--import` in a worker's execArgv.)
 */
function workerModule(): URL {
  if (typeof PORTRAIT_COMPILED_WORKER === 'string') return new URL(PORTRAIT_COMPILED_WORKER, import.meta.url);
  const tsxApi = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href.replace(/index\.cjs$/, 'index.mjs');
  const code = `import { register } from ${JSON.stringify(tsxApi)};\nregister();\nawait import(${JSON.stringify(WORKER_URL.href)});\n`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/** Decides each device's faults up front, so a run is reproducible from its seed. */
export function assignFaults(devices: number, faults: FleetFaults, seed: number): DeviceFaults[] {
  const random = new SeededRandom(seed >>> 0, 0x5ea1);
  const check = (name: string, p: number | undefined) => {
    if (p !== undefined && !(p >= 0 && p <= 1)) throw new RangeError(`"${name}" expected a probability in [0, 1], got ${p}`);
  };
  check('dropout', faults.dropout);
  check('dropAt.fraction', faults.dropAt?.fraction);
  check('slow.fraction', faults.slow?.fraction);
  check('vanishMidUpload', faults.vanishMidUpload);
  if (faults.dropAt && !DROP_STAGES.includes(faults.dropAt.stage)) throw new RangeError(`"dropAt.stage" expected one of ${DROP_STAGES.join(', ')}, got ${String(faults.dropAt.stage)}`);
  const count = (fraction = 0) => Math.round(fraction * devices);
  const dropAtCount = count(faults.dropAt?.fraction);
  const vanishCount = count(faults.vanishMidUpload);
  const slowCount = count(faults.slow?.fraction);
  return Array.from({ length: devices }, (_, i) => {
    const f: DeviceFaults = {};
    if (faults.dropout) f.dropout = faults.dropout;
    if (i < dropAtCount && faults.dropAt) f.dropAt = faults.dropAt.stage;
    else if (i >= dropAtCount && i < dropAtCount + vanishCount) f.vanishMidUpload = true;
    if (slowCount > 0 && faults.slow && random.next() < slowCount / devices) f.slowMs = faults.slow.delayMs;
    return f;
  });
}

export async function issueEnrollmentTokens(serverUrl: string, operatorToken: string, count: number): Promise<string[]> {
  const tokens: string[] = [];
  while (tokens.length < count) {
    const batch = Math.min(10_000, count - tokens.length);
    const res = await fetch(new URL('/api/v1/enrollment-tokens', serverUrl), {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ count: batch }),
    });
    const body = (await res.json()) as { tokens?: string[]; code?: string; message?: string };
    if (!res.ok || !body.tokens) throw new Error(`enrollment tokens: HTTP ${res.status} ${body.code ?? ''} ${body.message ?? ''}`.trim());
    tokens.push(...body.tokens);
  }
  return tokens;
}

export async function runFleet(options: FleetOptions): Promise<Fleet> {
  const size = options.users.length;
  if (size < 1) throw new RangeError('"users" expected at least one user');
  const workerCount = Math.max(1, Math.min(options.workers ?? os.availableParallelism(), size));
  let tokens = options.tokens;
  if (!tokens) {
    if (!options.operatorToken) throw new TypeError('"operatorToken" expected when no "tokens" are given');
    tokens = await issueEnrollmentTokens(options.serverUrl, options.operatorToken, size);
  }
  if (tokens.length < size) throw new RangeError(`"tokens" expected ${size}, got ${tokens.length}`);
  const faults = assignFaults(size, options.faults ?? {}, options.seed ?? 1);
  const specs: DeviceSpec[][] = Array.from({ length: workerCount }, () => []);
  options.users.forEach((user, index) => specs[index % workerCount]?.push({ index, user, token: tokens[index] as string, faults: faults[index] as DeviceFaults }));

  const stats: FleetStats = { devices: size, workers: workerCount, backend: '', events: {}, dropped: {}, trainingMs: 0, uploadMs: 0, modelFetchMs: 0, updateBytes: 0, modelBytes: 0 };
  const connected = new Set<number>();
  const record = (index: number, event: ClientEvent) => {
    stats.events[event.type] = (stats.events[event.type] ?? 0) + 1;
    if (event.type === 'connected') connected.add(index);
    else if (event.type === 'disconnected') connected.delete(index);
    else if (event.type === 'dropped') stats.dropped[event.stage] = (stats.dropped[event.stage] ?? 0) + 1;
    else if (event.type === 'trained') stats.trainingMs += event.ms;
    else if (event.type === 'update-sent') {
      stats.uploadMs += event.ms;
      stats.updateBytes += event.bytes;
    } else if (event.type === 'secagg-finished') {
      // With SecAgg+ the update leaves as the session's messages (keys, shares, masked input).
      stats.updateBytes += event.bytesSent;
    } else if (event.type === 'model-fetched') {
      stats.modelFetchMs += event.ms;
      stats.modelBytes += event.bytes;
    }
    options.onEvent?.(index, event);
  };

  const workers: Worker[] = [];
  const workerUrl = workerModule();
  const stopped: Promise<void>[] = [];
  const ready: Promise<void>[] = [];
  let failure: Error | null = null;
  for (const devices of specs) {
    const init: WorkerInit = {
      serverUrl: options.serverUrl,
      startDay: options.startDay,
      devices,
      rejoinAfterMs: options.faults?.rejoinAfterMs ?? 500,
      reconnectionDelayMs: options.reconnectionDelayMs ?? 250,
      seed: options.seed ?? 1,
      ...(options.backend ? { backend: options.backend } : {}),
      ...(options.epsilonCap ? { epsilonCap: options.epsilonCap } : {}),
    };
    const worker = new Worker(workerUrl, { workerData: init });
    workers.push(worker);
    let onReady: () => void = () => undefined;
    let onFail: (err: Error) => void = () => undefined;
    ready.push(
      new Promise<void>((resolve, reject) => {
        onReady = resolve;
        onFail = reject;
      }),
    );
    stopped.push(
      new Promise<void>((resolve) => {
        worker.on('message', (message: WorkerToParent) => {
          if (message.type === 'ready') {
            stats.backend = message.backend;
            onReady();
          } else if (message.type === 'events') for (const e of message.events) record(e.index, e.event);
          else if (message.type === 'stopped') void worker.terminate();
          else if (message.type === 'error') {
            failure = new Error(`simulator worker failed: ${message.message}`);
            onFail(failure);
          }
        });
        worker.on('error', (err) => {
          failure = err;
          onFail(err);
        });
        worker.on('exit', () => resolve());
      }),
    );
  }
  try {
    await Promise.all(ready);
  } catch (err) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw err;
  }

  let stopping: Promise<FleetStats> | undefined;
  return {
    size,
    workers: workerCount,
    stats: () => structuredClone(stats),
    async waitConnected(count = size, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      while (connected.size < count) {
        if (failure) throw failure;
        if (Date.now() > until) throw new Error(`timed out: ${connected.size} of ${count} simulated devices connected`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    stop: () =>
      (stopping ??= (async () => {
        const message: ParentToWorker = { type: 'stop' };
        for (const w of workers) w.postMessage(message);
        const timeout = setTimeout(() => workers.forEach((w) => void w.terminate()), 5_000);
        await Promise.all(stopped);
        clearTimeout(timeout);
        return structuredClone(stats);
      })()),
  };
}

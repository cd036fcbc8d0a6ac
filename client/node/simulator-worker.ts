/**
 * One simulator worker thread: hosts many simulated devices, each a real FederatedClient with its
 * own Socket.IO connection, its own user's data and its own model cache, plus the faults the fleet
 * assigned it. Reports every client event to the parent thread and stops when told to.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { UserRecord } from '../../shared/features/dataset.ts';
import { userExamples } from '../../shared/features/examples.ts';
import { featureContext } from '../../shared/features/extract.ts';
import { SeededRandom } from '../../shared/features/seeded-random.ts';
import { DROP_STAGES, FederatedClient, SECAGG_DROP_STAGES } from '../core/client.ts';
import type { ClientEvent, DropStage, FederatedClientOptions } from '../core/client.ts';
import { ClientPrivacyLedger, MemoryClientLedgerStorage } from '../core/privacy-ledger.ts';
import type { ClientEpsilonCap } from '../core/privacy-ledger.ts';
import { useNodeBackend } from './tfjs-backend.ts';

/** The faults of one device, decided by the fleet (see simulator.ts). */
export interface DeviceFaults {
  /** Vanish once at this stage (the core client's own fault), rejoining after `rejoinAfterMs`. */
  dropAt?: DropStage;
  /** In every round it checks in to, vanish with this probability at a uniformly random stage. */
  dropout?: number;
  /** Extra delay between local training and upload (a slow device). */
  slowMs?: number;
  /** Vanish mid-upload once and never come back. */
  vanishMidUpload?: boolean;
}

export interface DeviceSpec {
  index: number;
  user: UserRecord;
  token: string;
  faults: DeviceFaults;
}

export interface WorkerInit {
  serverUrl: string;
  startDay: number;
  devices: DeviceSpec[];
  rejoinAfterMs: number;
  reconnectionDelayMs: number;
  seed: number;
  backend?: string;
  /** Each device's own privacy cap: it refuses rounds past it, whatever the coordinator says. */
  epsilonCap?: ClientEpsilonCap;
}

export type WorkerToParent =
  | { type: 'ready'; backend: string }
  | { type: 'events'; events: { index: number; event: ClientEvent }[] }
  | { type: 'stopped' }
  | { type: 'error'; message: string };

export type ParentToWorker = { type: 'stop' };

class SimulatedDevice {
  readonly client: FederatedClient;
  private readonly random: SeededRandom;
  /** Rounds already decided for random dropout: roundId → the stage to vanish at, or null. */
  private readonly decided = new Map<number, DropStage | null>();
  private stopped = false;
  /** A device with no examples under the current model stops checking in (it has nothing to train on). */
  private empty = false;

  constructor(
    private readonly spec: DeviceSpec,
    private readonly init: WorkerInit,
    private readonly report: (index: number, event: ClientEvent) => void,
    privacyLedger: ClientPrivacyLedger | null,
  ) {
    this.random = new SeededRandom(init.seed >>> 0, spec.index);
    const { user } = spec;
    const { faults } = spec;
    const coreFaults: FederatedClientOptions['faults'] = faults.vanishMidUpload ? { dropAt: 'upload' } : faults.dropAt ? { dropAt: faults.dropAt, rejoinAfterMs: init.rejoinAfterMs } : undefined;
    this.client = new FederatedClient({
      serverUrl: init.serverUrl,
      token: spec.token,
      examples: (config) => {
        const examples = userExamples(user, featureContext(config.vocabulary, init.startDay), { windows: config.windows });
        this.empty = examples.length === 0;
        return examples;
      },
      analyticsEvents: () => user.events,
      eligible: () => !this.empty,
      privatiseUpdate: (delta, context) => this.beforeUpload(delta, context.round.roundId),
      reconnectionDelayMs: init.reconnectionDelayMs,
      onEvent: (event) => this.onEvent(event),
      ...(coreFaults ? { faults: coreFaults } : {}),
      ...(privacyLedger ? { privacyLedger } : {}),
    });
  }

  start(): void {
    this.client.start();
  }

  stop(): void {
    this.stopped = true;
    this.client.stop();
  }

  private stageFor(roundId: number): DropStage | null {
    let stage = this.decided.get(roundId);
    if (stage === undefined) {
      const p = this.spec.faults.dropout ?? 0;
      stage = p > 0 && this.random.chance(p) ? (DROP_STAGES[this.random.int(DROP_STAGES.length)] as DropStage) : null;
      this.decided.set(roundId, stage);
    }
    return stage;
  }

  /** Random dropout: disconnect now and come back after the rejoin delay, as a flaky phone would. */
  private vanish(stage: DropStage, roundId: number): void {
    this.report(this.spec.index, { type: 'dropped', stage, roundId });
    this.client.socket.disconnect();
    setTimeout(() => {
      if (!this.stopped) this.client.socket.connect();
    }, this.init.rejoinAfterMs);
  }

  private onEvent(event: ClientEvent): void {
    this.report(this.spec.index, event);
    if (event.type === 'checked-in' && this.stageFor(event.roundId) === 'checkin') this.vanish('checkin', event.roundId);
    else if (event.type === 'selected' && this.stageFor(event.roundId) === 'config') this.vanish('config', event.roundId);
    else if (event.type === 'selected') {
      // A SecAgg+ stage: the core client vanishes instead of sending that stage's message (no-op in rounds without SecAgg+).
      const stage = this.stageFor(event.roundId);
      if (stage && (SECAGG_DROP_STAGES as readonly string[]).includes(stage)) this.client.dropOnceAt(stage, this.init.rejoinAfterMs);
    } else if (event.type === 'round-closed' && !this.spec.faults.dropAt && !this.spec.faults.vanishMidUpload) this.client.dropOnceAt(undefined);
  }

  private async beforeUpload(delta: Float32Array, roundId: number): Promise<Float32Array> {
    const stage = this.stageFor(roundId);
    if (stage === 'config' || stage === 'checkin') throw new Error(`simulated dropout at ${stage}`);
    if (stage === 'training') {
      this.vanish('training', roundId);
      throw new Error('simulated dropout after training');
    }
    const slow = this.spec.faults.slowMs ?? 0;
    if (slow > 0) await new Promise((resolve) => setTimeout(resolve, slow));
    if (stage === 'upload') {
      // The core emits the update right after this resolves; the socket closes under it.
      setImmediate(() => this.vanish('upload', roundId));
    }
    return delta;
  }
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('simulator-worker.ts must run in a worker thread');
  const init = workerData as WorkerInit;
  const choice = await useNodeBackend(init.backend, () => undefined);
  let pending: { index: number; event: ClientEvent }[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const message: WorkerToParent = { type: 'events', events: pending };
    pending = [];
    port.postMessage(message);
  };
  const timer = setInterval(flush, 50);
  const devices: SimulatedDevice[] = [];
  for (const spec of init.devices) {
    // A simulated device's ledger lives as long as the device (in memory); a real one persists it.
    const ledger = init.epsilonCap ? await ClientPrivacyLedger.open(new MemoryClientLedgerStorage(), init.epsilonCap) : null;
    devices.push(new SimulatedDevice(spec, init, (index, event) => pending.push({ index, event }), ledger));
  }
  port.on('message', (message: ParentToWorker) => {
    if (message.type !== 'stop') return;
    for (const d of devices) d.stop();
    clearInterval(timer);
    flush();
    const stopped: WorkerToParent = { type: 'stopped' };
    port.postMessage(stopped);
    port.close();
  });
  const ready: WorkerToParent = { type: 'ready', backend: choice.name };
  port.postMessage(ready);
  for (const d of devices) d.start();
}

main().catch((err: unknown) => {
  const message: WorkerToParent = { type: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) };
  parentPort?.postMessage(message);
});

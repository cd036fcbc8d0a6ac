/**
 * A cluster node's side of the rounds: device messages reach the leader node's runner, and what
 * the leader tells every node reaches each node's own devices.
 *
 * Device messages go to the leader alone, over two Redis Pub/Sub channels (ClusterMessaging):
 * `<deployment>:leader`, which only the node holding the rounds lease subscribes to, carries
 * {kind, clientId, message, from, requestId} (a device's check-in, update or SecAgg+ upload, or its
 * disconnect), validated and answered by the leader's runner exactly as on one process; the answer
 * (`{ok}` or `{ok: false, error}`) comes back on `<deployment>:node:<from>`, and the device's node
 * acknowledges the device. A broadcast through the adapter would have every node decode every
 * device's update; here only the leader does. No node but the leader reads a payload, and none
 * logs one. With no leader subscribed, the device hears UNAVAILABLE at once.
 *
 * What the leader tells every node is rare and goes through the Socket.IO adapter as server-side
 * events:
 * - `portrait:round-open`: the open check-in, so a device connecting to any node during it hears of it.
 * - `portrait:model`: a version was stored or the serving pointer moved; each node reads it from
 *   the shared store and the ledger, then announces it to its own devices (so a device never hears
 *   of a version its node cannot serve yet).
 * - `portrait:launched`: rounds were launched on some node; the leader's runner wakes.
 */
import v8 from 'node:v8';
import type { Server } from 'socket.io';
import { errorBody, ProtocolError } from '../../shared/protocol/errors.ts';
import type { ErrorBody } from '../../shared/protocol/errors.ts';
import type { ModelAnnouncement, RoundOpen } from '../../shared/protocol/messages.ts';
import type { DeviceMessageHandler, SocketLayer } from '../socket.ts';
import type { RoundTransport } from '../rounds/runner.ts';

/** How long a node waits for the leader's answer before the device hears UNAVAILABLE (and may send again). */
const LEADER_ANSWER_MS = 5_000;
const ROUND_OPEN = 'portrait:round-open';
const MODEL = 'portrait:model';
const LAUNCHED = 'portrait:launched';

type Kind = 'checkin' | 'update' | 'secagg' | 'disconnect';
interface Forwarded {
  kind: Kind;
  clientId: string;
  message?: unknown;
  /** The node waiting for the answer, and its request; absent for a disconnect (nobody waits). */
  from?: string;
  requestId?: number;
}
type Reply = { ok: true } | { ok: false; error: ErrorBody };
interface ForwardedReply {
  requestId: number;
  reply: Reply;
}

/** Redis Pub/Sub as the router uses it (server/cluster/node.ts: a publishing client and a subscribed one). */
export interface ClusterMessaging {
  /** Resolves with how many subscribers received it. */
  publish(channel: string, message: Buffer): Promise<number>;
  subscribe(channel: string, listener: (message: Buffer) => void): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
}

export interface ClusterRouterOptions {
  /** This node's id: where the leader sends its answers. */
  nodeId: string;
  messaging: ClusterMessaging;
  /** The deployment's name, which the channels carry (deployments sharing one Redis never cross). */
  channel: string;
  /** The leader's runner while this node leads, else null. */
  leaderRunner: () => (DeviceMessageHandler & { notifyLaunched(): void }) | null;
  /** This node's view when it does not lead: the model announcement from its own registry. */
  announcement: () => ModelAnnouncement;
  /** Takes in a version or pointer change another node stored, then announces it to this node's devices. */
  onModelChanged: () => Promise<void>;
  clock: () => number;
  log: (line: string) => void;
}

/**
 * Server-side events are delivered with no type map (the adapter hands them on as given): the
 * cast is confined to these two calls.
 */
type ServerSide = {
  serverSideEmit(ev: string, ...args: unknown[]): boolean;
  on(ev: string, listener: (...args: never[]) => void): unknown;
};

export class ClusterRouter implements DeviceMessageHandler {
  private open: { message: RoundOpen; endsAt: number } | null = null;
  private readonly io: ServerSide;
  private nextRequest = 1;
  private readonly waiting = new Map<number, { settle: (reply: Reply | null) => void; timer: NodeJS.Timeout }>();

  constructor(
    io: Server,
    private readonly options: ClusterRouterOptions,
  ) {
    this.io = io as unknown as ServerSide;
    this.io.on(ROUND_OPEN, (message: RoundOpen) => {
      this.open = { message, endsAt: options.clock() + message.checkinMs };
    });
    this.io.on(MODEL, () => {
      options.onModelChanged().catch((err: unknown) => options.log(`cluster: taking in a model change failed: ${err instanceof Error ? err.message : String(err)}`));
    });
    this.io.on(LAUNCHED, () => options.leaderRunner()?.notifyLaunched());
  }

  private get leaderChannel(): string {
    return `${this.options.channel}:leader`;
  }

  private replyChannel(nodeId: string): string {
    return `${this.options.channel}:node:${nodeId}`;
  }

  /** Listens for the leader's answers to this node's devices (before any device connects). */
  async start(): Promise<void> {
    await this.options.messaging.subscribe(this.replyChannel(this.options.nodeId), (raw) => {
      const { requestId, reply } = v8.deserialize(raw) as ForwardedReply;
      this.waiting.get(requestId)?.settle(reply);
    });
  }

  /** This node takes (true) or gives up (false) the rounds: it listens on the leader's channel only while it leads. */
  async lead(leading: boolean): Promise<void> {
    const { messaging } = this.options;
    if (!leading) return messaging.unsubscribe(this.leaderChannel);
    await messaging.subscribe(this.leaderChannel, (raw) => {
      const forwarded = v8.deserialize(raw) as Forwarded;
      const reply = this.asLeader(forwarded);
      if (reply && forwarded.from !== undefined && forwarded.requestId !== undefined) {
        void messaging.publish(this.replyChannel(forwarded.from), v8.serialize({ requestId: forwarded.requestId, reply } satisfies ForwardedReply)).catch((err: unknown) => this.options.log(`cluster: answering node ${forwarded.from} failed: ${err instanceof Error ? err.message : String(err)}`));
      }
    });
  }

  /** On the leader: a forwarded device message, handled by its runner; null on other nodes, which do not answer. */
  private asLeader(forwarded: Forwarded): Reply | null {
    const runner = this.options.leaderRunner();
    if (!runner) return null;
    try {
      const { kind, clientId, message } = forwarded;
      if (kind === 'checkin') void runner.handleCheckin(clientId, message);
      else if (kind === 'update') void runner.handleUpdate(clientId, message);
      else if (kind === 'secagg') void runner.handleSecAgg(clientId, message);
      else runner.handleDisconnect(clientId);
      return { ok: true };
    } catch (err) {
      return { ok: false, error: errorBody(err) };
    }
  }

  private async forward(kind: Kind, clientId: string, message: unknown): Promise<void> {
    const runner = this.options.leaderRunner();
    if (runner) {
      // This node leads: as on one process.
      if (kind === 'checkin') return runner.handleCheckin(clientId, message);
      if (kind === 'update') return runner.handleUpdate(clientId, message);
      return runner.handleSecAgg(clientId, message);
    }
    const requestId = this.nextRequest++;
    const reply = await new Promise<Reply | null>((resolve) => {
      const settle = (r: Reply | null) => {
        clearTimeout(this.waiting.get(requestId)?.timer);
        this.waiting.delete(requestId);
        resolve(r);
      };
      this.waiting.set(requestId, { settle, timer: setTimeout(() => settle(null), LEADER_ANSWER_MS) });
      const forwarded: Forwarded = { kind, clientId, message, from: this.options.nodeId, requestId };
      // Nobody on the leader's channel: no node leads right now, and waiting would not change that.
      this.options.messaging.publish(this.leaderChannel, v8.serialize(forwarded)).then(
        (received) => received === 0 && settle(null),
        () => settle(null),
      );
    });
    if (!reply) throw new ProtocolError('UNAVAILABLE', 'no coordinator node answered for the rounds in time (a leader may be being chosen): try again shortly');
    if (!reply.ok) throw new ProtocolError(reply.error.code, reply.error.message);
  }

  handleCheckin(clientId: string, raw: unknown): Promise<void> {
    return this.forward('checkin', clientId, raw);
  }

  handleUpdate(clientId: string, raw: unknown): Promise<void> {
    return this.forward('update', clientId, raw);
  }

  handleSecAgg(clientId: string, raw: unknown): Promise<void> {
    return this.forward('secagg', clientId, raw);
  }

  handleDisconnect(clientId: string): void {
    const runner = this.options.leaderRunner();
    if (runner) runner.handleDisconnect(clientId);
    else void this.options.messaging.publish(this.leaderChannel, v8.serialize({ kind: 'disconnect', clientId } satisfies Forwarded)).catch(() => undefined);
  }

  announcement(): ModelAnnouncement {
    return this.options.leaderRunner()?.announcement() ?? this.options.announcement();
  }

  roundOpenFor(now: number): RoundOpen | null {
    const runner = this.options.leaderRunner();
    if (runner) return runner.roundOpenFor(now);
    const open = this.open;
    return open && now < open.endsAt ? { ...open.message, checkinMs: open.endsAt - now } : null;
  }

  /** The leader opened check-in: every other node keeps it for the devices that connect meanwhile. */
  roundOpened(message: RoundOpen): void {
    this.io.serverSideEmit(ROUND_OPEN, message);
  }

  /** A version was stored or the serving pointer moved on this node: the others take it in. */
  modelChanged(): void {
    this.io.serverSideEmit(MODEL);
  }

  /** Rounds were launched on this node: the leader (wherever it is) wakes. */
  launched(): void {
    this.options.leaderRunner()?.notifyLaunched();
    this.io.serverSideEmit(LAUNCHED);
  }
}

/**
 * The leader's transport on a cluster node: the socket layer (which reaches each client's room on
 * any node), plus the cluster events other nodes act on: the open check-in and model changes.
 */
export function clusterTransport(sockets: SocketLayer, router: () => ClusterRouter | undefined): RoundTransport {
  return {
    connectedClients: () => sockets.connectedClients(),
    broadcastRoundOpen: (message) => {
      sockets.broadcastRoundOpen(message);
      router()?.roundOpened(message);
    },
    sendConfig: (clientId, message) => sockets.sendConfig(clientId, message),
    sendNotSelected: (clientId, roundId) => sockets.sendNotSelected(clientId, roundId),
    sendSecAgg: (clientId, message) => sockets.sendSecAgg(clientId, message),
    sendReceipt: (clientId, message) => sockets.sendReceipt(clientId, message),
    broadcastRoundClosed: (message) => sockets.broadcastRoundClosed(message),
    announceModel: (message) => {
      sockets.announceModel(message);
      router()?.modelChanged();
    },
  };
}

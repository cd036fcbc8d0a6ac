/**
 * The Socket.IO side of the coordinator: enrollment-token handshake, one socket per pseudonymous
 * client, and the one place a ProtocolError becomes a Socket.IO answer (`{ ok: false, error }` on
 * the acknowledgement, or a `protocol:error` event when the sender gave no callback). Logs record
 * refusal codes only, never a payload. SecAgg+ messages travel here both ways (`secagg` event); the
 * runner's session does the checking. A survivor's ledger receipt (`round:receipt`) is emitted just
 * before its unmask request on the same socket, so it arrives first. Payloads above the protocol's
 * own limit are refused with PAYLOAD_TOO_LARGE in the ack while the socket stays up (Socket.IO's
 * transport limit sits above it).
 */
import type { Server, Socket } from 'socket.io';
import { errorBody, ProtocolError } from '../shared/protocol/errors.ts';
import type { ErrorBody } from '../shared/protocol/errors.ts';
import { verifyEnrollmentToken } from '../shared/protocol/enrollment.ts';
import { nodeEd25519Verify } from './auth/native-ed25519.ts';
import { HandshakePacer } from './handshake-pacer.ts';
import { EVENTS } from '../shared/protocol/events.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../shared/protocol/events.ts';
import type { Ack, ModelAnnouncement, RoundOpen } from '../shared/protocol/messages.ts';
import type { ServerMessage as SecAggServerMessage } from '../shared/secagg/messages.ts';
import type { RoundTransport } from './rounds/runner.ts';

export interface SocketData {
  clientId: string;
  expiresAt: number;
}

export type CoordinatorIo = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type ClientSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

const CLIENT_EVENTS: readonly string[] = [EVENTS.checkin, EVENTS.update, EVENTS.secagg];

/**
 * Where a device's messages go: the round runner, or on a cluster node the router that reaches
 * the leader node's runner (server/cluster/router.ts), which answers asynchronously.
 */
export interface DeviceMessageHandler {
  handleCheckin(clientId: string, raw: unknown): void | Promise<void>;
  handleUpdate(clientId: string, raw: unknown): void | Promise<void>;
  handleSecAgg(clientId: string, raw: unknown): void | Promise<void>;
  handleDisconnect(clientId: string): void;
  announcement(): ModelAnnouncement;
  roundOpenFor(now: number): RoundOpen | null;
}

/** The Socket.IO room of one pseudonymous client: on a cluster, messages reach its socket on whichever node it is connected to. */
export function clientRoom(clientId: string): string {
  return `client:${clientId}`;
}

export interface SocketLayerOptions {
  platformPublicKey: Uint8Array;
  clock: () => number;
  log: (line: string) => void;
  /**
   * The protocol's own message limit in bytes, refused with PAYLOAD_TOO_LARGE in the ack. Keep it
   * below Socket.IO's `maxHttpBufferSize` (which closes the socket instead); default: that size.
   */
  maxMessageBytes?: number;
  /**
   * A cluster node: messages to a client go to its room through the adapter (any node), and the
   * devices counted are the whole cluster's (`connectedClients`); broadcasts of the model reach
   * only this node's devices.
   */
  cluster?: { connectedClients: () => number };
}

/** The key a handshake payload that is not an object is handed on under (refuseNonObjectAuth). */
const AUTH_NOT_OBJECT = '$portraitAuthNotObject';

/**
 * A CONNECT packet (`0`, an optional `/namespace,`, then the JSON auth payload) whose payload is
 * not a JSON object, rewritten to `{"$portraitAuthNotObject": "<what it was>"}`; any other
 * packet, or an object payload, unchanged.
 */
function objectConnectPayload(encoded: string): string {
  if (encoded[0] !== '0') return encoded;
  let start = 1;
  if (encoded[1] === '/') {
    const comma = encoded.indexOf(',', 1);
    if (comma < 0) return encoded;
    start = comma + 1;
  }
  const body = encoded.slice(start);
  // No payload (auth defaults to {}), or an ack id the parser reads first: its own rules apply.
  if (body === '' || /^\d/.test(body)) return encoded;
  let payload: unknown;
  try {
    payload = JSON.parse(body);
  } catch {
    payload = undefined;
  }
  if (typeof payload === 'object' && payload !== null && !Array.isArray(payload)) return encoded;
  const kind = payload === undefined ? 'not JSON' : Array.isArray(payload) ? 'an array' : payload === null ? 'null' : `a ${typeof payload}`;
  return `${encoded.slice(0, start)}${JSON.stringify({ [AUTH_NOT_OBJECT]: kind })}`;
}

/**
 * socket.io-parser drops a CONNECT packet whose auth payload is not an object ("invalid payload")
 * and the connection just closes: no connect_error, no code. From here on every connection decodes
 * with a Decoder that hands such a payload on as an object naming what it was, which the handshake
 * refuses with UNAUTHENTICATED like any other bad credential.
 */
function refuseNonObjectAuth(io: CoordinatorIo): void {
  const parser = io._parser;
  class HandshakeDecoder extends parser.Decoder {
    override add(packet: unknown): void {
      super.add(typeof packet === 'string' ? objectConnectPayload(packet) : packet);
    }
  }
  (io as { _parser: typeof parser })._parser = { ...parser, Decoder: HandshakeDecoder };
}

/** Approximate wire size of a decoded Socket.IO payload: bytes of binary, characters of strings. */
export function payloadBytes(value: unknown, budget = Number.MAX_SAFE_INTEGER): number {
  let total = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && total <= budget) {
    const v = stack.pop();
    if (v instanceof Uint8Array || v instanceof ArrayBuffer) total += v.byteLength;
    else if (typeof v === 'string') total += v.length + 2;
    else if (Array.isArray(v)) stack.push(...v);
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) (total += k.length + 3), stack.push(x);
    else total += 8;
  }
  return total;
}

export class SocketLayer implements RoundTransport {
  private readonly clients = new Map<string, ClientSocket>();
  private runner: DeviceMessageHandler | null = null;
  /** Refusals by code, for tests and status. */
  readonly refusals = new Map<string, number>();
  readonly maxMessageBytes: number;

  constructor(
    private readonly io: CoordinatorIo,
    private readonly options: SocketLayerOptions,
  ) {
    this.maxMessageBytes = options.maxMessageBytes ?? io.engine.opts.maxHttpBufferSize ?? 1e6;
    refuseNonObjectAuth(io);
    // A storm of devices connecting at once is taken in paced turns (handshake-pacer.ts): the
    // upgrade and engine.io open of each new connection, then its token check and connect.
    const pacer = new HandshakePacer();
    io.engine.opts.allowRequest = (_req, admit) => pacer.admit(() => admit(null, true));
    io.use((socket, next) =>
      pacer.admit(() => {
        try {
          const auth: unknown = socket.handshake.auth;
          if (typeof auth === 'object' && auth !== null && AUTH_NOT_OBJECT in auth) {
            throw new ProtocolError('UNAUTHENTICATED', `the handshake's auth must be an object {token}, got ${String((auth as Record<string, unknown>)[AUTH_NOT_OBJECT])}`);
          }
          const token = typeof auth === 'object' && auth !== null ? (auth as { token?: unknown }).token : undefined;
          const claims = verifyEnrollmentToken(token, options.platformPublicKey, options.clock(), nodeEd25519Verify);
          socket.data.clientId = claims.sub;
          socket.data.expiresAt = claims.exp;
          next();
        } catch (err) {
          const body = errorBody(err);
          this.count(body);
          const refusal = new Error(body.message) as Error & { data: ErrorBody };
          refusal.data = body;
          next(refusal);
        }
      }),
    );
    io.on('connection', (socket) => this.onConnection(socket));
  }

  attach(runner: DeviceMessageHandler): void {
    this.runner = runner;
  }

  private count(body: ErrorBody): void {
    this.refusals.set(body.code, (this.refusals.get(body.code) ?? 0) + 1);
  }

  private onConnection(socket: ClientSocket): void {
    const { clientId } = socket.data;
    const previous = this.clients.get(clientId);
    if (previous && previous.id !== socket.id) previous.disconnect(true);
    // On a cluster node the socket joins the client's room, through which the leader reaches it. A
    // session the client left on another node is not chased across the cluster (that would cost a
    // Redis message per connection in a reconnect storm): it ends there at its ping timeout.
    if (this.options.cluster) void socket.join(clientRoom(clientId));
    this.clients.set(clientId, socket);
    const runner = this.runner;
    if (runner) {
      socket.emit(EVENTS.modelCurrent, runner.announcement());
      const open = runner.roundOpenFor(this.options.clock());
      if (open) socket.emit(EVENTS.roundOpen, open);
    }
    socket.on(EVENTS.checkin, (message: unknown, ack: unknown) => this.answer(socket, ack, () => this.runnerOrThrow().handleCheckin(clientId, message)));
    socket.use((packet, next) => {
      const last: unknown = packet[packet.length - 1];
      const ack = typeof last === 'function' ? (last as (r: Ack) => void) : undefined;
      const size = payloadBytes(ack ? packet.slice(1, -1) : packet.slice(1), this.maxMessageBytes);
      if (size <= this.maxMessageBytes) return next();
      const body: ErrorBody = { code: 'PAYLOAD_TOO_LARGE', message: `"${String(packet[0]).slice(0, 40)}" payload is over the protocol limit of ${this.maxMessageBytes} bytes` };
      this.count(body);
      if (ack) ack({ ok: false, error: body });
      else socket.emit(EVENTS.protocolError, body);
    });
    socket.on(EVENTS.update, (message: unknown, ack: unknown) => this.answer(socket, ack, () => this.runnerOrThrow().handleUpdate(clientId, message)));
    socket.on(EVENTS.secagg, (message: unknown, ack: unknown) => this.answer(socket, ack, () => this.runnerOrThrow().handleSecAgg(clientId, message)));
    socket.onAny((event: unknown) => {
      if (typeof event !== 'string' || !CLIENT_EVENTS.includes(event)) {
        const body: ErrorBody = { code: 'MALFORMED_MESSAGE', message: `unknown event ${JSON.stringify(String(event)).slice(0, 80)}` };
        this.count(body);
        socket.emit(EVENTS.protocolError, body);
      }
    });
    socket.on('disconnect', () => {
      if (this.clients.get(clientId) === socket) {
        this.clients.delete(clientId);
        this.runner?.handleDisconnect(clientId);
      }
    });
  }

  private runnerOrThrow(): DeviceMessageHandler {
    if (!this.runner) throw new ProtocolError('UNAVAILABLE', 'the coordinator is starting');
    return this.runner;
  }

  private answer(socket: ClientSocket, ack: unknown, handle: () => void | Promise<void>): void {
    if (typeof ack !== 'function') {
      const body: ErrorBody = { code: 'MALFORMED_MESSAGE', message: 'messages must carry an acknowledgement callback' };
      this.count(body);
      socket.emit(EVENTS.protocolError, body);
      return;
    }
    const refuse = (err: unknown): Ack => {
      const body = errorBody(err);
      // Only the error's class reaches the log: a message could quote payload values.
      if (!(err instanceof ProtocolError)) this.options.log(`socket handler failed: ${err instanceof Error ? err.name : typeof err} (${body.code})`);
      this.count(body);
      if (body.code === 'TOKEN_EXPIRED') setImmediate(() => socket.disconnect(true));
      return { ok: false, error: body };
    };
    let handled: void | Promise<void>;
    try {
      if (this.options.clock() >= socket.data.expiresAt) throw new ProtocolError('TOKEN_EXPIRED', 'enrollment token has expired');
      handled = handle();
    } catch (err) {
      (ack as (r: Ack) => void)(refuse(err));
      return;
    }
    // The runner answers at once; a cluster node's router once the leader node has.
    if (!(handled instanceof Promise)) return (ack as (r: Ack) => void)({ ok: true });
    handled.then(
      () => (ack as (r: Ack) => void)({ ok: true }),
      (err: unknown) => (ack as (r: Ack) => void)(refuse(err)),
    );
  }

  /** Devices connected to the deployment: this process's, or on a cluster node every node's. */
  connectedClients(): number {
    return this.options.cluster ? this.options.cluster.connectedClients() : this.clients.size;
  }

  /** Devices connected to this process. */
  localClients(): number {
    return this.clients.size;
  }

  /** The client's socket here, or on a cluster node its room on whichever node holds it. */
  private to(clientId: string): { emit: ClientSocket['emit'] } | undefined {
    return this.options.cluster ? this.io.to(clientRoom(clientId)) : this.clients.get(clientId);
  }

  broadcastRoundOpen(message: Parameters<RoundTransport['broadcastRoundOpen']>[0]): void {
    this.io.emit(EVENTS.roundOpen, message);
  }

  sendConfig(clientId: string, message: Parameters<RoundTransport['sendConfig']>[1]): void {
    this.to(clientId)?.emit(EVENTS.roundConfig, message);
  }

  sendNotSelected(clientId: string, roundId: number): void {
    this.to(clientId)?.emit(EVENTS.roundNotSelected, { roundId });
  }

  sendSecAgg(clientId: string, message: SecAggServerMessage): void {
    this.to(clientId)?.emit(EVENTS.secagg, message);
  }

  sendReceipt(clientId: string, message: Parameters<RoundTransport['sendReceipt']>[1]): void {
    this.to(clientId)?.emit(EVENTS.roundReceipt, message);
  }

  broadcastRoundClosed(message: Parameters<RoundTransport['broadcastRoundClosed']>[0]): void {
    this.io.emit(EVENTS.roundClosed, message);
  }

  /** To every device, or on a cluster node to this node's (each node announces once it has the version: server/cluster/router.ts). */
  announceModel(message: Parameters<RoundTransport['announceModel']>[0]): void {
    if (this.options.cluster) this.io.local.emit(EVENTS.modelCurrent, message);
    else this.io.emit(EVENTS.modelCurrent, message);
  }
}

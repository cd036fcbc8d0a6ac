/**
 * Typed Socket.IO event maps (socket.io's `typed-events.ts` style), shared by the coordinator's
 * `Server` and the client's `io()`, so a renamed event or field is a compile error on both sides.
 * Payloads are still parsed with the schemas of messages.ts on arrival.
 */
import type { ErrorBody } from './errors.ts';
import type { Ack, CheckinMessage, ModelAnnouncement, RoundClosed, RoundConfigMessage, RoundNotSelected, RoundOpen, RoundReceipt, SecAggUpload, UpdateMessage } from './messages.ts';
import type { ServerMessage as SecAggServerMessage } from '../secagg/messages.ts';

export const EVENTS = {
  checkin: 'checkin',
  update: 'update',
  modelCurrent: 'model:current',
  roundOpen: 'round:open',
  roundConfig: 'round:config',
  roundNotSelected: 'round:not-selected',
  roundClosed: 'round:closed',
  /** The signed ledger receipt of a SecAgg+ round's release, to each survivor before its unmask request. */
  roundReceipt: 'round:receipt',
  protocolError: 'protocol:error',
  /** SecAgg+ messages both ways (shared/secagg/messages.ts): client uploads with an ack, server relays / requests. */
  secagg: 'secagg',
} as const;

export interface ClientToServerEvents {
  checkin: (message: CheckinMessage, ack: (result: Ack) => void) => void;
  update: (message: UpdateMessage, ack: (result: Ack) => void) => void;
  secagg: (message: SecAggUpload, ack: (result: Ack) => void) => void;
}

export interface ServerToClientEvents {
  'model:current': (message: ModelAnnouncement) => void;
  'round:open': (message: RoundOpen) => void;
  'round:config': (message: RoundConfigMessage) => void;
  'round:not-selected': (message: RoundNotSelected) => void;
  'round:closed': (message: RoundClosed) => void;
  'round:receipt': (message: RoundReceipt) => void;
  /** A refusal of a message sent without an acknowledgement callback. */
  'protocol:error': (error: ErrorBody) => void;
  /** round-keys, forwarded-shares, unmask-request or abort for this client's SecAgg+ session. */
  secagg: (message: SecAggServerMessage) => void;
}

/** Socket.IO handshake `auth` payload. */
export interface HandshakeAuth {
  token: string;
}

/** What a refused handshake carries in `connect_error`'s `data`. */
export type HandshakeRefusal = ErrorBody;

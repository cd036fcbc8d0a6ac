/**
 * Typed Socket.IO event maps (socket.io's `typed-events.ts` style), shared by the coordinator's
 * `Server` and the client's `io()`, so a renamed event or field is a compile error on both sides.
 * Payloads are still parsed with the schemas of messages.ts on arrival.
 */
import type { ErrorBody } from './errors.ts';
import type { Ack, CheckinMessage, ModelAnnouncement, RoundClosed, RoundConfigMessage, RoundNotSelected, RoundOpen, UpdateMessage } from './messages.ts';

export const EVENTS = {
  checkin: 'checkin',
  update: 'update',
  modelCurrent: 'model:current',
  roundOpen: 'round:open',
  roundConfig: 'round:config',
  roundNotSelected: 'round:not-selected',
  roundClosed: 'round:closed',
  protocolError: 'protocol:error',
} as const;

export interface ClientToServerEvents {
  checkin: (message: CheckinMessage, ack: (result: Ack) => void) => void;
  update: (message: UpdateMessage, ack: (result: Ack) => void) => void;
}

export interface ServerToClientEvents {
  'model:current': (message: ModelAnnouncement) => void;
  'round:open': (message: RoundOpen) => void;
  'round:config': (message: RoundConfigMessage) => void;
  'round:not-selected': (message: RoundNotSelected) => void;
  'round:closed': (message: RoundClosed) => void;
  /** A refusal of a message sent without an acknowledgement callback. */
  'protocol:error': (error: ErrorBody) => void;
}

/** Socket.IO handshake `auth` payload. */
export interface HandshakeAuth {
  token: string;
}

/** What a refused handshake carries in `connect_error`'s `data`. */
export type HandshakeRefusal = ErrorBody;

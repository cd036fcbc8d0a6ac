/**
 * The SecAgg+ stage machine, defined once (STYLE 2; Bonawitz et al. 2017, Sec. 4, Fig. 4 rounds 0-2
 * and 4; the consistency-check round 3 is for actively malicious servers and is not run, see
 * docs/secagg.md). Server in stage S collects the clients' S messages; closing S sends the requests
 * that start the next stage. Client in stage S waits for the server message that lets it perform S.
 * Every (stage, event) pair not listed here is refused with INVALID_TRANSITION or LATE_MESSAGE.
 */

export const STAGES = ['advertise-keys', 'share-keys', 'masked-input', 'unmask', 'done', 'aborted'] as const;
export type Stage = (typeof STAGES)[number];
export const PROTOCOL_STAGES = ['advertise-keys', 'share-keys', 'masked-input', 'unmask'] as const;
export type ProtocolStage = (typeof PROTOCOL_STAGES)[number];

/** Server: in `stage` accept client messages of type `accepts`; `close` moves to `next` (or aborts). */
export const SERVER_TRANSITIONS = {
  'advertise-keys': { accepts: 'advertise-keys', next: 'share-keys' },
  'share-keys': { accepts: 'share-keys', next: 'masked-input' },
  'masked-input': { accepts: 'masked-input', next: 'unmask' },
  unmask: { accepts: 'unmask-shares', next: 'done' },
  done: null,
  aborted: null,
} as const;

/** Client: in `stage`, `event` (the local 'start' or a server message type) leads to the listed stage. */
export const CLIENT_TRANSITIONS = {
  'advertise-keys': { start: 'share-keys', abort: 'aborted' },
  'share-keys': { 'round-keys': 'masked-input', abort: 'aborted' },
  'masked-input': { 'forwarded-shares': 'unmask', abort: 'aborted' },
  unmask: { 'unmask-request': 'done', abort: 'aborted' },
  /** The client's part is over, but the server may still abort the round (e.g. the unmask stage fell short). */
  done: { abort: 'aborted' },
  aborted: {},
} as const;

export type ClientEvent = 'start' | 'round-keys' | 'forwarded-shares' | 'unmask-request' | 'abort';
export const CLIENT_EVENTS = ['start', 'round-keys', 'forwarded-shares', 'unmask-request', 'abort'] as const satisfies readonly ClientEvent[];

export function clientNextStage(stage: Stage, event: ClientEvent): Stage | undefined {
  const row: Partial<Record<ClientEvent, Stage>> = CLIENT_TRANSITIONS[stage];
  return row[event];
}

export function isTerminal(stage: Stage): boolean {
  return stage === 'done' || stage === 'aborted';
}

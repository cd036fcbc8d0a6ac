/** Wire-level failures of the SecAgg+ state machines: a `ProtocolError` carries a stable string code for transports to translate. */
import { fromBase64 } from './bytes.ts';

export const PROTOCOL_ERROR_CODES = {
  /** Payload failed its zod schema or a field has the wrong size. */
  MALFORMED: 'MALFORMED',
  /** The message belongs to another round (a replay from an earlier round, or a mix-up). */
  WRONG_ROUND: 'WRONG_ROUND',
  /** A server message whose `to` is not this client, or a client message whose `from` is not the authenticated sender. */
  MISADDRESSED: 'MISADDRESSED',
  /** Sender index outside the cohort, or no enrollment key is known for it. */
  UNKNOWN_SENDER: 'UNKNOWN_SENDER',
  /** The sender dropped at an earlier stage and may not rejoin the round. */
  DROPPED_CLIENT: 'DROPPED_CLIENT',
  /** A peer that is not a neighbour in the public graph appears where only neighbours may. */
  NOT_NEIGHBOUR: 'NOT_NEIGHBOUR',
  /** The sender already answered this stage. */
  DUPLICATE_MESSAGE: 'DUPLICATE_MESSAGE',
  /** The message answers a stage that is already closed. */
  LATE_MESSAGE: 'LATE_MESSAGE',
  /** The (stage, message) pair is not in the transition table. */
  INVALID_TRANSITION: 'INVALID_TRANSITION',
  /** An advertised key's Ed25519 signature does not verify under the enrollment key. */
  BAD_SIGNATURE: 'BAD_SIGNATURE',
  /** A public key is reused, equal to another, or yields a degenerate X25519 secret. */
  BAD_KEY: 'BAD_KEY',
  /** A share ciphertext failed authentication or is bound to another sender, receiver or round. */
  DECRYPTION_FAILED: 'DECRYPTION_FAILED',
  /** The server's survivor / dropped lists disagree with what this client saw. */
  INCONSISTENT_SURVIVORS: 'INCONSISTENT_SURVIVORS',
  /** The server asked for the self-mask share and the key share of the same peer. */
  BOTH_SHARES_REQUESTED: 'BOTH_SHARES_REQUESTED',
  /** Fewer than t share holders remain for some client. */
  BELOW_THRESHOLD: 'BELOW_THRESHOLD',
  /** Reconstructed secrets are inconsistent with the advertised public keys. */
  RECONSTRUCTION_FAILED: 'RECONSTRUCTION_FAILED',
} as const;

export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[keyof typeof PROTOCOL_ERROR_CODES];

export class ProtocolError extends Error {
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Base64 field of a parsed wire message; a non-canonical encoding is a MALFORMED message, not a programming error. */
export function decodeField(name: string, text: string): Uint8Array {
  try {
    return fromBase64(name, text);
  } catch (err) {
    throw new ProtocolError(PROTOCOL_ERROR_CODES.MALFORMED, err instanceof Error ? err.message : String(err));
  }
}

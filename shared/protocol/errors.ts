/**
 * Error codes of the federated round protocol and its REST API, and `ProtocolError`, the one
 * error type the wire sees. Transports translate it in exactly one place each: the Socket.IO
 * layer answers `{ ok: false, error: { code, message } }`, the HTTP layer `{ code, message }`
 * with the status below.
 */

export const ERROR_CODES = {
  /** A payload failed its schema (wrong type, missing or extra field). */
  MALFORMED_MESSAGE: 400,
  /** A weight vector whose byte length is not 4 × the model's parameter count. */
  WEIGHTS_LENGTH: 400,
  /** A weight vector holding NaN or ±Infinity. */
  WEIGHTS_NOT_FINITE: 400,
  /** A plaintext analytics contribution (a round without DP) whose L2 norm passes its query's bound. */
  CONTRIBUTION_OUT_OF_BOUNDS: 400,
  /** A payload larger than the transport or the API accepts. */
  PAYLOAD_TOO_LARGE: 413,
  /** A REST body in a content encoding or charset the API does not read (it reads UTF-8 JSON, identity, gzip, deflate or br). */
  UNSUPPORTED_MEDIA_TYPE: 415,
  /** A round id that the coordinator never issued. */
  UNKNOWN_ROUND: 404,
  /** A round id of a round that is already over. */
  STALE_ROUND: 409,
  /** A message the round's current stage does not accept (e.g. an update during check-in). */
  WRONG_STAGE: 409,
  /** An update from a client that was not selected for the round, or was dropped from it. */
  NOT_IN_COHORT: 403,
  /** A second update from the same client in one round. */
  DUPLICATE_UPDATE: 409,
  /** A message whose nonce was already seen in this round. */
  REPLAYED_MESSAGE: 409,
  /** A message after its stage's deadline. */
  DEADLINE_PASSED: 409,
  /** No credentials, or credentials that do not verify. */
  UNAUTHENTICATED: 401,
  /** An enrollment or API token past its expiry. */
  TOKEN_EXPIRED: 401,
  /** Valid credentials whose role does not allow the action. */
  FORBIDDEN: 403,
  /** A resource (model version, round) that does not exist. */
  NOT_FOUND: 404,
  /** A request whose values are out of range (e.g. minClients above clientsPerRound). */
  INVALID_ARGUMENT: 400,
  /** A launch in a privacy mode (`central`, `none`) this coordinator was not started to allow. */
  PRIVACY_MODE_DISABLED: 403,
  /** A launch or release that would take the deployment's cumulative epsilon past its cap (server/ledger). */
  BUDGET_EXCEEDED: 409,
  /** A model version whose files the privacy ledger has no publication entry for (or, at start, no longer match it): not served. */
  MODEL_NOT_PUBLISHED: 409,
  /** A promotion without the evidence it needs (a paired federated evaluation whose interval lies above 0), or against it. */
  PROMOTION_REFUSED: 409,
  /** A client's refusal of a round whose privacy does not meet its own policy (it drops out). */
  PRIVACY_NOT_ACCEPTED: 403,
  /** A stage change that the round state machine does not allow (also a SecAgg+ message its stage does not accept). */
  INVALID_TRANSITION: 500,
  // SecAgg+ refusals (shared/secagg/errors.ts, translated one to one by server/rounds/secagg-session.ts).
  /** A SecAgg+ message for another session (a replay from an earlier round, or a mix-up). */
  WRONG_ROUND: 409,
  /** A SecAgg+ message whose sender or recipient index is not the authenticated client's. */
  MISADDRESSED: 400,
  /** A SecAgg+ sender outside the cohort or without an enrollment-bound verify key. */
  UNKNOWN_SENDER: 403,
  /** A SecAgg+ message from a client that dropped at an earlier stage. */
  DROPPED_CLIENT: 403,
  /** A peer that is not a neighbour in the public graph. */
  NOT_NEIGHBOUR: 400,
  /** A second SecAgg+ message for the same stage from the same client. */
  DUPLICATE_MESSAGE: 409,
  /** A SecAgg+ message for a stage that is already closed. */
  LATE_MESSAGE: 409,
  /** Advertised keys whose Ed25519 signature does not verify under the sender's enrollment-bound key. */
  BAD_SIGNATURE: 401,
  /** A reused or degenerate public key. */
  BAD_KEY: 400,
  /** A share ciphertext that fails authentication. */
  DECRYPTION_FAILED: 400,
  /** Survivor / dropped lists that disagree with what a client saw. */
  INCONSISTENT_SURVIVORS: 409,
  /** A request for both the self-mask share and the key share of one peer. */
  BOTH_SHARES_REQUESTED: 409,
  /** Fewer than t SecAgg+ share holders remain. */
  BELOW_THRESHOLD: 409,
  /** Reconstructed SecAgg+ secrets inconsistent with the advertised keys. */
  RECONSTRUCTION_FAILED: 500,
  /**
   * A round's aggregate or new weights are non-finite or beyond their bound (a decoded sum larger
   * than clipped updates plus noise can be, a weight past MAX_ABS_MODEL_WEIGHT): the round
   * aborts and nothing is committed. Only ever a round's abort reason, never a refusal on the wire.
   */
  AGGREGATE_OUT_OF_BOUNDS: 500,
  /** The coordinator cannot serve the request yet (e.g. no model version exists). */
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code];
  }

  toJSON(): ErrorBody {
    return { code: this.code, message: this.message };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** Any thrown value as a wire error body; internal failures never leak their message. */
export function errorBody(err: unknown): ErrorBody {
  if (err instanceof ProtocolError) return err.toJSON();
  return { code: 'INTERNAL', message: 'internal error' };
}

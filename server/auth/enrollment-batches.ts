/**
 * A batch of enrollment tokens issued without freezing the coordinator: signing 10,000 tokens
 * takes about half a second even with Node's native Ed25519, so the batch is signed in slices of
 * at most SLICE_MS, yielding to the event loop (setImmediate) between slices; health checks,
 * device handshakes and round deadlines run in between. Each token is the very one
 * issueEnrollmentToken makes, and the answer is the same one JSON document.
 */
import { issueEnrollmentToken } from '../../shared/protocol/enrollment.ts';
import type { Ed25519Sign } from '../../shared/protocol/enrollment.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';

/** How long one slice of signing may hold the event loop (the coordinator's bar is ~50 ms). */
export const SLICE_MS = 10;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * `count` tokens valid for `ttlSeconds` from `now`, and when they expire (as issueEnrollmentTokens
 * answers). `cancelled` is asked between slices: once the requester has gone, signing stops.
 */
export async function issueEnrollmentTokensInSlices(
  platformSecretKey: Uint8Array,
  options: { count: number; ttlSeconds: number; now: number; sign: Ed25519Sign; cancelled?: () => boolean },
): Promise<{ tokens: string[]; expiresAt: string }> {
  const ttlMs = options.ttlSeconds * 1000;
  const tokens: string[] = [];
  while (tokens.length < options.count) {
    const sliceEnds = performance.now() + SLICE_MS;
    do tokens.push(issueEnrollmentToken(platformSecretKey, { ttlMs, now: options.now, sign: options.sign }));
    while (tokens.length < options.count && performance.now() < sliceEnds);
    if (tokens.length < options.count) {
      await nextTurn();
      if (options.cancelled?.()) throw new ProtocolError('UNAVAILABLE', 'the request was cancelled while its tokens were being signed');
    }
  }
  return { tokens, expiresAt: new Date(options.now + ttlMs).toISOString() };
}

/**
 * Wire messages of SecAgg+ (Bonawitz et al. 2017, Sec. 4, Fig. 4 rounds; Bell et al. 2020, Sec. 3):
 * plain JSON objects, byte fields as base64 strings, each with a zod schema so a transport can carry
 * and check them. Client indices are the Shamir evaluation points, 1..n.
 */
import { z } from 'zod';
import { STAGES } from './stages.ts';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Base64 string that decodes to exactly `bytes` bytes (length is checked on the string). */
function base64Of(bytes: number) {
  return z.string().length(Math.ceil(bytes / 3) * 4).regex(BASE64, 'expected base64');
}
const base64 = z.string().regex(BASE64, 'expected base64');
const clientIndex = z.number().int().min(1).max(1_000_000);
const roundId = z.string().min(1).max(200);

// ---- client -> server ----

export const advertiseKeysSchema = z.object({
  type: z.literal('advertise-keys'),
  roundId,
  from: clientIndex,
  encryptionPublicKey: base64Of(32),
  maskPublicKey: base64Of(32),
  /** Ed25519 over advertisementPayload(roundId, from, c^PK, s^PK) with the enrollment key. */
  signature: base64Of(64),
});

export const shareKeysSchema = z.object({
  type: z.literal('share-keys'),
  roundId,
  from: clientIndex,
  ciphertexts: z.array(z.object({ to: clientIndex, nonce: base64Of(24), ciphertext: base64 })).max(1_000_000),
});

export const maskedInputSchema = z.object({
  type: z.literal('masked-input'),
  roundId,
  from: clientIndex,
  /** y_u as little-endian uint32 words: base64, or raw bytes where the transport carries binary (Socket.IO does, at no expansion). */
  maskedInput: z.union([base64, z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected base64 or bytes')]),
});

const revealedShare = z.object({ of: clientIndex, share: base64Of(33) });

export const unmaskSharesSchema = z.object({
  type: z.literal('unmask-shares'),
  roundId,
  from: clientIndex,
  /** Shares of b_u for the survivors u named in the request. */
  selfMaskShares: z.array(revealedShare),
  /** Shares of s_u^SK for the dropped u named in the request. */
  keyShares: z.array(revealedShare),
});

export const clientMessageSchema = z.discriminatedUnion('type', [advertiseKeysSchema, shareKeysSchema, maskedInputSchema, unmaskSharesSchema]);

// ---- server -> client ----

const advertisedKey = z.object({ index: clientIndex, encryptionPublicKey: base64Of(32), maskPublicKey: base64Of(32), signature: base64Of(64) });

export const roundKeysSchema = z.object({
  type: z.literal('round-keys'),
  roundId,
  to: clientIndex,
  /** The advertised keys of the recipient's neighbours that advertised (never its own). */
  keys: z.array(advertisedKey),
});

export const forwardedSharesSchema = z.object({
  type: z.literal('forwarded-shares'),
  roundId,
  to: clientIndex,
  ciphertexts: z.array(z.object({ from: clientIndex, nonce: base64Of(24), ciphertext: base64 })),
});

export const unmaskRequestSchema = z.object({
  type: z.literal('unmask-request'),
  roundId,
  to: clientIndex,
  /** Holders of the recipient's shares (itself included) whose masked input arrived: reveal b shares. */
  survivors: z.array(clientIndex),
  /** Neighbours that shared keys but sent no masked input: reveal s^SK shares. */
  dropped: z.array(clientIndex),
});

export const abortSchema = z.object({
  type: z.literal('abort'),
  roundId,
  to: clientIndex,
  stage: z.enum(STAGES),
  code: z.string(),
  reason: z.string(),
});

export const serverMessageSchema = z.discriminatedUnion('type', [roundKeysSchema, forwardedSharesSchema, unmaskRequestSchema, abortSchema]);

export type AdvertiseKeysMessage = z.infer<typeof advertiseKeysSchema>;
export type ShareKeysMessage = z.infer<typeof shareKeysSchema>;
export type MaskedInputMessage = z.infer<typeof maskedInputSchema>;
export type UnmaskSharesMessage = z.infer<typeof unmaskSharesSchema>;
export type ClientMessage = z.infer<typeof clientMessageSchema>;
export type RoundKeysMessage = z.infer<typeof roundKeysSchema>;
export type ForwardedSharesMessage = z.infer<typeof forwardedSharesSchema>;
export type UnmaskRequestMessage = z.infer<typeof unmaskRequestSchema>;
export type AbortMessage = z.infer<typeof abortSchema>;
export type ServerMessage = z.infer<typeof serverMessageSchema>;
export type ClientMessageType = ClientMessage['type'];
export type ServerMessageType = ServerMessage['type'];

export const CLIENT_MESSAGE_TYPES = ['advertise-keys', 'share-keys', 'masked-input', 'unmask-shares'] as const satisfies readonly ClientMessageType[];
export const SERVER_MESSAGE_TYPES = ['round-keys', 'forwarded-shares', 'unmask-request', 'abort'] as const satisfies readonly ServerMessageType[];

/**
 * The privacy ledger's entries: a genesis entry naming the first signing key and the
 * accountant's orders, one `round` entry per round that released a sum or was aborted, one
 * `publication` entry per stored model version binding it to its digest, and `key-rotation` entries. Every entry carries the SHA-256 of the previous entry's canonical
 * JSON (signature included) and an Ed25519 signature (tweetnacl, RFC 8032) over its own
 * canonical JSON without the `signature` field. docs/ledger.md describes the format.
 */
import nacl from 'tweetnacl';
import { z } from 'zod';
import { canonicalJson } from './canonical.ts';
import { fromHex, sha256Hex, toHex, utf8 } from './digest.ts';
import type { Ed25519Verify } from '../secagg/keys.ts';

export const LEDGER_FORMAT = 'portrait-ledger/1';
/** prevHash of the genesis entry. */
export const GENESIS_PREV_HASH = '0'.repeat(64);

const Hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 32 bytes as lowercase hex');
const Hex64 = z.string().regex(/^[0-9a-f]{128}$/, 'expected 64 bytes as lowercase hex');
const Finite = z.number().finite();

const Common = {
  format: z.literal(LEDGER_FORMAT),
  seq: z.number().int().min(1),
  prevHash: Hex32,
  createdAt: z.string(),
  software: z.string(),
  /** Public key (hex) of the key that signed this entry. */
  keyId: Hex32,
  signature: Hex64,
};

export const GenesisEntrySchema = z
  .object({
    ...Common,
    kind: z.literal('genesis'),
    accountant: z.object({ method: z.string(), orders: z.array(Finite).min(1) }).strict(),
  })
  .strict();

export const KeyRotationEntrySchema = z
  .object({
    ...Common,
    kind: z.literal('key-rotation'),
    newPublicKey: Hex32,
    reason: z.string(),
    /** The new key's signature over the entry without either signature: proof it is held. */
    newKeySignature: Hex64,
  })
  .strict();

export const RoundSpendSchema = z
  .object({
    roundId: z.number().int().min(1),
    /** released: the sum is decoded after this entry is committed; aborted: nothing released. */
    outcome: z.enum(['released', 'aborted']),
    reason: z.string().nullable(),
    modelVersionIn: z.number().int().nullable(),
    /** The version the release will publish (write-ahead: it does not exist yet when recorded). */
    modelVersionOut: z.number().int().nullable(),
    mode: z.enum(['distributed', 'central', 'local', 'none']),
    mechanism: z.enum(['distributed-discrete-gaussian', 'discrete-gaussian', 'none']),
    secagg: z.enum(['off', 'on']),
    clip: Finite,
    noiseMultiplier: Finite,
    samplingMethod: z.enum(['fixed', 'poisson']).nullable(),
    q: Finite.nullable(),
    cohortSize: z.number().int().min(0),
    survivors: z.number().int().min(0),
    t: z.number().int().min(0),
    delta: Finite,
    population: z.number().int().min(0),
    l2Sensitivity: Finite.nullable(),
    shareVariance: Finite.nullable(),
    shares: z.number().int().nullable(),
    paddedDimension: z.number().int().nullable(),
    /** This round's RDP at the genesis orders; null when unbounded (a release without DP). */
    rdp: z.array(Finite).nullable(),
    epsilonRound: Finite.nullable(),
    /** Over every round entry so far at this entry's delta; null once a release was unbounded or delta is 0. */
    epsilonCumulative: Finite.nullable(),
    order: Finite.nullable(),
    startedAt: z.string().nullable(),
    /**
     * An analytics round's query (absent for training rounds): which statistic, its L2 bound on
     * one device's contribution (the clip above) and its length, and the SHA-256 of the query's
     * canonical JSON (its parameters, e.g. the category list), so the entry binds what was asked.
     */
    query: z.object({ statistic: z.string().min(1).max(64), dimension: z.number().int().min(1), bound: Finite, sha256: Hex32 }).strict().optional(),
  })
  .strict();

export const RoundEntrySchema = z
  .object({ ...Common, kind: z.literal('round'), round: RoundSpendSchema })
  .strict();

/**
 * A model version as stored, bound to its digest after the fact: the release entry is written
 * before the sum is decoded (write-ahead), so the version it names has no digest yet. The
 * publication follows the round's release entry once the version is committed (`at-commit`), or is
 * entered when a coordinator starts and finds a stored version without one (`at-start`: the seed
 * model, a crash between the commit and the entry, a version published before these entries).
 */
export const PublicationSchema = z
  .object({
    modelVersion: z.number().int().min(1),
    /** The round whose release entry named this version; null only for version 1, the seed model. */
    roundId: z.number().int().min(1).nullable(),
    parentVersion: z.number().int().min(1).nullable(),
    /** SHA-256 (hex) over model.json as served then the weights (server/storage/model-digest.ts). */
    sha256: Hex32,
    bytes: z.number().int().min(0),
    entered: z.enum(['at-commit', 'at-start', 'at-bootstrap']),
    /**
     * A bootstrap version (roundId null): the analytics rounds whose released sums its vocabulary
     * was built from; each must have an earlier release entry naming its query.
     */
    derivedFrom: z.array(z.number().int().min(1)).min(1).max(100).optional(),
  })
  .strict();

export const PublicationEntrySchema = z
  .object({ ...Common, kind: z.literal('publication'), publication: PublicationSchema })
  .strict();

export const LedgerEntrySchema = z.discriminatedUnion('kind', [GenesisEntrySchema, KeyRotationEntrySchema, RoundEntrySchema, PublicationEntrySchema]);

export type GenesisEntry = z.infer<typeof GenesisEntrySchema>;
export type KeyRotationEntry = z.infer<typeof KeyRotationEntrySchema>;
export type RoundSpend = z.infer<typeof RoundSpendSchema>;
export type RoundEntry = z.infer<typeof RoundEntrySchema>;
export type Publication = z.infer<typeof PublicationSchema>;
export type PublicationEntry = z.infer<typeof PublicationEntrySchema>;
export type LedgerEntry = z.infer<typeof LedgerEntrySchema>;

type Unsigned<T> = Omit<T, 'signature'>;
export type UnsignedEntry = Unsigned<GenesisEntry> | Unsigned<RoundEntry> | Unsigned<PublicationEntry> | Omit<KeyRotationEntry, 'signature' | 'newKeySignature'>;

export interface SigningKey {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export function checkSigningKey(key: SigningKey): SigningKey {
  if (!(key.publicKey instanceof Uint8Array)) throw new TypeError(`"publicKey" expected a Uint8Array, got ${typeof key.publicKey}`);
  if (!(key.secretKey instanceof Uint8Array)) throw new TypeError(`"secretKey" expected a Uint8Array, got ${typeof key.secretKey}`);
  if (key.publicKey.length !== nacl.sign.publicKeyLength) throw new RangeError(`"publicKey" expected ${nacl.sign.publicKeyLength} bytes, got ${key.publicKey.length}`);
  if (key.secretKey.length !== nacl.sign.secretKeyLength) throw new RangeError(`"secretKey" expected ${nacl.sign.secretKeyLength} bytes, got ${key.secretKey.length}`);
  return key;
}

/** The bytes a signature covers: the canonical JSON of the entry without the named fields. */
export function signedBytes(entry: object, without: readonly string[]): Uint8Array {
  const rest = Object.fromEntries(Object.entries(entry).filter(([k]) => !without.includes(k)));
  return utf8(canonicalJson(rest));
}

/** Signs an entry with the current ledger key; a rotation is also signed by the new key. */
export function signEntry(unsigned: UnsignedEntry, key: SigningKey, newKey?: SigningKey): LedgerEntry {
  checkSigningKey(key);
  if (unsigned.keyId !== toHex(key.publicKey)) throw new RangeError(`"keyId" expected the signing key ${toHex(key.publicKey)}, got ${unsigned.keyId}`);
  let body: object = unsigned;
  if (unsigned.kind === 'key-rotation') {
    if (!newKey) throw new TypeError('"newKey" expected for a key-rotation entry');
    checkSigningKey(newKey);
    if (unsigned.newPublicKey !== toHex(newKey.publicKey)) throw new RangeError(`"newPublicKey" expected ${toHex(newKey.publicKey)}, got ${unsigned.newPublicKey}`);
    body = { ...unsigned, newKeySignature: toHex(nacl.sign.detached(signedBytes(unsigned, []), newKey.secretKey)) };
  }
  const signature = toHex(nacl.sign.detached(signedBytes(body, []), key.secretKey));
  return LedgerEntrySchema.parse({ ...body, signature });
}

export function verifySignature(entry: object, field: 'signature' | 'newKeySignature', publicKeyHex: string, verify: Ed25519Verify = nacl.sign.detached.verify): boolean {
  const record = entry as Record<string, unknown>;
  const without = field === 'signature' ? ['signature'] : ['signature', 'newKeySignature'];
  try {
    return verify(signedBytes(entry, without), fromHex(field, record[field], 64), fromHex('publicKey', publicKeyHex, 32));
  } catch {
    return false;
  }
}

/** The chain link: SHA-256 of the whole entry's canonical JSON, signature included. */
export function entryHash(entry: LedgerEntry): Promise<string> {
  return sha256Hex(canonicalJson(entry));
}

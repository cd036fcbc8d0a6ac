/**
 * The pure SecAgg+ client (Bonawitz et al. 2017, Sec. 4, Fig. 4, client side of rounds 0, 1, 2, 4;
 * Bell et al. 2020, Sec. 3, with neighbours from the public random graph). It never sends its input
 * unmasked, never reveals both shares of one peer, and refuses survivor lists that disagree with what
 * it saw. Each refusal is a ProtocolError and leaves the client's state untouched.
 */
import { z } from 'zod';
import { expectBytes, expectInteger, toBase64, u32VectorToBytes, wipe } from './bytes.ts';
import { checkRoundConfig, type SecAggRoundConfig } from './config.ts';
import { decodeField, PROTOCOL_ERROR_CODES, ProtocolError } from './errors.ts';
import { neighboursOf } from './graph.ts';
import {
  agreeMany,
  decryptShares,
  derivePairwiseSeeds,
  encryptShares,
  generateRoundKeys,
  signAdvertisement,
  verifyAdvertisementAsync,
  type RoundKeys,
  type SharePair,
} from './keys.ts';
import {
  serverMessageSchema,
  type AdvertiseKeysMessage,
  type ClientMessage,
  type ForwardedSharesMessage,
  type MaskedInputMessage,
  type RoundKeysMessage,
  type ServerMessage,
  type ShareKeysMessage,
  type UnmaskRequestMessage,
  type UnmaskSharesMessage,
} from './messages.ts';
import { applyMasks, prgByName, type MaskJob } from './prg.ts';
import { randomBytes, type RandomSource } from './random.ts';
import { splitSecret } from './shamir.ts';
import { clientNextStage, STAGES, type ClientEvent, type Stage } from './stages.ts';

export interface SecAggClientOptions {
  readonly config: SecAggRoundConfig;
  /** This client's index in the cohort, 1..n. */
  readonly index: number;
  /** The DP-noised update, already reduced mod 2^32. */
  readonly input: Uint32Array;
  /** Ed25519 enrollment secret key (64 bytes, tweetnacl layout). */
  readonly signingSecretKey: Uint8Array;
  /** Enrollment verify key of a peer, or undefined when the peer is not enrolled. */
  readonly verifyKey: (index: number) => Uint8Array | undefined;
  readonly random: RandomSource;
  /** Send y_u as raw bytes instead of base64 (for transports that carry binary, e.g. Socket.IO). */
  readonly binaryMaskedInput?: boolean;
}

interface PeerKeys {
  readonly encryptionPublicKey: Uint8Array;
  readonly maskPublicKey: Uint8Array;
}

/** The server message that lets a client perform each stage (for telling late from early messages). */
const EVENT_STAGE: Record<Exclude<ClientEvent, 'abort'>, Stage> = {
  start: 'advertise-keys',
  'round-keys': 'share-keys',
  'forwarded-shares': 'masked-input',
  'unmask-request': 'unmask',
};

function refuse(code: keyof typeof PROTOCOL_ERROR_CODES, message: string): never {
  throw new ProtocolError(PROTOCOL_ERROR_CODES[code], message);
}

function uniqueIndices(name: string, values: readonly number[]): Set<number> {
  const set = new Set(values);
  if (set.size !== values.length) refuse('MALFORMED', `"${name}" lists a client twice`);
  return set;
}

export class SecAggClient {
  readonly index: number;
  readonly config: SecAggRoundConfig;
  #stage: Stage = 'advertise-keys';
  #abort: { stage: Stage; code: string; reason: string } | undefined;
  /** Own neighbours in the public graph (sorted) and as a set; the rest of the graph is never built. */
  readonly #neighbours: readonly number[];
  readonly #neighbourSet: ReadonlySet<number>;
  readonly #input: Uint32Array;
  readonly #signingSecretKey: Uint8Array;
  readonly #verifyKey: (index: number) => Uint8Array | undefined;
  readonly #random: RandomSource;
  readonly #binaryMaskedInput: boolean;
  #keys: RoundKeys | undefined;
  #peers = new Map<number, PeerKeys>();
  #selfMaskSeed: Uint8Array | undefined;
  #ownShares: SharePair | undefined;
  #received = new Map<number, SharePair>();
  readonly #revealed = new Map<number, 'self-mask' | 'key'>();

  constructor(options: SecAggClientOptions) {
    this.config = checkRoundConfig(options.config);
    this.index = expectInteger('index', options.index, 1, this.config.n);
    if (!(options.input instanceof Uint32Array)) throw new TypeError('"input" expected a Uint32Array');
    if (options.input.length !== this.config.vectorLength) {
      throw new RangeError(`"input" expected ${this.config.vectorLength} entries, got ${options.input.length}`);
    }
    if (typeof options.verifyKey !== 'function') throw new TypeError('"verifyKey" expected a function');
    if (typeof options.random !== 'function') throw new TypeError('"random" expected a function');
    this.#input = options.input.slice();
    this.#signingSecretKey = expectBytes('signingSecretKey', options.signingSecretKey, 64).slice();
    this.#verifyKey = options.verifyKey;
    this.#random = options.random;
    this.#binaryMaskedInput = options.binaryMaskedInput === true;
    this.#neighbours = neighboursOf(this.config.graphSeed, this.config.n, this.config.k, this.index);
    this.#neighbourSet = new Set(this.#neighbours);
  }

  get stage(): Stage {
    return this.#stage;
  }

  get abortReason(): { stage: Stage; code: string; reason: string } | undefined {
    return this.#abort;
  }

  get neighbours(): readonly number[] {
    return this.#neighbours;
  }

  #transition(event: ClientEvent): Stage {
    const next = clientNextStage(this.#stage, event);
    if (next !== undefined) return next;
    if (event !== 'abort' && this.#stage !== 'aborted' && STAGES.indexOf(EVENT_STAGE[event]) < STAGES.indexOf(this.#stage)) {
      refuse('LATE_MESSAGE', `client ${this.index} in stage "${this.#stage}" refuses "${event}": that stage is over`);
    }
    return refuse('INVALID_TRANSITION', `client ${this.index} in stage "${this.#stage}" refuses "${event}"`);
  }

  /** Round 0, AdvertiseKeys: fresh c_u, s_u key pairs, signed with the enrollment key. */
  advertiseKeys(): AdvertiseKeysMessage {
    const next = this.#transition('start');
    const keys = generateRoundKeys(this.#random);
    const signature = signAdvertisement(this.#signingSecretKey, this.config.roundId, this.index, keys);
    this.#keys = keys;
    this.#stage = next;
    return {
      type: 'advertise-keys',
      roundId: this.config.roundId,
      from: this.index,
      encryptionPublicKey: toBase64(keys.encryption.publicKey),
      maskPublicKey: toBase64(keys.mask.publicKey),
      signature: toBase64(signature),
    };
  }

  /** Handles one server message; resolves to the reply to send (null after an abort). */
  async receive(message: unknown): Promise<ClientMessage | null> {
    const parsed = serverMessageSchema.safeParse(message);
    if (!parsed.success) refuse('MALFORMED', `server message refused: ${z.prettifyError(parsed.error)}`);
    const msg: ServerMessage = parsed.data;
    if (msg.roundId !== this.config.roundId) refuse('WRONG_ROUND', `message for round "${msg.roundId}", this is "${this.config.roundId}"`);
    if (msg.to !== this.index) refuse('MISADDRESSED', `message addressed to client ${msg.to}, this is client ${this.index}`);
    const next = this.#transition(msg.type);
    switch (msg.type) {
      case 'round-keys':
        return this.#onRoundKeys(msg, next);
      case 'forwarded-shares':
        return this.#onForwardedShares(msg, next);
      case 'unmask-request':
        return this.#onUnmaskRequest(msg, next);
      case 'abort':
        this.#abort = { stage: this.#stage, code: msg.code, reason: msg.reason };
        this.#stage = next;
        this.#wipe();
        return null;
    }
  }

  /** Round 1, ShareKeys: verify neighbours' keys, share b_u and s_u^SK t-of-(k+1), encrypt to each neighbour. */
  async #onRoundKeys(msg: RoundKeysMessage, next: Stage): Promise<ShareKeysMessage> {
    const keys = this.#keys!;
    const { roundId, t } = this.config;
    uniqueIndices('keys', msg.keys.map((k) => k.index));
    const peers = new Map<number, PeerKeys>();
    const seenKeys = new Set([toBase64(keys.encryption.publicKey), toBase64(keys.mask.publicKey)]);
    const decoded = msg.keys.map((entry) => {
      if (entry.index === this.index || !this.#neighbourSet.has(entry.index)) {
        refuse('NOT_NEIGHBOUR', `client ${entry.index} is not a neighbour of client ${this.index} in the public graph`);
      }
      const verifyKey = this.#verifyKey(entry.index);
      if (verifyKey === undefined) refuse('UNKNOWN_SENDER', `no enrollment key for client ${entry.index}`);
      const encryptionPublicKey = decodeField('encryptionPublicKey', entry.encryptionPublicKey);
      const maskPublicKey = decodeField('maskPublicKey', entry.maskPublicKey);
      const signature = decodeField('signature', entry.signature);
      return { entry, verifyKey, encryptionPublicKey, maskPublicKey, signature };
    });
    const verified = await Promise.all(decoded.map((d) => verifyAdvertisementAsync(d.verifyKey, roundId, d.entry.index, d.encryptionPublicKey, d.maskPublicKey, d.signature)));
    // The await let other messages in: re-check the stage so a concurrent message cannot have moved it.
    if (this.#stage !== 'share-keys') refuse('INVALID_TRANSITION', `client ${this.index} left stage "share-keys" while verifying keys`);
    for (const [i, { entry, encryptionPublicKey, maskPublicKey }] of decoded.entries()) {
      if (!verified[i]) {
        refuse('BAD_SIGNATURE', `advertised keys of client ${entry.index} are not signed by its enrollment key`);
      }
      for (const key of [entry.encryptionPublicKey, entry.maskPublicKey]) {
        if (seenKeys.has(key)) refuse('BAD_KEY', `client ${entry.index} advertises a public key already in use`);
        seenKeys.add(key);
      }
      peers.set(entry.index, { encryptionPublicKey, maskPublicKey });
    }
    if (peers.size + 1 < t) refuse('BELOW_THRESHOLD', `stage "share-keys": ${peers.size + 1} holders for client ${this.index}, below t=${t}`);

    const holders = [this.index, ...[...peers.keys()].sort((a, b) => a - b)];
    const agreed = await agreeMany(keys.encryption.secretKey, holders.slice(1).map((to) => peers.get(to)!.encryptionPublicKey));
    if (this.#stage !== 'share-keys') refuse('INVALID_TRANSITION', `client ${this.index} left stage "share-keys" while agreeing keys`);
    const selfMaskSeed = randomBytes(this.#random, 32);
    const selfMaskShares = splitSecret(selfMaskSeed, t, holders, this.#random);
    const keyShares = splitSecret(keys.mask.secretKey, t, holders, this.#random);
    const ciphertexts: ShareKeysMessage['ciphertexts'] = [];
    for (let i = 1; i < holders.length; i++) {
      const to = holders[i]!;
      const sealed = encryptShares(keys.encryption.secretKey, peers.get(to)!.encryptionPublicKey, roundId, this.index, to,
        { selfMaskShare: selfMaskShares[i]!.y, keyShare: keyShares[i]!.y }, this.#random, agreed[i - 1]);
      ciphertexts.push({ to, nonce: toBase64(sealed.nonce), ciphertext: toBase64(sealed.ciphertext) });
      wipe(selfMaskShares[i]!.y, keyShares[i]!.y);
    }
    this.#peers = peers;
    this.#selfMaskSeed = selfMaskSeed;
    this.#ownShares = { selfMaskShare: selfMaskShares[0]!.y, keyShare: keyShares[0]!.y };
    this.#stage = next;
    return { type: 'share-keys', roundId, from: this.index, ciphertexts };
  }

  /** Round 2, MaskedInputCollection: y_u = x_u + PRG(b_u) + sum_v +-PRG(s_{u,v}) over neighbours that shared. */
  async #onForwardedShares(msg: ForwardedSharesMessage, next: Stage): Promise<MaskedInputMessage> {
    const keys = this.#keys!;
    const { roundId, t } = this.config;
    uniqueIndices('ciphertexts', msg.ciphertexts.map((c) => c.from));
    const received = new Map<number, SharePair>();
    const entries = msg.ciphertexts.map((entry) => {
      const peer = this.#peers.get(entry.from);
      if (peer === undefined) refuse('NOT_NEIGHBOUR', `shares from client ${entry.from}, which is not an advertised neighbour`);
      return { from: entry.from, peer, sealed: { nonce: decodeField('nonce', entry.nonce), ciphertext: decodeField('ciphertext', entry.ciphertext) } };
    });
    const agreed = await agreeMany(keys.encryption.secretKey, entries.map((e) => e.peer.encryptionPublicKey));
    try {
      if (this.#stage !== 'masked-input') refuse('INVALID_TRANSITION', `client ${this.index} left stage "masked-input" while agreeing keys`);
      for (const [i, e] of entries.entries()) {
        received.set(e.from, decryptShares(keys.encryption.secretKey, e.peer.encryptionPublicKey, roundId, e.from, this.index, e.sealed, agreed[i]));
      }
    } finally {
      wipe(...agreed);
    }
    if (received.size + 1 < t) {
      refuse('BELOW_THRESHOLD', `stage "masked-input": ${received.size + 1} holders for client ${this.index}, below t=${t}`);
    }
    this.#received = received;
    this.#stage = next;

    const masked = this.#input.slice();
    const maskPeers = [...received.keys()].sort((a, b) => a - b);
    const maskSecrets = await agreeMany(keys.mask.secretKey, maskPeers.map((peer) => this.#peers.get(peer)!.maskPublicKey));
    const pairSeeds = await derivePairwiseSeeds(maskSecrets, roundId, this.index, maskPeers).finally(() => wipe(...maskSecrets));
    // The self mask, then +PRG(s_{u,v}) for v > u and -PRG(s_{u,v}) for v < u, added in place.
    const jobs: MaskJob[] = [
      { seed: this.#selfMaskSeed!.slice(), sign: 1 },
      ...maskPeers.map((peer, j): MaskJob => ({ seed: pairSeeds[j]!, sign: this.index < peer ? 1 : -1 })),
    ];
    await applyMasks(prgByName(this.config.prg), masked, jobs);
    this.#input.fill(0);
    const bytes = u32VectorToBytes(masked);
    const reply: MaskedInputMessage = { type: 'masked-input', roundId, from: this.index, maskedInput: this.#binaryMaskedInput ? bytes : toBase64(bytes) };
    masked.fill(0);
    return reply;
  }

  /** Round 4, Unmasking: b shares for survivors, s^SK shares for dropped peers, never both for one peer. */
  #onUnmaskRequest(msg: UnmaskRequestMessage, next: Stage): UnmaskSharesMessage {
    const { roundId, t } = this.config;
    const survivors = uniqueIndices('survivors', msg.survivors);
    const dropped = uniqueIndices('dropped', msg.dropped);
    for (const u of survivors) {
      if (dropped.has(u)) refuse('BOTH_SHARES_REQUESTED', `client ${u} is listed as survivor and dropped: refusing to reveal both of its shares`);
    }
    for (const [u, kind] of this.#revealed) {
      if ((kind === 'self-mask' && dropped.has(u)) || (kind === 'key' && survivors.has(u))) {
        refuse('BOTH_SHARES_REQUESTED', `the other share of client ${u} was already revealed`);
      }
    }
    if (!survivors.has(this.index)) refuse('INCONSISTENT_SURVIVORS', `client ${this.index} sent its masked input but is not listed as a survivor`);
    const held = new Set([this.index, ...this.#received.keys()]);
    for (const u of [...survivors, ...dropped]) {
      if (!held.has(u)) refuse('INCONSISTENT_SURVIVORS', `client ${u} never shared keys with client ${this.index}`);
    }
    for (const u of held) {
      if (!survivors.has(u) && !dropped.has(u)) refuse('INCONSISTENT_SURVIVORS', `client ${u} shared keys with client ${this.index} but is neither survivor nor dropped`);
    }
    if (survivors.size < t) refuse('BELOW_THRESHOLD', `stage "unmask": ${survivors.size} survivors among the holders of client ${this.index}, below t=${t}`);

    const shareOf = (u: number): SharePair => (u === this.index ? this.#ownShares! : this.#received.get(u)!);
    const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
    const reply: UnmaskSharesMessage = {
      type: 'unmask-shares',
      roundId,
      from: this.index,
      selfMaskShares: sorted(survivors).map((u) => ({ of: u, share: toBase64(shareOf(u).selfMaskShare) })),
      keyShares: sorted(dropped).map((u) => ({ of: u, share: toBase64(shareOf(u).keyShare) })),
    };
    for (const u of survivors) this.#revealed.set(u, 'self-mask');
    for (const u of dropped) this.#revealed.set(u, 'key');
    this.#stage = next;
    this.#wipe();
    return reply;
  }

  #wipe(): void {
    if (this.#keys) wipe(this.#keys.encryption.secretKey, this.#keys.mask.secretKey);
    wipe(this.#selfMaskSeed, this.#ownShares?.selfMaskShare, this.#ownShares?.keyShare, this.#signingSecretKey);
    for (const pair of this.#received.values()) wipe(pair.selfMaskShare, pair.keyShare);
    this.#input.fill(0);
  }
}

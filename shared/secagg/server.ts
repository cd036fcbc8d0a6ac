/**
 * The pure SecAgg+ server session (Bonawitz et al. 2017, Sec. 4, Fig. 4, server side of rounds 0, 1,
 * 2, 4; Bell et al. 2020, Sec. 3, restricted to the public neighbour graph). It relays keys and
 * ciphertexts, tracks who dropped at which stage, aborts naming the stage as soon as some client
 * would have fewer than t live share holders, and at the end reconstructs the survivors' self masks
 * and the dropped clients' pairwise masks to return only the sum mod 2^32. Refused messages
 * (malformed, replayed, late, duplicated, mis-addressed) throw a ProtocolError and change nothing.
 */
import { z } from 'zod';
import { constantTimeEqual, wipe } from './bytes.ts';
import { checkRoundConfig, type SecAggRoundConfig } from './config.ts';
import { decodeField, PROTOCOL_ERROR_CODES, ProtocolError, type ProtocolErrorCode } from './errors.ts';
import { buildNeighbourGraph, type NeighbourGraph } from './graph.ts';
import { HolderSetChooser, RevealedShares } from './holder-sets.ts';
import {
  isomorphicMaskKeyCrypto,
  naclEd25519Verify,
  shareCiphertextBytes,
  verifyAdvertisement,
  type Ed25519Verify,
  type MaskKeyCrypto,
  type MaskKeySeeds,
} from './keys.ts';
import {
  clientMessageSchema,
  type AbortMessage,
  type AdvertiseKeysMessage,
  type ClientMessage,
  type ForwardedSharesMessage,
  type RoundKeysMessage,
  type ShareKeysMessage,
  type UnmaskRequestMessage,
  type UnmaskSharesMessage,
} from './messages.ts';
import { MaskApplier, MAX_DEPTH, prgByName, type MaskJob, type MaskSink, type MaskSinkFactory } from './prg.ts';
import { shareValue } from './shamir.ts';
import { createZ32Sum, type Z32Sum } from './wasm-add.ts';
import { PROTOCOL_STAGES, SERVER_TRANSITIONS, STAGES, type ProtocolStage, type Stage } from './stages.ts';

export interface SecAggServerOptions {
  readonly config: SecAggRoundConfig;
  /** Enrollment verify keys; when given, advertised keys are checked on arrival (clients check them again). */
  readonly verifyKey?: (index: number) => Uint8Array | undefined;
  /** The Ed25519 verifier for those checks; default tweetnacl (a Node coordinator injects its native one). */
  readonly verifySignature?: Ed25519Verify;
  /** X25519 and KDF for dropped clients' pairwise seeds at unmask; default isomorphic (a Node coordinator injects OpenSSL's). */
  readonly maskKeyCrypto?: MaskKeyCrypto;
  /** Where the unmask's masks are expanded and added; default `MaskApplier` (a Node coordinator injects OpenSSL AES-CTR on worker threads). */
  readonly maskSink?: MaskSinkFactory;
}

export type StageOutcome =
  | { readonly status: 'continue'; readonly stage: Stage; readonly messages: readonly (RoundKeysMessage | ForwardedSharesMessage | UnmaskRequestMessage)[] }
  | { readonly status: 'aborted'; readonly stage: ProtocolStage; readonly code: ProtocolErrorCode; readonly reason: string; readonly messages: readonly AbortMessage[] }
  | { readonly status: 'done'; readonly sum: Uint32Array; readonly survivors: readonly number[] };

export interface SecAggSummary {
  readonly k: number;
  readonly t: number;
  readonly stage: Stage;
  /** Clients whose masked input is in the sum (empty before the masked-input stage closes). */
  readonly survivors: readonly number[];
  readonly droppedPerStage: Readonly<Record<ProtocolStage, readonly number[]>>;
  readonly abort?: { readonly stage: ProtocolStage; readonly code: ProtocolErrorCode; readonly reason: string };
}

const MESSAGE_STAGE: Record<ClientMessage['type'], ProtocolStage> = {
  'advertise-keys': 'advertise-keys',
  'share-keys': 'share-keys',
  'masked-input': 'masked-input',
  'unmask-shares': 'unmask',
};

interface Advertised {
  readonly wire: AdvertiseKeysMessage;
  readonly maskPublicKey: Uint8Array;
}

/** Revealed share values by owner, then by holder: y = f(holder) of the owner's polynomial (Bonawitz et al. 2017, Sec. 4, Round 4). */
interface Revealed {
  readonly selfMask: RevealedShares;
  readonly key: RevealedShares;
}

class StageShortfall extends Error {}

function refuse(code: keyof typeof PROTOCOL_ERROR_CODES, message: string): never {
  throw new ProtocolError(PROTOCOL_ERROR_CODES[code], message);
}

const ascending = (a: number, b: number) => a - b;

export class SecAggServerSession {
  readonly config: SecAggRoundConfig;
  readonly #graph: NeighbourGraph;
  readonly #verifyKey: ((index: number) => Uint8Array | undefined) | undefined;
  readonly #verifySignature: Ed25519Verify;
  readonly #maskKeyCrypto: MaskKeyCrypto;
  readonly #maskSink: MaskSinkFactory | undefined;
  #stage: Stage = 'advertise-keys';
  #closing = false;
  #abort: { stage: ProtocolStage; code: ProtocolErrorCode; reason: string } | undefined;
  readonly #advertised = new Map<number, Advertised>();
  readonly #shared = new Map<number, ShareKeysMessage['ciphertexts']>();
  /** Who sent a masked input (U3); the inputs themselves are summed on arrival into #maskedSum. */
  readonly #masked = new Set<number>();
  /** sum of y_u mod 2^32 over U3, accumulated as inputs arrive: O(P) memory, not O(nP), and no sum left for unmask. */
  #maskedSum: Z32Sum | null = null;
  #expectedCache: { stage: string; set: ReadonlySet<number> | undefined } | null = null;
  readonly #requests = new Map<number, { survivors: readonly number[]; dropped: readonly number[] }>();
  /** Who sent unmask shares (U5), and the shares themselves, decoded to field elements on arrival. */
  readonly #revealed = new Set<number>();
  readonly #shares: Revealed;
  readonly #dropped: Record<ProtocolStage, number[]> = { 'advertise-keys': [], 'share-keys': [], 'masked-input': [], unmask: [] };

  constructor(options: SecAggServerOptions) {
    this.config = checkRoundConfig(options.config);
    this.#verifyKey = options.verifyKey;
    this.#verifySignature = options.verifySignature ?? naclEd25519Verify;
    this.#maskKeyCrypto = options.maskKeyCrypto ?? isomorphicMaskKeyCrypto;
    this.#maskSink = options.maskSink;
    this.#graph = buildNeighbourGraph(this.config.graphSeed, this.config.n, this.config.k);
    this.#shares = { selfMask: new RevealedShares(this.#graph), key: new RevealedShares(this.#graph) };
  }

  get stage(): Stage {
    return this.#stage;
  }

  get graph(): NeighbourGraph {
    return this.#graph;
  }

  summary(): SecAggSummary {
    const survivors = STAGES.indexOf(this.#stage) >= STAGES.indexOf('unmask') || this.#abort?.stage === 'unmask' ? [...this.#masked.keys()].sort(ascending) : [];
    return {
      k: this.config.k,
      t: this.config.t,
      stage: this.#stage,
      survivors,
      droppedPerStage: {
        'advertise-keys': [...this.#dropped['advertise-keys']],
        'share-keys': [...this.#dropped['share-keys']],
        'masked-input': [...this.#dropped['masked-input']],
        unmask: [...this.#dropped.unmask],
      },
      ...(this.#abort ? { abort: { ...this.#abort } } : {}),
    };
  }

  /**
   * Clients expected to answer the current stage: everyone, then whoever answered the previous one.
   * The previous stage is closed (late messages are refused), so the set is built once per stage,
   * not once per message (which cost O(n) per message, O(n^2) per stage).
   */
  #expected(): ReadonlySet<number> | undefined {
    if (this.#expectedCache?.stage === this.#stage) return this.#expectedCache.set;
    let set: ReadonlySet<number> | undefined;
    switch (this.#stage) {
      case 'share-keys':
        set = new Set(this.#advertised.keys());
        break;
      case 'masked-input':
        set = new Set(this.#shared.keys());
        break;
      case 'unmask':
        set = new Set(this.#masked);
        break;
      default:
        set = undefined;
    }
    this.#expectedCache = { stage: this.#stage, set };
    return set;
  }

  /** Accepts one client message from the transport-authenticated `sender`; throws ProtocolError to refuse it. */
  receive(sender: number, message: unknown): void {
    if (typeof sender !== 'number' || !Number.isInteger(sender) || sender < 1 || sender > this.config.n) {
      refuse('UNKNOWN_SENDER', `sender ${String(sender)} is not in the cohort 1..${this.config.n}`);
    }
    const parsed = clientMessageSchema.safeParse(message);
    if (!parsed.success) refuse('MALFORMED', `message from client ${sender} refused: ${z.prettifyError(parsed.error)}`);
    const msg = parsed.data;
    if (msg.from !== sender) refuse('MISADDRESSED', `message claims to be from client ${msg.from} but arrived from client ${sender}`);
    if (msg.roundId !== this.config.roundId) refuse('WRONG_ROUND', `message for round "${msg.roundId}", this is "${this.config.roundId}"`);
    const row = SERVER_TRANSITIONS[this.#stage];
    if (row === null || row.accepts !== msg.type || this.#closing) {
      const late = this.#closing || (this.#stage !== 'aborted' && STAGES.indexOf(MESSAGE_STAGE[msg.type]) < STAGES.indexOf(this.#stage));
      refuse(late ? 'LATE_MESSAGE' : 'INVALID_TRANSITION', `server in stage "${this.#stage}" refuses "${msg.type}" from client ${sender}`);
    }
    const expected = this.#expected();
    if (expected !== undefined && !expected.has(sender)) {
      refuse('DROPPED_CLIENT', `client ${sender} dropped before stage "${this.#stage}" and cannot rejoin`);
    }
    switch (msg.type) {
      case 'advertise-keys':
        return this.#onAdvertiseKeys(msg);
      case 'share-keys':
        return this.#onShareKeys(msg);
      case 'masked-input':
        return this.#onMaskedInput(msg);
      case 'unmask-shares':
        return this.#onUnmaskShares(msg);
    }
  }

  #onAdvertiseKeys(msg: AdvertiseKeysMessage): void {
    if (this.#advertised.has(msg.from)) refuse('DUPLICATE_MESSAGE', `client ${msg.from} already advertised keys`);
    const encryptionPublicKey = decodeField('encryptionPublicKey', msg.encryptionPublicKey);
    const maskPublicKey = decodeField('maskPublicKey', msg.maskPublicKey);
    const signature = decodeField('signature', msg.signature);
    if (this.#verifyKey) {
      const verifyKey = this.#verifyKey(msg.from);
      if (verifyKey === undefined) refuse('UNKNOWN_SENDER', `no enrollment key for client ${msg.from}`);
      if (!verifyAdvertisement(verifyKey, this.config.roundId, msg.from, encryptionPublicKey, maskPublicKey, signature, this.#verifySignature)) {
        refuse('BAD_SIGNATURE', `advertised keys of client ${msg.from} are not signed by its enrollment key`);
      }
    }
    if (msg.encryptionPublicKey === msg.maskPublicKey) refuse('BAD_KEY', `client ${msg.from} uses one key for encryption and masking`);
    for (const other of this.#advertised.values()) {
      const keys = [other.wire.encryptionPublicKey, other.wire.maskPublicKey];
      if (keys.includes(msg.encryptionPublicKey) || keys.includes(msg.maskPublicKey)) {
        refuse('BAD_KEY', `client ${msg.from} advertises a public key already used by client ${other.wire.from}`);
      }
    }
    this.#advertised.set(msg.from, { wire: msg, maskPublicKey });
  }

  #onShareKeys(msg: ShareKeysMessage): void {
    if (this.#shared.has(msg.from)) refuse('DUPLICATE_MESSAGE', `client ${msg.from} already shared keys`);
    const wanted = this.#graph.neighbours(msg.from).filter((v) => this.#advertised.has(v));
    const addressed = new Set(msg.ciphertexts.map((c) => c.to));
    if (addressed.size !== msg.ciphertexts.length || addressed.size !== wanted.length || wanted.some((v) => !addressed.has(v))) {
      refuse('MISADDRESSED', `client ${msg.from} must send one ciphertext to each advertised neighbour [${wanted.join(', ')}], got [${msg.ciphertexts.map((c) => c.to).join(', ')}]`);
    }
    const expectedBytes = shareCiphertextBytes(this.config.roundId);
    for (const c of msg.ciphertexts) {
      const length = decodeField('ciphertext', c.ciphertext).length;
      if (length !== expectedBytes) refuse('MALFORMED', `ciphertext from client ${msg.from} to ${c.to} has ${length} bytes, expected ${expectedBytes}`);
    }
    this.#shared.set(msg.from, msg.ciphertexts);
  }

  #onMaskedInput(msg: { from: number; maskedInput: string | Uint8Array }): void {
    if (this.#masked.has(msg.from)) refuse('DUPLICATE_MESSAGE', `client ${msg.from} already sent its masked input`);
    const bytes = typeof msg.maskedInput === 'string' ? decodeField('maskedInput', msg.maskedInput) : msg.maskedInput;
    if (bytes.length !== 4 * this.config.vectorLength) {
      refuse('MALFORMED', `"maskedInput" from client ${msg.from} expected ${4 * this.config.vectorLength} bytes, got ${bytes.length}`);
    }
    this.#maskedSum ??= createZ32Sum(this.config.vectorLength);
    this.#maskedSum.addBytes(bytes);
    this.#masked.add(msg.from);
  }

  #onUnmaskShares(msg: UnmaskSharesMessage): void {
    if (this.#revealed.has(msg.from)) refuse('DUPLICATE_MESSAGE', `client ${msg.from} already sent its unmask shares`);
    const request = this.#requests.get(msg.from)!;
    const matches = (got: readonly { of: number }[], want: readonly number[]) =>
      got.length === want.length && got.every((g, i) => g.of === want[i]);
    const sortedSelf = [...msg.selfMaskShares].sort((a, b) => a.of - b.of);
    const sortedKey = [...msg.keyShares].sort((a, b) => a.of - b.of);
    if (!matches(sortedSelf, request.survivors) || !matches(sortedKey, request.dropped)) {
      refuse('MISADDRESSED', `client ${msg.from} must reveal self-mask shares of [${request.survivors.join(', ')}] and key shares of [${request.dropped.join(', ')}]`);
    }
    // Decoded here, while other clients are still answering, not at unmask: decoding is most of a
    // reconstruction's cost (~0.3 us per share against ~0.1 us for its product). A share that is not a
    // field element refuses the message, before anything of it is kept.
    const decode = (kind: keyof Revealed, shares: readonly { of: number; share: string }[]) =>
      shares.map((s) => {
        const bytes = decodeField('share', s.share);
        try {
          return [s.of, shareValue(bytes)] as const;
        } catch (err) {
          refuse('MALFORMED', `share of client ${s.of} from client ${msg.from} (${kind}): ${err instanceof Error ? err.message : String(err)}`);
        } finally {
          wipe(bytes);
        }
      });
    const selfMask = decode('selfMask', sortedSelf);
    const key = decode('key', sortedKey);
    // The request matched the holder's own window (owners among itself and its neighbours, each once),
    // so these cannot refuse; were they to, nothing of the message is kept (MALFORMED).
    let slots: [number[], number[]];
    try {
      slots = [this.#shares.selfMask.check(msg.from, selfMask.map(([owner]) => owner)), this.#shares.key.check(msg.from, key.map(([owner]) => owner))];
    } catch (err) {
      refuse('MALFORMED', `unmask shares from client ${msg.from}: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.#shares.selfMask.addFrom(msg.from, selfMask, slots[0]);
    this.#shares.key.addFrom(msg.from, key, slots[1]);
    this.#revealed.add(msg.from);
  }

  /** The transport ends the current stage (all answered, or the deadline passed): advance, abort or finish. */
  async closeStage(): Promise<StageOutcome> {
    if (this.#closing) refuse('INVALID_TRANSITION', 'the unmask stage is already closing');
    const stage = this.#stage;
    if (SERVER_TRANSITIONS[stage] === null) refuse('INVALID_TRANSITION', `server in stage "${stage}" has no stage to close`);
    const protocolStage = stage as ProtocolStage;
    try {
      switch (protocolStage) {
        case 'advertise-keys':
          return this.#closeAdvertiseKeys();
        case 'share-keys':
          return this.#closeShareKeys();
        case 'masked-input':
          return this.#closeMaskedInput();
        case 'unmask':
          this.#closing = true;
          try {
            return await this.#closeUnmask();
          } finally {
            // The share values are BigInts, which cannot be zeroed (nor could the reconstruction's own
            // intermediates ever be); they are dropped here, whatever the outcome. Their wire bytes
            // were zeroed on arrival.
            this.#shares.selfMask.clear();
            this.#shares.key.clear();
          }
      }
    } catch (err) {
      if (err instanceof StageShortfall) return this.#abortWith(protocolStage, 'BELOW_THRESHOLD', err.message);
      if (err instanceof ProtocolError && err.code === 'RECONSTRUCTION_FAILED') return this.#abortWith(protocolStage, err.code, err.message);
      throw err;
    } finally {
      this.#closing = false;
    }
  }

  /** Ends the round from outside (e.g. the runner's own deadline policy), naming the stage. */
  abort(reason: string): StageOutcome {
    if (SERVER_TRANSITIONS[this.#stage] === null) refuse('INVALID_TRANSITION', `server in stage "${this.#stage}" cannot abort`);
    return this.#abortWith(this.#stage as ProtocolStage, 'BELOW_THRESHOLD', reason);
  }

  #alive(stage: ProtocolStage): number[] {
    const source = { 'advertise-keys': this.#advertised, 'share-keys': this.#shared, 'masked-input': this.#masked, unmask: this.#revealed }[stage];
    return [...source.keys()].sort(ascending);
  }

  #recordDrops(stage: ProtocolStage, before: readonly number[], alive: readonly number[]): void {
    const set = new Set(alive);
    this.#dropped[stage] = before.filter((u) => !set.has(u));
  }

  /** Every live client keeps at least t live holders among itself and its neighbours (Bell et al. 2020, Sec. 3). */
  #checkHolders(stage: ProtocolStage, alive: readonly number[]): void {
    // Nobody left passes the per-client check vacuously; the later stages would only wait out their deadlines.
    if (alive.length === 0) throw new StageShortfall(`stage "${stage}" fell short: no client answered (all ${this.config.n} dropped or declined)`);
    const set = new Set(alive);
    for (const u of alive) {
      const holders = 1 + this.#graph.neighbours(u).filter((v) => set.has(v)).length;
      if (holders < this.config.t) {
        throw new StageShortfall(`stage "${stage}" fell short: client ${u} has ${holders} live share holders (itself included), below t=${this.config.t}`);
      }
    }
  }

  #closeAdvertiseKeys(): StageOutcome {
    const alive = this.#alive('advertise-keys');
    this.#recordDrops('advertise-keys', Array.from({ length: this.config.n }, (_, i) => i + 1), alive);
    this.#checkHolders('advertise-keys', alive);
    const messages = alive.map((u): RoundKeysMessage => ({
      type: 'round-keys',
      roundId: this.config.roundId,
      to: u,
      keys: this.#graph.neighbours(u).filter((v) => this.#advertised.has(v)).map((v) => {
        const wire = this.#advertised.get(v)!.wire;
        return { index: v, encryptionPublicKey: wire.encryptionPublicKey, maskPublicKey: wire.maskPublicKey, signature: wire.signature };
      }),
    }));
    this.#stage = 'share-keys';
    return { status: 'continue', stage: this.#stage, messages };
  }

  #closeShareKeys(): StageOutcome {
    const alive = this.#alive('share-keys');
    this.#recordDrops('share-keys', this.#alive('advertise-keys'), alive);
    this.#checkHolders('share-keys', alive);
    const messages = alive.map((v): ForwardedSharesMessage => ({
      type: 'forwarded-shares',
      roundId: this.config.roundId,
      to: v,
      ciphertexts: this.#graph.neighbours(v).filter((u) => this.#shared.has(u)).map((u) => {
        const c = this.#shared.get(u)!.find((x) => x.to === v)!;
        return { from: u, nonce: c.nonce, ciphertext: c.ciphertext };
      }),
    }));
    this.#stage = 'masked-input';
    return { status: 'continue', stage: this.#stage, messages };
  }

  #closeMaskedInput(): StageOutcome {
    const alive = this.#alive('masked-input');
    const sharedSet = this.#alive('share-keys');
    this.#recordDrops('masked-input', sharedSet, alive);
    const survivors = new Set(alive);
    const { t } = this.config;
    const requests = new Map<number, { survivors: number[]; dropped: number[] }>();
    for (const v of alive) {
      const holders = [v, ...this.#graph.neighbours(v)].filter((u) => survivors.has(u)).sort(ascending);
      if (holders.length < t) throw new StageShortfall(`stage "masked-input" fell short: client ${v} has ${holders.length} surviving share holders, below t=${t}`);
      const dropped = this.#graph.neighbours(v).filter((u) => this.#shared.has(u) && !survivors.has(u));
      requests.set(v, { survivors: holders, dropped });
    }
    for (const d of this.#dropped['masked-input']) {
      const live = this.#graph.neighbours(d).filter((v) => survivors.has(v)).length;
      if (live > 0 && live < t) throw new StageShortfall(`stage "masked-input" fell short: dropped client ${d} has ${live} surviving neighbours to recover its key, below t=${t}`);
    }
    if (alive.length === 0) throw new StageShortfall('stage "masked-input" fell short: no masked input arrived');
    for (const [v, r] of requests) this.#requests.set(v, r);
    const messages = alive.map((v): UnmaskRequestMessage => ({ type: 'unmask-request', roundId: this.config.roundId, to: v, ...requests.get(v)! }));
    this.#stage = 'unmask';
    return { status: 'continue', stage: this.#stage, messages };
  }

  /** Round 4 server side: z = sum y_u - sum PRG(b_u) -+ PRG(s_{d,v}) for dropped d (Bonawitz et al. 2017, Sec. 4). */
  async #closeUnmask(): Promise<StageOutcome> {
    const responders = this.#alive('unmask');
    const survivors = this.#alive('masked-input');
    this.#recordDrops('unmask', survivors, responders);
    const { t, vectorLength } = this.config;
    // The revealed values of each secret, by holder (holders reveal only for owners they were asked about).
    for (const u of survivors) {
      const count = this.#shares.selfMask.count(u);
      if (count < t) throw new StageShortfall(`stage "unmask" fell short: ${count} self-mask shares of client ${u}, below t=${t}`);
    }
    const survivorSet = new Set(survivors);
    const droppedWithSurvivors = this.#dropped['masked-input'].filter((d) => this.#graph.neighbours(d).some((v) => survivorSet.has(v)));
    for (const d of droppedWithSurvivors) {
      const count = this.#shares.key.count(d);
      if (count < t) throw new StageShortfall(`stage "unmask" fell short: ${count} key shares of dropped client ${d}, below t=${t}`);
    }

    // Lagrange coefficients once per holder set, not per secret: owners in circle order, each using
    // t of its holders chosen so that consecutive owners share them (HolderSetChooser).
    const chooser = new HolderSetChooser(this.#graph, t);
    const reconstructOwn = (owner: number, kind: keyof Revealed, what: string): Uint8Array =>
      reconstruct(() => chooser.reconstruct(owner, this.#shares[kind]), what);

    // A dropped client's pairwise seeds need its key rebuilt, k X25519 agreements and k KDF calls.
    // Each dropped client's masks are pushed to the applier as soon as its seeds exist, so this
    // work overlaps the keystreams in flight. An async (WebCrypto) key path is kept two dropped
    // clients ahead, not all at once, which would queue its jobs behind thousands of AES chunks.
    const prg = prgByName(this.config.prg);
    // The survivors' masked inputs were summed as they arrived; the masks are removed from that sum.
    const sum = this.#maskedSum?.take() ?? new Uint32Array(vectorLength);
    this.#maskedSum = null;
    const dropped = chooser.inCircleOrder(droppedWithSurvivors);
    // Each dropped client's surviving neighbours: one pairwise mask each to undo.
    const liveNeighbours = new Map(dropped.map((d) => [d, this.#graph.neighbours(d).filter((v) => survivorSet.has(v))]));
    const expectedJobs = survivors.length + dropped.reduce((count, d) => count + liveNeighbours.get(d)!.length, 0);
    const applier: MaskSink = this.#maskSink?.(prg.name, sum, expectedJobs) ?? new MaskApplier(prg, sum, applierDepth(vectorLength));
    const pairwise: (MaskJob[] | Promise<MaskJob[]>)[] = [];
    const selfJobs: MaskJob[] = [];
    const prepare = (i: number) => {
      const d = dropped[i];
      if (d === undefined || pairwise.length > i) return;
      const jobs = this.#droppedPairwiseJobs(d, reconstructOwn(d, 'key', `mask key of client ${d}`), liveNeighbours.get(d)!);
      if (jobs instanceof Promise) jobs.catch(() => undefined); // awaited below; a rejection must not surface as unhandled meanwhile
      pairwise.push(jobs);
    };
    const slice = new TimeSlice(UNMASK_SLICE_MS);
    try {
      prepare(0);
      prepare(1);
      // Self-mask seeds in batches, each pushed (and its keystreams started) before the next batch is
      // rebuilt: at P = 10^4 one BigInt reconstruction costs about as much as one AES expansion.
      const owners = chooser.inCircleOrder(survivors);
      for (let i = 0; i < owners.length; i += SELF_MASK_BATCH) {
        const batch = owners.slice(i, i + SELF_MASK_BATCH).map((u): MaskJob => ({ seed: reconstructOwn(u, 'selfMask', `self-mask seed of client ${u}`), sign: -1 }));
        selfJobs.push(...batch);
        applier.push(batch);
        await slice.yield();
      }
      for (let i = 0; i < dropped.length; i++) {
        prepare(i + 1);
        prepare(i + 2);
        applier.push(await pairwise[i]!);
        await slice.yield();
      }
      await applier.drain();
    } finally {
      await applier.drain().catch(() => undefined);
      for (const job of selfJobs) wipe(job.seed);
      for (const result of await Promise.allSettled(pairwise)) if (result.status === 'fulfilled') for (const job of result.value) wipe(job.seed);
    }
    this.#stage = 'done';
    return { status: 'done', sum, survivors };
  }

  /** The masks to undo for dropped client d with its surviving neighbours `live`: -PRG(s_{v,d}) where v < d added it, +PRG(s_{v,d}) otherwise. */
  #droppedPairwiseJobs(d: number, secretKey: Uint8Array, live: readonly number[]): MaskJob[] | Promise<MaskJob[]> {
    const toJobs = ({ publicKey, seeds }: MaskKeySeeds): MaskJob[] => {
      if (!constantTimeEqual(publicKey, this.#advertised.get(d)!.maskPublicKey)) {
        wipe(...seeds);
        refuse('RECONSTRUCTION_FAILED', `stage "unmask": reconstructed mask key of client ${d} does not match its advertised public key`);
      }
      return live.map((v, j): MaskJob => ({ seed: seeds[j]!, sign: v < d ? -1 : 1 }));
    };
    let derived: MaskKeySeeds | Promise<MaskKeySeeds>;
    try {
      derived = this.#maskKeyCrypto.pairwiseSeeds(secretKey, live.map((v) => this.#advertised.get(v)!.maskPublicKey), this.config.roundId, d, live);
    } catch (err) {
      wipe(secretKey);
      throw err;
    }
    if (derived instanceof Promise) return derived.finally(() => wipe(secretKey)).then(toJobs);
    wipe(secretKey);
    return toJobs(derived);
  }

  #abortWith(stage: ProtocolStage, code: ProtocolErrorCode, reason: string): StageOutcome {
    const notify = stage === 'advertise-keys' ? this.#alive('advertise-keys') : this.#alive(PROTOCOL_STAGES[PROTOCOL_STAGES.indexOf(stage) - 1]!);
    this.#abort = { stage, code, reason };
    this.#stage = 'aborted';
    const messages = notify.map((to): AbortMessage => ({ type: 'abort', roundId: this.config.roundId, to, stage, code, reason }));
    return { status: 'aborted', stage, code, reason, messages };
  }
}

/** Self-mask seeds rebuilt between two yields to the event loop at unmask. */
const SELF_MASK_BATCH = 32;

/** In-flight keystream bytes at unmask up to ~32 MiB: enough queued AES work to cover a dropped client's key work. */
function applierDepth(vectorLength: number): number {
  const groupBytes = 4 * 4 * Math.min(vectorLength, 2 ** 17);
  return Math.max(2, Math.min(MAX_DEPTH, Math.floor(2 ** 25 / Math.max(1, groupBytes))));
}

/**
 * Main-thread work at unmask between two yields to the event loop: long enough that the yields cost
 * little (each is a macrotask turn, ~0.1-0.4 ms under load here, as much as a dozen 10^4-word
 * keystreams), short enough that the coordinator's sockets and WebCrypto completions are served.
 */
const UNMASK_SLICE_MS = 4;

/** Yields to the event loop (timers, I/O, WebCrypto completions: a macrotask) once `ms` have passed since the last yield. */
class TimeSlice {
  readonly #ms: number;
  #since = performance.now();

  constructor(ms: number) {
    this.#ms = ms;
  }

  async yield(): Promise<void> {
    if (performance.now() - this.#since < this.#ms) return;
    const immediate = (globalThis as { setImmediate?: (callback: () => void) => unknown }).setImmediate;
    await new Promise<void>((resolve) => (immediate ? immediate(resolve) : setTimeout(resolve, 0)));
    this.#since = performance.now();
  }
}

function reconstruct(run: () => Uint8Array, what: string): Uint8Array {
  try {
    return run();
  } catch (err) {
    throw new ProtocolError('RECONSTRUCTION_FAILED', `stage "unmask": ${what} could not be reconstructed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

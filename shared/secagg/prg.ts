/**
 * Mask PRGs over Z_2^32 (Bonawitz et al. 2017, Sec. 3.2 "PRG(b_u)", "PRG(s_u,v)"): a 32-byte seed
 * expands to P uniform 32-bit words. Two cryptographic instantiations, both keyed with the full
 * 32-byte seed (never shortened): AES-256-CTR through WebCrypto and XSalsa20. Each seed is used for
 * exactly one expansion per round (seeds are fresh per round), so a fixed zero counter / nonce is safe.
 * Masks are applied in place (`applyMask`, `MaskApplier`, `applyMasks`): the server and clients add or
 * subtract PRG(seed) into one accumulator instead of materialising and then adding each mask. Default: the
 * faster one in Node and Chromium (`scripts/bench/secagg-prg.ts`, docs/secagg.md).
 */
import { expectBytes, expectInteger, LITTLE_ENDIAN_HOST, wipe } from './bytes.ts';
import { xsalsa20AddInto, xsalsa20Words } from './xsalsa20.ts';

export const PRG_NAMES = ['aes-ctr', 'xsalsa20'] as const;
export type PrgName = (typeof PRG_NAMES)[number];

export interface MaskPrg {
  readonly name: PrgName;
  /** `length` uniform words in Z_2^32 from a 32-byte seed. */
  expand(seed: Uint8Array, length: number): Promise<Uint32Array>;
  /** target += sign * PRG(seed) (mod 2^32), in place, with `target.length` words of mask. */
  applyMask(seed: Uint8Array, target: Uint32Array, sign: MaskSign): Promise<void>;
}

/** +1 adds the mask, -1 subtracts it (mod 2^32). */
export type MaskSign = 1 | -1;

export const SEED_BYTES = 32;
const MAX_WORDS = 2 ** 28;
const XSALSA20_ZERO_NONCE = new Uint8Array(24);

function checkExpand(seed: Uint8Array, length: number): void {
  expectBytes('seed', seed, SEED_BYTES);
  expectInteger('length', length, 0, MAX_WORDS);
}

function checkSign(sign: unknown): MaskSign {
  if (sign !== 1 && sign !== -1) throw new RangeError(`"sign" expected 1 or -1, got ${String(sign)}`);
  return sign;
}

function checkTarget(target: unknown): Uint32Array {
  if (!(target instanceof Uint32Array)) throw new TypeError('"target" expected a Uint32Array');
  expectInteger('target.length', target.length, 0, MAX_WORDS);
  return target;
}

/** target += sign * mask (mod 2^32) over Int32Array views: `| 0` keeps V8 on its int32 fast path. */
export function addMaskInto(target: Uint32Array, mask: Uint32Array, sign: MaskSign): void {
  if (mask.length !== target.length) throw new RangeError(`"mask" expected ${target.length} words, got ${mask.length}`);
  const t = new Int32Array(target.buffer, target.byteOffset, target.length);
  const m = new Int32Array(mask.buffer, mask.byteOffset, mask.length);
  const n = t.length;
  if (sign === 1) for (let i = 0; i < n; i++) t[i] = (t[i]! + m[i]!) | 0;
  else for (let i = 0; i < n; i++) t[i] = (t[i]! - m[i]!) | 0;
}

export const xsalsa20Prg: MaskPrg = {
  name: 'xsalsa20',
  async expand(seed, length) {
    checkExpand(seed, length);
    return xsalsa20Words(seed, XSALSA20_ZERO_NONCE, length);
  },
  async applyMask(seed, target, sign) {
    checkExpand(seed, checkTarget(target).length);
    xsalsa20AddInto(seed, XSALSA20_ZERO_NONCE, target, checkSign(sign));
  },
};

/** AES-CTR keystream XOR `data` with a 128-bit big-endian counter (NIST SP 800-38A Sec. 6.5), via WebCrypto. */
export async function aesCtrEncrypt(key: Uint8Array, counterBlock: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  expectBytes('key', key);
  if (key.length !== 16 && key.length !== 32) throw new RangeError(`"key" expected 16 or 32 bytes, got ${key.length}`);
  expectBytes('counterBlock', counterBlock, 16);
  const cryptoKey = await crypto.subtle.importKey('raw', new Uint8Array(key), { name: 'AES-CTR' }, false, ['encrypt']);
  const out = await crypto.subtle.encrypt(
    { name: 'AES-CTR', counter: new Uint8Array(counterBlock), length: 128 },
    cryptoKey,
    new Uint8Array(data),
  );
  return new Uint8Array(out);
}

/**
 * One all-zero plaintext shared by every AES-CTR expansion (WebCrypto copies its input and never
 * writes it), grown on demand: encrypting zeros yields the keystream without allocating a new
 * plaintext per mask.
 */
let zeroPlaintext = new Uint8Array(0);

function zeros(byteLength: number): Uint8Array<ArrayBuffer> {
  if (zeroPlaintext.length < byteLength) zeroPlaintext = new Uint8Array(byteLength);
  return zeroPlaintext.subarray(0, byteLength);
}

async function aesCtrKeystreamWords(seed: Uint8Array, length: number): Promise<Uint32Array> {
  const cryptoKey = await crypto.subtle.importKey('raw', new Uint8Array(seed), { name: 'AES-CTR' }, false, ['encrypt']);
  return littleEndianWords(await crypto.subtle.encrypt({ name: 'AES-CTR', counter: new Uint8Array(16), length: 128 }, cryptoKey, zeros(length * 4)));
}

export const aesCtrPrg: MaskPrg = {
  name: 'aes-ctr',
  async expand(seed, length) {
    checkExpand(seed, length);
    return aesCtrKeystreamWords(seed, length);
  },
  async applyMask(seed, target, sign) {
    checkExpand(seed, checkTarget(target).length);
    checkSign(sign);
    const mask = await aesCtrKeystreamWords(seed, target.length);
    addMaskInto(target, mask, sign);
    mask.fill(0);
  },
};

export interface MaskJob {
  readonly seed: Uint8Array;
  readonly sign: MaskSign;
}

/** Checks one mask job for a target of `length` words (a 32-byte seed, sign +1 or -1). */
export function checkMaskJob(job: MaskJob, length: number): void {
  checkExpand(job.seed, length);
  checkSign(job.sign);
}

/**
 * Where an unmask adds its masks: target += sum of sign_j * PRG(seed_j) for the jobs pushed, each
 * seed wiped once used (or once handed over); `drain` resolves when all are in the target and
 * rejects with the first failure. `MaskApplier` is the isomorphic one.
 */
export interface MaskSink {
  push(jobs: readonly MaskJob[]): void;
  drain(): Promise<void>;
}

/**
 * Makes the sink for one unmask into `target` with `prg` (`expectedJobs`: how many masks it will be
 * pushed, when known), or returns undefined to use `MaskApplier`:
 * a Node coordinator injects OpenSSL AES-CTR on worker threads (server/rounds/secagg-native-masks.ts).
 */
export type MaskSinkFactory = (prg: PrgName, target: Uint32Array, expectedJobs?: number) => MaskSink | undefined;

/** AES-CTR keystream chunk: 2^17 words (512 KiB), small enough to be added while still in cache. */
const AES_CHUNK_WORDS = 2 ** 17;

function aesCtrCounter(wordOffset: number): Uint8Array<ArrayBuffer> {
  // 16-byte blocks of 4 words: chunk offsets are multiples of 4 words, and 2^28 words fit the low 32 bits.
  const counter = new Uint8Array(16);
  new DataView(counter.buffer).setUint32(12, wordOffset / 4);
  return counter;
}

/** Up to 4 masks of one sign added in one pass: a quarter of the passes over the accumulator. */
const MASKS_PER_PASS = 4;

/** target[i] += sign * (sum of masks[m][i]) (mod 2^32), for 1 to 4 masks of target's length. */
export function addMasksInto(target: Uint32Array, masks: readonly Uint32Array[], sign: MaskSign): void {
  if (masks.length === 0) return;
  if (masks.length > MASKS_PER_PASS) throw new RangeError(`"masks" expected 1 to ${MASKS_PER_PASS} masks, got ${masks.length}`);
  for (const mask of masks) if (mask.length !== target.length) throw new RangeError(`"mask" expected ${target.length} words, got ${mask.length}`);
  if (masks.length === 1) return addMaskInto(target, masks[0]!, sign);
  const view = (v: Uint32Array) => new Int32Array(v.buffer, v.byteOffset, v.length);
  const t = view(target);
  const [a, b, c, d] = [view(masks[0]!), view(masks[1]!), view(masks[2] ?? masks[0]!), view(masks[3] ?? masks[0]!)];
  const n = t.length;
  // Sums of at most 5 int32 values stay exact in doubles; `| 0` reduces them mod 2^32.
  if (masks.length === 2) {
    if (sign === 1) for (let i = 0; i < n; i++) t[i] = (t[i]! + a[i]! + b[i]!) | 0;
    else for (let i = 0; i < n; i++) t[i] = (t[i]! - a[i]! - b[i]!) | 0;
  } else if (masks.length === 3) {
    if (sign === 1) for (let i = 0; i < n; i++) t[i] = (t[i]! + a[i]! + b[i]! + c[i]!) | 0;
    else for (let i = 0; i < n; i++) t[i] = (t[i]! - a[i]! - b[i]! - c[i]!) | 0;
  } else if (sign === 1) {
    for (let i = 0; i < n; i++) t[i] = (t[i]! + a[i]! + b[i]! + c[i]! + d[i]!) | 0;
  } else {
    for (let i = 0; i < n; i++) t[i] = (t[i]! - a[i]! - b[i]! - c[i]! - d[i]!) | 0;
  }
}

/** Groups of chunks in flight at most (each group is up to 4 keystream chunks of up to 512 KiB). */
export const MAX_DEPTH = 1024;

interface MaskGroup {
  readonly jobs: readonly MaskJob[];
  readonly sign: MaskSign;
  keys: Promise<CryptoKey>[] | undefined;
  nextChunk: number;
  unfinished: number;
}

/**
 * target += sum of sign_j * PRG(seed_j) for jobs pushed over time, wiping each seed after use; the
 * server pushes each dropped client's pairwise jobs as soon as they are derived, so its key work on
 * this thread overlaps the keystreams. AES-CTR: jobs are grouped by sign, up to 4 per group (the sum
 * does not depend on the order); each group's keystreams are produced chunk by chunk at the matching
 * counter (the same words as `expand`, each key imported once), up to `depth` groups of chunks in
 * flight in WebCrypto (off the main thread in Node and Chromium), each added in one pass as soon as it
 * arrives, whatever the order. XSalsa20 runs on this thread, fused, mask by mask. The caller must let
 * the event loop run (await) for arrivals to be added; `drain` waits for all of them.
 */
export class MaskApplier implements MaskSink {
  readonly #prg: MaskPrg;
  readonly #target: Uint32Array;
  readonly #depth: number;
  readonly #chunksPerGroup: number;
  readonly #queue: MaskGroup[] = [];
  readonly #pushed: MaskJob[] = [];
  readonly #waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  #inFlight = 0;
  #error: unknown;
  #failed = false;
  #serial: Promise<void> = Promise.resolve();

  constructor(prg: MaskPrg, target: Uint32Array, depth = 2) {
    this.#prg = prg;
    this.#target = checkTarget(target);
    this.#depth = expectInteger('depth', depth, 1, MAX_DEPTH);
    this.#chunksPerGroup = Math.max(1, Math.ceil(target.length / AES_CHUNK_WORDS));
  }

  /** Queues jobs (checked first: a bad one throws and queues none) and starts what the depth allows. */
  push(jobs: readonly MaskJob[]): void {
    for (const job of jobs) checkMaskJob(job, this.#target.length);
    this.#pushed.push(...jobs);
    if (this.#prg.name !== 'aes-ctr') {
      const prg = this.#prg;
      const target = this.#target;
      for (const job of jobs) {
        this.#serial = this.#serial.then(async () => {
          if (!this.#failed) await prg.applyMask(job.seed, target, job.sign);
        }).catch((err: unknown) => this.#fail(err)).finally(() => wipe(job.seed));
      }
      return;
    }
    for (const sign of [1, -1] as const) {
      const same = jobs.filter((job) => job.sign === sign);
      for (let g = 0; g < same.length; g += MASKS_PER_PASS) {
        this.#queue.push({ jobs: same.slice(g, g + MASKS_PER_PASS), sign, keys: undefined, nextChunk: 0, unfinished: this.#chunksPerGroup });
      }
    }
    this.#launch();
  }

  /** Resolves once every pushed job is applied (rejects with the first failure); all seeds are wiped either way. */
  async drain(): Promise<void> {
    try {
      await this.#serial;
      if (this.#inFlight > 0 || (this.#queue.length > 0 && !this.#failed)) {
        await new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
      }
      if (this.#failed) throw this.#error;
    } finally {
      for (const job of this.#pushed) wipe(job.seed);
      this.#pushed.length = 0;
    }
  }

  #fail(err: unknown): void {
    if (!this.#failed) {
      this.#failed = true;
      this.#error = err;
    }
  }

  #launch(): void {
    while (!this.#failed && this.#inFlight < this.#depth && this.#queue.length > 0) {
      const group = this.#queue[0]!;
      const chunk = group.nextChunk++;
      if (group.nextChunk === this.#chunksPerGroup) this.#queue.shift();
      this.#launchChunk(group, chunk);
    }
    if (this.#inFlight === 0 && (this.#queue.length === 0 || this.#failed)) {
      for (const waiter of this.#waiters.splice(0)) {
        if (this.#failed) waiter.reject(this.#error);
        else waiter.resolve();
      }
    }
  }

  #launchChunk(group: MaskGroup, chunk: number): void {
    const offset = chunk * AES_CHUNK_WORDS;
    const words = Math.min(AES_CHUNK_WORDS, this.#target.length - offset);
    group.keys ??= group.jobs.map((job) => crypto.subtle.importKey('raw', new Uint8Array(job.seed), { name: 'AES-CTR' }, false, ['encrypt']));
    this.#inFlight++;
    Promise.all(group.keys.map(async (key) =>
      crypto.subtle.encrypt({ name: 'AES-CTR', counter: aesCtrCounter(offset), length: 128 }, await key, zeros(4 * words))))
      .then((buffers) => {
        const masks = buffers.map(littleEndianWords);
        if (!this.#failed) addMasksInto(this.#target.subarray(offset, offset + words), masks, group.sign);
        for (const mask of masks) mask.fill(0);
      })
      .catch((err: unknown) => this.#fail(err))
      .finally(() => {
        this.#inFlight--;
        if (--group.unfinished === 0) for (const job of group.jobs) wipe(job.seed);
        this.#launch();
      });
  }
}

/** target += sum of sign_j * PRG(seed_j), wiping each seed after use (a `MaskApplier` given all jobs at once). */
export async function applyMasks(prg: MaskPrg, target: Uint32Array, jobs: readonly MaskJob[], depth = 2): Promise<void> {
  const applier = new MaskApplier(prg, target, depth);
  try {
    applier.push(jobs);
  } catch (err) {
    for (const job of jobs) if (job.seed instanceof Uint8Array) wipe(job.seed);
    throw err;
  }
  await applier.drain();
}

function littleEndianWords(buffer: ArrayBuffer): Uint32Array {
  const length = buffer.byteLength / 4;
  if (LITTLE_ENDIAN_HOST) return new Uint32Array(buffer, 0, length);
  const words = new Uint32Array(length);
  const view = new DataView(buffer);
  for (let i = 0; i < length; i++) words[i] = view.getUint32(4 * i, true);
  new Uint8Array(buffer).fill(0);
  return words;
}

/** AES-CTR is the faster in Node and in Chromium for P >= 10^5 (docs/secagg.md, "Masks"). */
export const DEFAULT_PRG: PrgName = 'aes-ctr';

export function prgByName(name: PrgName): MaskPrg {
  if (name === 'aes-ctr') return aesCtrPrg;
  if (name === 'xsalsa20') return xsalsa20Prg;
  throw new RangeError(`"prg" expected one of ${PRG_NAMES.join(', ')}, got ${String(name)}`);
}

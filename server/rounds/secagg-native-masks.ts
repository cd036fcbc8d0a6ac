/**
 * The coordinator's native mask removal for the SecAgg+ unmask stage (Bonawitz et al. 2017, Sec. 4,
 * Round 4: z = sum y_u - sum PRG(b_u) + sum PRG(s_{u,v}) over the dropped clients' pairs): the AES-256-CTR
 * keystreams (NIST SP 800-38A, Sec. 6.5; the same words as `aesCtrPrg` in shared/secagg/prg.ts, a
 * 128-bit big-endian counter from zero, read little-endian) are made by OpenSSL and added with
 * WebAssembly SIMD (shared/secagg/wasm-add.ts) on worker threads, one partial sum per worker, which the
 * main thread adds into the target when drained. The main thread meanwhile rebuilds seeds (Shamir,
 * X25519 requests): the two overlap, and the keystreams use up to one core per worker
 * (docs/secagg.md, "Masks" and "Native keystreams and SIMD adds on the coordinator").
 *
 * Secrets: each seed is copied into a buffer transferred to its worker (the caller's copy is wiped at
 * once) and zeroed there once its keystream is made; each keystream chunk is zeroed after it is added,
 * the adder's chunk copy after each batch of jobs, and partial sums when drained. Only AES-CTR on a little-endian host with WebAssembly SIMD is handled here; anything
 * else gets the isomorphic applier (the factory returns undefined).
 *
 * Unmasks of at most `inlineMaskBytes` of keystream run on the main thread instead (a worker's wake-up
 * costs more than their AES). The coordinator starts the workers when a round is created and has each
 * warm its memory (`MaskWorkerPool.start`); they recycle their keystream buffers as they go (a minor GC
 * every RECYCLE_BYTES), because on a fresh page every 40 KB keystream cost about ten page faults, several
 * times the AES itself (docs/secagg.md, "Mask workers: warm memory, and small unmasks inline").
 */
import { createCipheriv } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { LITTLE_ENDIAN_HOST, wipe } from '../../shared/secagg/bytes.ts';
import { addIntoSum, instantiateWasmAdder, wasmAdderBytes, type WasmAdder } from '../../shared/secagg/wasm-add.ts';
import { checkMaskJob, type MaskJob, type MaskSink, type MaskSinkFactory, type PrgName } from '../../shared/secagg/prg.ts';

/** Keystream words per `cipher.update` (128 KiB): added while still in cache. The raw-PRG benchmark makes its keystream in the same chunks. */
export const NATIVE_CHUNK_WORDS = 2 ** 15;

/** Keystream bytes a mask worker makes between two minor GCs (see the worker's comment). */
const RECYCLE_BYTES = 8 * 2 ** 20;

/** What a keystream needs besides its seed: node:crypto's createCipheriv and zero input of one chunk. */
interface KeystreamTools {
  readonly createCipheriv: typeof createCipheriv;
  readonly zeroCounter: Uint8Array;
  readonly zeros: Uint8Array;
  readonly chunkWords: number;
}

/** A partial sum of `length` words (padded to whole lanes) at byte 0 of a SIMD adder's memory, then one keystream chunk at `chunkAt`. */
interface PartialSum extends WasmAdder {
  readonly length: number;
  readonly chunkAt: number;
}

/**
 * sum += sign * AES-256-CTR(seed) chunk by chunk (each chunk zeroed once added); returns the keystream
 * bytes made. Written once, run in two places: in the mask workers (as source text: it may use only
 * its arguments) and on the main thread for unmasks too small to be worth a worker's wake-up.
 */
function addKeystream(tools: KeystreamTools, sum: PartialSum, seed: Uint8Array, sign: number): number {
  const cipher = tools.createCipheriv('aes-256-ctr', seed, tools.zeroCounter);
  const memory = new Uint8Array(sum.memory.buffer);
  const apply = sign === 1 ? sum.add : sum.sub;
  for (let offset = 0; offset < sum.length; offset += tools.chunkWords) {
    const words = Math.min(tools.chunkWords, sum.length - offset);
    const stream = cipher.update(tools.zeros.subarray(0, 4 * words));
    memory.set(stream, sum.chunkAt);
    stream.fill(0);
    // Lanes past the last word fall in the sum's padding, which is never read.
    apply(4 * offset, sum.chunkAt, 16 * Math.ceil(words / 4));
  }
  return 4 * sum.length;
}

/** `adder`'s memory grown to hold a partial sum of `length` words and one chunk of `chunkWords`. */
function openPartialSum(adder: WasmAdder, length: number, chunkWords: number): PartialSum {
  const chunkAt = 16 * Math.ceil(length / 4);
  const bytes = chunkAt + 4 * chunkWords;
  const have = adder.memory.buffer.byteLength;
  if (have < bytes) adder.memory.grow(Math.ceil((bytes - have) / 65536));
  return { memory: adder.memory, add: adder.add, sub: adder.sub, length, chunkAt };
}

/**
 * The worker, as plain CommonJS (eval'd, so it runs the same under tsx, vitest and a bundle). Messages
 * are handled in order: `jobs` (seeds, 32 bytes each, and signs for one sink's target length) adds
 * into that sink's partial sum; `end` answers with the partial sum (or the first error) and forgets it;
 * `warm` makes and drops keystream so that later ones find warm memory.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createCipheriv } = require('node:crypto');
const CHUNK_WORDS = ${NATIVE_CHUNK_WORDS};
const tools = { createCipheriv, zeroCounter: Buffer.alloc(16), zeros: Buffer.alloc(4 * CHUNK_WORDS), chunkWords: CHUNK_WORDS };
const adder = new WebAssembly.Module(workerData.wasm);
${addKeystream.toString()}
${openPartialSum.toString()}
// Each cipher.update returns a fresh buffer, freed only when V8 collects it: by default after 64 MiB
// of them, so until then every keystream lands on never-touched pages (about 10 page faults per
// 40 KB here, which cost several times the AES). A minor GC every RECYCLE_BYTES hands the dead
// chunks back to malloc, and later keystreams reuse warm memory (docs/secagg.md, "Mask workers").
const RECYCLE_BYTES = ${RECYCLE_BYTES};
let collect;
try {
  require('node:v8').setFlagsFromString('--expose-gc');
  const gc = require('node:vm').runInNewContext('gc');
  collect = () => gc({ type: 'minor' });
} catch {
  collect = () => {};
}
let sinceCollect = 0;
const sums = new Map();
const idle = [];
function open(length) {
  return { ...openPartialSum(idle.pop() ?? new WebAssembly.Instance(adder).exports, length, CHUNK_WORDS), error: undefined };
}
function close(entry) {
  if (entry.memory === undefined) return;
  new Uint8Array(entry.memory.buffer, 0, entry.chunkAt + 4 * CHUNK_WORDS).fill(0);
  if (idle.length < 2) idle.push({ memory: entry.memory, add: entry.add, sub: entry.sub });
}
function add(entry, seed, sign) {
  sinceCollect += addKeystream(tools, entry, seed, sign);
  if (sinceCollect >= RECYCLE_BYTES) {
    sinceCollect = 0;
    collect();
  }
}
/**
 * Makes and drops keystream, then collects, so that later keystreams reuse those pages. First one
 * 16 MiB buffer, freed at once: glibc raises its mmap and trim thresholds to the size of a freed
 * mmapped chunk (mallopt(3), M_MMAP_THRESHOLD), so the pages freed later stay with the process
 * instead of going back to the kernel after every collection.
 */
function warm() {
  Buffer.allocUnsafeSlow(16 * 2 ** 20).fill(1);
  collect();
  const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32), tools.zeroCounter);
  for (let made = 0; made < RECYCLE_BYTES; made += tools.zeros.length) cipher.update(tools.zeros).fill(0);
  sinceCollect = 0;
  collect();
}
parentPort.on('message', (m) => {
  if (m.type === 'warm') {
    warm();
    parentPort.postMessage({ id: m.id, sum: null });
  } else if (m.type === 'jobs') {
    const seeds = new Uint8Array(m.seeds);
    try {
      let entry = sums.get(m.id);
      if (entry === undefined) {
        entry = open(m.length);
        sums.set(m.id, entry);
      }
      try {
        if (entry.error === undefined) for (let j = 0; j < m.signs.length; j++) add(entry, seeds.subarray(32 * j, 32 * j + 32), m.signs[j]);
      } catch (err) {
        entry.error = String((err && err.message) || err);
      } finally {
        new Uint8Array(entry.memory.buffer, entry.chunkAt, 4 * CHUNK_WORDS).fill(0);
      }
    } catch (err) {
      sums.set(m.id, { error: String((err && err.message) || err) });
    } finally {
      seeds.fill(0);
    }
  } else if (m.type === 'end') {
    const entry = sums.get(m.id);
    sums.delete(m.id);
    if (entry === undefined) {
      parentPort.postMessage({ id: m.id, sum: null });
      return;
    }
    if (entry.error !== undefined) parentPort.postMessage({ id: m.id, error: entry.error });
    else {
      const sum = new Uint8Array(entry.memory.buffer, 0, 4 * entry.length).slice();
      parentPort.postMessage({ id: m.id, sum: sum.buffer }, [sum.buffer]);
    }
    close(entry);
  }
});
`;

interface WorkerAnswer {
  readonly id: number;
  readonly sum?: ArrayBuffer | null;
  readonly error?: string;
}

interface PendingEnd {
  readonly resolve: (sum: Uint32Array | null) => void;
  readonly reject: (err: unknown) => void;
}

/** Jobs per message at most: each message costs tens of microseconds, one 10^4-word keystream about as much. */
const JOBS_PER_MESSAGE = 16;

/**
 * Lazily started workers, referenced only while a sink is open (they never keep the process alive).
 * Each slot counts its workers (generations): a worker that exits or fails takes the jobs it held with
 * it, so a sink that sent jobs to an earlier generation of a slot fails its drain instead of
 * reporting a sum without them.
 */
export class MaskWorkerPool {
  readonly size: number;
  readonly #workers: (Worker | undefined)[];
  readonly #generations: number[];
  /** Per slot, the generation last warmed (-1: none). */
  readonly #warmed: number[];
  readonly #pending: Map<number, PendingEnd>[];
  #open = 0;
  #nextId = 0;

  constructor(size: number) {
    this.size = size;
    this.#workers = Array.from({ length: size }, () => undefined);
    this.#generations = Array.from({ length: size }, () => 0);
    this.#warmed = Array.from({ length: size }, () => -1);
    this.#pending = Array.from({ length: size }, () => new Map());
  }

  newId(): number {
    return this.#nextId++;
  }

  opened(): void {
    if (this.#open++ === 0) for (const worker of this.#workers) worker?.ref();
  }

  closed(): void {
    if (--this.#open === 0) for (const worker of this.#workers) worker?.unref();
  }

  /**
   * Starts every worker and has each make and drop one recycling window of keystream, so that the
   * first unmask after it neither waits for threads to start nor pays for fresh pages (the coordinator
   * calls this when a SecAgg+ round begins; it resolves once all are ready, with how many it warmed:
   * a worker already warm is left alone).
   */
  async start(): Promise<number> {
    this.opened();
    try {
      const warmed = await Promise.all(this.#workers.map(async (worker, w) => {
        const generation = this.#generations[w]!;
        if (worker !== undefined && this.#warmed[w] === generation) return 0;
        await this.#ask(w, 'warm', this.newId());
        this.#warmed[w] = generation;
        return 1;
      }));
      return warmed.reduce((a: number, b) => a + b, 0);
    } finally {
      this.closed();
    }
  }

  /** Hands seeds (a buffer the worker then owns) and signs for sink `id` to worker `w`; returns that worker's generation. */
  jobs(w: number, id: number, length: number, seeds: Uint8Array<ArrayBuffer>, signs: readonly number[]): number {
    try {
      this.#start(w).postMessage({ type: 'jobs', id, length, seeds: seeds.buffer, signs }, [seeds.buffer]);
      return this.#generations[w]!;
    } finally {
      if (seeds.byteLength > 0) wipe(seeds);
    }
  }

  /** Worker `w`'s partial sum for sink `id` (null when it got no jobs), after every job sent before; rejects if that worker is gone. */
  end(w: number, id: number, generation: number): Promise<Uint32Array | null> {
    if (this.#generations[w] !== generation || this.#workers[w] === undefined) {
      return Promise.reject(new Error(`AES-CTR mask worker ${w} exited after taking jobs of this unmask; they are lost`));
    }
    return this.#ask(w, 'end', id);
  }

  #ask(w: number, type: 'end' | 'warm', id: number): Promise<Uint32Array | null> {
    const worker = this.#start(w);
    return new Promise((resolve, reject) => {
      this.#pending[w]!.set(id, { resolve, reject });
      worker.postMessage({ type, id });
    });
  }

  /** Stops every worker (what they held is lost; open sinks fail their drain). Later use starts new ones. */
  async terminate(): Promise<void> {
    const running = this.#workers.map((worker, w) => (worker === undefined ? undefined : this.#retire(w, worker, new Error('AES-CTR mask worker terminated'))));
    await Promise.all(running.map((worker) => worker?.terminate()));
  }

  /** Takes `worker` out of slot `w` once (a later generation starts on next use) and fails what waits on it. */
  #retire(w: number, worker: Worker, err: unknown): Worker | undefined {
    if (this.#workers[w] !== worker) return undefined;
    this.#workers[w] = undefined;
    this.#generations[w]!++;
    for (const pending of this.#pending[w]!.values()) pending.reject(err instanceof Error ? err : new Error(`AES-CTR mask worker exited: ${String(err)}`));
    this.#pending[w]!.clear();
    return worker;
  }

  #start(w: number): Worker {
    const running = this.#workers[w];
    if (running !== undefined) return running;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { wasm: ADDER_BYTES } });
    if (this.#open === 0) worker.unref();
    worker.on('message', (answer: WorkerAnswer) => {
      const pending = this.#pending[w]!.get(answer.id);
      if (pending === undefined) return;
      this.#pending[w]!.delete(answer.id);
      if (answer.error !== undefined) pending.reject(new Error(`AES-CTR mask worker: ${answer.error}`));
      else pending.resolve(answer.sum ? new Uint32Array(answer.sum) : null);
    });
    worker.on('error', (err) => this.#retire(w, worker, err));
    worker.on('exit', (code) => this.#retire(w, worker, new Error(`AES-CTR mask worker exited with code ${code}`)));
    this.#workers[w] = worker;
    return worker;
  }
}

/** target += sum of sign_j * AES-CTR(seed_j), spread over the pool's workers in pushed order. */
class NativeMaskSink implements MaskSink {
  readonly #pool: MaskWorkerPool;
  readonly #target: Uint32Array;
  readonly #id: number;
  #next = 0;
  /** Worker slot -> the generation that took this sink's jobs. */
  readonly #used = new Map<number, number>();
  #lost = false;
  #drained: Promise<void> | undefined;

  constructor(pool: MaskWorkerPool, target: Uint32Array) {
    this.#pool = pool;
    this.#target = target;
    this.#id = pool.newId();
    pool.opened();
  }

  push(jobs: readonly MaskJob[]): void {
    if (this.#drained !== undefined) throw new Error('mask sink already drained');
    for (const job of jobs) checkMaskJob(job, this.#target.length);
    // Spread over the workers even when few jobs come at once (at most JOBS_PER_MESSAGE per message).
    const perMessage = Math.min(JOBS_PER_MESSAGE, Math.ceil(jobs.length / this.#pool.size));
    for (let start = 0; start < jobs.length; start += perMessage) {
      const batch = jobs.slice(start, start + perMessage);
      const seeds = new Uint8Array(32 * batch.length);
      batch.forEach((job, j) => {
        seeds.set(job.seed, 32 * j);
        wipe(job.seed);
      });
      const generation = this.#pool.jobs(this.#next, this.#id, this.#target.length, seeds, batch.map((job) => job.sign));
      if ((this.#used.get(this.#next) ?? generation) !== generation) this.#lost = true;
      this.#used.set(this.#next, generation);
      this.#next = (this.#next + 1) % this.#pool.size;
    }
  }

  drain(): Promise<void> {
    this.#drained ??= this.#collect();
    return this.#drained;
  }

  async #collect(): Promise<void> {
    try {
      const sums = await Promise.allSettled([...this.#used].map(([w, generation]) => this.#pool.end(w, this.#id, generation)));
      const parts = sums.flatMap((result) => (result.status === 'fulfilled' && result.value !== null ? [result.value] : []));
      try {
        for (const part of parts) addIntoSum(this.#target, part);
      } finally {
        for (const part of parts) part.fill(0);
      }
      const failed = sums.find((result) => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      if (this.#lost) throw new Error('an AES-CTR mask worker exited after taking jobs of this unmask; they are lost');
    } finally {
      this.#pool.closed();
    }
  }
}

/** Main-thread adders kept for the next inline unmask (compiling and instantiating one each time cost ~0.5 ms). */
const IDLE_MAIN_THREAD_ADDERS: WasmAdder[] = [];

const MAIN_THREAD_TOOLS: KeystreamTools = { createCipheriv, zeroCounter: new Uint8Array(16), zeros: new Uint8Array(4 * NATIVE_CHUNK_WORDS), chunkWords: NATIVE_CHUNK_WORDS };

/**
 * target += sum of sign_j * AES-CTR(seed_j), made and added on the calling thread as pushed: for
 * unmasks so small that a worker's wake-up (0.1-3 ms on this VM) costs more than all their keystreams.
 */
class InlineMaskSink implements MaskSink {
  readonly #target: Uint32Array;
  readonly #sum: PartialSum;
  #drained = false;

  constructor(target: Uint32Array, adder: WasmAdder) {
    this.#target = target;
    this.#sum = openPartialSum(adder, target.length, NATIVE_CHUNK_WORDS);
  }

  /** A main-thread adder: an idle one (zeroed by the drain that returned it), else a new instance. */
  static adder(): WasmAdder | undefined {
    return IDLE_MAIN_THREAD_ADDERS.pop() ?? instantiateWasmAdder();
  }

  push(jobs: readonly MaskJob[]): void {
    if (this.#drained) throw new Error('mask sink already drained');
    for (const job of jobs) checkMaskJob(job, this.#target.length);
    for (const job of jobs) {
      try {
        addKeystream(MAIN_THREAD_TOOLS, this.#sum, job.seed, job.sign);
      } finally {
        wipe(job.seed);
      }
    }
  }

  drain(): Promise<void> {
    if (!this.#drained) {
      this.#drained = true;
      const memory = new Uint8Array(this.#sum.memory.buffer, 0, this.#sum.chunkAt + 4 * NATIVE_CHUNK_WORDS);
      try {
        addIntoSum(this.#target, new Uint32Array(memory.buffer, 0, this.#target.length));
      } finally {
        memory.fill(0);
      }
      if (IDLE_MAIN_THREAD_ADDERS.length < 2) IDLE_MAIN_THREAD_ADDERS.push(this.#sum);
    }
    return Promise.resolve();
  }
}

/**
 * Keystream bytes of one unmask at most for it to run on the main thread, with `workers` mask workers
 * to hand it to otherwise: 8 MiB over the workers. Two workers (the 2-vCPU dev machine) keep 4 MiB
 * inline, about 1.5 ms of AES-CTR there; four (a coordinator with four cores or more) 2 MiB. Measured
 * at 4 MB of keystream (n = 100, P = 10^4, no drops; unmask over raw PRG, replay medians): on 2 vCPUs
 * 0.48-0.60 inline against 0.34 on the workers; on a 16-core Xeon with four workers 0.37-0.39 inline
 * against 0.60-0.68, and at 0.4 MB inline still ahead (0.11-0.12 against 0.08-0.09). The curve between
 * is interpolated, not measured: neither 2 MB nor a 4-core host (where the workers share the cores
 * with the main thread) nor one worker (8 MiB inline) was tried (docs/secagg.md, "Sixteen cores,
 * partial sums added in place, the inline limit per pool").
 */
export function inlineMaskBytes(workers: number): number {
  return Math.floor(2 ** 23 / Math.max(1, workers));
}

const ADDER_BYTES = wasmAdderBytes();
const SIMD = WebAssembly.validate(ADDER_BYTES);
/**
 * A mask sink factory over `pool`: OpenSSL AES-CTR on its workers, or on the calling thread when the
 * unmask's expected keystream is at most `inlineBytes`; undefined (isomorphic) for anything else.
 */
export function maskSinkOn(pool: MaskWorkerPool, inlineBytes = inlineMaskBytes(pool.size)): MaskSinkFactory {
  return (prg: PrgName, target: Uint32Array, expectedJobs?: number) => {
    if (prg !== 'aes-ctr' || !LITTLE_ENDIAN_HOST || !SIMD) return undefined;
    if (expectedJobs !== undefined && expectedJobs * 4 * target.length <= inlineBytes) {
      const adder = InlineMaskSink.adder();
      if (adder !== undefined) return new InlineMaskSink(target, adder);
    }
    return new NativeMaskSink(pool, target);
  };
}

/** The coordinator's mask workers: one pool per process, one worker per core, up to 4. */
export const nodeMaskWorkers = new MaskWorkerPool(Math.max(1, Math.min(4, availableParallelism())));

/** The coordinator's mask sink factory, over `nodeMaskWorkers`. */
export const nodeMaskSink: MaskSinkFactory = maskSinkOn(nodeMaskWorkers);

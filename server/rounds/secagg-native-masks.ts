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
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { LITTLE_ENDIAN_HOST, wipe } from '../../shared/secagg/bytes.ts';
import { wasmAdderBytes } from '../../shared/secagg/wasm-add.ts';
import { addMaskInto, checkMaskJob, type MaskJob, type MaskSink, type MaskSinkFactory, type PrgName } from '../../shared/secagg/prg.ts';

/** Keystream words per `cipher.update` (128 KiB): added while still in cache. The raw-PRG benchmark makes its keystream in the same chunks. */
export const NATIVE_CHUNK_WORDS = 2 ** 15;

/**
 * The worker, as plain CommonJS (eval'd, so it runs the same under tsx, vitest and a bundle). Messages
 * are handled in order: `jobs` (seeds, 32 bytes each, and signs for one sink's target length) adds
 * into that sink's partial sum; `end` answers with the partial sum (or the first error) and forgets it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createCipheriv } = require('node:crypto');
const CHUNK_WORDS = ${NATIVE_CHUNK_WORDS};
const ZERO_COUNTER = Buffer.alloc(16);
const zeros = Buffer.alloc(4 * CHUNK_WORDS);
const adder = new WebAssembly.Module(workerData.wasm);
const sums = new Map();
const idle = [];
const padded = (words) => Math.ceil(words / 4) * 4;
/** A sink's partial sum: P words (padded to 4) at byte 0 of a SIMD adder's memory (zeroed, reused across sinks), then one keystream chunk. */
function open(length) {
  const { memory, add, sub } = idle.pop() ?? new WebAssembly.Instance(adder).exports;
  const bytes = 4 * (padded(length) + CHUNK_WORDS);
  if (memory.buffer.byteLength < bytes) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / 65536));
  return { memory, add, sub, length, chunkAt: 4 * padded(length), error: undefined };
}
function close(entry) {
  if (entry.memory === undefined) return;
  new Uint8Array(entry.memory.buffer, 0, entry.chunkAt + 4 * CHUNK_WORDS).fill(0);
  if (idle.length < 2) idle.push({ memory: entry.memory, add: entry.add, sub: entry.sub });
}
function addKeystream(entry, seed, sign) {
  const cipher = createCipheriv('aes-256-ctr', seed, ZERO_COUNTER);
  const memory = new Uint8Array(entry.memory.buffer);
  const apply = sign === 1 ? entry.add : entry.sub;
  for (let offset = 0; offset < entry.length; offset += CHUNK_WORDS) {
    const words = Math.min(CHUNK_WORDS, entry.length - offset);
    const stream = cipher.update(zeros.subarray(0, 4 * words));
    memory.set(stream, entry.chunkAt);
    stream.fill(0);
    // Lanes past the last word fall in the sum's padding, which is never read.
    apply(4 * offset, entry.chunkAt, 4 * padded(words));
  }
}
parentPort.on('message', (m) => {
  if (m.type === 'jobs') {
    const seeds = new Uint8Array(m.seeds);
    try {
      let entry = sums.get(m.id);
      if (entry === undefined) {
        entry = open(m.length);
        sums.set(m.id, entry);
      }
      try {
        if (entry.error === undefined) for (let j = 0; j < m.signs.length; j++) addKeystream(entry, seeds.subarray(32 * j, 32 * j + 32), m.signs[j]);
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
  readonly #pending: Map<number, PendingEnd>[];
  #open = 0;
  #nextId = 0;

  constructor(size: number) {
    this.size = size;
    this.#workers = Array.from({ length: size }, () => undefined);
    this.#generations = Array.from({ length: size }, () => 0);
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
    const worker = this.#workers[w]!;
    return new Promise((resolve, reject) => {
      this.#pending[w]!.set(id, { resolve, reject });
      worker.postMessage({ type: 'end', id });
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
      for (const result of sums) {
        if (result.status !== 'fulfilled' || result.value === null) continue;
        addMaskInto(this.#target, result.value, 1);
        result.value.fill(0);
      }
      const failed = sums.find((result) => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      if (this.#lost) throw new Error('an AES-CTR mask worker exited after taking jobs of this unmask; they are lost');
    } finally {
      this.#pool.closed();
    }
  }
}

const ADDER_BYTES = wasmAdderBytes();
const SIMD = WebAssembly.validate(ADDER_BYTES);
/** A mask sink factory over `pool`: OpenSSL AES-CTR on its workers; undefined (isomorphic) for anything else. */
export function maskSinkOn(pool: MaskWorkerPool): MaskSinkFactory {
  return (prg: PrgName, target: Uint32Array) => (prg === 'aes-ctr' && LITTLE_ENDIAN_HOST && SIMD ? new NativeMaskSink(pool, target) : undefined);
}

/** The coordinator's mask sink factory, over one pool per process (one worker per core, up to 4). */
export const nodeMaskSink: MaskSinkFactory = maskSinkOn(new MaskWorkerPool(Math.max(1, Math.min(4, availableParallelism()))));

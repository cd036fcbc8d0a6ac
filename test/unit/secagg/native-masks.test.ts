/**
 * The coordinator's native mask sink (OpenSSL AES-CTR keystreams added with WebAssembly SIMD on worker
 * threads, or on the calling thread for small unmasks) gives exactly the isomorphic `MaskApplier`'s
 * result, wipes the seeds it is handed, refuses bad jobs before anything is queued, and carries whole
 * rounds; its workers start and warm ahead of use; the SIMD adder wraps mod 2^32.
 */
import { describe, expect, it } from 'vitest';
import { nodeMaskKeyCrypto } from '../../../server/rounds/secagg-native-crypto.ts';
import { inlineMaskBytes, maskSinkOn, MaskWorkerPool, nodeMaskSink } from '../../../server/rounds/secagg-native-masks.ts';
import { aesCtrPrg, applyMasks, type MaskJob, type MaskSinkFactory } from '../../../shared/secagg/prg.ts';
import { addIntoSum, createZ32Sum, instantiateWasmAdder } from '../../../shared/secagg/wasm-add.ts';
import { expectExactSum, seededRandom } from './helpers.ts';

function jobsFor(label: string, count: number): MaskJob[] {
  const random = seededRandom(label);
  return Array.from({ length: count }, (_, j): MaskJob => ({ seed: random(new Uint8Array(32)), sign: j % 3 === 0 ? 1 : -1 }));
}

const copy = (jobs: readonly MaskJob[]) => jobs.map((job) => ({ seed: job.seed.slice(), sign: job.sign }));

/** The isomorphic MaskApplier's sum of `jobs` (copied) into `length` zero words: what every sink must equal. */
async function referenceSum(jobs: readonly MaskJob[], length: number): Promise<Uint32Array> {
  const expected = new Uint32Array(length);
  await applyMasks(aesCtrPrg, expected, copy(jobs));
  return expected;
}

/** `jobs` pushed at once into one sink of `sinkOn` over `length` zero words, drained. */
async function sinkSum(sinkOn: MaskSinkFactory, jobs: readonly MaskJob[], length: number): Promise<Uint32Array> {
  const got = new Uint32Array(length);
  const sink = sinkOn('aes-ctr', got)!;
  sink.push(jobs);
  await sink.drain();
  return got;
}

/** Through the workers (no hint), or on the calling thread (`expectedJobs` small enough: inlineMaskBytes). */
async function native(target: Uint32Array, jobs: readonly MaskJob[], pushes = 1, expectedJobs?: number): Promise<void> {
  const sink = nodeMaskSink('aes-ctr', target, expectedJobs);
  if (sink === undefined) throw new Error('no native mask sink on this host');
  const per = Math.ceil(jobs.length / pushes);
  for (let i = 0; i < jobs.length; i += per) sink.push(jobs.slice(i, i + per));
  await sink.drain();
}

describe('WebAssembly SIMD adder', () => {
  it('adds and subtracts 4-byte lanes mod 2^32', () => {
    const adder = instantiateWasmAdder();
    expect(adder).toBeDefined();
    const { memory, add, sub } = adder!;
    const words = new Uint32Array(memory.buffer);
    const a = [0xffffffff, 0x80000000, 1, 0, 123456789, 0x7fffffff, 5, 0xfffffffe];
    const b = [1, 0x80000000, 0xffffffff, 0, 987654321, 1, 0xfffffff0, 3];
    words.set(a, 0);
    words.set(b, 8);
    add(0, 32, 32);
    expect(Array.from(words.subarray(0, 8))).toEqual(a.map((x, i) => (x + b[i]!) >>> 0));
    sub(0, 32, 32);
    sub(0, 32, 32);
    expect(Array.from(words.subarray(0, 8))).toEqual(a.map((x, i) => (x - b[i]!) >>> 0));
    add(0, 32, 0);
    expect(Array.from(words.subarray(0, 8))).toEqual(a.map((x, i) => (x - b[i]!) >>> 0));
  });
});

describe('Z_2^32 running sum of little-endian vectors (the masked inputs, summed on arrival)', () => {
  it('equals word-by-word addition mod 2^32 for lengths around the 16-byte lane, and refuses to add once taken', () => {
    const random = seededRandom('z32-sum');
    for (const length of [0, 1, 3, 4, 5, 1001]) {
      const vectors = Array.from({ length: 7 }, () => random(new Uint8Array(4 * length)));
      const expected = new Uint32Array(length);
      for (const bytes of vectors) {
        const view = new DataView(bytes.buffer);
        for (let i = 0; i < length; i++) expected[i] = (expected[i]! + view.getUint32(4 * i, true)) >>> 0;
      }
      for (const simd of [true, false]) {
        const sum = createZ32Sum(length, simd);
        for (const bytes of vectors) sum.addBytes(bytes);
        expect(() => sum.addBytes(new Uint8Array(4 * length + 4))).toThrow(/vector/);
        const taken = sum.take();
        expect(Array.from(taken), `length ${length}, simd ${simd}`).toEqual(Array.from(expected));
        expect(() => sum.addBytes(vectors[0]!)).toThrow('running sum already taken');
        expect(Array.from(taken), `length ${length}, simd ${simd}, after a refused add`).toEqual(Array.from(expected));
      }
    }
  });

  it('adds words into a taken sum in place (SIMD through its scratch, which is zeroed again), or by the plain loop into any other vector', () => {
    const random = seededRandom('add-into-sum');
    for (const length of [0, 1, 3, 4, 5, 1001]) {
      const start = random(new Uint8Array(4 * length));
      const words = Array.from({ length: 3 }, () => new Uint32Array(random(new Uint8Array(4 * length)).buffer));
      const expected = new Uint32Array(start.buffer.slice(0));
      for (const w of words) for (let i = 0; i < length; i++) expected[i] = (expected[i]! + w[i]!) >>> 0;
      for (const simd of [true, false]) {
        const sum = createZ32Sum(length, simd);
        sum.addBytes(start);
        const taken = sum.take();
        for (const w of words) addIntoSum(taken, w);
        expect(Array.from(taken), `length ${length}, simd ${simd}`).toEqual(Array.from(expected));
        // Nothing of the added words stays in the sum's memory beyond the sum itself.
        expect(new Uint8Array(taken.buffer, taken.byteOffset + taken.byteLength).every((byte) => byte === 0), `length ${length}, simd ${simd}`).toBe(true);
        // The SIMD path refuses with its own message, so a taken sum that lost its fast path is caught here.
        expect(() => addIntoSum(taken, new Uint32Array(length + 1))).toThrow(simd ? /"words" expected/ : /"mask" expected/);
      }
      const plain = new Uint32Array(start.buffer.slice(0));
      for (const w of words) addIntoSum(plain, w);
      expect(Array.from(plain)).toEqual(Array.from(expected));
      // Words that are a view at an offset into a larger buffer (as a worker's answer could be).
      const sum = createZ32Sum(length);
      sum.addBytes(start);
      const taken = sum.take();
      for (const w of words) {
        const wider = new Uint32Array(length + 3);
        wider.set(w, 2);
        addIntoSum(taken, wider.subarray(2, 2 + length));
      }
      expect(Array.from(taken), `length ${length}, words at an offset`).toEqual(Array.from(expected));
    }
  });
});

describe('native AES-CTR mask sink (coordinator)', () => {
  it('equals the isomorphic MaskApplier, for lengths around the 16-byte block and the 2^15-word chunk, on the workers and inline', async () => {
    for (const length of [1, 3, 4, 5, 1000, 2 ** 15 - 1, 2 ** 15, 2 ** 15 + 3, 3 * 2 ** 15 + 7]) {
      const jobs = jobsFor(`native-sink-${length}`, 37);
      const start = Uint32Array.from({ length }, (_, i) => (i * 2654435761) >>> 0);
      const expected = start.slice();
      await applyMasks(aesCtrPrg, expected, copy(jobs));
      for (const expectedJobs of [undefined, 1]) {
        const got = start.slice();
        await native(got, copy(jobs), 3, expectedJobs);
        expect(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer)), `length ${length}, expectedJobs ${expectedJobs}`).toBe(true);
        // Into a running sum taken in place, as the server's unmask does (the final adds go through its scratch).
        const running = createZ32Sum(length);
        running.addBytes(new Uint8Array(start.buffer));
        const taken = running.take();
        await native(taken, copy(jobs), 3, expectedJobs);
        expect(Buffer.from(taken.buffer, 0, 4 * length).equals(Buffer.from(expected.buffer)), `taken sum, length ${length}, expectedJobs ${expectedJobs}`).toBe(true);
      }
    }
  });

  it('runs unmasks of at most inlineMaskBytes (8 MiB over the workers) of keystream on the calling thread, larger ones on the workers', async () => {
    const pool = new MaskWorkerPool(1);
    try {
      const sinkOn = maskSinkOn(pool, 4000 * 10);
      const kind = (expectedJobs?: number) => sinkOn('aes-ctr', new Uint32Array(1000), expectedJobs)?.constructor.name;
      expect([kind(10), kind(11), kind(undefined)]).toEqual(['InlineMaskSink', 'NativeMaskSink', 'NativeMaskSink']);
      expect([1, 2, 3, 4].map(inlineMaskBytes)).toEqual([8 * 2 ** 20, 4 * 2 ** 20, Math.floor(8 * 2 ** 20 / 3), 2 * 2 ** 20]);
      // By default the limit follows the pool's size: 4 MiB of keystream (2^16 words x 16 masks) stays inline with two workers, not with four.
      const byDefault = async (size: number, masks: number) => {
        const sink = maskSinkOn(new MaskWorkerPool(size))('aes-ctr', new Uint32Array(2 ** 16), masks)!;
        await sink.drain(); // nothing pushed: no worker starts, and an inline sink hands its adder back
        return sink.constructor.name;
      };
      expect([await byDefault(2, 16), await byDefault(2, 17), await byDefault(4, 8), await byDefault(4, 9)]).toEqual(['InlineMaskSink', 'NativeMaskSink', 'InlineMaskSink', 'NativeMaskSink']);
      // An inline sink adds as pushed, wipes each seed at once, and refuses pushes after its drain.
      const jobs = jobsFor('native-sink-inline', 4);
      const expected = await referenceSum(jobs, 1000);
      const got = new Uint32Array(1000);
      const inline = sinkOn('aes-ctr', got, 4)!;
      inline.push(jobs);
      for (const job of jobs) expect(job.seed.every((byte) => byte === 0)).toBe(true);
      await inline.drain();
      expect(Array.from(got)).toEqual(Array.from(expected));
      expect(() => inline.push(jobsFor('native-sink-late', 1))).toThrow(/drained/);
    } finally {
      await pool.terminate();
    }
  });

  it('starts and warms every worker ahead of use, again after they are gone, and sums exactly afterwards', async () => {
    const pool = new MaskWorkerPool(2);
    const sinkOn = maskSinkOn(pool);
    try {
      for (let round = 0; round < 2; round++) {
        expect(await pool.start()).toBe(2);
        expect(await pool.start()).toBe(0); // already warm: nothing to do
        const jobs = jobsFor(`native-sink-warm-${round}`, 9);
        const expected = await referenceSum(jobs, 70_001);
        const got = await sinkSum(sinkOn, jobs, 70_001);
        expect(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer)), `round ${round}`).toBe(true);
        await pool.terminate();
      }
    } finally {
      await pool.terminate();
    }
  });

  it('wipes every seed it is handed and keeps concurrent sinks apart', async () => {
    const a = jobsFor('native-sink-a', 20);
    const b = jobsFor('native-sink-b', 9);
    const [expectedA, expectedB] = [new Uint32Array(5000), new Uint32Array(777)];
    await applyMasks(aesCtrPrg, expectedA, copy(a));
    await applyMasks(aesCtrPrg, expectedB, copy(b));
    const [gotA, gotB] = [new Uint32Array(5000), new Uint32Array(777)];
    const sinkA = nodeMaskSink('aes-ctr', gotA)!;
    const sinkB = nodeMaskSink('aes-ctr', gotB)!;
    sinkA.push(a.slice(0, 10));
    sinkB.push(b);
    sinkA.push(a.slice(10));
    await Promise.all([sinkB.drain(), sinkA.drain()]);
    expect(Array.from(gotA)).toEqual(Array.from(expectedA));
    expect(Array.from(gotB)).toEqual(Array.from(expectedB));
    for (const job of [...a, ...b]) expect(job.seed.every((byte) => byte === 0)).toBe(true);
    await expect(sinkA.drain()).resolves.toBeUndefined();
  });

  it('refuses a bad job before queuing any, and leaves XSalsa20 to the isomorphic path', async () => {
    const target = new Uint32Array(16);
    const sink = nodeMaskSink('aes-ctr', target)!;
    const good = jobsFor('native-sink-refuse', 2);
    expect(() => sink.push([good[0]!, { seed: new Uint8Array(16), sign: 1 }])).toThrow(/seed/);
    expect(() => sink.push([{ seed: new Uint8Array(32), sign: 2 as 1 }])).toThrow(/sign/);
    expect(good[0]!.seed.some((byte) => byte !== 0)).toBe(true);
    await sink.drain();
    expect(Array.from(target)).toEqual(new Array(16).fill(0));
    expect(() => sink.push(good)).toThrow(/drained/);
    expect(nodeMaskSink('xsalsa20', target)).toBeUndefined();
  });

  it('reuses an adder (a worker\'s, or the main thread\'s) across sinks of shrinking length without carrying anything over', async () => {
    for (const expectedJobs of [undefined, 1]) {
      for (const [length, label] of [[98_311, 'long'], [5, 'short'], [33_000, 'mid'], [1, 'one']] as const) {
        const jobs = jobsFor(`native-sink-reuse-${label}`, 6);
        const expected = await referenceSum(jobs, length);
        const got = new Uint32Array(length);
        await native(got, jobs, 2, expectedJobs);
        expect(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer)), `length ${length}, expectedJobs ${expectedJobs}`).toBe(true);
      }
    }
  });

  it('fails the drain when a worker dies holding jobs (never a sum without them), and the pool recovers', async () => {
    const pool = new MaskWorkerPool(2);
    const sinkOn = maskSinkOn(pool);
    try {
      const sink = sinkOn('aes-ctr', new Uint32Array(5000))!;
      sink.push(jobsFor('native-sink-crash', 8));
      await pool.terminate();
      await expect(sink.drain()).rejects.toThrow(/they are lost|terminated|exited/);

      // Jobs sent to a worker, then to its replacement: still refused.
      const split = sinkOn('aes-ctr', new Uint32Array(100))!;
      split.push(jobsFor('native-sink-split-a', 2));
      await pool.terminate();
      split.push(jobsFor('native-sink-split-b', 2));
      await expect(split.drain()).rejects.toThrow(/they are lost|terminated|exited/);

      const jobs = jobsFor('native-sink-after-crash', 5);
      const expected = await referenceSum(jobs, 3000);
      expect(Array.from(await sinkSum(sinkOn, jobs, 3000))).toEqual(Array.from(expected));
    } finally {
      await pool.terminate();
    }
  });

  it('is told how many masks the unmask will push: every survivor\'s self mask and every surviving pair of a dropped client', async () => {
    const told: { expected: number | undefined; pushed: number }[] = [];
    const counting: MaskSinkFactory = (prg, target, expectedJobs) => {
      const sink = nodeMaskSink(prg, target, expectedJobs)!;
      const record = { expected: expectedJobs, pushed: 0 };
      told.push(record);
      return { push: (jobs) => ((record.pushed += jobs.length), sink.push(jobs)), drain: () => sink.drain() };
    };
    await expectExactSum({ n: 40, k: 12, t: 8, vectorLength: 500, label: 'native-sink-told', maskKeyCrypto: nodeMaskKeyCrypto, maskSink: counting }, { 'share-keys': [9], 'masked-input': [3, 11, 20, 33], unmask: [6] });
    await expectExactSum({ n: 12, k: 11, t: 7, vectorLength: 64, label: 'native-sink-told-0', maskSink: counting }, {});
    expect(told).toHaveLength(2);
    expect(told[0]!.pushed).toBeGreaterThan(36);
    expect(told.map((r) => r.expected)).toEqual(told.map((r) => r.pushed));
    expect(told[1]!.pushed).toBe(12);
  });

  it('carries whole rounds with dropouts at every stage (exact sums)', async () => {
    const options = { maskKeyCrypto: nodeMaskKeyCrypto, maskSink: nodeMaskSink };
    await expectExactSum({ n: 10, k: 9, t: 6, vectorLength: 300, label: 'native-sink-n10', ...options }, { 'advertise-keys': [2], 'share-keys': [5], 'masked-input': [7], unmask: [4] });
    await expectExactSum({ n: 40, k: 12, t: 8, vectorLength: 40_003, label: 'native-sink-n40', ...options }, { 'masked-input': [3, 11, 20, 33], unmask: [6] });
  });
});

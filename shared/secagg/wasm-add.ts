/**
 * A WebAssembly SIMD adder for mask arithmetic over Z_2^32 (i32x4.add / i32x4.sub wrap mod 2^32, as
 * the masks need: Bonawitz et al. 2017, Sec. 3.2). A plain typed-array loop adds about 1.3 GB/s here,
 * slower than OpenSSL makes AES-CTR keystream (about 2.5 GB/s), so removing masks was bound by the
 * additions; the SIMD loop adds over 20 GB/s (docs/secagg.md, "Masks"). The coordinator's mask
 * workers use it, so does the server's sum of masked inputs as they arrive (`createZ32Sum`), and so
 * do the unmask's final adds into that sum (`addIntoSum`). The module is 185 bytes, assembled below
 * (no toolchain, nothing fetched); it runs in Node and Chromium (WebAssembly SIMD, Node >= 16.4,
 * Chrome >= 91).
 *
 * Exports: `memory` (one page, grown by the caller), `add(sum, mask, bytes)` and `sub(sum, mask,
 * bytes)`: sum[i] = sum[i] +/- mask[i] for 4-byte lanes over `bytes` bytes (a multiple of 16) from
 * byte offsets `sum` and `mask` in that memory.
 */
import { bytesToU32Vector, expectBytes, expectInteger, LITTLE_ENDIAN_HOST } from './bytes.ts';
import { addMaskInto } from './prg.ts';

const leb128 = (value: number): number[] => {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
};

const section = (id: number, bytes: readonly number[]): number[] => [id, ...leb128(bytes.length), ...bytes];
const exportName = (name: string): number[] => [...leb128(name.length), ...new TextEncoder().encode(name)];

/** (func (param $sum i32) (param $mask i32) (param $bytes i32) (local $end i32)) looping over 16-byte lanes with `lanesOp`. */
function laneLoop(lanesOp: readonly number[]): number[] {
  const [GET, SET, TEE, CONST, I32_ADD, GE_U, LT_U, BR_IF, END] = [0x20, 0x21, 0x22, 0x41, 0x6a, 0x4f, 0x49, 0x0d, 0x0b];
  const V128_LOAD = [0xfd, 0x00, 0x04, 0x00]; // memarg: align 2^4, offset 0
  const V128_STORE = [0xfd, 0x0b, 0x04, 0x00];
  const code = [
    GET, 0, GET, 2, I32_ADD, SET, 3, // end = sum + bytes
    0x02, 0x40, // block
    GET, 0, GET, 3, GE_U, BR_IF, 0, // nothing to do when sum >= end
    0x03, 0x40, // loop
    GET, 0, // store address
    GET, 0, ...V128_LOAD,
    GET, 1, ...V128_LOAD,
    0xfd, ...lanesOp,
    ...V128_STORE,
    GET, 1, CONST, 16, I32_ADD, SET, 1, // mask += 16
    GET, 0, CONST, 16, I32_ADD, TEE, 0, // sum += 16
    GET, 3, LT_U, BR_IF, 0, // again while sum < end
    END, END, END,
  ];
  const body = [1, 1, 0x7f, ...code]; // one local of type i32
  return [...leb128(body.length), ...body];
}

const I32X4_ADD = [0xae, 0x01];
const I32X4_SUB = [0xb1, 0x01];

/** The module's bytes (WebAssembly 1.0 binary format plus the SIMD proposal's v128 opcodes). */
export function wasmAdderBytes(): Uint8Array<ArrayBuffer> {
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 3, 0x7f, 0x7f, 0x7f, 0]), // type 0: (i32, i32, i32) -> ()
    ...section(3, [2, 0, 0]), // two functions of type 0
    ...section(5, [1, 0, 1]), // one memory, min 1 page
    ...section(7, [3, ...exportName('add'), 0, 0, ...exportName('sub'), 0, 1, ...exportName('memory'), 2, 0]),
    ...section(10, [2, ...laneLoop(I32X4_ADD), ...laneLoop(I32X4_SUB)]),
  ]);
}

export interface WasmAdder {
  readonly memory: WebAssembly.Memory;
  add(sum: number, mask: number, bytes: number): void;
  sub(sum: number, mask: number, bytes: number): void;
}

/**
 * A fresh instance (its own memory), or undefined where WebAssembly SIMD is unavailable or compiling
 * is not allowed (a page whose Content-Security-Policy lacks 'wasm-unsafe-eval').
 */
export function instantiateWasmAdder(): WasmAdder | undefined {
  const bytes = wasmAdderBytes();
  if (typeof WebAssembly === 'undefined') return undefined;
  try {
    if (!WebAssembly.validate(bytes)) return undefined;
    return new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as WasmAdder;
  } catch {
    return undefined;
  }
}

/** A running sum over Z_2^32 of vectors that arrive as little-endian bytes (the masked inputs, summed on arrival). */
export interface Z32Sum {
  /** sum += the `length` little-endian 32-bit words in `bytes` (exactly 4 * length bytes). */
  addBytes(bytes: Uint8Array): void;
  /** The sum, which keeps the accumulator's memory: adding after it is refused (Error). */
  take(): Uint32Array;
}

const PAGE_BYTES = 65_536;

/** The sum at byte 0 of a SIMD adder's memory (padded to whole 16-byte lanes), each arriving vector copied in after it and added. */
class WasmZ32Sum implements Z32Sum {
  readonly #length: number;
  readonly #adder: WasmAdder;
  readonly #scratchAt: number;
  #taken = false;

  constructor(length: number, adder: WasmAdder) {
    this.#length = length;
    this.#adder = adder;
    this.#scratchAt = 16 * Math.ceil(length / 4);
    const bytes = 2 * this.#scratchAt;
    const have = adder.memory.buffer.byteLength;
    if (have < bytes) adder.memory.grow(Math.ceil((bytes - have) / PAGE_BYTES));
  }

  addBytes(bytes: Uint8Array): void {
    if (this.#taken) throw new Error('running sum already taken');
    expectBytes('vector', bytes, 4 * this.#length);
    addThroughScratch(this.#adder, this.#scratchAt, bytes);
  }

  /**
   * A view of the sum where it lies, not a copy: copying it out cost 10-13 ms at P = 10^6 here (page
   * faults on the fresh copy; 0.15 ms at 10^4), inside the unmask. The scratch behind it, which holds
   * the last vector added, is zeroed; nothing grows the memory again, which would detach the view.
   * The view keeps the whole memory (about 8P bytes) alive for as long as the sum lives.
   */
  take(): Uint32Array {
    this.#taken = true;
    const memory = this.#adder.memory.buffer;
    new Uint8Array(memory, this.#scratchAt, this.#scratchAt).fill(0);
    const sum = new Uint32Array(memory, 0, this.#length);
    TAKEN_SUMS.set(sum, { adder: this.#adder, scratchAt: this.#scratchAt });
    return sum;
  }
}

/** Sums taken from a `WasmZ32Sum`, by their view: the adder whose memory holds each, and its scratch. */
const TAKEN_SUMS = new WeakMap<Uint32Array, { readonly adder: WasmAdder; readonly scratchAt: number }>();

/**
 * target += words over Z_2^32. When `target` is a sum taken from `createZ32Sum`, the add is SIMD in
 * place, through the scratch behind the sum (copied in, added, zeroed again): the unmask's final adds
 * of the mask workers' partial sums took about 1.9 ms per 10^6 words as a typed-array loop here,
 * about 0.4 ms this way. Any other target is added to with the typed-array loop.
 */
export function addIntoSum(target: Uint32Array, words: Uint32Array): void {
  const taken = TAKEN_SUMS.get(target);
  if (taken === undefined) return addMaskInto(target, words, 1);
  if (words.length !== target.length) throw new RangeError(`"words" expected ${target.length} words, got ${words.length}`);
  try {
    addThroughScratch(taken.adder, taken.scratchAt, new Uint8Array(words.buffer, words.byteOffset, words.byteLength));
  } finally {
    new Uint8Array(taken.adder.memory.buffer, taken.scratchAt, taken.scratchAt).fill(0);
  }
}

/**
 * The sum at byte 0 of `adder`'s memory += `bytes`, copied into the scratch at `scratchAt` (the sum's
 * padded length) and added lane by lane. Lanes past the last word add the scratch's zero padding into
 * the sum's padding, never read.
 */
function addThroughScratch(adder: WasmAdder, scratchAt: number, bytes: Uint8Array): void {
  new Uint8Array(adder.memory.buffer).set(bytes, scratchAt);
  adder.add(0, scratchAt, scratchAt);
}

/** The same in plain typed-array arithmetic (hosts without WebAssembly SIMD, or big-endian ones). */
class PlainZ32Sum implements Z32Sum {
  readonly #sum: Uint32Array;
  #taken = false;

  constructor(length: number) {
    this.#sum = new Uint32Array(length);
  }

  addBytes(bytes: Uint8Array): void {
    if (this.#taken) throw new Error('running sum already taken');
    addMaskInto(this.#sum, bytesToU32Vector('vector', bytes, this.#sum.length), 1);
  }

  take(): Uint32Array {
    this.#taken = true;
    return this.#sum;
  }
}

/** A Z_2^32 running sum of `length` words: SIMD where the host has it (about 5x faster here) unless `simd` is false, plain otherwise. */
export function createZ32Sum(length: number, simd = true): Z32Sum {
  expectInteger('length', length, 0, 2 ** 28);
  const adder = simd && LITTLE_ENDIAN_HOST ? instantiateWasmAdder() : undefined;
  if (adder !== undefined) {
    try {
      return new WasmZ32Sum(length, adder);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err; // memory.grow refused: fall back
    }
  }
  return new PlainZ32Sum(length);
}

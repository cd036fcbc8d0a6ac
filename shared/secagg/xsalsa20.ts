/**
 * XSalsa20 keystream (Bernstein, "Extending the Salsa20 nonce", 2011; Salsa20 spec 2005), computed on
 * 32-bit words. Salsa20 emits little-endian words, so a Z_2^32 mask is the state words themselves:
 * no byte shuffling, and the same output on every host. Checked against NaCl's tests/stream3 vector
 * and against tweetnacl's secretbox keystream.
 */
import { expectBytes } from './bytes.ts';

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574] as const; // "expand 32-byte k"

function readWordsLE(bytes: Uint8Array, offset: number, count: number): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words: number[] = [];
  for (let i = 0; i < count; i++) words.push(view.getUint32(offset + 4 * i, true));
  return words;
}

/** 20 rounds of Salsa20 over `input`; writes the permuted state (no feed-forward) into `x`. */
function salsaRounds(input: Uint32Array, x: Uint32Array): void {
  let x0 = input[0]! | 0, x1 = input[1]! | 0, x2 = input[2]! | 0, x3 = input[3]! | 0;
  let x4 = input[4]! | 0, x5 = input[5]! | 0, x6 = input[6]! | 0, x7 = input[7]! | 0;
  let x8 = input[8]! | 0, x9 = input[9]! | 0, x10 = input[10]! | 0, x11 = input[11]! | 0;
  let x12 = input[12]! | 0, x13 = input[13]! | 0, x14 = input[14]! | 0, x15 = input[15]! | 0;
  let u: number;
  for (let i = 0; i < 20; i += 2) {
    u = (x0 + x12) | 0; x4 ^= (u << 7) | (u >>> 25);
    u = (x4 + x0) | 0; x8 ^= (u << 9) | (u >>> 23);
    u = (x8 + x4) | 0; x12 ^= (u << 13) | (u >>> 19);
    u = (x12 + x8) | 0; x0 ^= (u << 18) | (u >>> 14);
    u = (x5 + x1) | 0; x9 ^= (u << 7) | (u >>> 25);
    u = (x9 + x5) | 0; x13 ^= (u << 9) | (u >>> 23);
    u = (x13 + x9) | 0; x1 ^= (u << 13) | (u >>> 19);
    u = (x1 + x13) | 0; x5 ^= (u << 18) | (u >>> 14);
    u = (x10 + x6) | 0; x14 ^= (u << 7) | (u >>> 25);
    u = (x14 + x10) | 0; x2 ^= (u << 9) | (u >>> 23);
    u = (x2 + x14) | 0; x6 ^= (u << 13) | (u >>> 19);
    u = (x6 + x2) | 0; x10 ^= (u << 18) | (u >>> 14);
    u = (x15 + x11) | 0; x3 ^= (u << 7) | (u >>> 25);
    u = (x3 + x15) | 0; x7 ^= (u << 9) | (u >>> 23);
    u = (x7 + x3) | 0; x11 ^= (u << 13) | (u >>> 19);
    u = (x11 + x7) | 0; x15 ^= (u << 18) | (u >>> 14);
    u = (x0 + x3) | 0; x1 ^= (u << 7) | (u >>> 25);
    u = (x1 + x0) | 0; x2 ^= (u << 9) | (u >>> 23);
    u = (x2 + x1) | 0; x3 ^= (u << 13) | (u >>> 19);
    u = (x3 + x2) | 0; x0 ^= (u << 18) | (u >>> 14);
    u = (x5 + x4) | 0; x6 ^= (u << 7) | (u >>> 25);
    u = (x6 + x5) | 0; x7 ^= (u << 9) | (u >>> 23);
    u = (x7 + x6) | 0; x4 ^= (u << 13) | (u >>> 19);
    u = (x4 + x7) | 0; x5 ^= (u << 18) | (u >>> 14);
    u = (x10 + x9) | 0; x11 ^= (u << 7) | (u >>> 25);
    u = (x11 + x10) | 0; x8 ^= (u << 9) | (u >>> 23);
    u = (x8 + x11) | 0; x9 ^= (u << 13) | (u >>> 19);
    u = (x9 + x8) | 0; x10 ^= (u << 18) | (u >>> 14);
    u = (x15 + x14) | 0; x12 ^= (u << 7) | (u >>> 25);
    u = (x12 + x15) | 0; x13 ^= (u << 9) | (u >>> 23);
    u = (x13 + x12) | 0; x14 ^= (u << 13) | (u >>> 19);
    u = (x14 + x13) | 0; x15 ^= (u << 18) | (u >>> 14);
  }
  x[0] = x0; x[1] = x1; x[2] = x2; x[3] = x3; x[4] = x4; x[5] = x5; x[6] = x6; x[7] = x7;
  x[8] = x8; x[9] = x9; x[10] = x10; x[11] = x11; x[12] = x12; x[13] = x13; x[14] = x14; x[15] = x15;
}

function initialState(key: number[], n0: number, n1: number, n2: number, n3: number): Uint32Array {
  return Uint32Array.of(
    SIGMA[0], key[0]!, key[1]!, key[2]!, key[3]!, SIGMA[1], n0, n1, n2, n3, SIGMA[2], key[4]!, key[5]!, key[6]!, key[7]!, SIGMA[3],
  );
}

/** The Salsa20 block state under the HSalsa20 subkey of (key, nonce[0..16]) and nonce[16..24], counter 0. */
function xsalsa20State(key: Uint8Array, nonce: Uint8Array): Uint32Array {
  expectBytes('key', key, 32);
  expectBytes('nonce', nonce, 24);
  const k = readWordsLE(key, 0, 8);
  const n = readWordsLE(nonce, 0, 6);
  // HSalsa20: the subkey is words 0, 5, 10, 15, 6, 7, 8, 9 of the permuted state.
  const h = new Uint32Array(16);
  salsaRounds(initialState(k, n[0]!, n[1]!, n[2]!, n[3]!), h);
  const subkey = [h[0]!, h[5]!, h[10]!, h[15]!, h[6]!, h[7]!, h[8]!, h[9]!];
  h.fill(0);
  k.fill(0);
  const state = initialState(subkey, n[4]!, n[5]!, 0, 0);
  subkey.fill(0);
  return state;
}

function nextCounter(state: Uint32Array): void {
  state[8] = (state[8]! + 1) >>> 0;
  if (state[8] === 0) state[9] = (state[9]! + 1) >>> 0;
}

/** XSalsa20 keystream as `words` little-endian 32-bit words (key 32 bytes, nonce 24 bytes). */
export function xsalsa20Words(key: Uint8Array, nonce: Uint8Array, words: number): Uint32Array {
  if (!Number.isInteger(words) || words < 0) throw new RangeError(`"words" expected a non-negative integer, got ${words}`);
  const state = xsalsa20State(key, nonce);
  const block = new Uint32Array(16);
  const out = new Uint32Array(words);
  for (let o = 0; o < words; o += 16) {
    salsaRounds(state, block);
    const take = Math.min(16, words - o);
    for (let i = 0; i < take; i++) out[o + i] = block[i]! + state[i]!;
    nextCounter(state);
  }
  state.fill(0);
  block.fill(0);
  return out;
}

/**
 * target += sign * keystream (mod 2^32), block by block into a 64-byte scratch block: the same words
 * as `xsalsa20Words(key, nonce, target.length)` without materialising them.
 */
export function xsalsa20AddInto(key: Uint8Array, nonce: Uint8Array, target: Uint32Array, sign: 1 | -1): void {
  const state = xsalsa20State(key, nonce);
  const block = new Uint32Array(16);
  const t = new Int32Array(target.buffer, target.byteOffset, target.length);
  const words = t.length;
  for (let o = 0; o < words; o += 16) {
    salsaRounds(state, block);
    const take = Math.min(16, words - o);
    if (sign === 1) for (let i = 0; i < take; i++) t[o + i] = (t[o + i]! + block[i]! + state[i]!) | 0;
    else for (let i = 0; i < take; i++) t[o + i] = (t[o + i]! - block[i]! - state[i]!) | 0;
    nextCounter(state);
  }
  state.fill(0);
  block.fill(0);
}

/** The same keystream as bytes (for test vectors and byte-oriented callers). */
export function xsalsa20Bytes(key: Uint8Array, nonce: Uint8Array, length: number): Uint8Array {
  const words = xsalsa20Words(key, nonce, Math.ceil(length / 4));
  const out = new Uint8Array(words.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) view.setUint32(4 * i, words[i]!, true);
  return out.subarray(0, length);
}

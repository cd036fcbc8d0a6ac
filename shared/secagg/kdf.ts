/**
 * HMAC-SHA-512 (RFC 2104 / RFC 4231) and HKDF-SHA-512 (RFC 5869) over tweetnacl's SHA-512.
 * Synchronous on purpose: the state machines derive keys inside message handlers. Bonawitz et al.
 * 2017, Sec. 3 and 4, hash the key-agreement output before use; HKDF is that hash, with labels.
 */
import nacl from 'tweetnacl';
import { concatBytes, expectBytes, utf8, wipe } from './bytes.ts';

const BLOCK_BYTES = 128;
const HASH_BYTES = 64;

export function hmacSha512(key: Uint8Array, data: Uint8Array): Uint8Array {
  expectBytes('key', key);
  expectBytes('data', data);
  const block = new Uint8Array(BLOCK_BYTES);
  block.set(key.length > BLOCK_BYTES ? nacl.hash(key) : key);
  const inner = new Uint8Array(BLOCK_BYTES);
  const outer = new Uint8Array(BLOCK_BYTES);
  for (let i = 0; i < BLOCK_BYTES; i++) {
    inner[i] = block[i]! ^ 0x36;
    outer[i] = block[i]! ^ 0x5c;
  }
  const innerHash = nacl.hash(concatBytes(inner, data));
  const mac = nacl.hash(concatBytes(outer, innerHash));
  wipe(block, inner, outer, innerHash);
  return mac;
}

/** HKDF-Extract then HKDF-Expand (RFC 5869 Sec. 2.2-2.3); an empty salt means HashLen zero bytes. */
export function hkdfSha512(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  expectBytes('ikm', ikm);
  expectBytes('salt', salt);
  expectBytes('info', info);
  if (!Number.isInteger(length) || length < 1 || length > 255 * HASH_BYTES) {
    throw new RangeError(`"length" expected an integer in [1, ${255 * HASH_BYTES}], got ${length}`);
  }
  const prk = hmacSha512(salt.length > 0 ? salt : new Uint8Array(HASH_BYTES), ikm);
  const out = new Uint8Array(length);
  let previous: Uint8Array = new Uint8Array(0);
  for (let i = 0, o = 0; o < length; i++) {
    const block = hmacSha512(prk, concatBytes(previous, info, Uint8Array.of(i + 1)));
    out.set(block.subarray(0, Math.min(HASH_BYTES, length - o)), o);
    o += HASH_BYTES;
    wipe(previous);
    previous = block;
  }
  wipe(prk, previous);
  return out;
}

/** Protocol-wide salt: a version label, so keys from a future protocol revision never collide with these. */
export const SECAGG_KDF_SALT = utf8('portrait/secagg+/v1');

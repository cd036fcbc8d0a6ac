/**
 * Mask PRGs over Z_2^32 (Bonawitz et al. 2017, Sec. 3.2 "PRG(b_u)", "PRG(s_u,v)"): a 32-byte seed
 * expands to P uniform 32-bit words. Two cryptographic instantiations, both keyed with the full
 * 32-byte seed (never shortened): AES-256-CTR through WebCrypto and XSalsa20. Each seed is used for
 * exactly one expansion per round (seeds are fresh per round), so a fixed zero counter / nonce is safe.
 * Default: the faster one in Node (`scripts/bench/secagg-prg.ts`); the browser measurement is pending.
 */
import { expectBytes, expectInteger } from './bytes.ts';
import { xsalsa20Words } from './xsalsa20.ts';

export const PRG_NAMES = ['aes-ctr', 'xsalsa20'] as const;
export type PrgName = (typeof PRG_NAMES)[number];

export interface MaskPrg {
  readonly name: PrgName;
  /** `length` uniform words in Z_2^32 from a 32-byte seed. */
  expand(seed: Uint8Array, length: number): Promise<Uint32Array>;
}

export const SEED_BYTES = 32;
const MAX_WORDS = 2 ** 28;
const XSALSA20_ZERO_NONCE = new Uint8Array(24);
const LITTLE_ENDIAN_HOST = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

function checkExpand(seed: Uint8Array, length: number): void {
  expectBytes('seed', seed, SEED_BYTES);
  expectInteger('length', length, 0, MAX_WORDS);
}

export const xsalsa20Prg: MaskPrg = {
  name: 'xsalsa20',
  expand(seed, length) {
    checkExpand(seed, length);
    return Promise.resolve(xsalsa20Words(seed, XSALSA20_ZERO_NONCE, length));
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

export const aesCtrPrg: MaskPrg = {
  name: 'aes-ctr',
  async expand(seed, length) {
    checkExpand(seed, length);
    const bytes = await aesCtrEncrypt(seed, new Uint8Array(16), new Uint8Array(length * 4));
    if (LITTLE_ENDIAN_HOST) return new Uint32Array(bytes.buffer, bytes.byteOffset, length);
    const out = new Uint32Array(length);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < length; i++) out[i] = view.getUint32(4 * i, true);
    return out;
  },
};

/** Chosen from the Node measurement in docs/secagg.md; revisit after the Chromium measurement. */
export const DEFAULT_PRG: PrgName = 'aes-ctr';

export function prgByName(name: PrgName): MaskPrg {
  if (name === 'aes-ctr') return aesCtrPrg;
  if (name === 'xsalsa20') return xsalsa20Prg;
  throw new RangeError(`"prg" expected one of ${PRG_NAMES.join(', ')}, got ${String(name)}`);
}

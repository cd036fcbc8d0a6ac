/**
 * Hex encoding and SHA-256 for the ledger, through WebCrypto (`crypto.subtle.digest`), which
 * Node 20 and every browser provide, so the chain can be checked where the auditor is.
 */

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

export function fromHex(name: string, text: unknown, bytes: number): Uint8Array {
  if (typeof text !== 'string') throw new TypeError(`"${name}" expected a hex string, got ${typeof text}`);
  if (text.length !== bytes * 2 || !/^[0-9a-f]*$/.test(text)) throw new RangeError(`"${name}" expected ${bytes} bytes as lowercase hex, got ${text.length} characters`);
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = Number.parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text) as Uint8Array<ArrayBuffer>;
}

/** SHA-256 of the UTF-8 bytes of `text`, as lowercase hex. */
export async function sha256Hex(text: string): Promise<string> {
  return toHex(await sha256Bytes(utf8(text)));
}

export async function sha256Bytes(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}

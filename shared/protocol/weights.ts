/**
 * Weight vectors on the wire: Float32, little-endian, exactly 4 × parameters bytes, every value
 * finite. Socket.IO carries them as binary attachments (a Buffer in Node, an ArrayBuffer in the
 * browser), so they are never base64- or JSON-encoded.
 */
import { ProtocolError } from './errors.ts';

export function encodeWeights(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] as number, true);
  return out;
}

function asBytes(name: string, value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new ProtocolError('MALFORMED_MESSAGE', `"${name}" expected binary data, got ${value === null ? 'null' : typeof value}`);
}

/** Decodes and checks a weight vector; throws `WEIGHTS_LENGTH` / `WEIGHTS_NOT_FINITE`. */
export function decodeWeights(name: string, value: unknown, expectedLength: number): Float32Array {
  const bytes = asBytes(name, value);
  if (bytes.byteLength !== expectedLength * 4) {
    throw new ProtocolError('WEIGHTS_LENGTH', `"${name}" expected ${expectedLength * 4} bytes (${expectedLength} float32), got ${bytes.byteLength}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(expectedLength);
  for (let i = 0; i < expectedLength; i++) {
    const v = view.getFloat32(i * 4, true);
    if (!Number.isFinite(v)) throw new ProtocolError('WEIGHTS_NOT_FINITE', `"${name}" holds a non-finite value at index ${i}`);
    out[i] = v;
  }
  return out;
}

/** A privatised update on the wire: residues in Z_{2^32}, Uint32 little-endian. */
export function encodeResidues(values: Uint32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint32(i * 4, values[i] as number, true);
  return out;
}

/** Decodes a residue vector, exactly 4 × `expectedLength` bytes; throws `WEIGHTS_LENGTH`. */
export function decodeResidues(name: string, value: unknown, expectedLength: number): Uint32Array {
  const bytes = asBytes(name, value);
  if (bytes.byteLength !== expectedLength * 4) {
    throw new ProtocolError('WEIGHTS_LENGTH', `"${name}" expected ${expectedLength * 4} bytes (${expectedLength} uint32 residues), got ${bytes.byteLength}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint32Array(expectedLength);
  for (let i = 0; i < expectedLength; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}

/**
 * Reduction of integer vectors into Z_{2^32} for secure aggregation (Kairouz, Liu, Steinke
 * 2021, Alg. 1, "modular clipping"; Bell et al. 2020 masks live in the same group) and back
 * to centred signed integers in [-2^31, 2^31) after the modular sum.
 */

const TWO_32 = 4294967296;

/** Each integer reduced mod 2^32 into [0, 2^32). Accepts any safe integers. */
export function toModular(values: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!Number.isSafeInteger(v)) throw new RangeError(`"values[${i}]" expected a safe integer, got ${v}`);
    const r = v % TWO_32;
    out[i] = r < 0 ? r + TWO_32 : r;
  }
  return out;
}

/** The centred representative in [-2^31, 2^31) of each residue. */
export function fromModular(residues: Uint32Array): Int32Array {
  if (!(residues instanceof Uint32Array)) throw new TypeError('"residues" expected a Uint32Array');
  return new Int32Array(residues);
}

/** `into += addend` in Z_{2^32}, in place; returns `into`. */
export function addModular(into: Uint32Array, addend: Uint32Array): Uint32Array {
  if (into.length !== addend.length) throw new RangeError(`"addend" expected ${into.length} entries, got ${addend.length}`);
  for (let i = 0; i < into.length; i++) into[i] = ((into[i] as number) + (addend[i] as number)) >>> 0;
  return into;
}

/** The sum of equal-length vectors in Z_{2^32}. */
export function sumModular(vectors: readonly Uint32Array[], length: number): Uint32Array {
  const sum = new Uint32Array(length);
  for (const v of vectors) addModular(sum, v);
  return sum;
}

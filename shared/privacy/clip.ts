/**
 * L2 clipping of a flattened model update to norm C (Abadi et al. 2016, Sec. 3.1; the
 * user-level variant of McMahan et al. 2018, Alg. 1), the first step of privatisation.
 */

/** Euclidean norm, accumulated in double precision. */
export function l2Norm(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    sum += v * v;
  }
  return Math.sqrt(sum);
}

export interface ClipResult {
  /** A new array: `values * min(1, clip / norm)`; the input is never modified. */
  clipped: Float32Array;
  /** The norm of the input before clipping. */
  norm: number;
}

/**
 * Scales `values` down so its L2 norm is at most `clip`. Float32 rounding can leave the
 * result a few ulps above `clip`; the scale is then nudged down so the bound holds exactly
 * when measured in double precision, since the sensitivity relies on it.
 */
export function clipToNorm(values: Float32Array, clip: number): ClipResult {
  if (!(values instanceof Float32Array)) throw new TypeError('"values" expected a Float32Array');
  if (typeof clip !== 'number' || !Number.isFinite(clip) || clip <= 0) throw new RangeError(`"clip" expected a finite number > 0, got ${clip}`);
  const norm = l2Norm(values);
  if (!Number.isFinite(norm)) throw new RangeError('"values" contains a non-finite entry');
  const clipped = new Float32Array(values);
  if (norm <= clip) return { clipped, norm };
  let scale = clip / norm;
  for (let attempt = 0; attempt < 8; attempt++) {
    for (let i = 0; i < values.length; i++) clipped[i] = (values[i] as number) * scale;
    if (l2Norm(clipped) <= clip) return { clipped, norm };
    scale *= 1 - 1e-7;
  }
  throw new RangeError(`"values" could not be clipped to ${clip}`);
}

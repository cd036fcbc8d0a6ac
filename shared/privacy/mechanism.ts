/**
 * The client and server halves of the distributed discrete Gaussian mechanism (Kairouz,
 * Liu, Steinke 2021, Alg. 1 client / Alg. 2 server): clip → scale by 1/γ → rotate →
 * conditional randomised rounding → add discrete Gaussian noise → reduce mod 2^32; and on
 * the server, after the modular sum (secure aggregation or plain), optional central noise →
 * centre → inverse rotation → rescale by γ.
 */
import { clipToNorm } from './clip.ts';
import type { PrivacyConfig } from './config.ts';
import { DiscreteGaussianSampler } from './discrete-gaussian.ts';
import { fromModular } from './modular.ts';
import { RandomStream, type RandomSource } from './random.ts';
import { rotate, unrotate } from './rotation.ts';
import { conditionalRandomizedRound } from './rounding.ts';

function checkSigns(config: PrivacyConfig, signs: Int8Array | null): void {
  if (config.rotation) {
    if (!(signs instanceof Int8Array)) throw new TypeError('"signs" expected an Int8Array when rotation is on');
    if (signs.length !== config.paddedDimension) throw new RangeError(`"signs" expected ${config.paddedDimension} entries, got ${signs.length}`);
  }
}

/**
 * A client's contribution: its update privatised per `config` as residues in Z_{2^32} of
 * length `config.paddedDimension`. `signs` are the round's public rotation signs (null when
 * rotation is off); `random` is the client's private CSPRNG.
 */
export function privatiseUpdate(update: Float32Array, config: PrivacyConfig, signs: Int8Array | null, random: RandomSource): Uint32Array {
  if (update.length !== config.dimension) throw new RangeError(`"update" expected ${config.dimension} entries, got ${update.length}`);
  checkSigns(config, signs);
  const stream = new RandomStream(random);
  const { clipped } = clipToNorm(update, config.clip);
  const scaled = new Float64Array(config.paddedDimension);
  for (let i = 0; i < clipped.length; i++) scaled[i] = (clipped[i] as number) / config.granularity;
  const flattened = config.rotation && signs ? rotate(scaled, signs) : scaled;
  const rounded = conditionalRandomizedRound(flattened, config.l2Sensitivity, stream);
  const out = new Uint32Array(rounded.length);
  if (config.clientNoiseVariance > 0) {
    const sampler = new DiscreteGaussianSampler(config.clientNoiseVariance, stream);
    for (let i = 0; i < rounded.length; i++) out[i] = ((rounded[i] as number) + sampler.sample()) >>> 0;
  } else {
    for (let i = 0; i < rounded.length; i++) out[i] = (rounded[i] as number) >>> 0;
  }
  return out;
}

/** Central mode: the server's noise, added to the modular sum before it is decoded. Returns a new array. */
export function addCentralNoise(sum: Uint32Array, config: PrivacyConfig, random: RandomSource): Uint32Array {
  if (config.mode !== 'central') throw new RangeError(`"mode" expected central for server noise, got ${config.mode}`);
  if (sum.length !== config.paddedDimension) throw new RangeError(`"sum" expected ${config.paddedDimension} entries, got ${sum.length}`);
  const sampler = new DiscreteGaussianSampler(config.serverNoiseVariance, new RandomStream(random));
  return Uint32Array.from(sum, (v) => (v + sampler.sample()) >>> 0);
}

/** The aggregated sum of the clients' updates, in update units, from the modular sum of their residues. */
export function decodeAggregate(sum: Uint32Array, config: PrivacyConfig, signs: Int8Array | null): Float32Array {
  if (sum.length !== config.paddedDimension) throw new RangeError(`"sum" expected ${config.paddedDimension} entries, got ${sum.length}`);
  checkSigns(config, signs);
  const centred = fromModular(sum);
  const unrotated = config.rotation && signs ? unrotate(centred, signs, config.dimension) : Float64Array.from(centred.subarray(0, config.dimension));
  return Float32Array.from(unrotated, (v) => v * config.granularity);
}

/**
 * The privacy part of a round on the wire: what the coordinator sends each selected client so it
 * can rebuild exactly the server's `PrivacyConfig` (same grid step γ, same rotation signs), and
 * the launch-time check of a round's privacy section. The signs of the random rotation are public
 * per round (Kairouz, Liu, Steinke 2021, Sec. 4.1), packed one bit each.
 */
import { z } from 'zod';
import { buildPrivacyConfig, PRIVACY_MODES } from '../privacy/config.ts';
import type { PrivacyConfig, PrivacyConfigInput } from '../privacy/config.ts';
import { ProtocolError } from './errors.ts';
import type { PrivacySpec } from './messages.ts';

/** Sent in `round:config` when the round is differentially private. */
export interface RoundPrivacyParams {
  mode: 'distributed' | 'central' | 'local';
  clip: number;
  noiseMultiplier: number;
  /** Survivors whose noise is counted (client noise variance is (zΔ₂)²/t in distributed mode). */
  t: number;
  delta: number;
  population: number;
  dimension: number;
  granularity: number;
  roundingBeta: number;
  /** Rotation signs, bit i of byte i>>3 set for +1; paddedDimension bits. */
  signs: Uint8Array | ArrayBuffer;
}

const Binary = z.custom<Uint8Array | ArrayBuffer>((v) => v instanceof Uint8Array || v instanceof ArrayBuffer, 'expected binary data');

export const RoundPrivacyParamsSchema = z
  .object({
    mode: z.enum(['distributed', 'central', 'local']),
    clip: z.number().positive(),
    noiseMultiplier: z.number().positive(),
    t: z.number().int().min(1),
    delta: z.number().gt(0).lt(1),
    population: z.number().int().min(1),
    dimension: z.number().int().min(1),
    granularity: z.number().positive(),
    roundingBeta: z.number().min(0).lt(1),
    signs: Binary,
  })
  .strict();

export function packSigns(signs: Int8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(signs.length / 8));
  for (let i = 0; i < signs.length; i++) if (signs[i] === 1) out[i >> 3] = (out[i >> 3] as number) | (1 << (i & 7));
  return out;
}

export function unpackSigns(name: string, packed: Uint8Array | ArrayBuffer, length: number): Int8Array {
  const bytes = packed instanceof Uint8Array ? packed : new Uint8Array(packed);
  if (bytes.byteLength !== Math.ceil(length / 8)) throw new ProtocolError('MALFORMED_MESSAGE', `"${name}" expected ${Math.ceil(length / 8)} bytes, got ${bytes.byteLength}`);
  const out = new Int8Array(length);
  for (let i = 0; i < length; i++) out[i] = ((bytes[i >> 3] as number) >> (i & 7)) & 1 ? 1 : -1;
  return out;
}

/** The client's rebuild of the round's config from the wire parameters (throws naming the field). */
export function privacyConfigFromParams(params: RoundPrivacyParams): PrivacyConfig {
  return buildPrivacyConfig({
    mode: params.mode,
    clip: params.clip,
    noiseMultiplier: params.noiseMultiplier,
    minSurvivors: params.t,
    delta: params.delta,
    population: params.population,
    dimension: params.dimension,
    granularity: params.granularity,
    roundingBeta: params.roundingBeta,
    rotation: true,
    allowCentral: true,
  });
}

export interface PrivacyPolicy {
  allowCentral: boolean;
  allowNone: boolean;
}

/** `buildPrivacyConfig`'s input for a round: q from the selection (Poisson → its rate, else accounted with q = 1). */
export function privacyInput(spec: PrivacySpec, dimension: number, selection: { method: 'fixed' | 'poisson'; rate: number } | null, expectedClients: number, policy: PrivacyPolicy): PrivacyConfigInput {
  const poisson = selection?.method === 'poisson';
  return {
    mode: spec.mode,
    clip: spec.clip,
    noiseMultiplier: spec.noiseMultiplier,
    minSurvivors: spec.t,
    delta: spec.delta,
    population: spec.population,
    dimension,
    samplingRate: poisson && selection.rate > 0 ? Math.min(1, selection.rate) : 1,
    poissonSampling: poisson && selection.rate > 0,
    expectedClients: Math.max(expectedClients, spec.t),
    rotation: true,
    allowCentral: policy.allowCentral,
    allowNone: policy.allowNone,
  };
}

/**
 * The launch-time check: `central` and `none` need the coordinator's opt-in
 * (`PRIVACY_MODE_DISABLED`), and every value goes through `buildPrivacyConfig`, whose
 * TypeError/RangeError naming the field becomes `INVALID_ARGUMENT` on `privacy.<field>`.
 */
export function checkRoundPrivacy(spec: PrivacySpec, dimension: number, clientsPerRound: number, policy: PrivacyPolicy): PrivacyConfig {
  if (spec.mode === 'central' && !policy.allowCentral) throw new ProtocolError('PRIVACY_MODE_DISABLED', '"privacy.mode" central (trusted-server noise) is disabled on this coordinator; start it with --allow-central-dp');
  if (spec.mode === 'none' && !policy.allowNone) throw new ProtocolError('PRIVACY_MODE_DISABLED', '"privacy.mode" none (no differential privacy) is disabled on this coordinator; start it with --allow-no-dp');
  try {
    return buildPrivacyConfig(privacyInput(spec, dimension, null, clientsPerRound, policy));
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) {
      const message = err.message.replace(/^"(minSurvivors|[A-Za-z]+)"/, (_m, field: string) => `"privacy.${field === 'minSurvivors' ? 't' : field}"`);
      throw new ProtocolError('INVALID_ARGUMENT', message);
    }
    throw err;
  }
}

export { PRIVACY_MODES };

/**
 * Epsilon of one round alone (at the round's delta) above which a launch is warned about, in the
 * CLI and on the dashboard: past it, a single round already gives a weak guarantee.
 */
export const LARGE_ROUND_EPSILON = 2;

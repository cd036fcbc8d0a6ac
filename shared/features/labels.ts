/**
 * Profile labels (the "declared or inferred" part of a portrait) in one canonical encoding, so
 * Tianchi, generic label files and the synthetic population all feed the same model heads.
 * Age, gender, career and life stage are sensitive attributes: their heads are off unless a
 * model config enables them (see shared/model/spec.ts).
 */
import { z } from 'zod';

/** Age bands. Tianchi's pred_age_level 0..9 maps as: 0-2 → 0, 3 → 1, 4 → 2, 5 → 3, 6-9 → 4. */
export const AGE_BANDS = ['<=2', '3', '4', '5', '>=6'] as const;
export const GENDERS = ['0', '1'] as const;
/** Career types 1..10 map to indices 0..9. */
export const CAREERS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'] as const;
/** Life stages 1..10 map to indices 0..9; a user can be in several at once. */
export const STAGES = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'] as const;

export const ProfileLabelsSchema = z
  .object({
    age: z.number().int().min(0).max(AGE_BANDS.length - 1).optional(),
    gender: z.number().int().min(0).max(GENDERS.length - 1).optional(),
    career: z.number().int().min(0).max(CAREERS.length - 1).optional(),
    stage: z.array(z.number().int().min(0).max(STAGES.length - 1)).optional(),
  })
  .strict();

/** Missing fields mean "unknown": the head's loss and metrics skip that user. */
export type ProfileLabels = z.infer<typeof ProfileLabelsSchema>;

export function ageBandFromTianchiLevel(level: number): number | undefined {
  if (!Number.isInteger(level) || level < 0 || level > 9) return undefined;
  if (level <= 2) return 0;
  if (level >= 6) return 4;
  return level - 2;
}

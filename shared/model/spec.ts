/**
 * Model configuration: architecture, which heads are on, and the feature vocabulary and windows
 * the model was trained with. It travels with every model version (in model.json's
 * userDefinedMetadata), so any device can compute features and read predictions correctly.
 */
import { z } from 'zod';
import { AGE_BANDS, CAREERS, GENDERS, STAGES } from '../features/labels.ts';
import { SPENDING_TIERS, VocabularySchema } from '../features/vocabulary.ts';
import { WindowConfigSchema } from '../features/windows.ts';

export const HEAD_NAMES = ['interests', 'purchase', 'spending', 'age', 'gender', 'career', 'stage'] as const;
export type HeadName = (typeof HEAD_NAMES)[number];

/** Heads that infer protected personal attributes: off unless the config enables them explicitly. */
export const SENSITIVE_HEADS: readonly HeadName[] = ['age', 'gender', 'career', 'stage'];

export type HeadKind = 'multilabel' | 'binary' | 'multiclass';

export interface HeadSpec {
  name: HeadName;
  kind: HeadKind;
  /** Class (or label) names; binary heads have one output unit. */
  classes: readonly string[];
  sensitive: boolean;
}

export const ARCHITECTURES = ['mlp', 'gru'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export const ModelConfigSchema = z
  .object({
    architecture: z.enum(ARCHITECTURES),
    heads: z.array(z.enum(HEAD_NAMES)).min(1),
    /** Must be true for any sensitive head to be listed in `heads`. */
    enableSensitiveHeads: z.boolean(),
    /** Listed for auditors: the heads of this config that are sensitive. */
    sensitiveHeads: z.array(z.enum(HEAD_NAMES)),
    vocabulary: VocabularySchema,
    windows: WindowConfigSchema,
    sequenceLength: z.number().int().min(1).max(512),
    hiddenUnits: z.tuple([z.number().int().min(1), z.number().int().min(1)]),
  })
  .strict()
  .superRefine((config, ctx) => {
    const sensitiveOn = config.heads.filter((h) => SENSITIVE_HEADS.includes(h));
    if (sensitiveOn.length > 0 && !config.enableSensitiveHeads) {
      ctx.addIssue({ code: 'custom', path: ['heads'], message: `sensitive heads ${sensitiveOn.join(', ')} need "enableSensitiveHeads": true` });
    }
    if (new Set(config.heads).size !== config.heads.length) ctx.addIssue({ code: 'custom', path: ['heads'], message: 'duplicate head' });
  });

export type ModelConfig = z.infer<typeof ModelConfigSchema>;

export function headSpec(config: Pick<ModelConfig, 'vocabulary'>, name: HeadName): HeadSpec {
  const sensitive = SENSITIVE_HEADS.includes(name);
  switch (name) {
    case 'interests':
      return { name, kind: 'multilabel', classes: config.vocabulary.categories, sensitive };
    case 'purchase':
      return { name, kind: 'binary', classes: ['no', 'yes'], sensitive };
    case 'spending':
      return { name, kind: 'multiclass', classes: SPENDING_TIERS, sensitive };
    case 'age':
      return { name, kind: 'multiclass', classes: AGE_BANDS, sensitive };
    case 'gender':
      return { name, kind: 'multiclass', classes: GENDERS, sensitive };
    case 'career':
      return { name, kind: 'multiclass', classes: CAREERS, sensitive };
    case 'stage':
      return { name, kind: 'multilabel', classes: STAGES, sensitive };
  }
}

export function headSpecs(config: ModelConfig): HeadSpec[] {
  return config.heads.map((h) => headSpec(config, h));
}

/** Output units of a head: one for binary, one per class otherwise. */
export function headUnits(spec: HeadSpec): number {
  return spec.kind === 'binary' ? 1 : spec.classes.length;
}

export const NON_SENSITIVE_HEADS: HeadName[] = HEAD_NAMES.filter((h) => !SENSITIVE_HEADS.includes(h));

/** Builds and validates a config; sensitive heads are recorded as such whatever the caller says. */
export function makeModelConfig(input: Omit<ModelConfig, 'sensitiveHeads'>): ModelConfig {
  return ModelConfigSchema.parse({ ...input, sensitiveHeads: input.heads.filter((h) => SENSITIVE_HEADS.includes(h)) });
}

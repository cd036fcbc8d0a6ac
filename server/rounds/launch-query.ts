/**
 * What the coordinator fills into an analytics launch before the round is stored, so every device
 * of the round, the accountant and the ledger entry see one fixed query: the category list of a
 * category-counts query (the shop's catalog, else the serving vocabulary), the serving version
 * of a segment report (and the minimum cohort it may run over), and the blocks of an evaluation
 * (each version's parameters, statistics length and bound, whose root sum of squares is the clip).
 */
import { evaluationBlock } from '../../shared/analytics/federated-evaluation.ts';
import { MAX_QUERY_CATEGORIES, queryBound } from '../../shared/analytics/queries.ts';
import { MIN_SEGMENT_COHORT } from '../../shared/analytics/segments.ts';
import { configFromModelJson } from '../../shared/model/artifacts.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import type { RoundSpec } from '../../shared/protocol/messages.ts';
import type { ModelRegistry } from '../registry.ts';
import type { ModelStore } from '../storage/stores.ts';

export interface LaunchQueryContext {
  registry: ModelRegistry;
  catalogCategories?: readonly string[];
  minSegmentCohort?: number;
  modelPublished?: (version: number) => boolean;
}

/** A stored version's config, read from its model.json; `field` names the launch field in the error. */
export async function storedModelConfig(store: ModelStore, version: number, field: string): Promise<ModelConfig> {
  const files = await store.files(version);
  if (!files) throw new ProtocolError('NOT_FOUND', `${field}: model version ${version} has no files`);
  return configFromModelJson(files.modelJson);
}

/** Fills in what the coordinator fixes at launch (mutating `spec`); refusals name the field. */
export async function resolveLaunchQuery(spec: RoundSpec, context: LaunchQueryContext): Promise<void> {
  const query = spec.query;
  if (!query) return;
  const { registry } = context;
  if (query.statistic === 'category-counts' && !query.categories) {
    const categories = [...(context.catalogCategories ?? registry.current.config.vocabulary.categories)];
    if (categories.length === 0) throw new ProtocolError('INVALID_ARGUMENT', '"query.categories": this coordinator has no catalog and its vocabulary names no category (a hash-space start); give the list, e.g. the ids `portrait vocabulary discover` found');
    if (categories.length > MAX_QUERY_CATEGORIES) throw new ProtocolError('INVALID_ARGUMENT', `"query.categories": the catalog has ${categories.length} categories, more than the ${MAX_QUERY_CATEGORIES} one query may count over; give a list`);
    spec.query = { ...query, categories };
  } else if (query.statistic === 'segments') {
    if (query.version !== undefined || query.categories !== undefined || query.parameters !== undefined) throw new ProtocolError('INVALID_ARGUMENT', '"query.version": a segment query counts portraits of the serving version, which the coordinator fills in; a launch names only "by" and "minCount"');
    // A narrow query could single out a few shoppers: refused before it runs.
    const minCohort = context.minSegmentCohort ?? MIN_SEGMENT_COHORT;
    if (spec.clientsPerRound < minCohort) throw new ProtocolError('INVALID_ARGUMENT', `"clientsPerRound": a segment query needs a cohort of at least ${minCohort} devices, got ${spec.clientsPerRound}`);
    const serving = registry.serving ?? registry.current.record;
    const config = await storedModelConfig(registry.store, serving.version, 'the serving version');
    if (query.by.includes('interest') && (!config.heads.includes('interests') || config.vocabulary.categories.length === 0)) throw new ProtocolError('INVALID_ARGUMENT', `"query.by": the serving version ${serving.version} has no interests head (its vocabulary names no category: bootstrap one first), so no device can place itself by interest`);
    spec.query = { ...query, version: serving.version, parameters: serving.parameters, categories: [...config.vocabulary.categories] };
  } else if (query.statistic === 'evaluate') {
    const blocks = [];
    for (const version of query.versions) {
      const record = await registry.store.get(version);
      if (!record) throw new ProtocolError('NOT_FOUND', `"query.versions": model version ${version} does not exist`);
      if (context.modelPublished && !context.modelPublished(version)) throw new ProtocolError('MODEL_NOT_PUBLISHED', `"query.versions": model version ${version} is not published in the privacy ledger, so devices cannot fetch it`);
      blocks.push(evaluationBlock(query, version, record.parameters, await storedModelConfig(registry.store, version, '"query.versions"')));
    }
    spec.query = { ...query, blocks };
    // The bound on one device's contribution comes from the versions' configs: it is the round's clip.
    if (spec.privacy) spec.privacy.clip = queryBound(spec.query);
  }
}

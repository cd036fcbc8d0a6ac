/**
 * The serving pointer (issue 18): `POST /api/v1/models/promote` makes a version the one devices
 * profile with, and `POST /api/v1/models/rollout` stages a candidate for a share of devices.
 * Promotion is by evidence: a committed paired federated evaluation of the serving version and
 * the candidate (an `evaluate` analytics round, shared/analytics/federated-evaluation.ts) whose
 * 95 % interval for the chosen metric's difference lies above zero; or by an operator's explicit
 * override (`force`), recorded as such. A refusal says why and changes nothing.
 */
import { z } from 'zod';
import type { EvaluateSummary } from '../shared/analytics/federated-evaluation.ts';
import type { EvaluationMetric } from '../shared/analytics/evaluation.ts';
import type { HeadName } from '../shared/model/spec.ts';
import { ProtocolError } from '../shared/protocol/errors.ts';
import { describeIssues } from '../shared/protocol/messages.ts';
import type { ModelRecord, ServingPointer } from '../shared/protocol/messages.ts';
import type { ModelRegistry } from './registry.ts';
import type { RoundStore } from './storage/stores.ts';

const Version = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** The default metric a promotion is judged on: ranking of interests, the portrait's main head. */
export const DEFAULT_PROMOTION_METRIC = 'interests.microAuc';

export const PromoteRequestSchema = z
  .object({
    version: Version,
    /** The committed evaluate round comparing the serving version (first) with this one (second). */
    evidence: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    metric: z.string().regex(/^[a-z]+\.[A-Za-z0-9]+$/, 'expected head.metric, e.g. interests.microAuc').default(DEFAULT_PROMOTION_METRIC),
    /** An operator's override of the evidence rule; `reason` says why, and is recorded. */
    force: z.literal(true).optional(),
    reason: z.string().min(1).max(500).optional(),
  })
  .strict()
  .refine((r) => !r.force || r.reason !== undefined, { message: 'a forced promotion needs a "reason"', path: ['reason'] });

export const RolloutRequestSchema = z.object({ version: Version, fraction: z.number().min(0).max(1) }).strict();

export interface PromotionDeps {
  rounds: RoundStore;
  registry: ModelRegistry;
  modelPublished?: (version: number) => boolean;
  announce: () => void;
  clock: () => number;
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new ProtocolError('INVALID_ARGUMENT', describeIssues(parsed.error));
  return parsed.data;
}

async function publishedVersion(deps: PromotionDeps, version: number): Promise<ModelRecord> {
  const record = await deps.registry.store.get(version);
  if (!record) throw new ProtocolError('NOT_FOUND', `model version ${version} does not exist`);
  if (deps.modelPublished && !deps.modelPublished(version)) throw new ProtocolError('MODEL_NOT_PUBLISHED', `model version ${version} is not published in the privacy ledger`);
  return record;
}

/** The version devices profile with now: the pointer's, else the latest. */
function servingVersion(registry: ModelRegistry): { version: number; parameters: number } {
  const p = registry.serving;
  return p ? { version: p.version, parameters: p.parameters } : { version: registry.current.record.version, parameters: registry.current.record.parameters };
}

/** Why `evidence` does not allow promoting `candidate` over `baseline` on `metric`; or how it does. */
async function judge(rounds: RoundStore, evidence: number, baseline: number, candidate: number, metric: string): Promise<{ ok: true; reason: string } | { ok: false; reason: string }> {
  const r = await rounds.get(evidence);
  if (!r) throw new ProtocolError('NOT_FOUND', `"evidence": round ${evidence} does not exist`);
  const summary = r.result?.summary as EvaluateSummary | undefined;
  if (r.status !== 'committed' || summary?.statistic !== 'evaluate') throw new ProtocolError('INVALID_ARGUMENT', `"evidence": round ${evidence} is not a committed federated evaluation`);
  const d = summary.difference;
  if (!d || d.baseline !== baseline || d.candidate !== candidate) {
    return { ok: false, reason: `round ${evidence} did not compare the serving version v${baseline} (first) with v${candidate} (second)${d ? `: it compared v${d.baseline} with v${d.candidate}` : ''}` };
  }
  const [head, name] = metric.split('.') as [HeadName, EvaluationMetric];
  const m = d.heads[head]?.[name];
  if (!m || m.value === null || !m.interval) return { ok: false, reason: `round ${evidence} gives no interval for ${metric} (too few examples for its noise, or no such metric)` };
  const text = `${metric} of v${candidate} − v${baseline} = ${m.value.toFixed(4)}, 95% interval [${m.interval[0].toFixed(4)}, ${m.interval[1].toFixed(4)}] (round ${evidence}, ${r.participants} devices)`;
  return m.interval[0] > 0 ? { ok: true, reason: text } : { ok: false, reason: `${text}: its lower bound is not above 0, so v${candidate} is not shown better than the serving version` };
}

export async function promoteVersion(deps: PromotionDeps, body: unknown): Promise<ServingPointer> {
  const request = parse(PromoteRequestSchema, body);
  const record = await publishedVersion(deps, request.version);
  const serving = servingVersion(deps.registry);
  if (serving.version === request.version) throw new ProtocolError('INVALID_ARGUMENT', `model version ${request.version} is already the version devices profile with`);
  let reason: string;
  if (request.force) reason = `forced by an operator: ${request.reason}`;
  else {
    if (request.evidence === undefined) {
      throw new ProtocolError('PROMOTION_REFUSED', `promoting v${request.version} needs evidence: a paired federated evaluation of the serving version v${serving.version} and v${request.version} (round launch --task analytics --query evaluate --versions ${serving.version},${request.version}) whose interval for ${request.metric} lies above 0, or an operator's override (force, with a reason)`);
    }
    const verdict = await judge(deps.rounds, request.evidence, serving.version, request.version, request.metric);
    if (!verdict.ok) throw new ProtocolError('PROMOTION_REFUSED', `v${request.version} not promoted: ${verdict.reason}`);
    reason = verdict.reason;
  }
  const pointer: ServingPointer = { version: record.version, parameters: record.parameters, promotedAt: new Date(deps.clock()).toISOString(), reason, candidate: null };
  await deps.registry.setServing(pointer);
  deps.announce();
  return pointer;
}

/** Stages `version` for `fraction` of devices (0 ends the rollout); the serving version stays for the rest. */
export async function rolloutVersion(deps: PromotionDeps, body: unknown): Promise<ServingPointer> {
  const request = parse(RolloutRequestSchema, body);
  const record = await publishedVersion(deps, request.version);
  const serving = servingVersion(deps.registry);
  if (record.version === serving.version) throw new ProtocolError('INVALID_ARGUMENT', `model version ${record.version} is the serving version: a rollout stages another`);
  const current = deps.registry.serving;
  const pointer: ServingPointer = {
    version: serving.version,
    parameters: serving.parameters,
    promotedAt: current?.promotedAt ?? new Date(deps.clock()).toISOString(),
    reason: current?.reason ?? 'the latest version when the first rollout was staged',
    candidate: request.fraction > 0 ? { version: record.version, parameters: record.parameters, fraction: request.fraction } : null,
  };
  await deps.registry.setServing(pointer);
  deps.announce();
  return pointer;
}

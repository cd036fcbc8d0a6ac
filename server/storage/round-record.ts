/** The initial record of a launched round, shared by every RoundStore implementation. */
import type { RoundRecord, RoundSpec } from '../../shared/protocol/messages.ts';
import { pendingPrivacyRecord } from '../rounds/accounting.ts';

export function newRoundRecord(id: number, spec: RoundSpec, createdAt: string): RoundRecord {
  return {
    id,
    status: 'pending',
    stage: null,
    config: spec,
    selection: null,
    checkedIn: 0,
    selected: 0,
    participants: 0,
    baseModelVersion: null,
    modelVersion: null,
    createdAt,
    startedAt: null,
    finishedAt: null,
    durationMs: null,
    timings: {},
    metrics: null,
    privacy: pendingPrivacyRecord(spec.privacy, Boolean(spec.secagg)),
  };
}

/**
 * In-memory stores: the reference implementation of the storage contract (and a fast store for
 * tests and simulations that need no persistence).
 */
import type { ModelFiles } from '../../shared/model/artifacts.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import type { ModelRecord, RoundRecord, RoundSpec, ServingPointer } from '../../shared/protocol/messages.ts';
import { modelDigest } from './model-digest.ts';
import type { ApiRole, ApiTokenRecord, ApiTokenStore, ModelStore, NewModel, RoundPatch, RoundStore } from './stores.ts';
import { newRoundRecord } from './round-record.ts';

const clone = <T>(value: T): T => structuredClone(value);

export class MemoryRoundStore implements RoundStore {
  private readonly rounds = new Map<number, RoundRecord>();
  private nextId = 1;

  async createRounds(specs: readonly RoundSpec[], createdAt: string): Promise<RoundRecord[]> {
    return specs.map((spec) => {
      const record = newRoundRecord(this.nextId++, spec, createdAt);
      this.rounds.set(record.id, record);
      return clone(record);
    });
  }

  async update(id: number, patch: RoundPatch): Promise<RoundRecord> {
    const current = this.rounds.get(id);
    if (!current) throw new ProtocolError('NOT_FOUND', `round ${id} does not exist`);
    const next = { ...current, ...clone(patch) };
    this.rounds.set(id, next);
    return clone(next);
  }

  async get(id: number): Promise<RoundRecord | undefined> {
    const r = this.rounds.get(id);
    return r && clone(r);
  }

  async list(limit: number): Promise<RoundRecord[]> {
    return [...this.rounds.values()].sort((a, b) => b.id - a.id).slice(0, limit).map(clone);
  }

  async nextPending(): Promise<RoundRecord | undefined> {
    const r = [...this.rounds.values()].filter((x) => x.status === 'pending').sort((a, b) => a.id - b.id)[0];
    return r && clone(r);
  }

  async unfinished(): Promise<RoundRecord[]> {
    return [...this.rounds.values()].filter((x) => x.status === 'pending' || x.status === 'running').sort((a, b) => a.id - b.id).map(clone);
  }

  async abortUnfinished(reason: string, finishedAt: string): Promise<number> {
    let n = 0;
    for (const [id, r] of this.rounds) {
      if (r.status === 'pending' || r.status === 'running') {
        this.rounds.set(id, { ...r, status: 'aborted', stage: r.stage === null ? null : 'aborted', reason, finishedAt });
        n++;
      }
    }
    return n;
  }

  close(): void {}
}

export class MemoryModelStore implements ModelStore {
  private readonly models = new Map<number, { record: ModelRecord; files: ModelFiles; optimizerState?: Uint8Array }>();

  async add(model: NewModel, createdAt: string): Promise<ModelRecord> {
    const version = (Math.max(0, ...this.models.keys())) + 1;
    const record: ModelRecord = { version, createdAt, roundId: model.roundId, parentVersion: model.parentVersion, parameters: model.parameters, ...modelDigest(model.files), ...(model.derivedFrom ? { derivedFrom: [...model.derivedFrom] } : {}) };
    const entry: { record: ModelRecord; files: ModelFiles; optimizerState?: Uint8Array } = { record, files: clone(model.files) };
    if (model.optimizerState) entry.optimizerState = model.optimizerState.slice();
    this.models.set(version, entry);
    return clone(record);
  }

  async get(version: number): Promise<ModelRecord | undefined> {
    const m = this.models.get(version);
    return m && clone(m.record);
  }

  async files(version: number): Promise<ModelFiles | undefined> {
    const m = this.models.get(version);
    return m && clone(m.files);
  }

  async optimizerState(version: number): Promise<Uint8Array | undefined> {
    return this.models.get(version)?.optimizerState?.slice();
  }

  async latest(): Promise<ModelRecord | undefined> {
    const v = Math.max(0, ...this.models.keys());
    return this.get(v);
  }

  async list(): Promise<ModelRecord[]> {
    return [...this.models.values()].map((m) => clone(m.record)).sort((a, b) => b.version - a.version);
  }

  private pointer: ServingPointer | null = null;

  async serving(): Promise<ServingPointer | null> {
    return this.pointer && clone(this.pointer);
  }

  async setServing(pointer: ServingPointer): Promise<void> {
    this.pointer = clone(pointer);
  }

  close(): void {}
}

export class MemoryApiTokenStore implements ApiTokenStore {
  private readonly tokens: (ApiTokenRecord & { hash: Uint8Array })[] = [];

  async add(name: string, role: ApiRole, tokenHash: Uint8Array, createdAt: string, expiresAt: string | null = null): Promise<ApiTokenRecord> {
    const record: ApiTokenRecord = { id: this.tokens.length + 1, name, role, createdAt, expiresAt, revokedAt: null };
    this.tokens.push({ ...record, hash: tokenHash.slice() });
    return { ...record };
  }

  async all(): Promise<(ApiTokenRecord & { hash: Uint8Array })[]> {
    return this.tokens.map((t) => ({ ...t, hash: t.hash.slice() }));
  }

  async revoke(id: number, revokedAt: string): Promise<ApiTokenRecord | undefined> {
    const token = this.tokens.find((t) => t.id === id);
    if (!token) return undefined;
    token.revokedAt ??= revokedAt;
    const { hash: _hash, ...record } = token;
    return record;
  }

  close(): void {}
}

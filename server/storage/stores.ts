/**
 * Storage interfaces of the coordinator: rounds, model versions and API tokens. The round logic
 * sees only these, so the embedded SQLite default (sqlite.ts) and a later PostgreSQL store are
 * interchangeable; memory.ts is the reference implementation the contract tests also run.
 * Nothing here holds a user or client identity: rounds keep counts, not participants.
 */
import type { ServingPointer } from '../../shared/protocol/messages.ts';
import type { ModelFiles } from '../../shared/model/artifacts.ts';
import type { ModelRecord, RoundRecord, RoundSpec } from '../../shared/protocol/messages.ts';

export type RoundPatch = Partial<Omit<RoundRecord, 'id' | 'config' | 'createdAt'>>;

/**
 * A cluster node's claim to run rounds (server/cluster/lease.ts): the lease's name and the fencing
 * token the node got when it took it. A store shared by several nodes (PostgreSQL) makes a write
 * that carries a fence only while that lease still holds that token, in the same statement, and
 * throws FencedError otherwise: a deposed leader's late writes change nothing. A store only one
 * process can open (memory, SQLite) has no other writer and ignores it.
 */
export interface Fence {
  lease: string;
  token: number;
}

export class FencedError extends Error {
  constructor(readonly fence: Fence) {
    super(`the "${fence.lease}" lease has passed to another node (this node held token ${fence.token}): write refused`);
    this.name = 'FencedError';
  }
}

export interface RoundStore {
  /** Creates pending rounds with increasing ids, in one transaction. */
  createRounds(specs: readonly RoundSpec[], createdAt: string): Promise<RoundRecord[]>;
  /** FencedError when `fence` is given and no longer holds (see Fence). */
  update(id: number, patch: RoundPatch, fence?: Fence): Promise<RoundRecord>;
  get(id: number): Promise<RoundRecord | undefined>;
  /** Most recent first. */
  list(limit: number): Promise<RoundRecord[]>;
  /** Oldest pending round, the next one to run. */
  nextPending(): Promise<RoundRecord | undefined>;
  /** Every pending or running round, oldest first (the launch budget projects them). */
  unfinished(): Promise<RoundRecord[]>;
  /** Marks every pending or running round aborted (a restart): returns how many. */
  abortUnfinished(reason: string, finishedAt: string): Promise<number>;
  close(): void;
}

export interface NewModel {
  files: ModelFiles;
  roundId: number | null;
  parentVersion: number | null;
  parameters: number;
  /** A bootstrap version: the analytics rounds its vocabulary was built from (ModelRecord.derivedFrom). */
  derivedFrom?: number[];
  /** Server optimiser state after this version (FedAdam's m and v), to resume after a restart. */
  optimizerState?: Uint8Array;
}

export interface ModelStore {
  /** Stores the files atomically, then the record; returns the new version (latest + 1). */
  add(model: NewModel, createdAt: string, fence?: Fence): Promise<ModelRecord>;
  /** The serving pointer (shared/protocol/messages.ts ServingPointer); null: never set, devices profile with the latest version. */
  serving(): Promise<ServingPointer | null>;
  setServing(pointer: ServingPointer): Promise<void>;
  get(version: number): Promise<ModelRecord | undefined>;
  files(version: number): Promise<ModelFiles | undefined>;
  optimizerState(version: number): Promise<Uint8Array | undefined>;
  latest(): Promise<ModelRecord | undefined>;
  /** Newest first. */
  list(): Promise<ModelRecord[]>;
  close(): void;
}

export const API_ROLES = ['operator', 'auditor'] as const;
export type ApiRole = (typeof API_ROLES)[number];

export interface ApiTokenRecord {
  id: number;
  name: string;
  role: ApiRole;
  createdAt: string;
  /** ISO time from which the token no longer authenticates; null: it does not expire. */
  expiresAt: string | null;
  /** ISO time it was revoked; null: not revoked. */
  revokedAt: string | null;
}

export interface ApiTokenStore {
  /** Stores only the SHA-256 of the token; `expiresAt` null (the default): it does not expire. */
  add(name: string, role: ApiRole, tokenHash: Uint8Array, createdAt: string, expiresAt?: string | null): Promise<ApiTokenRecord>;
  /** Every stored hash, compared by the caller in constant time, revoked and expired ones included. */
  all(): Promise<(ApiTokenRecord & { hash: Uint8Array })[]>;
  /** Marks token `id` revoked (a second revocation keeps the first time); undefined when there is no such token. */
  revoke(id: number, revokedAt: string): Promise<ApiTokenRecord | undefined>;
  close(): void;
}

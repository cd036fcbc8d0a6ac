/**
 * The round store as a cluster leader's runner sees it: every update carries the leader's fence,
 * so once another node holds the rounds lease, the deposed leader's writes are refused by the
 * store (FencedError) instead of overwriting the new leader's abort.
 */
import type { Fence, RoundStore } from '../storage/stores.ts';

export function fencedRounds(store: RoundStore, fence: () => Fence): RoundStore {
  return {
    createRounds: (specs, createdAt) => store.createRounds(specs, createdAt),
    update: (id, patch) => store.update(id, patch, fence()),
    get: (id) => store.get(id),
    list: (limit) => store.list(limit),
    nextPending: () => store.nextPending(),
    unfinished: () => store.unfinished(),
    abortUnfinished: (reason, finishedAt) => store.abortUnfinished(reason, finishedAt),
    close: () => store.close(),
  };
}

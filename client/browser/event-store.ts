/**
 * The device's own storage, in IndexedDB (available in the page and in the Web Worker): behaviour
 * events with a retention window and a size cap, and small records (usage counters, privacy
 * spend). Nothing stored here is ever sent anywhere; features and labels are recomputed from it.
 */
import type { BehaviourEvent } from '../../shared/features/events.ts';

const EVENTS = 'events';
const RECORDS = 'records';

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

export interface RetentionRule {
  /** Events before this UTC day are deleted. */
  keepFromDay: number;
  maxEvents: number;
}

export class EventStore {
  private constructor(private readonly db: IDBDatabase) {}

  static async open(name = 'portrait'): Promise<EventStore> {
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = () => {
      const db = open.result;
      const events = db.createObjectStore(EVENTS, { autoIncrement: true });
      events.createIndex('day', 'day');
      db.createObjectStore(RECORDS);
    };
    return new EventStore(await request(open));
  }

  /** Adds events, then applies the retention rule; returns how many the store holds. */
  async add(events: readonly BehaviourEvent[], rule: RetentionRule): Promise<number> {
    const tx = this.db.transaction(EVENTS, 'readwrite');
    const store = tx.objectStore(EVENTS);
    for (const e of events) if (e.day >= rule.keepFromDay) store.add(e);
    await done(tx);
    return this.prune(rule);
  }

  async prune(rule: RetentionRule): Promise<number> {
    const tx = this.db.transaction(EVENTS, 'readwrite');
    const store = tx.objectStore(EVENTS);
    store.index('day').openCursor(IDBKeyRange.upperBound(rule.keepFromDay, true)).onsuccess = function () {
      const cursor = this.result;
      if (!cursor) return;
      cursor.delete();
      cursor.continue();
    };
    await done(tx);
    const tx2 = this.db.transaction(EVENTS, 'readwrite');
    const store2 = tx2.objectStore(EVENTS);
    const count = await request(store2.count());
    let excess = count - rule.maxEvents;
    if (excess > 0) {
      // Keys grow with insertion, so key order is oldest first.
      store2.openCursor().onsuccess = function () {
        const cursor = this.result;
        if (!cursor || excess <= 0) return;
        cursor.delete();
        excess--;
        cursor.continue();
      };
    }
    await done(tx2);
    return Math.min(count, rule.maxEvents);
  }

  async all(): Promise<BehaviourEvent[]> {
    const tx = this.db.transaction(EVENTS, 'readonly');
    const events = await request(tx.objectStore(EVENTS).getAll() as IDBRequest<BehaviourEvent[]>);
    return events;
  }

  async count(): Promise<number> {
    return request(this.db.transaction(EVENTS, 'readonly').objectStore(EVENTS).count());
  }

  /** Deletes every event and every record except those named in `keep`. */
  async clear(keep: readonly string[] = []): Promise<void> {
    const tx = this.db.transaction([EVENTS, RECORDS], 'readwrite');
    tx.objectStore(EVENTS).clear();
    const records = tx.objectStore(RECORDS);
    for (const key of (await request(records.getAllKeys())) as string[]) if (!keep.includes(key)) records.delete(key);
    await done(tx);
  }

  async getRecord<T>(key: string): Promise<T | undefined> {
    return (await request(this.db.transaction(RECORDS, 'readonly').objectStore(RECORDS).get(key))) as T | undefined;
  }

  async putRecord(key: string, value: unknown): Promise<void> {
    const tx = this.db.transaction(RECORDS, 'readwrite');
    tx.objectStore(RECORDS).put(value, key);
    await done(tx);
  }

  close(): void {
    this.db.close();
  }
}

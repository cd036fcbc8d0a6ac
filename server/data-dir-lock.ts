/**
 * One writer per data directory. The embedded coordinator holds `coordinator.lock` (its pid and
 * host) while it runs; a second coordinator on the same directory, or an offline command that
 * writes to it (`portrait audit rotate-key`), is refused while that process is alive: two
 * writers would each append to the ledger from their own idea of its head and break the chain.
 * A lock left by a process that is gone (a crash, SIGKILL) is taken over.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProtocolError } from '../shared/protocol/errors.ts';

export const DATA_DIR_LOCK_FILE = 'coordinator.lock';

interface LockBody {
  pid: number;
  host: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock file this young that cannot be read yet is being written by a starter (it is created, then filled). */
const WRITING_GRACE_MS = 5_000;

/** The live process holding the lock, or null when there is none (or only a stale one). */
function lockHolder(dataDir: string): LockBody | null {
  const file = path.join(dataDir, DATA_DIR_LOCK_FILE);
  let body: Partial<LockBody>;
  try {
    body = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockBody>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    const mtime = fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs;
    const writing = mtime !== undefined && Date.now() - mtime < WRITING_GRACE_MS;
    return writing ? { pid: Number.NaN, host: 'a coordinator still writing the lock', since: new Date(mtime).toISOString() } : null;
  }
  if (typeof body.pid !== 'number' || typeof body.host !== 'string') return null;
  // A lock from another host cannot be checked from here: treat it as held.
  if (body.host !== os.hostname()) return body as LockBody;
  return alive(body.pid) ? (body as LockBody) : null;
}

function refuse(dataDir: string, holder: LockBody, what: string): never {
  const who = Number.isNaN(holder.pid) ? holder.host : `pid ${holder.pid} on ${holder.host}`;
  throw new ProtocolError(
    'UNAVAILABLE',
    `${what}: data directory ${dataDir} is in use by a coordinator (${who} since ${holder.since}); stop it first (if none runs, delete ${path.join(dataDir, DATA_DIR_LOCK_FILE)})`,
  );
}

/** Takes the lock for this process (refusing when a live one holds it); returns its release. */
export function acquireDataDirLock(dataDir: string, what = 'cannot start the coordinator'): () => void {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, DATA_DIR_LOCK_FILE);
  const body: LockBody = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(body)}\n`, { flag: 'wx', mode: 0o600 });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        fs.rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = lockHolder(dataDir);
      if (holder) refuse(dataDir, holder, what);
      // Stale: its process is gone. Remove it and try once more (a racing starter may win).
      fs.rmSync(file, { force: true });
    }
  }
  throw new ProtocolError('UNAVAILABLE', `${what}: could not take the lock on ${dataDir} (another starter took it first)`);
}

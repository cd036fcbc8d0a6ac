/**
 * One writer per data directory. The embedded coordinator holds `coordinator.lock` (its pid, host
 * and a random nonce) while it runs; a second coordinator on the same directory, or an offline
 * command that writes to it (`portrait audit rotate-key`), is refused while that process is alive:
 * two writers would each append to the ledger from their own idea of its head and break the chain.
 * A lock left by a process that is gone (a crash, SIGKILL) is taken over.
 *
 * Every step is atomic, so racing starters have exactly one winner: the lock file is made whole
 * under a private name and link(2)ed into place (which fails if any lock exists); a stale lock is
 * replaced by rename(2) only by the one starter holding the takeover claim for that very file (a
 * claim file per stale lock, created the same way; a claim whose starter died passes to the next
 * number). Release removes the lock only while it still holds this process's nonce.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProtocolError } from '../shared/protocol/errors.ts';

export const DATA_DIR_LOCK_FILE = 'coordinator.lock';

interface LockBody {
  pid: number;
  host: string;
  since: string;
  nonce?: string;
}

/** The file at the lock path now: its body (null when unreadable) and an id of this very file. */
interface LockFile {
  body: Partial<LockBody> | null;
  /** Device, inode and content: a replaced or rewritten lock never has the id of the one it replaced. */
  generation: string;
  mtimeMs: number;
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

/** A lock file this young that cannot be read is being written by a starter of an older version (create, then fill). */
const WRITING_GRACE_MS = 5_000;
/** How often a starter looks again while another one holds the takeover claim, and how long it waits in between. */
const ATTEMPTS = 100;
const PAUSE_MS = 20;

function readLock(file: string): LockFile | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const stat = fs.fstatSync(fd);
    const text = fs.readFileSync(fd, 'utf8');
    let body: Partial<LockBody> | null = null;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null) body = parsed as Partial<LockBody>;
    } catch {
      body = null;
    }
    const generation = createHash('sha256').update(`${stat.dev}:${stat.ino}:${text}`).digest('hex').slice(0, 32);
    return { body, generation, mtimeMs: stat.mtimeMs };
  } finally {
    fs.closeSync(fd);
  }
}

/** The live process a lock or claim names, or null when it names none (its process is gone). */
function liveHolder(lock: LockFile): LockBody | null {
  const body = lock.body;
  if (body === null) {
    const writing = Date.now() - lock.mtimeMs < WRITING_GRACE_MS;
    return writing ? { pid: Number.NaN, host: 'a coordinator still writing the lock', since: new Date(lock.mtimeMs).toISOString() } : null;
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

function linkOrExists(from: string, to: string): boolean {
  try {
    fs.linkSync(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Replaces the stale lock `stale` with `lockTemp` if this starter wins the takeover claim for it.
 * Claims are numbered: claim k is made only once claim k-1's starter is gone, so at most one live
 * starter holds a claim on this file, and nothing else can replace it meanwhile (a new lock is
 * only linked where none exists, and the stale lock's own process is gone). False: another
 * starter is taking it over, or already did.
 */
function takeOver(dataDir: string, lockTemp: string, claimTemp: string, stale: LockFile): boolean {
  const file = path.join(dataDir, DATA_DIR_LOCK_FILE);
  const prefix = `${DATA_DIR_LOCK_FILE}.takeover-${stale.generation}.`;
  for (let k = 0; ; k++) {
    const claim = path.join(dataDir, `${prefix}${k}`);
    if (!linkOrExists(claimTemp, claim)) {
      const claimant = readLock(claim);
      if (claimant === null || liveHolder(claimant)) return false;
      continue;
    }
    let won = false;
    try {
      if (readLock(file)?.generation !== stale.generation) return false;
      fs.renameSync(lockTemp, file);
      won = true;
      return true;
    } finally {
      // The winner sweeps every claim on the file it replaced (those of starters that died too); a loser drops its own.
      const claims = won ? fs.readdirSync(dataDir).filter((name) => name.startsWith(prefix)).map((name) => path.join(dataDir, name)) : [claim];
      for (const c of claims) fs.rmSync(c, { force: true });
    }
  }
}

/** Removes the lock only while it is still this holder's (same nonce). */
function releaseOf(file: string, nonce: string): () => void {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (readLock(file)?.body?.nonce === nonce) fs.rmSync(file, { force: true });
  };
}

/** Takes the lock for this process (refusing when a live one holds it); returns its release. */
export function acquireDataDirLock(dataDir: string, what = 'cannot start the coordinator'): () => void {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, DATA_DIR_LOCK_FILE);
  const nonce = randomBytes(16).toString('hex');
  const body: LockBody = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), nonce };
  const lockTemp = path.join(dataDir, `${DATA_DIR_LOCK_FILE}.${nonce}.tmp`);
  const claimTemp = path.join(dataDir, `${DATA_DIR_LOCK_FILE}.${nonce}.claim.tmp`);
  try {
    fs.writeFileSync(lockTemp, `${JSON.stringify(body)}\n`, { flag: 'wx', mode: 0o600 });
    fs.writeFileSync(claimTemp, `${JSON.stringify(body)}\n`, { flag: 'wx', mode: 0o600 });
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (linkOrExists(lockTemp, file)) return releaseOf(file, nonce);
      const current = readLock(file);
      if (current === null) continue;
      const holder = liveHolder(current);
      if (holder) refuse(dataDir, holder, what);
      if (takeOver(dataDir, lockTemp, claimTemp, current)) return releaseOf(file, nonce);
      // Another starter holds the claim on this stale lock: wait to see whether it ends up the holder.
      pause(PAUSE_MS);
    }
  } finally {
    fs.rmSync(lockTemp, { force: true });
    fs.rmSync(claimTemp, { force: true });
  }
  throw new ProtocolError('UNAVAILABLE', `${what}: could not take the lock on ${dataDir} (other starters kept taking it over); try again`);
}

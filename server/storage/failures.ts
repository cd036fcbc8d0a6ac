/**
 * Storage that cannot take a write (a full disk, an I/O error, a read-only or vanished file) is a
 * condition to wait out, not a bug: callers get UNAVAILABLE (503 on the REST API, "try again"),
 * and the round runner retries its writes with backoff until they go through. This module tells
 * such failures apart from the rest: SQLite's result codes (better-sqlite3's `SqliteError.code`,
 * https://www.sqlite.org/rescode.html) and the errno codes of file writes.
 */
import { ProtocolError } from '../../shared/protocol/errors.ts';

const SQLITE_UNAVAILABLE = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|BUSY|LOCKED|PROTOCOL)(_|$)/;
const ERRNO_UNAVAILABLE = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EMFILE', 'ENFILE']);

/** A store or ledger write the round runner keeps retrying (readiness reports it). */
export interface StorageFailure {
  /** What is being written, e.g. "round 7: recording its abort". */
  what: string;
  /** The storage error (its code and first line, never a payload). */
  reason: string;
  /** When this write first failed (ISO). */
  since: string;
  attempts: number;
  retryInMs: number;
}

/** A storage failure as the wire sees it: UNAVAILABLE, naming the underlying code (never a payload). */
export class StorageUnavailableError extends ProtocolError {
  constructor(readonly storageCode: string, detail: string) {
    super('UNAVAILABLE', `storage unavailable (${storageCode}): ${detail}; try again once it takes writes`);
    this.name = 'StorageUnavailableError';
  }
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Whether `err` means the storage could not take a write (or a read) now. */
export function isStorageFailure(err: unknown): boolean {
  if (err instanceof StorageUnavailableError) return true;
  if (err instanceof ProtocolError) return false;
  const code = codeOf(err);
  return code !== undefined && (SQLITE_UNAVAILABLE.test(code) || ERRNO_UNAVAILABLE.has(code));
}

/** `err` as a StorageUnavailableError when it is a storage failure; otherwise `err` itself. */
export function asStorageError(err: unknown): unknown {
  if (err instanceof StorageUnavailableError || !isStorageFailure(err)) return err;
  const detail = err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : String(err);
  return new StorageUnavailableError(codeOf(err) ?? 'unknown', detail);
}

/** Runs `write`, throwing a storage failure as StorageUnavailableError. */
export function mapStorageErrors<T>(write: () => T): T {
  try {
    return write();
  } catch (err) {
    throw asStorageError(err);
  }
}

/**
 * Readiness (GET /readyz): whether the coordinator can make what it records durable now. Not ready
 * while the round runner retries a store or ledger write for want of storage (a full disk, an I/O
 * error: rounds/runner.ts), or while a probe write to the data directory fails (the embedded
 * default probes with a 4 KiB file, written, synced and removed, at most once a second and never
 * on the event loop's own time: node:fs promises). /healthz stays liveness: the process answers.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { asStorageError } from './failures.ts';
import type { StorageFailure } from './failures.ts';

export interface Readiness {
  ready: boolean;
  /** Present when not ready: UNAVAILABLE and why. */
  code?: 'UNAVAILABLE';
  message?: string;
  /** The write the runner is retrying, if any. */
  retrying?: StorageFailure;
  /** The data directory probe's failure, if any, and since when (ISO). */
  probe?: { reason: string; since: string };
}

export const PROBE_FILE = 'readiness-probe.tmp';

/** A probe that writes, syncs and removes a 4 KiB file in `dataDir`; it rejects when the directory takes no writes. */
export function dataDirWriteProbe(dataDir: string): () => Promise<void> {
  return async () => {
    const file = path.join(dataDir, PROBE_FILE);
    const handle = await fs.open(file, 'w', 0o600);
    try {
      await handle.write(Buffer.alloc(4096));
      await handle.sync();
    } finally {
      await handle.close();
      await fs.rm(file, { force: true });
    }
  };
}

export class ReadinessCheck {
  private probed: { at: number; failure: { reason: string; since: string } | null } | null = null;
  private probing: Promise<void> | null = null;

  constructor(
    private readonly options: {
      storageFailure: () => StorageFailure | null;
      probe?: () => Promise<void>;
      /** What the probe checks, for the message (default: the data directory takes writes). */
      probes?: string;
      clock: () => number;
      /** Probe at most this often; between probes the last result stands (default 1 s). */
      probeEveryMs?: number;
    },
  ) {}

  private async probe(): Promise<{ reason: string; since: string } | null> {
    const { probe, clock, probeEveryMs = 1_000 } = this.options;
    if (!probe) return null;
    if (!this.probed || clock() - this.probed.at >= probeEveryMs) {
      this.probing ??= probe()
        .then(() => null)
        .catch((err: unknown) => {
          const e = asStorageError(err);
          return { reason: e instanceof Error ? e.message : String(e), since: this.probed?.failure?.since ?? new Date(clock()).toISOString() };
        })
        .then((failure) => {
          this.probed = { at: clock(), failure };
          this.probing = null;
        });
      await this.probing;
    }
    return this.probed?.failure ?? null;
  }

  async report(): Promise<Readiness> {
    const probe = await this.probe();
    const retrying = this.options.storageFailure();
    if (!probe && !retrying) return { ready: true };
    const message = retrying ? `${retrying.what}: ${retrying.reason} (retry ${retrying.attempts + 1} in ${retrying.retryInMs} ms)` : `${this.options.probes ?? 'the data directory takes no writes'}: ${probe!.reason}`;
    return { ready: false, code: 'UNAVAILABLE', message, ...(retrying ? { retrying } : {}), ...(probe ? { probe } : {}) };
  }
}

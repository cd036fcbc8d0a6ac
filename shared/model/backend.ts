/**
 * The tfjs backend chain, independent of platform: try candidates in order and keep the first
 * that loads, or exactly the one asked for. Platforms supply the candidates (client/node:
 * tfjs-node-gpu → tfjs-node → wasm → cpu; the browser worker: webgl → wasm → cpu).
 */
import * as tf from '@tensorflow/tfjs';

export interface BackendCandidate {
  /** Name used on the command line (`--backend`). */
  name: string;
  /** Loads the package and makes its backend current; throws when it cannot. */
  load: () => Promise<void>;
}

export interface BackendChoice {
  name: string;
  /** tfjs's own name for the active backend (e.g. `tensorflow`, `wasm`). */
  tfjsBackend: string;
  /** The candidates tried before it; `installed` is false when the package is simply absent. */
  skipped: { name: string; reason: string; installed: boolean }[];
}

/** Thrown by a candidate's `load` when its package is not installed at all, the usual case for the optional native ones. */
export class BackendNotInstalledError extends Error {
  override name = 'BackendNotInstalledError';
}

export async function selectBackend(candidates: readonly BackendCandidate[], preferred?: string): Promise<BackendChoice> {
  const names = candidates.map((c) => c.name);
  if (preferred !== undefined && !names.includes(preferred)) {
    throw new RangeError(`"backend" expected one of ${names.join(', ')}, got ${JSON.stringify(preferred)}`);
  }
  const chain = preferred === undefined ? candidates : candidates.filter((c) => c.name === preferred);
  const skipped: BackendChoice['skipped'] = [];
  for (const candidate of chain) {
    try {
      await candidate.load();
      await tf.ready();
      return { name: candidate.name, tfjsBackend: tf.getBackend(), skipped };
    } catch (err) {
      skipped.push({ name: candidate.name, reason: firstLine(err), installed: !(err instanceof BackendNotInstalledError) });
    }
  }
  const detail = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  throw new Error(preferred === undefined ? `no tfjs backend could be loaded (${detail})` : `backend "${preferred}" could not be loaded (${detail})`);
}

/**
 * The one line that says which backend runs: `tfjs backend: wasm (node-gpu, node not installed)`.
 * A skipped candidate that is installed but failed is named as such; every reason is written out
 * only when `verbose`.
 */
export function describeBackendChoice(choice: BackendChoice, verbose = false): string {
  const line = `tfjs backend: ${choice.name}`;
  if (choice.skipped.length === 0) return line;
  if (verbose) return `${line}; skipped ${choice.skipped.map((s) => `${s.name} (${s.reason})`).join(', ')}`;
  const names = (installed: boolean) => choice.skipped.filter((s) => s.installed === installed).map((s) => s.name).join(', ');
  const parts = [names(false) && `${names(false)} not installed`, names(true) && `${names(true)} failed to load`].filter(Boolean);
  return `${line} (${parts.join('; ')})`;
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? '').slice(0, 200);
}

/**
 * The Node backend chain, the one place every Node entry point (CLI, coordinator, app client,
 * simulator workers) picks its tfjs backend: @tensorflow/tfjs-node-gpu → @tensorflow/tfjs-node →
 * wasm → cpu. The two native packages are optional dependencies whose install downloads
 * libtensorflow from outside the npm registry; where that fails they are simply absent and the
 * chain falls through to wasm, whose .wasm files ship inside the npm package.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { BackendCandidate, BackendChoice } from '../../shared/model/backend.ts';
import { selectBackend } from '../../shared/model/backend.ts';

export const NODE_BACKENDS = ['node-gpu', 'node', 'wasm', 'cpu'] as const;

async function loadNative(packageName: string, expectGpu: boolean): Promise<void> {
  // A variable specifier keeps the optional package out of type-checking and bundling.
  const specifier: string = packageName;
  await import(specifier);
  if (!(await tf.setBackend('tensorflow'))) throw new Error(`${packageName} loaded but its backend did not initialise`);
  if (expectGpu && process.env.CUDA_VISIBLE_DEVICES === '-1') throw new Error('GPU disabled by CUDA_VISIBLE_DEVICES=-1');
}

export function wasmDirectory(): string {
  const require = createRequire(import.meta.url);
  return `${path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'))}${path.sep}dist${path.sep}`;
}

export function nodeBackendCandidates(): BackendCandidate[] {
  return [
    { name: 'node-gpu', load: () => loadNative('@tensorflow/tfjs-node-gpu', true) },
    { name: 'node', load: () => loadNative('@tensorflow/tfjs-node', false) },
    {
      name: 'wasm',
      load: async () => {
        setWasmPaths(wasmDirectory());
        if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend did not initialise');
      },
    },
    {
      name: 'cpu',
      load: async () => {
        if (!(await tf.setBackend('cpu'))) throw new Error('cpu backend did not initialise');
      },
    },
  ];
}

let chosen: Promise<BackendChoice> | undefined;

/**
 * Picks the backend once per process and logs the choice (to stderr, keeping `--json` stdout
 * clean). `PORTRAIT_BACKEND` or the `preferred` argument (the CLI's `--backend`) pins it.
 */
export function useNodeBackend(preferred = process.env.PORTRAIT_BACKEND, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<BackendChoice> {
  chosen ??= selectBackend(nodeBackendCandidates(), preferred || undefined).then((choice) => {
    tf.env().set('PROD', true);
    const skipped = choice.skipped.map((s) => `${s.name} (${s.reason})`).join(', ');
    log(`tfjs backend: ${choice.name}${skipped ? `; skipped ${skipped}` : ''}`);
    return choice;
  });
  return chosen;
}

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
import { BackendNotInstalledError, describeBackendChoice, selectBackend } from '../../shared/model/backend.ts';

export const NODE_BACKENDS = ['node-gpu', 'node', 'wasm', 'cpu'] as const;

async function loadNative(packageName: string, expectGpu: boolean): Promise<void> {
  // A variable specifier keeps the optional package out of type-checking and bundling.
  const specifier: string = packageName;
  try {
    await import(specifier);
  } catch (err) {
    // Only the package itself missing is "not installed"; a dependency of it missing is a failure.
    const missing = (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(`'${packageName}'`);
    throw missing ? new BackendNotInstalledError(`${packageName} is not installed`, { cause: err }) : err;
  }
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
 * Picks the backend once per process and logs the choice in one short line (to stderr, keeping
 * `--json` stdout clean); `PORTRAIT_DEBUG` set writes out why each skipped backend was skipped.
 * `PORTRAIT_BACKEND` or the `preferred` argument (the CLI's `--backend`) pins it, and a pinned
 * backend that cannot load fails with every reason.
 */
export function useNodeBackend(preferred = process.env.PORTRAIT_BACKEND, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<BackendChoice> {
  chosen ??= selectBackend(nodeBackendCandidates(), preferred || undefined).then((choice) => {
    tf.env().set('PROD', true);
    log(describeBackendChoice(choice, Boolean(process.env.PORTRAIT_DEBUG)));
    return choice;
  });
  return chosen;
}

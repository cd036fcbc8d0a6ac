import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { nodeBackendCandidates, useNodeBackend } from '../../../client/node/tfjs-backend.ts';
import { describeBackendChoice, selectBackend } from '../../../shared/model/backend.ts';

describe('backend chain', () => {
  it('falls back past the absent native packages to wasm and logs the choice in one short line', async () => {
    const lines: string[] = [];
    const choice = await useNodeBackend(undefined, (l) => lines.push(l));
    // The native packages cannot install without outside network, so here they are absent.
    expect(choice.skipped).toEqual([
      { name: 'node-gpu', reason: '@tensorflow/tfjs-node-gpu is not installed', installed: false },
      { name: 'node', reason: '@tensorflow/tfjs-node is not installed', installed: false },
    ]);
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(lines).toEqual(['tfjs backend: wasm (node-gpu, node not installed)']);
  });

  it('names installed backends that failed apart from absent ones, and gives every reason only when verbose', () => {
    const choice = {
      name: 'wasm',
      tfjsBackend: 'wasm',
      skipped: [
        { name: 'node-gpu', reason: '@tensorflow/tfjs-node-gpu is not installed', installed: false },
        { name: 'node', reason: 'libtensorflow.so.2: cannot open shared object file', installed: true },
      ],
    };
    expect(describeBackendChoice(choice)).toBe('tfjs backend: wasm (node-gpu not installed; node failed to load)');
    expect(describeBackendChoice(choice, true)).toBe('tfjs backend: wasm; skipped node-gpu (@tensorflow/tfjs-node-gpu is not installed), node (libtensorflow.so.2: cannot open shared object file)');
    expect(describeBackendChoice({ name: 'node', tfjsBackend: 'tensorflow', skipped: [] })).toBe('tfjs backend: node');
  });

  it('honours an explicit choice and refuses unknown or unloadable ones', async () => {
    const candidates = nodeBackendCandidates();
    const cpu = await selectBackend(candidates, 'cpu');
    expect(cpu.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    await expect(selectBackend(candidates, 'tpu')).rejects.toThrow(/"backend" expected one of node-gpu, node, wasm, cpu/);
    // A pinned backend that cannot load fails with its reason.
    await expect(selectBackend(candidates, 'node')).rejects.toThrow('backend "node" could not be loaded (node: @tensorflow/tfjs-node is not installed)');
    await selectBackend(candidates, 'wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('tries candidates in order and keeps the first that loads', async () => {
    const order: string[] = [];
    const failing = (name: string) => ({ name, load: async () => { order.push(name); throw new Error(`${name} missing`); } });
    const choice = await selectBackend([failing('a'), failing('b'), { name: 'wasm', load: async () => { order.push('wasm'); await tf.setBackend('wasm'); } }, failing('never')]);
    expect(order).toEqual(['a', 'b', 'wasm']);
    expect(choice.skipped).toEqual([{ name: 'a', reason: 'a missing', installed: true }, { name: 'b', reason: 'b missing', installed: true }]);
  });
});

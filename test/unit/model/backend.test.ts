import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { nodeBackendCandidates, useNodeBackend } from '../../../client/node/tfjs-backend.ts';
import { selectBackend } from '../../../shared/model/backend.ts';

describe('backend chain', () => {
  it('falls back past the absent native packages to wasm and logs the choice', async () => {
    const lines: string[] = [];
    const choice = await useNodeBackend(undefined, (l) => lines.push(l));
    // The native packages cannot install without outside network, so here they are absent.
    expect(choice.skipped.map((s) => s.name)).toEqual(['node-gpu', 'node']);
    expect(choice.skipped.every((s) => /Cannot find package/.test(s.reason))).toBe(true);
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(lines.join('\n')).toMatch(/tfjs backend: wasm; skipped node-gpu/);
  });

  it('honours an explicit choice and refuses unknown or unloadable ones', async () => {
    const candidates = nodeBackendCandidates();
    const cpu = await selectBackend(candidates, 'cpu');
    expect(cpu.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    await expect(selectBackend(candidates, 'tpu')).rejects.toThrow(/"backend" expected one of node-gpu, node, wasm, cpu/);
    await expect(selectBackend(candidates, 'node')).rejects.toThrow(/backend "node" could not be loaded/);
    await selectBackend(candidates, 'wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('tries candidates in order and keeps the first that loads', async () => {
    const order: string[] = [];
    const failing = (name: string) => ({ name, load: async () => { order.push(name); throw new Error(`${name} missing`); } });
    const choice = await selectBackend([failing('a'), failing('b'), { name: 'wasm', load: async () => { order.push('wasm'); await tf.setBackend('wasm'); } }, failing('never')]);
    expect(order).toEqual(['a', 'b', 'wasm']);
    expect(choice.skipped).toEqual([{ name: 'a', reason: 'a missing' }, { name: 'b', reason: 'b missing' }]);
  });
});

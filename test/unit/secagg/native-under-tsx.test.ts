/**
 * The coordinator runs under tsx (bin/portrait.js registers it), and its X25519 and mask workers run
 * source text made from tsx-transformed functions; vitest transforms them differently. So the
 * workers are checked once in a child process started the way bin/portrait.js starts, against
 * tweetnacl and node:crypto's AES-CTR.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../..');

describe('native workers under tsx, as the coordinator runs them', () => {
  it('agree, derive seeds and mask exactly', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/fixtures/native-workers-under-tsx.ts')], { cwd: ROOT, timeout: 45_000 });
    const result = JSON.parse(stdout.trim()) as {
      publicKeys: string[];
      publicKeyReference: string;
      shared: string[];
      sharedReference: string[];
      seeds: string[];
      seedsReference: string[];
      mask: string;
      maskReference: string;
    };
    expect(result.publicKeys).toEqual([result.publicKeyReference, result.publicKeyReference]);
    expect(result.shared).toHaveLength(3);
    expect(result.shared).toEqual(result.sharedReference);
    expect(result.seeds).toHaveLength(3);
    expect(result.seeds).toEqual(result.seedsReference);
    expect(result.mask).toHaveLength(8000);
    expect(result.mask).toBe(result.maskReference);
  });
});

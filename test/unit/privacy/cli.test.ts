import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const run = (args: string[]): string => execFileSync(process.execPath, ['bin/portrait.js', 'privacy', ...args], { encoding: 'utf8' });

describe('portrait privacy (CLI)', () => {
  it('epsilon --json prints exactly one JSON document with the published value', () => {
    const out = run(['epsilon', '--q', '0.01', '--noise-multiplier', '1.0', '--steps', '1000', '--delta', '1e-5', '--json']);
    const doc = JSON.parse(out) as Record<string, number>;
    expect(Object.keys(doc)).toEqual(['q', 'noiseMultiplier', 'steps', 'delta', 'epsilon', 'order']);
    expect(Math.abs((doc.epsilon as number) - 2.101366525420273) / 2.101366525420273).toBeLessThan(1e-6);
  });

  it('epsilon --batch maps JSONL to JSONL in input order, adding epsilon and order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portrait-privacy-'));
    const file = join(dir, 'in.jsonl');
    writeFileSync(file, '{"q":0.004266666666666667,"noiseMultiplier":1.1,"steps":14063,"delta":1e-5}\n\n{"delta":1e-5,"steps":1000,"noiseMultiplier":1,"q":0.01}\n');
    const lines = run(['epsilon', '--batch', file]).trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(lines).toHaveLength(2);
    expect(Object.keys(lines[0] as object)).toEqual(['q', 'noiseMultiplier', 'steps', 'delta', 'epsilon', 'order']);
    expect(lines[0]?.order).toBe(8.1);
    expect(Math.abs((lines[0]?.epsilon as number) - 2.596655529521983)).toBeLessThan(1e-6);
    expect(lines[1]?.q).toBe(0.01);
  });
});

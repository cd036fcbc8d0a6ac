/**
 * `portrait profile --explain` through the real binary: a model trained by `train-central`, a
 * constructed shopper's events file, the explanations in JSON and as text in both languages, and
 * the argument errors with their codes.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { syntheticCategoryNames } from '../../shared/features/synthetic.ts';
import type { PortraitExplanation } from '../../shared/model/explain.ts';

const run = promisify(execFile);
const bin = path.resolve('bin/portrait.js');

async function portrait(args: string[]): Promise<{ stdout: string; code: number }> {
  try {
    const { stdout } = await run(process.execPath, [bin, ...args], { maxBuffer: 1 << 24 });
    return { stdout, code: 0 };
  } catch (err) {
    const failed = err as { stdout: string; code: number };
    return { stdout: failed.stdout, code: failed.code };
  }
}

describe('portrait profile --explain (real CLI processes)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-explain-'));
  const modelDir = path.join(dir, 'model');
  const events = path.join(dir, 'me.jsonl');
  let category = '';

  it('trains a model to explain and writes a shopper who only viewed one category', async () => {
    const trained = await portrait(['train-central', '--dataset', 'synthetic:200', '--epochs', '3', '--out', modelDir, '--json']);
    expect(trained.code).toBe(0);
    const metadata = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8')) as { userDefinedMetadata: { portrait: { vocabulary: { categories: string[] } } } };
    category = metadata.userDefinedMetadata.portrait.vocabulary.categories[3] as string;
    const day = 18_060;
    const rows = Array.from({ length: 12 }, (_, i) => ({ userId: 'me', day: day + (i % 6), type: 'view', itemId: `${category}-${i}`, category, price: 30 + i }));
    fs.writeFileSync(events, rows.map((r) => JSON.stringify(r)).join('\n'));
  });

  it('adds the explanations to --json, naming the category the shopper viewed', async () => {
    const { stdout, code } = await portrait(['profile', '--model', modelDir, '--events', events, '--explain', '--category-names', 'synthetic', '--json']);
    expect(code).toBe(0);
    const json = JSON.parse(stdout) as { explanations: PortraitExplanation; heads: Record<string, { top: { label: string; probability: number }[] }> };
    const { explanations } = json;
    expect(explanations.method).toMatchObject({ name: 'integrated-gradients', baseline: 'empty-history', output: 'probability', tolerance: 1e-3 });
    expect(Object.keys(explanations.heads)).toEqual(['interests', 'purchase', 'spending']);
    const name = syntheticCategoryNames().get(category)?.en as string;
    const interests = explanations.heads.interests;
    expect(interests?.label).toBe(json.heads.interests?.top[0]?.label);
    expect(interests?.top[0]).toMatchObject({ group: `category:${category}`, direction: 'raises', text: `12 views in ${name} (6 in the last 3 days)` });
    for (const h of Object.values(explanations.heads)) {
      expect(h?.completenessError).toBeLessThanOrEqual(1e-3);
      expect(h?.top.length).toBeLessThanOrEqual(3);
    }

    const plain = JSON.parse((await portrait(['profile', '--model', modelDir, '--events', events, '--json'])).stdout) as Record<string, unknown>;
    expect(plain.explanations).toBeUndefined();
  });

  it('prints a readable block in the language asked for', async () => {
    const zh = syntheticCategoryNames().get(category)?.zh as string;
    const { stdout, code } = await portrait(['profile', '--model', modelDir, '--events', events, '--explain', '--lang', 'zh', '--category-names', 'synthetic', '--top', '2']);
    expect(code).toBe(0);
    expect(stdout).toContain('为什么是这个画像');
    expect(stdout).toMatch(new RegExp(`^ +\\+\\d+\\.\\d  在「${zh}」浏览 12 次，其中近 3 天 6 次$`, 'm'));
    const en = (await portrait(['profile', '--model', modelDir, '--events', events, '--explain'])).stdout;
    expect(en).toContain('Why this portrait (integrated gradients against a shopper with no history; in percentage points)');
    expect(en).toContain(`12 views in ${category} (6 in the last 3 days)`); // no names given: the id
  });

  it('refuses a bad language, a bad count and a missing or malformed names file, naming the argument', async () => {
    const badLang = await portrait(['profile', '--model', modelDir, '--events', events, '--explain', '--lang', 'fr', '--json']);
    expect(badLang.code).toBe(1);
    expect(JSON.parse(badLang.stdout)).toEqual({ error: { code: 'INVALID_ARGUMENT', message: '"lang" expected one of zh, en, got "fr"' } });
    const badTop = await portrait(['profile', '--model', modelDir, '--events', events, '--explain', '--top', '0', '--json']);
    expect(JSON.parse(badTop.stdout)).toEqual({ error: { code: 'INVALID_ARGUMENT', message: '"top" expected an integer >= 1, got 0' } });
    const missing = await portrait(['profile', '--model', modelDir, '--events', events, '--explain', '--category-names', path.join(dir, 'none.json'), '--json']);
    expect(JSON.parse(missing.stdout)).toMatchObject({ error: { code: 'NOT_FOUND', message: expect.stringMatching(/^"category-names": no such file/) } });
    const malformed = path.join(dir, 'names.json');
    fs.writeFileSync(malformed, JSON.stringify({ [category]: { zh: '手机' } }));
    const bad = await portrait(['profile', '--model', modelDir, '--events', events, '--explain', '--category-names', malformed, '--json']);
    expect(JSON.parse(bad.stdout)).toMatchObject({ error: { code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^"category-names" expected/) } });
  });
});

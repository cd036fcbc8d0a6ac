/**
 * Shared by every browser test: launch Debian's Chromium headless through playwright-core with a
 * fresh profile, and a path under the gitignored artifacts/ folder for screenshots and logs.
 * Under CI=true a missing Chromium is an error, never a skip.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** True where tests can run Chromium; under CI its absence throws instead. */
export function chromiumAvailable(): boolean {
  if (fs.existsSync(CHROMIUM_PATH)) return true;
  if (process.env.CI === 'true') throw new Error(`Chromium not found at ${CHROMIUM_PATH} (CI=true: browser tests must run; .ci/run installs it)`);
  return false;
}

/** A persistent context on a fresh --user-data-dir; closing it deletes the directory. */
export async function launchChromium(options: { args?: string[] } = {}): Promise<BrowserContext> {
  chromiumAvailable();
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portrait-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...(options.args ?? [])],
  });
  context.on('close', () => {
    // Chromium may still be flushing the profile as it exits; a leftover temp dir is harmless.
    try {
      fs.rmSync(userDataDir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
    } catch {
      // left for the OS's temp cleaning
    }
  });
  return context;
}

export function artifactPath(...parts: string[]): string {
  const file = path.resolve('artifacts', ...parts);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  return file;
}

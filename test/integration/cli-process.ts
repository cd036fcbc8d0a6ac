/**
 * The real `portrait` binary as a child process, with a resolve hook that writes every
 * @tensorflow module the child resolves to its stderr, so a test can tell whether a command
 * loaded tfjs (test/integration/cli-start.test.ts, cli-token.test.ts).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';

const bin = path.resolve('bin/portrait.js');

/** Runs on the hooks thread, so it writes with writeSync rather than through the main thread's stderr. */
const HOOKS = `import { writeSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (resolved.url.includes('/@tensorflow/')) writeSync(2, 'resolved ' + resolved.url + '\\n');
  return resolved;
}`;
const REGISTER_HOOKS = `import { register } from 'node:module';\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `node bin/portrait.js ...args` with the resolve hook; never rejects (the exit code is in the result). */
export function portraitWatchingTfjs(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(REGISTER_HOOKS)}`, bin, ...args], { maxBuffer: 1 << 24, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Whether the run resolved any @tensorflow module (tfjs or one of its backends). */
export const loadsTfjs = (r: Run): boolean => /^resolved .*\/@tensorflow\//m.test(r.stderr);

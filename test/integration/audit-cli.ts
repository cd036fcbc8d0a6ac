/**
 * `portrait audit …` run in process (the command group registered on a fresh commander program),
 * its stdout and stderr captured: the audit tests call the real commands without a child process.
 */
import { Command } from 'commander';
import { vi } from 'vitest';
import { registerAuditCommands } from '../../scripts/cli/audit.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function auditCli(...args: string[]): Promise<CliResult> {
  const program = new Command().exitOverride();
  registerAuditCommands(program);
  const chunks: string[] = [];
  const errors: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  });
  const writeError = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    errors.push(String(chunk));
    return true;
  });
  process.exitCode = undefined;
  try {
    await program.parseAsync(['node', 'portrait', 'audit', ...args]);
  } finally {
    write.mockRestore();
    writeError.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, stdout: chunks.join(''), stderr: errors.join('') };
}

/** `auditCli(...args, '--json')`: its one JSON document, with the exit code. */
export async function auditJson<T = Record<string, unknown>>(...args: string[]): Promise<T & { code: number }> {
  const r = await auditCli(...args, '--json');
  return { ...(JSON.parse(r.stdout) as T), code: r.code };
}

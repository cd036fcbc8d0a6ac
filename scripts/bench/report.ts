/**
 * Shared by every benchmark: the machine description and appending a dated table, with the exact
 * command, to docs/benchmarks.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function machineLine(tfjsBackend: string): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  return `${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, tfjs backend ${tfjsBackend}`;
}

export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function appendBenchmark(title: string, tfjsBackend: string, table: string, notes = ''): void {
  const command = `npx tsx ${path.relative(process.cwd(), process.argv[1] ?? '')} ${process.argv.slice(2).join(' ')}`.trim();
  const section = [
    `## ${title} — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Machine: ${machineLine(tfjsBackend)}`,
    `Command: \`${command}\``,
    '',
    table,
    notes ? `\n${notes}` : '',
    '',
  ].join('\n');
  const file = path.resolve('docs/benchmarks.md');
  if (!fs.existsSync(file)) fs.writeFileSync(file, '# Benchmarks\n\nEvery section is appended by a script under `scripts/bench/`, with its date, machine and exact command.\n\n');
  fs.appendFileSync(file, `${section}\n`);
  process.stdout.write(`${table}\n`);
}

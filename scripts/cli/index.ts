/** The list of command groups; add a group by importing its `register` here. */
import type { Command } from 'commander';
import { registerCentralCommands } from './central.ts';
import { registerPrivacyCommands } from './privacy.ts';

export function registerCommands(program: Command): void {
  registerCentralCommands(program);
  registerPrivacyCommands(program);
}

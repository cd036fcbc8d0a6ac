/** The list of command groups; add a group by importing its `register` here. */
import type { Command } from 'commander';

export function registerCommands(_program: Command): void {}

/** The list of command groups; add a group by importing its `register` here. */
import type { Command } from 'commander';
import { registerAuditCommands } from './audit.ts';
import { registerCentralCommands } from './central.ts';
import { registerDemoCommand } from './demo.ts';
import { registerModelCommands } from './model.ts';
import { registerPlatformCommands } from './platform.ts';
import { registerPrivacyCommands } from './privacy.ts';
import { registerRoundCommands } from './round.ts';
import { registerServerCommand } from './server.ts';
import { registerSimulateCommand } from './simulate.ts';

export function registerCommands(program: Command): void {
  registerCentralCommands(program);
  registerPrivacyCommands(program);
  registerServerCommand(program);
  registerRoundCommands(program);
  registerModelCommands(program);
  registerSimulateCommand(program);
  registerDemoCommand(program);
  registerAuditCommands(program);
  registerPlatformCommands(program);
}

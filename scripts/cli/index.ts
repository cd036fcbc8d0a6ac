/**
 * The list of command groups; add a group by importing its `register` here. Defining the commands
 * must stay cheap, since every start does it (`--version` included): a group's module imports
 * tfjs, the coordinator, the client and the stores only inside its actions (`await import`), so a
 * command loads what it runs and no more. test/integration/cli-start.test.ts checks which commands
 * load tfjs.
 */
import type { Command } from 'commander';
import { registerAuditCommands } from './audit.ts';
import { registerCentralCommands } from './central.ts';
import { registerDemoCommand } from './demo.ts';
import { registerModelCommands } from './model.ts';
import { registerSegmentCommands } from './segments.ts';
import { registerPlatformCommands } from './platform.ts';
import { registerPrivacyCommands } from './privacy.ts';
import { registerRoundCommands } from './round.ts';
import { registerServerCommand } from './server.ts';
import { registerSimulateCommand } from './simulate.ts';
import { registerTokenCommands } from './token.ts';
import { registerVocabularyCommands } from './vocabulary.ts';

export function registerCommands(program: Command): void {
  registerCentralCommands(program);
  registerPrivacyCommands(program);
  registerServerCommand(program);
  registerRoundCommands(program);
  registerModelCommands(program);
  registerVocabularyCommands(program);
  registerSegmentCommands(program);
  registerSimulateCommand(program);
  registerDemoCommand(program);
  registerAuditCommands(program);
  registerPlatformCommands(program);
  registerTokenCommands(program);
}

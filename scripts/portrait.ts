/**
 * The `portrait` CLI: one commander program; each command group lives in scripts/cli/ and
 * registers itself here.
 */
import { Command } from 'commander';
import { registerCommands } from './cli/index.ts';

const program = new Command()
  .name('portrait')
  .description('Privacy-preserving federated learning of e-commerce user portraits')
  .version('0.1.0')
  .showHelpAfterError();

registerCommands(program);
await program.parseAsync(process.argv);

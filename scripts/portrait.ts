/**
 * The `portrait` CLI: one commander program; each command group lives in scripts/cli/ and
 * registers itself here. Argument errors keep the `--json` promise: one
 * `{ error: { code: "INVALID_ARGUMENT", message } }` document on stdout (commander's text and the
 * help still go to stderr).
 */
import { Command, CommanderError } from 'commander';
import { registerCommands } from './cli/index.ts';
import { writeError } from './cli/output.ts';

const program = new Command()
  .name('portrait')
  .description('Privacy-preserving federated learning of e-commerce user portraits')
  .version('0.1.0')
  .showHelpAfterError()
  // Set before the commands are registered, so every subcommand inherits it.
  .exitOverride();

registerCommands(program);

/** Commander's message without its `error: ` prefix; a bare command group names what is missing. */
function argumentErrorMessage(err: CommanderError): string {
  if (err.code === 'commander.help') return 'a subcommand is required (see --help)';
  return err.message.replace(/^error: /, '');
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // Commander printed the text already; --json gets its one document.
  if (err.exitCode !== 0) writeError('INVALID_ARGUMENT', argumentErrorMessage(err), true);
  process.exitCode = err.exitCode;
}

/**
 * The `portrait` CLI: one commander program; each command group lives in scripts/cli/ and
 * registers itself here. Argument errors keep the `--json` promise: one
 * `{ error: { code: "INVALID_ARGUMENT", message } }` document on stdout (commander's text goes to
 * stderr, followed by a pointer to the command's --help rather than the whole help).
 */
import { Command, CommanderError } from 'commander';
import type { Option } from 'commander';
import { registerCommands } from './cli/index.ts';
import { writeError } from './cli/output.ts';

const program = new Command()
  .name('portrait')
  .description('Privacy-preserving federated learning of e-commerce user portraits')
  .version('0.1.0')
  // Set before the commands are registered, so every subcommand inherits it.
  .exitOverride();

registerCommands(program);
checkRequiredOptionsLast(program);

/**
 * Commander checks required options before unknown ones, so a mistyped flag
 * (`--client-per-round 5`) used to be reported as the required option it failed to give. Here the
 * required options are checked in a preAction hook instead, which commander runs after its
 * unknown-option check: the mistyped flag is named first, with commander's suggestion of the close
 * one. Every command also answers an argument error with a pointer to its own --help.
 */
function checkRequiredOptionsLast(root: Command): void {
  const required = new Map<Command, Option[]>();
  const walk = (command: Command, path: string) => {
    command.showHelpAfterError(`(see ${path} --help)`);
    const mandatory = command.options.filter((option) => option.mandatory);
    for (const option of mandatory) option.makeOptionMandatory(false);
    if (mandatory.length > 0) required.set(command, mandatory);
    for (const sub of command.commands) walk(sub, `${path} ${sub.name()}`);
  };
  walk(root, root.name());
  root.hook('preAction', (_root, actionCommand) => {
    for (const option of required.get(actionCommand) ?? []) {
      if (actionCommand.getOptionValue(option.attributeName()) === undefined) {
        actionCommand.error(`error: required option '${option.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
      }
    }
  });
}

/** Commander's message without its `error: ` prefix, on one line; a bare command group names what is missing. */
function argumentErrorMessage(err: CommanderError): string {
  if (err.code === 'commander.help') return 'a subcommand is required (see --help)';
  return err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // Commander printed the text already; --json gets its one document.
  if (err.exitCode !== 0) writeError('INVALID_ARGUMENT', argumentErrorMessage(err), true);
  process.exitCode = err.exitCode;
}

#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { packageVersion } from './version.js';
import { CliError } from './errors.js';
import { groupsFor } from './commands/routes.js';

const program = new Command();
program
  .name('bastion')
  .description('Bastion: a security gateway for the Model Context Protocol.\nEvery tool call is authenticated, checked, limited, sandboxed and audited.')
  .version(packageVersion(), '-V, --version', 'print the Bastion version')
  .showHelpAfterError()
  .exitOverride()
  // The command list shows each command's first description line; the rest is in its own help.
  .configureHelp({ subcommandDescription: (command) => command.summary() || (command.description().split('\n')[0] ?? '') });

// Only the module of the command being run is loaded (routes.ts): a CI step pays the CLI's start-up once per scanned server.
const commandGroups = await groupsFor(process.argv.slice(2));
for (const register of commandGroups) register(program);

// Commander's help command takes one name; `bastion help token new` means `bastion token new --help`.
const args = process.argv.slice(2);
const argv = args[0] === 'help' && args.length > 2 ? [...process.argv.slice(0, 2), ...args.slice(1), '--help'] : process.argv;

try {
  await program.parseAsync(argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode;
  } else if (error instanceof CliError) {
    process.stderr.write(`bastion: ${error.message}\n`);
    process.exitCode = error.exitCode;
  } else {
    process.stderr.write(`bastion: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}

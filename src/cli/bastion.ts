#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { packageVersion } from './version.js';
import { commandGroups } from './commands/index.js';
import { CliError } from './errors.js';

const program = new Command();
program
  .name('bastion')
  .description('Bastion: a security gateway for the Model Context Protocol.\nEvery tool call is authenticated, checked, limited, sandboxed and audited.')
  .version(packageVersion(), '-V, --version', 'print the Bastion version')
  .showHelpAfterError()
  .exitOverride();

for (const register of commandGroups) register(program);

try {
  await program.parseAsync(process.argv);
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

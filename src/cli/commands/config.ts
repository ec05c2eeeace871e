import type { Command } from 'commander';
import { ConfigError, loadConfigFile } from '../../config/index.js';
import { CliError } from '../errors.js';
import type { RegisterCommands } from './index.js';

export const registerConfig: RegisterCommands = (program: Command) => {
  const config = program.command('config').description('work with bastion.yaml');
  config
    .command('check')
    .description('validate a config file; prints every problem with file:line:column, the field and the fix (exit 2 if invalid)')
    .argument('<file>', 'bastion.yaml or .json')
    .action((file: string) => {
      try {
        const loaded = loadConfigFile(file);
        const servers = Object.entries(loaded.config.servers).map(([name, server]) => `${name} (${server.transport})`);
        process.stdout.write(`${file}: OK — ${servers.length} server(s): ${servers.join(', ')}\n`);
      } catch (error) {
        if (error instanceof ConfigError) throw new CliError(error.message, 2);
        throw error;
      }
    });
};

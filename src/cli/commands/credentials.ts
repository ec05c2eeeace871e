// `bastion credentials list | revoke`: the operator's view of the upstream credential vault.
// list shows who holds a token for which server, until when, with which scopes; never a token.
// revoke deletes an agent's tokens for a server: the running gateway reads the vault on each
// use, so that agent's next call to the server asks for consent again.
import type { Command } from 'commander';
import { loadConfigFile } from '../../config/index.js';
import { openVault, type CredentialSummary } from '../../credentials/index.js';
import { CliError } from '../errors.js';
import type { RegisterCommands } from './index.js';

function vaultFor(configPath: string): ReturnType<typeof openVault> {
  const loaded = loadConfigFile(configPath);
  try {
    return openVault(loaded.config, loaded.baseDir);
  } catch (error) {
    throw new CliError(error instanceof Error ? error.message : String(error), 2);
  }
}

function line(record: CredentialSummary): string {
  return [record.agent, record.server, record.expiresAt ?? 'no expiry', record.scopes.length === 0 ? '-' : record.scopes.join(' '), record.updatedAt].join('  ');
}

export const registerCredentials: RegisterCommands = (program: Command) => {
  const credentials = program.command('credentials').description('per-agent upstream credentials in the encrypted vault (list, revoke)');
  credentials
    .command('list')
    .description('agent, server, expiry and scopes of each stored upstream token (never the token)')
    .requiredOption('--config <file>', 'bastion.yaml')
    .option('--json', 'print the records as JSON')
    .action((flags: { config: string; json?: boolean }) => {
      let records: CredentialSummary[];
      try {
        records = vaultFor(flags.config).list().filter((record) => record.kind === 'tokens');
      } catch (error) {
        throw error instanceof CliError ? error : new CliError((error as Error).message, 2);
      }
      if (flags.json === true) process.stdout.write(`${JSON.stringify(records.map(({ agent, server, expiresAt, scopes, updatedAt }) => ({ agent, server, expiresAt, scopes, updatedAt })), null, 2)}\n`);
      else process.stdout.write(records.length === 0 ? 'no stored upstream credentials\n' : `AGENT  SERVER  EXPIRES  SCOPES  UPDATED\n${records.map(line).join('\n')}\n`);
    });
  credentials
    .command('revoke')
    .description("delete an agent's tokens for a server; its next call there asks for consent again")
    .argument('<agent>', 'agent id, as bastion credentials list shows it')
    .argument('<server>', 'server name from the config')
    .requiredOption('--config <file>', 'bastion.yaml')
    .action(async (agent: string, server: string, flags: { config: string }) => {
      const found = await vaultFor(flags.config).revoke(agent, server).catch((error: unknown) => {
        throw new CliError((error as Error).message, 2);
      });
      if (!found) throw new CliError(`no stored credentials for agent '${agent}' at server '${server}' (bastion credentials list shows them)`, 1);
      process.stdout.write(`revoked the credentials of agent '${agent}' at server '${server}'\n`);
    });
};

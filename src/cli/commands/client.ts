import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CLIENT_IDS, ClientConfigError, isClientId, listClients, setupClient, type BastionEndpoint, type LocationEnv } from '../../clients/index.js';
import { CliError } from '../errors.js';
import type { RegisterCommands } from './index.js';

interface SetupOptions {
  transport: string;
  url: string;
  tokenEnv: string;
  config?: string;
  name: string;
  scope: string;
  project: string;
  print?: boolean;
}

function locationEnv(project: string): LocationEnv {
  return { home: process.env['HOME'] ?? homedir(), project: resolve(project), platform: process.platform, appData: process.env['APPDATA'] };
}

/** The command a client runs to start this Bastion over stdio: this node, this CLI, absolute paths. */
function stdioEndpoint(config: string | undefined): BastionEndpoint {
  const cli = fileURLToPath(new URL('../bastion.js', import.meta.url));
  return { transport: 'stdio', command: process.execPath, args: [cli, 'serve', '--stdio', ...(config === undefined ? [] : ['--config', resolve(config)])] };
}

function endpointFor(options: SetupOptions): BastionEndpoint {
  if (options.transport === 'stdio') return stdioEndpoint(options.config);
  if (options.transport !== 'http') throw new CliError(`--transport must be stdio or http, got '${options.transport}'`, 2);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(options.tokenEnv)) throw new CliError(`--token-env must be an environment variable name, got '${options.tokenEnv}'`, 2);
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new CliError(`--url is not a URL: '${options.url}'`, 2);
  }
  return { transport: 'http', url: url.href, tokenEnv: options.tokenEnv };
}

export const registerClient: RegisterCommands = (program: Command) => {
  const client = program.command('client').description('write Bastion into the MCP config of Claude Desktop, Claude Code, Cursor, VS Code or Windsurf');
  client
    .command('setup')
    .description(`add (or replace) a Bastion entry in a client's MCP config, keeping every other entry; the old file is kept as FILE.bak-TIME\nclients: ${CLIENT_IDS.join(', ')}`)
    .argument('<client>', CLIENT_IDS.join(' | '))
    .option('--transport <stdio|http>', 'how the client reaches Bastion: http (a running gateway) or stdio (the client starts Bastion)', 'http')
    .option('--url <url>', 'the gateway URL for --transport http', 'http://127.0.0.1:8080/mcp')
    .option('--token-env <NAME>', 'environment variable the client reads the bearer token from (the token never goes in the file)', 'BASTION_TOKEN')
    .option('-c, --config <file>', 'bastion.yaml the stdio entry starts Bastion with (default: the embedded demo config)')
    .option('--name <name>', 'the server name the client shows', 'bastion')
    .option('--scope <user|project>', "user-wide config, or the project's own (where the client has one)", 'user')
    .option('--project <dir>', 'the project directory for --scope project', '.')
    .option('--print', 'print the resulting file instead of writing it')
    .action((id: string, options: SetupOptions) => {
      if (!isClientId(id)) throw new CliError(`unknown client '${id}': one of ${CLIENT_IDS.join(', ')}`, 2);
      if (options.scope !== 'user' && options.scope !== 'project') throw new CliError(`--scope must be user or project, got '${options.scope}'`, 2);
      try {
        const result = setupClient({ client: id, scope: options.scope, env: locationEnv(options.project), endpoint: endpointFor(options), name: options.name, dryRun: options.print === true });
        if (options.print === true) {
          process.stdout.write(`# ${result.path}\n${result.text}`);
          return;
        }
        process.stdout.write(`${result.replaced ? 'replaced' : 'added'} '${options.name}' in ${result.path}${result.backup === undefined ? '' : ` (previous file kept as ${result.backup})`}\n`);
        if (options.transport === 'http') process.stdout.write(`the client reads the token from $${options.tokenEnv}: set it in the environment the client starts in\n`);
      } catch (error) {
        if (error instanceof ClientConfigError) throw new CliError(error.message, 2);
        throw error;
      }
    });
  client
    .command('list')
    .description('show which known client config files exist and which have a Bastion entry')
    .option('--name <name>', 'the server name to look for', 'bastion')
    .option('--project <dir>', 'the project directory whose project-scope files are checked', '.')
    .action((options: { name: string; project: string }) => {
      for (const row of listClients(locationEnv(options.project), options.name)) {
        process.stdout.write(`${row.client.padEnd(15)} ${row.scope.padEnd(8)} ${row.state.padEnd(15)} ${row.path}${row.target === undefined ? '' : `  -> ${row.target}`}\n`);
      }
    });
};

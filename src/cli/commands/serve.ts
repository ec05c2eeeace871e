import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { resolveAuditConfig, writerLockHolder } from '../../audit/index.js';
import { hashToken } from '../../auth/index.js';
import { createBastion, type Bastion } from '../../app/index.js';
import { ConfigError, embeddedDefaultConfig, loadConfigFile, materializeDemo, type BastionConfig, type LoadedConfig } from '../../config/index.js';
import { PolicyError } from '../../policy/index.js';
import { serverUid } from '../../sandbox/index.js';
import { createLogger, type Logger } from '../../observability/index.js';
import { CliError } from '../errors.js';
import { packageVersion } from '../version.js';
import type { RegisterCommands } from './index.js';
import { explainFailureToStdioClient } from './startup-failure.js';
import { installProcessGuard } from './process-guard.js';

interface ServeOptions {
  config?: string;
  stdio?: boolean;
  port?: string;
}

export const registerServe: RegisterCommands = (program: Command) => {
  program
    .command('serve')
    .description('run the gateway: clients connect to Bastion, Bastion connects to the configured MCP servers.\nWithout --config it fronts the MCP reference servers on http://127.0.0.1:8080/mcp with a one-time token.')
    .option('-c, --config <file>', 'bastion.yaml or .json to use (default: the embedded demo config)')
    .option('--stdio', 'serve one client over stdin/stdout (for clients that launch Bastion as a command)')
    .option('-p, --port <port>', 'override listeners.http.port')
    .addHelpText(
      'after',
      '\nEnvironment:\n' +
        '  BASTION_PORT       port of the HTTP listener when no --port is given (demo config)\n' +
        "  BASTION_TOKEN      the demo agent's bearer token (default: a new one each start)\n" +
        '  BASTION_LOG_LEVEL  operational log level: fatal, error, warn, info (default), debug, trace\n',
    )
    .action(async (options: ServeOptions) => serve(options));
};

function load(options: ServeOptions): LoadedConfig {
  try {
    return options.config === undefined ? embeddedDefaultConfig() : loadConfigFile(options.config);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, 2);
    throw error;
  }
}

async function serve(options: ServeOptions): Promise<void> {
  try {
    await startServing(options);
  } catch (error) {
    // A client that launched Bastion over stdio would only see "connection closed": tell it why.
    if (options.stdio === true) {
      const reason = error instanceof Error ? error.message : String(error);
      process.stderr.write(`bastion: ${reason}\n`);
      await explainFailureToStdioClient(reason);
    }
    throw error;
  }
}

async function startServing(options: ServeOptions): Promise<void> {
  const loaded = load(options);
  const logger = createLogger();
  const { config } = loaded;
  const stateDir = resolve(loaded.baseDir, config.stateDir);
  // Refuse before touching the state directory, so a second start changes nothing of the first's.
  const auditDir = resolveAuditConfig(config.audit, stateDir).dir;
  const holder = writerLockHolder(auditDir);
  if (holder !== undefined) throw new CliError(`the state directory ${stateDir} is in use by another Bastion (process ${holder}, audit log ${auditDir}); stop it, or give this one its own stateDir`, 2);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  if (options.config === undefined) materializeDemo(stateDir, (server) => (process.getuid?.() === 0 ? serverUid(server) : undefined));
  // The same changes are made to every reloaded config, so that they do not read as edits.
  const adjust = (changed: BastionConfig): void => {
    if (options.stdio === true) return;
    if (changed.listeners.http === undefined) changed.listeners.http = { host: '127.0.0.1', port: 8080, path: '/mcp', allowedOrigins: [], maxSessions: 64, sessionIdleSeconds: 900 };
    if (options.port !== undefined) changed.listeners.http.port = Number(options.port);
  };
  let bastion;
  try {
    bastion = await createBastion({ loaded, logger, version: packageVersion(), adjust });
  } catch (error) {
    if (error instanceof PolicyError) throw new CliError(`${error.message}\n(to run without least privilege, which is not recommended, set policy.enforce: false)`, 2);
    throw new CliError(error instanceof Error ? error.message : String(error));
  }
  const { gateway } = bastion;
  let stopping = false;
  const shutdown = async (signal: string, exitCode = 0): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: answering requests in flight, closing sessions and stopping upstream servers');
    await bastion.close().catch((error: unknown) => logger.error({ err: error }, 'error while shutting down'));
    logger.flush();
    process.exit(exitCode);
  };
  installProcessGuard(logger, (reason) => void shutdown(reason, 70));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  if (options.stdio === true) {
    const agent = config.listeners.stdio?.agent ?? 'local';
    const listener = gateway.startStdio({ agentId: agent, tokenFingerprint: 'stdio', method: 'stdio' });
    logger.info({ agent, servers: Object.keys(config.servers) }, 'serving one client over stdio');
    await startAdmin(bastion, logger);
    await listener.whenClientGone();
    await shutdown('stdin closed');
    return;
  }

  adjust(config);
  let demoToken: string | undefined;
  if (options.config === undefined && config.auth.apiTokens.length === 0) {
    demoToken = process.env['BASTION_TOKEN'] ?? randomBytes(24).toString('base64url');
    config.auth.apiTokens.push({ agent: 'demo-agent', sha256: hashToken(demoToken) });
  }
  let url: string;
  try {
    url = await gateway.startHttp();
  } catch (error) {
    await bastion.close();
    throw new CliError(error instanceof Error ? error.message : String(error));
  }
  logger.info({ url, servers: Object.keys(config.servers) }, 'gateway listening');
  await startAdmin(bastion, logger);
  if (demoToken !== undefined) {
    process.stderr.write(
      `\nBastion is listening on ${url} in front of: ${Object.keys(config.servers).join(', ')}\n` +
        `Agent 'demo-agent' token${process.env['BASTION_TOKEN'] === undefined ? ' (new each start; set BASTION_TOKEN to fix it)' : ''}:\n  ${demoToken}\n` +
        `Try it:\n  npx @modelcontextprotocol/inspector-cli --cli ${url} --transport http --header "Authorization: Bearer ${demoToken}" --method tools/list\n\n`,
    );
  }
}

/** The admin listener (metrics, health) when configured; a failure to bind stops the start. */
async function startAdmin(bastion: Bastion, logger: Logger): Promise<void> {
  let url: string | undefined;
  try {
    url = await bastion.startAdmin();
  } catch (error) {
    await bastion.close();
    throw new CliError(`the admin listener could not start: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (url !== undefined) logger.info({ url }, 'admin listener (metrics, health) listening');
}

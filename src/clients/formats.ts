import { join } from 'node:path';

/** MCP clients whose config files Bastion can write an entry into. */
export const CLIENT_IDS = ['claude-desktop', 'claude-code', 'cursor', 'vscode', 'windsurf'] as const;
export type ClientId = (typeof CLIENT_IDS)[number];

export function isClientId(value: string): value is ClientId {
  return (CLIENT_IDS as readonly string[]).includes(value);
}

/** How the client reaches Bastion. */
export type BastionEndpoint =
  | { transport: 'stdio'; command: string; args: string[] }
  | { transport: 'http'; url: string; tokenEnv: string };

/** Where a client keeps its MCP servers, and how it spells one entry. */
export interface ClientFormat {
  id: ClientId;
  title: string;
  /** The top-level member that maps server names to entries. */
  container: 'mcpServers' | 'servers';
  /** Whether the client can connect to a Streamable HTTP URL itself. */
  supportsHttp: boolean;
  /** Config files, user scope first; `project` ones live in the project directory. */
  locations(env: LocationEnv): { scope: 'user' | 'project'; path: string }[];
  entry(endpoint: BastionEndpoint): Record<string, unknown>;
}

export interface LocationEnv {
  home: string;
  project: string;
  platform: NodeJS.Platform;
  /** %APPDATA% on Windows. */
  appData: string | undefined;
}

/** The Authorization header value each client expands from the environment at start-up. */
const bearerFromEnv = (syntax: 'shell' | 'vscode', variable: string): string => (syntax === 'shell' ? `Bearer \${${variable}}` : `Bearer \${env:${variable}}`);

function stdioEntry(endpoint: Extract<BastionEndpoint, { transport: 'stdio' }>, withType: boolean): Record<string, unknown> {
  return { ...(withType ? { type: 'stdio' } : {}), command: endpoint.command, args: endpoint.args };
}

function claudeDesktopConfigDir(env: LocationEnv): string {
  if (env.platform === 'darwin') return join(env.home, 'Library', 'Application Support', 'Claude');
  if (env.platform === 'win32') return join(env.appData ?? join(env.home, 'AppData', 'Roaming'), 'Claude');
  return join(env.home, '.config', 'Claude');
}

function vscodeUserDir(env: LocationEnv): string {
  if (env.platform === 'darwin') return join(env.home, 'Library', 'Application Support', 'Code', 'User');
  if (env.platform === 'win32') return join(env.appData ?? join(env.home, 'AppData', 'Roaming'), 'Code', 'User');
  return join(env.home, '.config', 'Code', 'User');
}

export const CLIENT_FORMATS: Record<ClientId, ClientFormat> = {
  // Claude Desktop launches local commands only; remote servers are added in its UI.
  'claude-desktop': {
    id: 'claude-desktop',
    title: 'Claude Desktop',
    container: 'mcpServers',
    supportsHttp: false,
    locations: (env) => [{ scope: 'user', path: join(claudeDesktopConfigDir(env), 'claude_desktop_config.json') }],
    entry: (endpoint) => {
      if (endpoint.transport !== 'stdio') throw new Error('Claude Desktop starts local commands only: use --transport stdio');
      return stdioEntry(endpoint, false);
    },
  },
  // Claude Code: ~/.claude.json (user scope) or .mcp.json in the project; ${VAR} is expanded.
  'claude-code': {
    id: 'claude-code',
    title: 'Claude Code',
    container: 'mcpServers',
    supportsHttp: true,
    locations: (env) => [
      { scope: 'user', path: join(env.home, '.claude.json') },
      { scope: 'project', path: join(env.project, '.mcp.json') },
    ],
    entry: (endpoint) => (endpoint.transport === 'stdio' ? stdioEntry(endpoint, true) : { type: 'http', url: endpoint.url, headers: { Authorization: bearerFromEnv('shell', endpoint.tokenEnv) } }),
  },
  // Cursor: ~/.cursor/mcp.json or .cursor/mcp.json; ${env:VAR} is expanded.
  cursor: {
    id: 'cursor',
    title: 'Cursor',
    container: 'mcpServers',
    supportsHttp: true,
    locations: (env) => [
      { scope: 'user', path: join(env.home, '.cursor', 'mcp.json') },
      { scope: 'project', path: join(env.project, '.cursor', 'mcp.json') },
    ],
    entry: (endpoint) => (endpoint.transport === 'stdio' ? stdioEntry(endpoint, false) : { url: endpoint.url, headers: { Authorization: bearerFromEnv('vscode', endpoint.tokenEnv) } }),
  },
  // VS Code: mcp.json in the user profile or .vscode/mcp.json, with a top-level `servers`.
  vscode: {
    id: 'vscode',
    title: 'VS Code',
    container: 'servers',
    supportsHttp: true,
    locations: (env) => [
      { scope: 'user', path: join(vscodeUserDir(env), 'mcp.json') },
      { scope: 'project', path: join(env.project, '.vscode', 'mcp.json') },
    ],
    entry: (endpoint) => (endpoint.transport === 'stdio' ? stdioEntry(endpoint, true) : { type: 'http', url: endpoint.url, headers: { Authorization: bearerFromEnv('vscode', endpoint.tokenEnv) } }),
  },
  // Windsurf: ~/.codeium/windsurf/mcp_config.json; a remote server is `serverUrl`, not `url`.
  windsurf: {
    id: 'windsurf',
    title: 'Windsurf',
    container: 'mcpServers',
    supportsHttp: true,
    locations: (env) => [{ scope: 'user', path: join(env.home, '.codeium', 'windsurf', 'mcp_config.json') }],
    entry: (endpoint) => (endpoint.transport === 'stdio' ? stdioEntry(endpoint, false) : { serverUrl: endpoint.url, headers: { Authorization: bearerFromEnv('vscode', endpoint.tokenEnv) } }),
  },
};

import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { loadConfigText } from './load.js';
import type { LoadedConfig } from './types.js';

const require = createRequire(import.meta.url);

/** The entry script of an installed MCP reference server. */
function referenceServerEntry(packageName: string): string {
  return join(dirname(require.resolve(`${packageName}/package.json`)), 'dist', 'index.js');
}

/**
 * The embedded default: Bastion in front of the three MCP reference servers from npm, on
 * 127.0.0.1 only. Built as YAML text and loaded through the same validator as a user's file,
 * so the default can never bypass a check a real config gets.
 */
export function embeddedDefaultConfig(stateDir = resolve('.bastion')): LoadedConfig {
  const node = process.execPath;
  const workspace = join(stateDir, 'workspace');
  const text = `
version: 1
stateDir: ${JSON.stringify(stateDir)}
listeners:
  http:
    host: 127.0.0.1
    port: ${Number(process.env['BASTION_PORT'] ?? 8080)}
    path: /mcp
servers:
  everything:
    transport: stdio
    command: ${JSON.stringify(node)}
    args: [${JSON.stringify(referenceServerEntry('@modelcontextprotocol/server-everything'))}, stdio]
    trust: unsigned
    description: MCP reference server exercising every protocol feature
  filesystem:
    transport: stdio
    command: ${JSON.stringify(node)}
    args: [${JSON.stringify(referenceServerEntry('@modelcontextprotocol/server-filesystem'))}, ${JSON.stringify(workspace)}]
    trust: unsigned
    description: MCP reference filesystem server, limited to ${workspace}
  memory:
    transport: stdio
    command: ${JSON.stringify(node)}
    args: [${JSON.stringify(referenceServerEntry('@modelcontextprotocol/server-memory'))}]
    env:
      MEMORY_FILE_PATH: ${JSON.stringify(join(stateDir, 'memory.jsonl'))}
    trust: unsigned
    description: MCP reference knowledge-graph memory server
`;
  return loadConfigText(text, '<embedded default>', process.cwd());
}

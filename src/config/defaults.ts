import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { loadConfigText } from './load.js';
import type { LoadedConfig } from './types.js';

const require = createRequire(import.meta.url);

/** The entry script of an installed MCP reference server. */
function referenceServerEntry(packageName: string): string {
  return join(dirname(require.resolve(`${packageName}/package.json`)), 'dist', 'index.js');
}

/** Tools of the everything server that touch nothing outside the server (no scope needed beyond exec). */
const EVERYTHING_TOOLS = [
  'echo', 'get-annotated-message', 'get-env', 'get-resource-links', 'get-resource-reference', 'get-roots-list', 'get-structured-content',
  'get-sum', 'get-tiny-image', 'simulate-research-query', 'toggle-simulated-logging', 'toggle-subscriber-updates',
  'trigger-elicitation-request', 'trigger-elicitation-request-async', 'trigger-long-running-operation', 'trigger-sampling-request',
  'trigger-sampling-request-async', 'trigger-url-elicitation',
];

/** What each filesystem tool touches, bound to its path arguments. */
const FILESYSTEM_SCOPES: Record<string, string[]> = {
  read_file: ['read:filesystem:${path}'],
  read_text_file: ['read:filesystem:${path}'],
  read_media_file: ['read:filesystem:${path}'],
  read_multiple_files: ['read:filesystem:${paths}'],
  write_file: ['write:filesystem:${path}'],
  edit_file: ['read:filesystem:${path}', 'write:filesystem:${path}'],
  create_directory: ['write:filesystem:${path}'],
  list_directory: ['read:filesystem:${path}'],
  list_directory_with_sizes: ['read:filesystem:${path}'],
  directory_tree: ['read:filesystem:${path}'],
  move_file: ['read:filesystem:${source}', 'write:filesystem:${source}', 'write:filesystem:${destination}'],
  search_files: ['read:filesystem:${path}'],
  get_file_info: ['read:filesystem:${path}'],
  list_allowed_directories: [],
};

const MEMORY_TOOLS = ['create_entities', 'create_relations', 'add_observations', 'delete_entities', 'delete_observations', 'delete_relations', 'read_graph', 'search_nodes', 'open_nodes'];

function toolsYaml(scopes: Record<string, string[]>): string {
  return Object.entries(scopes)
    .map(([tool, list]) => `      ${tool}: { scopes: ${JSON.stringify(list)} }`)
    .join('\n');
}

/** The demo policy: the demo agent may use every reference tool, and the filesystem only inside the workspace. */
export function demoPolicyText(workspace: string): string {
  return `# Written by bastion serve for the embedded demo config; edit a copy, not this file.
version: 1
roles:
  demo:
    description: everything the reference servers offer, files only inside the demo workspace
    grants:
      - "exec:tools:[${[...EVERYTHING_TOOLS.map((tool) => `everything.${tool}`), 'everything.gzip-file-as-resource', ...Object.keys(FILESYSTEM_SCOPES).map((tool) => `filesystem.${tool}`), ...MEMORY_TOOLS.map((tool) => `memory.${tool}`)].join(', ')}]"
      - "read:filesystem:${workspace}"
      - "write:filesystem:${workspace}"
      - "write:network:raw.githubusercontent.com:443"
      - "exec:prompts:*"
      - "read:resources:*"
      - "exec:sampling:[everything]"
      - "exec:elicitation:[everything]"
      - "read:roots:[everything, filesystem]"
      - "exec:logging:[everything, filesystem, memory]"
agents:
  demo-agent:
    roles: [demo]
`;
}

/**
 * Writes the demo's policy file, workspace and memory directory into the state directory. When
 * Bastion runs as root, sandboxed servers run as their own uid: the directories they write are
 * handed to that uid, and the state directory is made traversable (not listable) so the
 * sandbox can bind them. The audit keys keep their own 0700 directory.
 */
export function materializeDemo(stateDir: string, ownerOf: (server: string) => number | undefined = () => undefined): void {
  const workspace = join(stateDir, 'workspace');
  const memory = join(stateDir, 'memory');
  mkdirSync(workspace, { recursive: true });
  mkdirSync(memory, { recursive: true });
  chmodSync(stateDir, 0o711);
  for (const [dir, server] of [[workspace, 'filesystem'], [memory, 'memory']] as const) {
    const uid = ownerOf(server);
    if (uid !== undefined) chownSync(dir, uid, uid);
  }
  // Written only when it differs, so a start never rewrites (and reloads) a policy in use.
  const policyFile = join(stateDir, 'demo-policy.yaml');
  const policy = demoPolicyText(workspace);
  if (!existsSync(policyFile) || readFileSync(policyFile, 'utf8') !== policy) writeFileSync(policyFile, policy, { mode: 0o600 });
}

/**
 * The embedded default: Bastion in front of the three MCP reference servers from npm, on
 * 127.0.0.1 only, with a least-privilege demo policy. Built as YAML text and loaded through
 * the same validator as a user's file, so the default can never bypass a check a real config gets.
 */
export function embeddedDefaultConfig(stateDir = resolve('.bastion')): LoadedConfig {
  const node = process.execPath;
  const workspace = join(stateDir, 'workspace');
  const everythingScopes = Object.fromEntries([...EVERYTHING_TOOLS.map((tool) => [tool, [] as string[]]), ['gzip-file-as-resource', ['write:network:${data}']]]);
  const memoryScopes = Object.fromEntries(MEMORY_TOOLS.map((tool) => [tool, [] as string[]]));
  const text = `
version: 1
stateDir: ${JSON.stringify(stateDir)}
listeners:
  http:
    host: 127.0.0.1
    port: ${Number(process.env['BASTION_PORT'] ?? 8080)}
    path: /mcp
  stdio:
    agent: demo-agent
policy:
  files: [${JSON.stringify(join(stateDir, 'demo-policy.yaml'))}]
servers:
  everything:
    transport: stdio
    command: ${JSON.stringify(node)}
    args: [${JSON.stringify(referenceServerEntry('@modelcontextprotocol/server-everything'))}, stdio]
    trust: unsigned
    description: MCP reference server exercising every protocol feature
    scopes: ["write:network:raw.githubusercontent.com:443"]
    tools:
${toolsYaml(everythingScopes)}
  filesystem:
    transport: stdio
    command: ${JSON.stringify(node)}
    args: [${JSON.stringify(referenceServerEntry('@modelcontextprotocol/server-filesystem'))}, ${JSON.stringify(workspace)}]
    trust: unsigned
    description: MCP reference filesystem server, limited to ${workspace}
    scopes: [${JSON.stringify(`read:filesystem:${workspace}`)}, ${JSON.stringify(`write:filesystem:${workspace}`)}]
    tools:
${toolsYaml(FILESYSTEM_SCOPES)}
  memory:
    transport: stdio
    command: ${JSON.stringify(node)}
    args: [${JSON.stringify(referenceServerEntry('@modelcontextprotocol/server-memory'))}]
    env:
      MEMORY_FILE_PATH: ${JSON.stringify(join(stateDir, 'memory', 'memory.jsonl'))}
    scopes: [${JSON.stringify(`write:filesystem:${join(stateDir, 'memory')}`)}]
    trust: unsigned
    description: MCP reference knowledge-graph memory server
    tools:
${toolsYaml(memoryScopes)}
`;
  return loadConfigText(text, '<embedded default>', process.cwd());
}

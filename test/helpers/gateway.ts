import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { hashToken } from '../../src/auth/index.js';
import { loadConfigText } from '../../src/config/index.js';
import { createBastion, type Bastion } from '../../src/app/index.js';
import type { Gateway } from '../../src/gateway/index.js';
import { silentLogger } from '../../src/observability/index.js';
import { removeTree } from './tmp.js';

const require = createRequire(import.meta.url);

/** The compiled CLI entry point. */
export const BASTION_BIN = fileURLToPath(new URL('../../src/cli/bastion.js', import.meta.url));

/** A compiled test fixture server. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/servers/${name}.js`, import.meta.url));
}

export function referenceServer(name: 'everything' | 'filesystem' | 'memory'): string {
  return join(require.resolve(`@modelcontextprotocol/server-${name}/package.json`).replace(/package\.json$/, ''), 'dist', 'index.js');
}

export interface TempDir {
  path: string;
  cleanup(): void;
}

export function tempDir(prefix = 'bastion-test-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => removeTree(path) };
}

export const TEST_TOKEN = 'test-token-for-agent-alice';
export const OTHER_TOKEN = 'test-token-for-agent-bob';

/** YAML for a gateway on a random loopback port with two agents, plus the given servers block. */
export function configYaml(serversYaml: string, extra = '', listeners = 'listeners:\n  http:\n    host: 127.0.0.1\n    port: 0'): string {
  return `version: 1
stateDir: state
${listeners}
auth:
  apiTokens:
    - { agent: alice, sha256: ${hashToken(TEST_TOKEN)} }
    - { agent: bob, sha256: ${hashToken(OTHER_TOKEN)} }
${extra.includes('policy:') ? '' : 'policy: { enforce: false }'}
${extra.includes('sandbox:') ? '' : 'sandbox: { backend: none }'}
${extra}
servers:
${serversYaml}`;
}

export function stdioServer(name: string, script: string, args: string[] = [], extra = ''): string {
  return `  ${name}:
    transport: stdio
    command: ${JSON.stringify(process.execPath)}
    args: ${JSON.stringify([script, ...args])}
    trust: unsigned
${extra}`;
}

export interface RunningGateway {
  gateway: Gateway;
  bastion: Bastion;
  url: string;
  dir: TempDir;
  stop(): Promise<void>;
}

/** Starts an in-process gateway (every control the config asks for) with an HTTP listener on a random port; config paths resolve against `baseDir` (default: a fresh temp dir). */
export async function startGateway(yaml: string, baseDir?: string): Promise<RunningGateway> {
  const dir = tempDir();
  writeFileSync(join(dir.path, 'bastion.yaml'), yaml);
  // Relative paths in the config (and in files it names, such as the hash lock) resolve here.
  const base = baseDir ?? dir.path;
  const loaded = loadConfigText(yaml, join(base, 'bastion.yaml'), base);
  const bastion = await createBastion({ loaded, logger: silentLogger(), version: '0.0.0-test' });
  const url = await bastion.gateway.startHttp();
  return {
    gateway: bastion.gateway,
    bastion,
    url,
    dir,
    stop: async () => {
      await bastion.close();
      dir.cleanup();
    },
  };
}

/** The official SDK client connected to a gateway over Streamable HTTP. */
export async function httpClient(url: string, token = TEST_TOKEN, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const client = new Client({ name: 'bastion-test', version: '1.0.0' }, { capabilities });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

/** The first text content of a tool result. */
export function firstText(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  const item = content.find((entry) => entry.type === 'text');
  return item?.text ?? '';
}

/** The error a tool call fails with; fails the test when the call succeeds. */
export async function callError(client: Client, name: string, args: Record<string, unknown> = {}): Promise<Error> {
  const result = await client.callTool({ name, arguments: args }).then(
    () => undefined,
    (error: Error) => error,
  );
  assert.ok(result instanceof Error, `${name} was expected to fail`);
  return result;
}

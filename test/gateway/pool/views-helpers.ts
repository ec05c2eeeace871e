// Shared by the pool view tests: a policy giving each agent one directory, a gateway running the
// hostile view-probe fixture under bubblewrap at isolation agent, and small call helpers.
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { serverUid } from '../../../src/sandbox/index.js';
import { firstText, fixture, stdioServer } from '../../helpers/gateway.js';
import { policyGatewayYaml } from '../../policy/helpers.js';

export async function call(client: Client, tool: string, args: Record<string, unknown>): Promise<string> {
  return client.callTool({ name: `probe.${tool}`, arguments: args }).then(
    (result) => (result.isError === true ? `tool error: ${firstText(result)}` : firstText(result)),
    (error: Error) => `error: ${error.message}`,
  );
}

export async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function viewsPolicy(root: string, agents: Record<string, string | string[]>): string {
  return ['version: 1', 'agents:', ...Object.entries(agents).flatMap(([agent, dir]) => [
    `  ${agent}:`,
    '    grants:',
    '      - "exec:tools:[probe.exists, probe.read_later, probe.whoami]"',
    ...[dir].flat().flatMap((one) => [`      - "read:filesystem:${join(root, one)}"`, `      - "write:filesystem:${join(root, one)}"`]),
  ]), ''].join('\n');
}

export function viewsGatewayYaml(root: string, agents: string[], extra = '', isolation: 'agent' | 'shared' = 'agent'): string {
  const server = stdioServer('probe', fixture('view-probe-server'), [], [
    `    scopes: [${JSON.stringify(`read:filesystem:${root}`)}, ${JSON.stringify(`write:filesystem:${root}`)}]`,
    `    isolation: ${isolation}`,
    extra,
    '    tools:',
    '      exists: { scopes: [] }',
    '      whoami: { scopes: [] }',
    '      read_later: { scopes: ["read:filesystem:${path}", "read:filesystem:${go}", "write:filesystem:${out}"] }',
    '',
  ].filter((line) => line !== '').join('\n') + '\n');
  return policyGatewayYaml({ agents, policyFile: join(root, 'policy.yaml'), servers: server }).replace('sandbox: { backend: none }', 'sandbox: { backend: bwrap }');
}

/** The agents' directories, writable by the sandbox's uid when the tests run as root. */
export function agentDirectories(root: string, dirs: string[]): void {
  chmodSync(root, 0o755);
  for (const dir of dirs) {
    mkdirSync(join(root, dir), { recursive: true });
    if (process.getuid?.() === 0) chownSync(join(root, dir), serverUid('probe'), serverUid('probe'));
  }
}

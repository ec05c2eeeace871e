import { createHash } from 'node:crypto';
import { mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeTree } from '../helpers/tmp.js';

/** A temporary directory (symlinks resolved) with a way to write files into it and remove it. */
export function tempDir(prefix: string): { dir: string; write(name: string, text: string): string; cleanup(): void } {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  return {
    dir,
    write(name, text) {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
    cleanup() {
      removeTree(dir);
    },
  };
}

/**
 * The config the policy tests run a gateway with: an HTTP listener on a random loopback port, an
 * API token `<agent>-token` for each agent, one policy file (and manifests), no sandbox.
 */
export function policyGatewayYaml(options: { agents: string[]; policyFile: string; manifests?: string[]; extra?: string; servers: string }): string {
  return [
    'version: 1',
    'stateDir: state',
    'listeners:',
    '  http: { host: 127.0.0.1, port: 0 }',
    'auth:',
    '  apiTokens:',
    ...options.agents.map((agent) => `    - { agent: ${agent}, sha256: ${createHash('sha256').update(`${agent}-token`).digest('hex')} }`),
    ...(options.extra === undefined ? [] : [options.extra]),
    'policy:',
    `  files: [${JSON.stringify(options.policyFile)}]`,
    ...(options.manifests === undefined ? [] : [`  manifests: [${options.manifests.map((file) => JSON.stringify(file)).join(', ')}]`]),
    'sandbox: { backend: none }',
    'servers:',
    options.servers,
  ].join('\n');
}

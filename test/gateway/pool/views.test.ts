// At isolation agent a pooled process's sandbox binds only its agent's grants. Two agents with
// different directories on one server: each process sees its own directory and nothing of the
// other's, even through a tool that declares no path, and even when a directory the gateway has
// just checked is swapped for a symlink to the other agent's directory (real bubblewrap).
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { serverUid } from '../../../src/sandbox/index.js';
import { firstText, fixture, httpClient, startGateway, stdioServer, tempDir, type RunningGateway } from '../../helpers/gateway.js';
import { policyGatewayYaml } from '../../policy/helpers.js';

async function call(client: Client, tool: string, args: Record<string, unknown>): Promise<string> {
  return client.callTool({ name: `probe.${tool}`, arguments: args }).then(
    (result) => (result.isError === true ? `tool error: ${firstText(result)}` : firstText(result)),
    (error: Error) => `error: ${error.message}`,
  );
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function viewsPolicy(root: string, agents: Record<string, string>): string {
  return ['version: 1', 'agents:', ...Object.entries(agents).flatMap(([agent, dir]) => [
    `  ${agent}:`,
    '    grants:',
    '      - "exec:tools:[probe.exists, probe.read_later, probe.whoami]"',
    `      - "read:filesystem:${join(root, dir)}"`,
    `      - "write:filesystem:${join(root, dir)}"`,
  ]), ''].join('\n');
}

export function viewsGatewayYaml(root: string, agents: string[], extra = ''): string {
  const server = stdioServer('probe', fixture('view-probe-server'), [], [
    `    scopes: [${JSON.stringify(`read:filesystem:${root}`)}, ${JSON.stringify(`write:filesystem:${root}`)}]`,
    '    isolation: agent',
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

describe('per-agent sandbox views (bwrap)', () => {
  const tmp = tempDir('bastion-pool-views-');
  const root = realpathSync(tmp.path);
  let gw: RunningGateway;
  let alice: Client;
  let bob: Client;

  before(async () => {
    agentDirectories(root, ['a', 'b']);
    writeFileSync(join(root, 'a', 'own.txt'), 'A-own');
    writeFileSync(join(root, 'b', 'file.txt'), 'B-secret');
    writeFileSync(join(root, 'policy.yaml'), viewsPolicy(root, { alice: 'a', bob: 'b' }));
    gw = await startGateway(viewsGatewayYaml(root, ['alice', 'bob']));
    [alice, bob] = await Promise.all([httpClient(gw.url, 'alice-token'), httpClient(gw.url, 'bob-token')]);
  });

  after(async () => {
    await Promise.all([alice?.close(), bob?.close()]);
    await gw?.stop();
    tmp.cleanup();
  });

  it("an agent's process does not see the other agent's directory, even through a tool that declares no path", async () => {
    await Promise.all([call(alice, 'whoami', {}), call(bob, 'whoami', {})]);
    const processes = gw.gateway.pools.list('probe');
    assert.deepEqual(processes.map((process) => process.facts.agentId).sort(), ['alice', 'bob'], 'one process per agent');
    assert.notEqual(processes[0]?.pid, processes[1]?.pid);
    assert.equal(await call(alice, 'exists', { path: join(root, 'a', 'own.txt') }), 'yes');
    assert.equal(await call(alice, 'exists', { path: join(root, 'b', 'file.txt') }), 'no');
    assert.equal(await call(alice, 'exists', { path: join(root, 'b') }), 'no');
    assert.equal(await call(bob, 'exists', { path: join(root, 'b', 'file.txt') }), 'yes', 'bob sees his own');
    assert.equal(await call(bob, 'exists', { path: join(root, 'a', 'own.txt') }), 'no');
  });

  it("a directory swapped for a symlink to the other agent's directory after the check leads nowhere in the sandbox", async () => {
    mkdirSync(join(root, 'a', 'd'));
    writeFileSync(join(root, 'a', 'd', 'file.txt'), 'A-file');
    const out = join(root, 'a', 'leak.txt');
    const pending = call(alice, 'read_later', { path: join(root, 'a', 'd', 'file.txt'), go: join(root, 'a', 'go'), out });
    // The call passed the gateway's checks and reached the server: now swap the directory.
    await until(() => existsSync(`${out}.started`), 'the call to reach the server');
    rmSync(join(root, 'a', 'd'), { recursive: true });
    symlinkSync(join(root, 'b'), join(root, 'a', 'd'));
    writeFileSync(join(root, 'a', 'go'), 'go');
    const answer = await pending;
    await until(() => existsSync(out), 'the server to record what it read');
    const read = readFileSync(out, 'utf8');
    assert.match(read, /^error: ENOENT/, `the server found nothing behind the link (it read: ${read})`);
    assert.doesNotMatch(answer, /B-secret/);
  });

  it('the other agent, through the same tool, reads its own file', async () => {
    writeFileSync(join(root, 'b', 'go'), 'go');
    assert.equal(await call(bob, 'read_later', { path: join(root, 'b', 'file.txt'), go: join(root, 'b', 'go'), out: join(root, 'b', 'read.txt') }), 'B-secret');
  });
});

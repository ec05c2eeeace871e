// The MCP reference servers run unchanged inside the sandbox: initialize, tools/list, one call.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createSandbox, type SandboxHandle, type SandboxSpec } from '../../src/sandbox/index.js';
import { connectClient, NODE_MODULES, referenceServer } from './helpers.js';
import { removeTree } from '../helpers/tmp.js';

async function start(spec: Omit<SandboxSpec, 'command' | 'packageDirs' | 'env'> & { env?: Record<string, string> }): Promise<{ handle: SandboxHandle; client: Client }> {
  const handle = await createSandbox().spawn({ command: process.execPath, packageDirs: [NODE_MODULES], env: {}, ...spec });
  return { handle, client: await connectClient(handle.child) };
}

const textOf = (result: object): string =>
  ((result as { content: Array<{ type: string; text?: string }> }).content).map((c) => c.text ?? '').join('\n');

describe('reference servers inside the bwrap sandbox', () => {
  const granted = mkdtempSync(join(tmpdir(), 'bastion-sandbox-fs-'));
  const started: Array<{ handle: SandboxHandle; client: Client }> = [];

  before(() => {
    chmodSync(granted, 0o755);
    writeFileSync(join(granted, 'hello.txt'), 'hello from the host');
  });

  after(async () => {
    for (const { client, handle } of started) {
      await client.close().catch(() => {});
      await handle.dispose();
    }
    removeTree(granted);
  });

  test('server-everything: initialize, tools/list and echo', async () => {
    const s = await start({ serverName: 'everything', args: [referenceServer('everything'), 'stdio'], scopes: [] });
    started.push(s);
    assert.match(s.client.getServerVersion()?.name ?? '', /everything/i);
    const { tools } = await s.client.listTools();
    assert.ok(tools.some((t) => t.name === 'echo'));
    assert.match(textOf(await s.client.callTool({ name: 'echo', arguments: { message: 'through the sandbox' } })), /through the sandbox/);
  });

  test('server-filesystem: reads a file in its granted directory and nothing outside it', async () => {
    const s = await start({ serverName: 'filesystem', args: [referenceServer('filesystem'), granted], scopes: [`read:filesystem:${granted}`] });
    started.push(s);
    const { tools } = await s.client.listTools();
    assert.ok(tools.some((t) => t.name === 'read_text_file'));
    assert.equal(textOf(await s.client.callTool({ name: 'read_text_file', arguments: { path: join(granted, 'hello.txt') } })), 'hello from the host');
    const denied = await s.client.callTool({ name: 'read_text_file', arguments: { path: '/etc/passwd' } });
    assert.equal(denied.isError, true);
  });

  test('server-memory: stores and reads back an entity (its file in the private /tmp)', async () => {
    const s = await start({ serverName: 'memory', args: [referenceServer('memory')], scopes: [], env: { MEMORY_FILE_PATH: '/tmp/memory.jsonl' } });
    started.push(s);
    const { tools } = await s.client.listTools();
    assert.ok(tools.some((t) => t.name === 'create_entities'));
    await s.client.callTool({ name: 'create_entities', arguments: { entities: [{ name: 'bastion', entityType: 'gateway', observations: ['sandboxed'] }] } });
    assert.match(textOf(await s.client.callTool({ name: 'read_graph', arguments: {} })), /bastion/);
  });
});

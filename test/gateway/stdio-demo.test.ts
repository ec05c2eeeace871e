import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { BASTION_BIN, tempDir } from '../helpers/gateway.js';

test('bastion serve --stdio with the built-in config serves the local user under the demo policy', async () => {
  const work = tempDir('bastion-stdio-demo-');
  const client = new Client({ name: 'desktop-client', version: '1.0.0' });
  try {
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [BASTION_BIN, 'serve', '--stdio'], cwd: work.path, stderr: 'ignore' }));
    const tools = await client.listTools();
    assert.ok(tools.tools.some((tool) => tool.name === 'everything.echo'), 'the demo agent sees the declared tools');
    const result = await client.callTool({ name: 'everything.echo', arguments: { message: 'from stdio' } });
    assert.equal(result.isError, undefined, JSON.stringify(result));
    assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: from stdio' }]);
  } finally {
    await client.close();
    work.cleanup();
  }
});

test('a second Bastion on a state directory in use tells its stdio client why it cannot start, and changes nothing', async () => {
  const work = tempDir('bastion-stdio-demo-');
  const first = new Client({ name: 'first', version: '1.0.0' });
  const second = new Client({ name: 'second', version: '1.0.0' });
  try {
    await first.connect(new StdioClientTransport({ command: process.execPath, args: [BASTION_BIN, 'serve', '--stdio'], cwd: work.path, stderr: 'ignore' }));
    const policyFile = join(work.path, '.bastion', 'demo-policy.yaml');
    const before = statSync(policyFile).mtimeMs;
    await assert.rejects(
      second.connect(new StdioClientTransport({ command: process.execPath, args: [BASTION_BIN, 'serve', '--stdio'], cwd: work.path, stderr: 'ignore' })),
      (error: unknown) => error instanceof Error && /Bastion could not start: .*in use by another Bastion \(process \d+/.test(error.message),
    );
    assert.equal(statSync(policyFile).mtimeMs, before, 'the failed start did not rewrite the running demo policy');
    const result = await first.callTool({ name: 'everything.echo', arguments: { message: 'still here' } });
    assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: still here' }]);
  } finally {
    await second.close().catch(() => undefined);
    await first.close();
    work.cleanup();
  }
});

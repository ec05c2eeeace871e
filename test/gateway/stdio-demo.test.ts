import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
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

// The sessions list of a gateway serving one client over stdio: `bastion serve --stdio` started
// by the official SDK's stdio client transport, with an admin listener beside it. The stdio
// session is listed (transport stdio, the configured agent), and its opening is an event in the
// live stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { hashToken } from '../../../src/auth/index.js';
import { BASTION_BIN, firstText, fixture, stdioServer, tempDir } from '../../helpers/gateway.js';
import { VIEWER, api, freePort, openStream } from './helpers.js';

test('a stdio session is in the sessions list, labelled stdio, and its opening is in the live stream', async () => {
  const work = tempDir('bastion-stdio-sessions-');
  const port = await freePort();
  const config = join(work.path, 'bastion.yaml');
  writeFileSync(
    config,
    [
      'version: 1',
      'stateDir: state',
      'listeners:',
      '  stdio: { agent: desk-agent }',
      '  admin:',
      `    port: ${port}`,
      '    tokens:',
      `      - { operator: vera, role: viewer, sha256: ${hashToken(VIEWER)} }`,
      'policy: { enforce: false }',
      'sandbox: { backend: none }',
      'servers:',
      stdioServer('rugpull', fixture('rugpull-server'), ['1000'], '    tools:\n      echo: { scopes: [] }\n      add: { scopes: [] }\n      get_weather: { scopes: [] }\n'),
    ].join('\n'),
  );
  const client = new Client({ name: 'desk', version: '2.0.0' });
  try {
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [BASTION_BIN, 'serve', '--stdio', '--config', config], stderr: 'ignore' }));
    assert.equal(firstText(await client.callTool({ name: 'rugpull.echo', arguments: { message: 'over stdio' } })), 'over stdio');
    const admin = `http://127.0.0.1:${port}`;
    // The admin listener starts right after the stdio listener: it may still be binding.
    for (let attempt = 0; attempt < 100 && !(await api(admin, 'whoami', VIEWER).then(() => true, () => false)); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 50));
    const sessions = (await api(admin, 'sessions', VIEWER)).body['sessions'] as Array<{ agent: string; transport: string; kind: string; calls: number; client: { name?: string } }>;
    const stdio = sessions.find((session) => session.transport === 'stdio');
    assert.ok(stdio !== undefined, JSON.stringify(sessions));
    assert.equal(stdio.agent, 'desk-agent');
    assert.equal(stdio.kind, 'session');
    assert.equal(stdio.client.name, 'desk');
    assert.ok(stdio.calls >= 2, 'initialize and the call');
    const stream = await openStream(admin, VIEWER, '?category=sessions&backlog=200');
    try {
      const opened = await stream.next((event) => event.data['event'] === 'session.created');
      assert.equal((opened.data['info'] as Record<string, unknown>)['transport'], 'stdio');
      assert.equal((opened.data['info'] as Record<string, unknown>)['agent'], 'desk-agent');
    } finally {
      stream.close();
    }
  } finally {
    await client.close();
    work.cleanup();
  }
});

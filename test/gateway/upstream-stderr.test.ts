import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { BASTION_BIN, configYaml, firstText, fixture, stdioServer, tempDir } from '../helpers/gateway.js';

test("a server's stderr goes to the operational log at info, each line tagged with the server, capped per second", async () => {
  const dir = tempDir('bastion-stderr-');
  const config = join(dir.path, 'gw', 'bastion.yaml');
  mkdirSync(join(dir.path, 'gw'));
  writeFileSync(config, configYaml(stdioServer('chatty', fixture('chatty-stderr-server'), ['300']), '', 'listeners:\n  stdio: { agent: desktop-agent }'));
  const transport = new StdioClientTransport({ command: process.execPath, args: [BASTION_BIN, 'serve', '--stdio', '--config', config], stderr: 'pipe', env: { ...process.env, BASTION_LOG_LEVEL: 'info' } as Record<string, string> });
  let log = '';
  transport.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
  const client = new Client({ name: 'stderr-test', version: '1.0.0' });
  try {
    await client.connect(transport);
    assert.equal(firstText(await client.callTool({ name: 'chatty.echo', arguments: { message: 'still serving' } })), 'still serving');
    // The dropped count is logged when the next second's first line arrives or the server ends.
    await new Promise((resolve) => setTimeout(resolve, 1200));
  } finally {
    await client.close();
    dir.cleanup();
  }
  const records = log.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { level: number; msg: string; server?: string; stderr?: string; dropped?: number });
  const lines = records.filter((record) => record.msg === 'upstream stderr');
  assert.ok(lines.length > 0, 'stderr lines reach the log at the default level');
  assert.ok(lines.every((record) => record.server === 'chatty' && record.level === 30 && /^chatty line \d+$/.test(record.stderr ?? '')), 'each line is logged at info with its server');
  assert.ok(lines.length <= 50, `at most 50 lines a second are logged, got ${lines.length} of 300 written in one burst`);
});

// The MCP Inspector's CLI (its mcp-inspector-cli --cli entry, as the README runs it), a client Bastion's users point at it, against a running gateway in
// front of the real everything server: the README's commands, with and without a token.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { configYaml, referenceServer, startGateway, stdioServer, TEST_TOKEN, type RunningGateway } from '../helpers/gateway.js';

const require = createRequire(import.meta.url);
const INSPECTOR_CLI = join(dirname(require.resolve('@modelcontextprotocol/inspector-cli/package.json')), 'build', 'cli.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the Inspector CLI asynchronously (the gateway serves from this same process). */
function inspector(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [INSPECTOR_CLI, '--cli', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the MCP Inspector CLI through Bastion', () => {
  let gw: RunningGateway;

  before(async () => {
    gw = await startGateway(configYaml(stdioServer('everything', referenceServer('everything'), ['stdio'])));
  });

  after(async () => {
    await gw?.stop();
  });

  test('tools/list shows the namespaced tools of the server behind the gateway', async () => {
    const run = await inspector([gw.url, '--transport', 'http', '--header', `Authorization: Bearer ${TEST_TOKEN}`, '--method', 'tools/list']);
    assert.equal(run.code, 0, run.stderr);
    const names = (JSON.parse(run.stdout) as { tools: Array<{ name: string }> }).tools.map((tool) => tool.name);
    assert.ok(names.includes('everything.echo'), names.join(', '));
    assert.ok(names.every((name) => name.startsWith('everything.')));
  });

  test('tools/call reaches the real server and returns its answer', async () => {
    const run = await inspector([gw.url, '--transport', 'http', '--header', `Authorization: Bearer ${TEST_TOKEN}`, '--method', 'tools/call', '--tool-name', 'everything.echo', '--tool-arg', 'message=hello from the inspector']);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { content: Array<{ type: string; text: string }> };
    assert.match(result.content[0]?.text ?? '', /hello from the inspector/);
  });

  test('without a token the Inspector is refused', async () => {
    const run = await inspector([gw.url, '--transport', 'http', '--method', 'tools/list']);
    assert.notEqual(run.code, 0);
    assert.match(run.stdout + run.stderr, /401|nauthori[sz]ed|invalid_token|authentication/i);
  });
});

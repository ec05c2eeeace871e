import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { BASTION_BIN, configYaml, firstText, fixture, referenceServer, stdioServer, tempDir } from '../helpers/gateway.js';

const dir = tempDir();

/** Each gateway process gets its own directory: its audit log is locked to one writer. */
function writeConfig(name: string): string {
  const path = join(dir.path, name, 'bastion.yaml');
  mkdirSync(join(dir.path, name));
  writeFileSync(path, configYaml(stdioServer('everything', referenceServer('everything'), ['stdio']) + stdioServer('odd', fixture('misbehaving-server')), '', 'listeners:\n  stdio: { agent: desktop-agent }'));
  return path;
}

describe('the bastion binary serving a client over stdio', () => {
  let client: Client;

  before(async () => {
    client = new Client({ name: 'stdio-test', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [BASTION_BIN, 'serve', '--stdio', '--config', writeConfig('sdk')], stderr: 'ignore' }));
  });

  after(async () => {
    await client?.close();
  });

  test('lists and calls tools of the real everything server through the gateway', async () => {
    const { tools } = await client.listTools();
    assert.ok(tools.some((tool) => tool.name === 'everything.echo'));
    assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: 'over stdio' } })), 'Echo: over stdio');
  });

  test('progress arrives for a long-running call', async () => {
    const seen: number[] = [];
    await client.callTool({ name: 'everything.trigger-long-running-operation', arguments: { duration: 1, steps: 2 } }, undefined, { onprogress: (p) => seen.push(p.progress) });
    // The reference server may write its last progress after the result; the first is always in time.
    assert.ok(seen.length >= 1 && seen[0] === 1, `progress seen: ${JSON.stringify(seen)}`);
    assert.ok(seen.every((value, index) => value === index + 1));
  });

  test('pagination: the merged list comes back whole through cursors', async () => {
    const names: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor === undefined ? {} : { cursor });
      names.push(...page.tools.map((tool) => tool.name));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    assert.ok(names.includes('odd.echo') && names.includes('everything.echo'));
    const bad = await client.listTools({ cursor: 'not-a-cursor' }).catch((error: Error) => error);
    assert.ok(bad instanceof Error && /invalid cursor/.test(bad.message));
  });
});

/** Talks raw lines to the binary, to send what no SDK client would. */
class RawStdio {
  readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private waiters: Array<() => void> = [];

  constructor() {
    this.child = spawn(process.execPath, [BASTION_BIN, 'serve', '--stdio', '--config', writeConfig('raw')], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.lines.push(line);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  send(text: string): void {
    this.child.stdin.write(`${text}\n`);
  }

  /** The next response; notifications the upstreams send meanwhile are skipped. */
  async next(): Promise<Record<string, unknown>> {
    for (;;) {
      while (this.lines.length === 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
      const message = JSON.parse(this.lines.shift() as string) as Record<string, unknown>;
      if ('id' in message) return message;
    }
  }
}

describe('bad input over stdio gets a JSON-RPC error and the gateway keeps serving', () => {
  const raw = new RawStdio();
  after(() => {
    raw.child.kill();
    dir.cleanup();
  });

  test('requests before initialize are refused', async () => {
    raw.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
    const answer = await raw.next();
    assert.equal(answer['id'], 1);
    assert.match(JSON.stringify(answer['error']), /before initialize/);
  });

  test('malformed JSON gets a parse error with a null id', async () => {
    raw.send('{"jsonrpc": "2.0", "id": 2, "method"');
    const answer = await raw.next();
    assert.equal(answer['id'], null);
    assert.equal((answer['error'] as { code: number }).code, -32700);
  });

  test('a batch gets an Invalid Request error', async () => {
    raw.send(JSON.stringify([{ jsonrpc: '2.0', id: 3, method: 'ping' }]));
    const answer = await raw.next();
    assert.equal((answer['error'] as { code: number }).code, -32600);
  });

  test('an oversized line is discarded with an error and the next message is served', async () => {
    raw.send(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'ping', params: { pad: 'x'.repeat(1_200_000) } }));
    const tooLarge = await raw.next();
    assert.equal((tooLarge['error'] as { code: number }).code, -32014);
    raw.send(JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'ping' }));
    const pong = await raw.next();
    assert.equal(pong['id'], 5);
    assert.deepEqual(pong['result'], {});
  });

  test('initialize negotiates a supported protocol version and answers an unknown one with the latest', async () => {
    raw.send(JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'initialize', params: { protocolVersion: '2099-01-01', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } }));
    const answer = await raw.next();
    assert.equal((answer['result'] as { protocolVersion: string }).protocolVersion, '2025-11-25');
  });

  test('an unknown method gets Method Not Found', async () => {
    raw.send(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'does/not/exist' }));
    const answer = await raw.next();
    assert.equal((answer['error'] as { code: number }).code, -32601);
  });

  test('closing stdin shuts the gateway down and stops every upstream', async () => {
    raw.send(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'odd.pid', arguments: {} } }));
    const answer = await raw.next();
    assert.ok(answer['result'] !== undefined, JSON.stringify(answer));
    const upstreamPid = Number(JSON.parse(JSON.stringify(answer['result'])).content[0].text);
    const exited = new Promise<number | null>((resolve) => raw.child.once('exit', (code) => resolve(code)));
    raw.child.stdin.end();
    assert.equal(await exited, 0);
    assert.throws(() => process.kill(upstreamPid, 0), /ESRCH/, 'the upstream process outlived the gateway');
  });
});
